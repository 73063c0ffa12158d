//! Every setting of a PUT takes effect, read back through the metrics.

use super::*;

/// The sum of `metric` over the series labelled with `processor`, once it is
/// at least `least` (counters move just after a commit) or after 5 s.
async fn metric(server: &Server, name: &str, processor: &str, least: f64) -> f64 {
    let label = format!("processor=\"{processor}\"");
    let started = Instant::now();
    loop {
        let response = server.client.get(server.url("/metrics")).send().await;
        let text = response.unwrap().text().await.unwrap();
        let sum = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&label))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if sum >= least || started.elapsed() > Duration::from_secs(5) {
            return sum;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setting_of_a_put_takes_effect_and_a_swap_changes_what_it_gives() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    host.topic("in", 2);
    host.topic("out", 1);
    let (_, pass) = server.upload(guests::PASSTHROUGH).await;
    let body = json!({
        "component": pass["id"],
        "topics": ["in"],
        "group": "tuned-group",
        "instances": 2,
        "config": {"output": "out"},
        "label": "v1",
        "reset": "earliest",
        "max_records": 7,
        "max_bytes": 65536,
        "max_wait_ms": 20,
        "protocol": "eager",
        "assignor": "range",
        "session_timeout_ms": 8000,
        "max_poll_interval_ms": 90000,
        "max_retries": 1,
        "initial_backoff_ms": 10,
        "max_backoff_ms": 50,
        "when_exhausted": "stop",
        "limits": {"memory_bytes": 33554432, "deadline_ms": 75000, "max_stack_bytes": 524288, "fuel": null},
        "scratch": true,
    });
    let (status, created) = server.put("/processors/tuned", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    for (key, value) in body.as_object().unwrap() {
        if key != "component" {
            assert_eq!(created[key], *value, "{key} in {created:#}");
        }
    }
    let values: Vec<String> = (0..70).map(|i| format!("r{i}")).collect();
    host.append_values("in", 0, &values);
    server
        .wait_for("tuned", |s| s["lag"] == 0 && s["processed"] == 70)
        .await;
    let batches = metric(&server, "weir_batches_total", "tuned", 10.0).await;
    assert!(
        batches >= 10.0,
        "70 records in batches of at most 7: {batches}"
    );
    let group = host
        .groups
        .describe("tuned-group")
        .expect("the group is live");
    assert_eq!(group.protocol, weir::group::Protocol::Eager);
    assert_eq!(group.assignor, weir::group::AssignorKind::Range);
    assert_eq!(group.members.len(), 2);
    assert!(
        host.dir.path().join("scratch/tuned").is_dir(),
        "scratch given"
    );

    let swap = json!({"component": pass["id"], "label": "v2", "max_records": 3, "instances": 1});
    let (status, swapped) = server.post("/processors/tuned/swap", swap).await;
    assert_eq!(status, 200, "{swapped}");
    assert_eq!(swapped["max_records"], 3);
    assert_eq!(swapped["instances"], 1);
    assert_eq!(swapped["label"], "v2");
    assert_eq!(swapped["assignor"], "range", "settings not given are kept");
    assert_eq!(swapped["limits"]["deadline_ms"], 75000);
    assert_eq!(swapped["config"]["output"], "out");
    host.append_values("in", 1, &values[..30]);
    server
        .wait_for("tuned", |s| {
            // The 70 before the restart still count.
            s["state"] == "running" && s["lag"] == 0 && s["processed"] == 100
        })
        .await;
    let after = metric(&server, "weir_batches_total", "tuned", batches + 10.0).await;
    assert!(
        after - batches >= 10.0,
        "30 records in batches of at most 3: {after} - {batches}"
    );
    let group = host
        .groups
        .describe("tuned-group")
        .expect("the group is live");
    assert_eq!(group.members.len(), 1, "restarted with one member");
    let out = server.get("/topics/out").await.1;
    assert_eq!(out["high_watermarks"][0], 100, "nothing processed twice");

    let refused: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/processors/tuned/swap",
            json!({"component": pass["id"], "max_recods": 3}),
            422,
            "max_recods",
        ),
        (
            "/processors/tuned/swap",
            json!({"component": pass["id"], "limits": {"deadline_ms": 100_000}}),
            400,
            "max_poll_interval_ms (90000)",
        ),
        (
            "/processors/tuned/swap",
            json!({"component": pass["id"], "max_records": 0}),
            400,
            "max_records must be at least 1",
        ),
    ];
    for (path, body, expected, message) in refused {
        let (status, reply) = server.post(path, body.clone()).await;
        assert_eq!(status, expected, "{body}: {reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(error.contains(message), "{body}: {error}");
    }
    let (status, reply) = server
        .put(
            "/processors/slow",
            json!({"component": pass["id"], "topics": ["in"], "limits": {"deadline_ms": 61_000}}),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("max_poll_interval_ms (60000)"),
        "{reply}"
    );
    let (_, status) = server.get("/processors/tuned").await;
    assert_eq!(
        (status["max_records"].as_u64(), status["state"].as_str()),
        (Some(3), Some("running"))
    );
    server.shutdown().await;
}
