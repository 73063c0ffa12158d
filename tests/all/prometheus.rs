//! `/metrics` follows Prometheus conventions on a real server: `# HELP` and
//! `# TYPE` on every series, histograms with buckets, a processor's series at
//! 0 before its first record, `weir_build_info` and the process figures; the
//! endpoint answers without the token only when made public; `/ready` says
//! 503 until the recorded processors are back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use weir::service::{AppState, Metrics};
use weir_tests::server::{Server, http_status, spawn_serve};
use weir_tests::{Host, guests};

async fn scrape(server: &Server) -> String {
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the first sample line starting with `prefix`.
fn value(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Every sample's family has `# HELP` and `# TYPE`, and none is a summary.
fn assert_every_family_described(text: &str) {
    let (mut helped, mut typed) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_string();
            let kind = parts.next().unwrap();
            assert_ne!(kind, "summary", "{name} is a summary");
            typed.insert(name);
        }
    }
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(helped.contains(family), "no # HELP for {family}:\n{text}");
        assert!(typed.contains(family), "no # TYPE for {family}:\n{text}");
    }
}

#[tokio::test]
async fn an_idle_processor_s_series_exist_at_zero_and_every_series_is_described() {
    Metrics::install();
    let host = Host::new();
    // Names no other test uses: the recorder is the whole test binary's.
    host.topic("idle-in", 1);
    host.topic("idle-out", 1);
    let server = Server::start(&host, None).await;
    let (_, component) = server.upload(guests::SCRIPTED).await;
    let body = json!({"component": component["id"], "topics": ["idle-in"], "config": {"output": "idle-out"}});
    let (status, deployed) = server.put("/processors/idle", body).await;
    assert_eq!(status, 201, "{deployed}");

    let text = scrape(&server).await;
    assert_every_family_described(&text);
    for counter in [
        "weir_records_processed_total",
        "weir_batches_total",
        "weir_emitted_records_total",
        "weir_dlq_records_total",
        "weir_failures_total",
    ] {
        let prefix = format!("{counter}{{processor=\"idle\",");
        assert_eq!(value(&text, &prefix), Some(0.0), "{counter} at 0:\n{text}");
    }
    assert_eq!(
        value(&text, "weir_appended_records_total{topic=\"idle-in\"}"),
        Some(0.0),
        "{text}"
    );
    let build = text
        .lines()
        .find(|l| l.starts_with("weir_build_info{version=\""))
        .unwrap_or_else(|| panic!("no weir_build_info:\n{text}"));
    assert!(build.ends_with(" 1"), "{build}");
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        let v = value(&text, &format!("{name} ")).unwrap_or_else(|| panic!("{name}:\n{text}"));
        assert!(v > 0.0, "{name} = {v}");
    }
    assert!(
        text.contains("# TYPE weir_guest_process_seconds histogram"),
        "{text}"
    );

    host.append_values("idle-in", 0, &["a", "b"]);
    let started = Instant::now();
    let text = loop {
        let text = scrape(&server).await;
        if value(&text, "weir_records_processed_total{processor=\"idle\",") == Some(2.0) {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{text}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_every_family_described(&text);
    let all = text
        .lines()
        .find(|l| {
            l.starts_with("weir_guest_process_seconds_bucket{")
                && l.contains("processor=\"idle\"")
                && l.contains("le=\"+Inf\"")
        })
        .unwrap_or_else(|| panic!("no buckets:\n{text}"));
    assert!(all.ends_with(" 1") || all.ends_with(" 2"), "{all}");
    assert!(text.contains("le=\"0.001\""), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_answer_without_the_token_only_when_made_public() {
    let host = Host::new();
    let closed = Server::start(&host, Some("secret")).await;
    let status = |server: &Server, path: &str| {
        let request = server.client.get(server.url(path));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(&closed, "/metrics").await, 401);
    closed.shutdown().await;

    let state = host.app_state(Some("secret"));
    let public = Arc::new(AppState {
        broker: state.broker.clone(),
        supervisor: state.supervisor.clone(),
        metrics: state.metrics.clone().public(true),
        token: state.token.clone(),
    });
    public.supervisor.restore().await.unwrap();
    let open = Server::with_state(public).await;
    assert_eq!(status(&open, "/metrics").await, 200);
    assert_eq!(
        status(&open, "/topics").await,
        401,
        "only /metrics is public"
    );
    assert_eq!(status(&open, "/ready").await, 200, "probes need no token");
    open.shutdown().await;
}

#[tokio::test]
async fn ready_answers_503_until_the_recorded_processors_are_restored() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let server = Server::start(&host, None).await;
    let (_, component) = server.upload(guests::PASSTHROUGH).await;
    let body = json!({"component": component["id"], "topics": ["in"], "config": {"output": "out"}});
    assert_eq!(server.put("/processors/p", body).await.0, 201);
    assert_eq!(
        server.get("/ready").await,
        (200, json!({"status": "ready"}))
    );
    server.shutdown().await;

    // A restarted host serves before its processors are back.
    let state = host.app_state(None);
    let server = Server::with_state(state.clone()).await;
    let (status, body) = server.get("/ready").await;
    assert_eq!((status, body), (503, json!({"status": "restoring"})));
    assert_eq!(server.get("/processors/p").await.0, 404);
    assert!(state.supervisor.restore().await.unwrap().is_empty());
    assert_eq!(server.get("/ready").await.0, 200);
    let (_, p) = server.get("/processors/p").await;
    assert_eq!(p["state"], "running", "{p}");
    assert_eq!(server.get("/health").await.0, 200);
    server.shutdown().await;
}

#[test]
fn weir_serve_serves_metrics_without_its_token_when_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    let data = dir.path().join("data");
    for (file, flag) in [
        ("metrics_public = true\n", None),
        ("", Some("--metrics-public")),
    ] {
        let text = format!("listen = \"127.0.0.1:0\"\ntoken = \"secret\"\n{file}");
        std::fs::write(&config, text).unwrap();
        let mut args = vec!["--config".as_ref(), config.as_os_str()];
        args.extend(flag.map(std::ffi::OsStr::new));
        let (mut child, url) = spawn_serve(&data, &args);
        let statuses = (http_status(&url, "/metrics"), http_status(&url, "/topics"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(statuses, (Some(200), Some(401)), "{file}{flag:?}");
    }
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ntoken = \"secret\"\n").unwrap();
    let (mut child, url) = spawn_serve(&data, &["--config".as_ref(), config.as_os_str()]);
    let status = http_status(&url, "/metrics");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, Some(401), "not public unless told");
}
