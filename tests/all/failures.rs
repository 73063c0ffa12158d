//! Failures that are systemic, not one poison record's: the circuit breaker
//! stops a processor before its input drains into the dead-letter topic
//! (`weir run` exits non-zero; `weir serve` pauses or fails it with the
//! reason in its status and a metric), and a processor retrying a batch says
//! so in its status.

use std::path::Path;

use serde_json::json;
use weir_tests::command;
use weir_tests::server::Server;
use weir_tests::{Host, guests};

fn weir(dir: &Path, args: &[&str]) -> std::process::Output {
    command::weir(dir, args)
        .env("RUST_LOG", "info")
        .output()
        .expect("spawn weir")
}

#[test]
fn weir_run_without_memory_for_an_instance_trips_the_breaker_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    for topic in ["orders", "orders-usd"] {
        let created = weir(path, &["topic", "create", topic]);
        assert!(created.status.success(), "{created:?}");
    }
    let produced = weir(
        path,
        &["produce", "--topic", "orders", "--generate", "1000"],
    );
    assert!(produced.status.success(), "{produced:?}");

    let run = weir(
        path,
        &[
            "run",
            "--name",
            "fx",
            "--wasm",
            guests::CURRENCY_V1,
            "--topic",
            "orders",
            "--memory-mb",
            "0",
            "--initial-backoff-ms",
            "1",
            "--max-backoff-ms",
            "5",
            "--until-caught-up",
        ],
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success(),
        "exit 0 after a systemic failure: {stderr}"
    );
    assert!(stderr.contains("circuit breaker tripped"), "{stderr}");
    assert!(
        stderr.contains("memory limit"),
        "the cause is named: {stderr}"
    );

    let host = Host::new_in(dir);
    let dead = host.values("fx.dlq", 0).len();
    assert!(
        dead <= weir::processor::DEFAULT_BREAKER_THRESHOLD as usize,
        "{dead} of 1000 orders dead-lettered"
    );
    assert!(host.committed("fx", "orders", 0) <= dead as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_processor_whose_every_record_fails_trips_and_dead_letters_no_more_than_the_threshold()
 {
    let host = Host::new();
    for topic in ["poisoned", "also-poisoned", "out"] {
        host.topic(topic, 1);
    }
    let traps = vec!["trap"; 200];
    host.append_values("poisoned", 0, &traps);
    host.append_values("also-poisoned", 0, &traps);
    let server = Server::start(&host, None).await;
    let fast = |when_tripped: &str| {
        json!({"max_retries": 0, "initial_backoff_ms": 1, "max_backoff_ms": 1,
               "max_records": 20, "breaker_threshold": 3, "when_tripped": when_tripped})
    };
    server
        .deploy_scripted("tripper", "poisoned", fast("pause"))
        .await;
    server
        .deploy_scripted("stopper", "also-poisoned", fast("stop"))
        .await;

    let paused = server.wait_for("tripper", |s| s["state"] == "paused").await;
    let error = paused["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("circuit breaker tripped: 3 records in a row went to tripper.dlq"),
        "{paused:#}"
    );
    assert!(error.contains("guest trapped"), "{error}");
    assert_eq!(paused["breaker_tripped"], true);
    let failed = server.wait_for("stopper", |s| s["state"] == "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("circuit breaker tripped"),
        "{failed:#}"
    );
    assert_eq!(failed["breaker_tripped"], true);

    for (name, topic) in [("tripper", "poisoned"), ("stopper", "also-poisoned")] {
        assert_eq!(
            host.values(&format!("{name}.dlq"), 0).len(),
            3,
            "{name}: the threshold, no more"
        );
        assert_eq!(
            host.committed(name, topic, 0),
            3,
            "{name}: nothing past it committed"
        );
    }
    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    for name in ["tripper", "stopper"] {
        let line = format!("weir_breaker_trips_total{{processor=\"{name}\"}} 1");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }

    // The breaker's pause is recorded: it survives a restart, reason and all.
    server.shutdown().await;
    let server = Server::start(&host, None).await;
    let (_, restored) = server.get("/processors/tripper").await;
    assert_eq!(restored["state"], "paused");
    assert_eq!(restored["error"], paused["error"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_retrying_its_first_batch_shows_the_last_error_and_the_attempts() {
    let host = Host::new();
    for topic in ["stuck", "out"] {
        host.topic(topic, 1);
    }
    host.append_values("stuck", 0, &["trap"]);
    let server = Server::start(&host, None).await;
    let settings = json!({"max_retries": 1000, "initial_backoff_ms": 20, "max_backoff_ms": 50});
    server.deploy_scripted("retrier", "stuck", settings).await;

    let status = server
        .wait_for("retrier", |s| s["attempts"].as_u64() >= Some(3))
        .await;
    assert_eq!(status["state"], "retrying", "{status:#}");
    let last = status["last_error"].as_str().unwrap_or_default();
    assert!(last.contains("guest trapped"), "{status:#}");
    assert_eq!(status["processed"], 0);
    server.shutdown().await;
}
