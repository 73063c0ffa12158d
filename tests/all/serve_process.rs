//! `weir serve` as a real process: processors declared in `weir.toml` run,
//! SIGTERM finishes and commits the batches in flight and exits 0, and a
//! restart picks up where the committed offsets say, processing nothing twice.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use weir_tests::command;
use weir_tests::server::spawn_serve;
use weir_tests::{Host, guests};

const RECORDS: usize = 30_000;

/// Starts `weir serve --config config` on `dir`; returns the child and its URL.
fn serve(dir: &Path, config: &Path) -> (Child, String) {
    spawn_serve(dir, &["--config".as_ref(), config.as_os_str()])
}

fn terminate(mut child: Child) {
    let (status, _) = command::sigterm(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
}

/// The `copy` processor's lag, from the running server.
fn processor_lag(url: &str) -> Option<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status: serde_json::Value = runtime.block_on(async {
        let response = reqwest::get(format!("{url}/processors/copy")).await.ok()?;
        response.json().await.ok()
    })?;
    status["lag"].as_u64()
}

#[test]
fn sigterm_commits_what_was_processed_and_a_restart_repeats_nothing() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let values: Vec<String> = (0..RECORDS).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    for chunk in refs.chunks(1000) {
        host.append_values("in", 0, chunk);
    }
    let Host { dir, .. } = host;
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n\n[[processors]]\nname = \"copy\"\nwasm = {:?}\ntopics = [\"in\"]\nconfig = {{ output = \"out\" }}\n",
            guests::SCRIPTED
        ),
    )
    .unwrap();

    let (child, _) = serve(dir.path(), &config);
    let out_segment = dir.path().join("topics/out/0/00000000000000000000.log");
    let started = Instant::now();
    while std::fs::metadata(&out_segment).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing emitted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    terminate(child);

    let host = Host::new_in(dir);
    let committed = host.committed("copy", "in", 0);
    eprintln!("SIGTERM after {committed} of {RECORDS} records were committed");
    assert_eq!(
        host.values("out", 0).len() as u64,
        committed,
        "everything processed before the exit was committed, nothing more"
    );
    let Host { dir, .. } = host;

    let (child, url) = serve(dir.path(), &config);
    let started = Instant::now();
    while processor_lag(&url) != Some(0) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never caught up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(child);
    let host = Host::new_in(dir);
    assert_eq!(
        host.values("out", 0),
        values,
        "every record exactly once, in order, across the restart"
    );
}

/// `GET {url}{path}` from a blocking test: the body as text.
fn get_text(url: &str, path: &str) -> Option<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(format!("{url}{path}")).await.ok()?;
        response.text().await.ok()
    })
}

#[test]
fn a_weir_toml_with_every_setting_starts_the_processor_with_them() {
    let host = Host::new();
    host.topic("in", 2);
    host.topic("out", 1);
    let values: Vec<String> = (0..40).map(|i| format!("r{i}")).collect();
    host.append_values("in", 0, &values);
    let Host { dir, .. } = host;
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("weir.toml");
    let toml = |max_records: u32, label: &str| {
        format!(
            r#"listen = "127.0.0.1:0"

[[processors]]
name = "tuned"
wasm = {wasm:?}
topics = ["in"]
group = "tuned-g"
instances = 2
config = {{ output = "out" }}
label = "{label}"
reset = "earliest"
max_records = {max_records}
max_bytes = 65536
max_wait_ms = 20
protocol = "eager"
assignor = "range"
session_timeout_ms = 8000
max_poll_interval_ms = 90000
max_retries = 1
initial_backoff_ms = 10
max_backoff_ms = 50
when_exhausted = "pause"
limits = {{ memory_bytes = 33554432, deadline_ms = 70000, max_stack_bytes = 524288, fuel = 1000000000000 }}
scratch = true
"#,
            wasm = guests::PASSTHROUGH
        )
    };
    let expected = |max_records: u32, label: &str| {
        serde_json::json!({
            "topics": ["in"], "group": "tuned-g", "instances": 2, "config": {"output": "out"},
            "label": label, "reset": "earliest", "max_records": max_records, "max_bytes": 65536,
            "max_wait_ms": 20, "protocol": "eager", "assignor": "range",
            "session_timeout_ms": 8000, "max_poll_interval_ms": 90000, "max_retries": 1,
            "initial_backoff_ms": 10, "max_backoff_ms": 50, "when_exhausted": "pause",
            "limits": {"memory_bytes": 33554432, "deadline_ms": 70000, "max_stack_bytes": 524288, "fuel": 1_000_000_000_000u64},
            "scratch": true,
        })
    };
    let caught_up = |url: &str| {
        let started = Instant::now();
        loop {
            let status: serde_json::Value = get_text(url, "/processors/tuned")
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            if status["lag"] == 0 && status["state"] == "running" {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never caught up: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The batch counter moves just after a commit: poll it for a while (with
    // the default max_records it would never get there).
    let batches = |url: &str| -> f64 {
        let started = Instant::now();
        loop {
            let n: f64 = get_text(url, "/metrics")
                .unwrap()
                .lines()
                .filter(|l| {
                    l.starts_with("weir_batches_total{") && l.contains("processor=\"tuned\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            if n >= 10.0 || started.elapsed() > Duration::from_secs(5) {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    std::fs::write(&config, toml(4, "v1")).unwrap();
    let (child, url) = serve(dir.path(), &config);
    let _guard = command::KillOnPanic(child.id());
    let status = caught_up(&url);
    for (key, value) in expected(4, "v1").as_object().unwrap() {
        assert_eq!(status[key], *value, "{key} in {status:#}");
    }
    let n = batches(&url);
    let metrics = get_text(&url, "/metrics").unwrap();
    let metrics: Vec<&str> = metrics.lines().filter(|l| l.contains("_total")).collect();
    assert!(
        n >= 10.0,
        "40 records in batches of at most 4: {n}\n{metrics:#?}\n{status:#}"
    );
    assert!(dir.path().join("scratch/tuned").is_dir());
    terminate(child);

    // At the next start the file's settings are applied to the recorded
    // processor: a changed batch size and label reach it.
    std::fs::write(&config, toml(2, "v2")).unwrap();
    let host = Host::new_in(dir);
    host.append_values("in", 1, &values[..20]);
    let Host { dir, .. } = host;
    let (child, url) = serve(dir.path(), &config);
    let _guard = command::KillOnPanic(child.id());
    let status = caught_up(&url);
    for (key, value) in expected(2, "v2").as_object().unwrap() {
        assert_eq!(status[key], *value, "{key} in {status:#}");
    }
    let n = batches(&url);
    assert!(n >= 10.0, "20 records in batches of at most 2: {n}");
    terminate(child);
    let host = Host::new_in(dir);
    assert_eq!(host.values("out", 0).len(), 60, "every record once");
}
