//! Processor operations are all or nothing and hold up only their own
//! processor: a rewind resolves every target (one position, or one per
//! partition) before a member stops; `processed` only grows; a pause waiting
//! for a batch in flight does not hold up calls on other processors; a
//! scale-down finishes past a failed member; uploads are bounded; a deleted
//! processor's scratch directory goes with it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use weir::processor::{Instances, ProcessorConfig};
use weir_tests::server::Server;
use weir_tests::{Host, guests, weir_bin};

fn caught_up(status: &Value) -> bool {
    status["lag"] == 0 && status["state"] == "running"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_to_a_bad_offset_is_refused_before_any_member_restarts() {
    let host = Host::new();
    for topic in ["held", "out"] {
        host.topic(topic, 1);
    }
    host.append_values("held", 0, &["trap", "b"]);
    let server = Server::start(&host, None).await;
    // One slow retry, then the partition pauses; a restarted member would
    // fetch it again and take the slow retry once more.
    let settings = json!({"max_retries": 1, "initial_backoff_ms": 3000, "max_backoff_ms": 3000,
                          "when_exhausted": "pause"});
    server.deploy_scripted("holder", "held", settings).await;
    let paused = server
        .wait_for("holder", |s| s["paused_partitions"] != json!([]))
        .await;

    let (status, body) = server
        .post("/processors/holder/rewind", json!({"to": 999_999}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (_, after) = server.get("/processors/holder").await;
    assert_eq!(
        after["paused_partitions"], paused["paused_partitions"],
        "the members were not restarted: {after:#}"
    );
    assert_eq!(host.committed("holder", "held", 0), 0, "no offset moved");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_moves_each_partition_to_its_own_target_from_the_cli_and_the_api() {
    let host = Host::new();
    host.topic("two", 2);
    host.topic("out", 1);
    let p0: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let p1: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
    host.append_values("two", 0, &p0);
    host.append_values("two", 1, &p1);
    let server = Server::start(&host, None).await;
    server.deploy_scripted("copier", "two", json!({})).await;
    server.wait_for("copier", caught_up).await;
    assert_eq!(host.values("out", 0).len(), 20);

    let (url, dir) = (server.base.clone(), host.dir.path().to_path_buf());
    let cli = tokio::task::spawn_blocking(move || {
        std::process::Command::new(weir_bin())
            .args(["--data-dir", dir.to_str().unwrap(), "--server", &url])
            .args(["processor", "rewind", "copier", "--to", "0:7,1:latest"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    server.wait_for("copier", caught_up).await;
    let out = host.values("out", 0);
    assert_eq!(
        out[20..],
        ["r7", "r8", "r9"],
        "partition 0 from 7, 1 not at all"
    );

    let (status, body) = server
        .post("/processors/copier/rewind", json!({"to": {"two/1": 8}}))
        .await;
    assert_eq!(status, 200, "{body}");
    server.wait_for("copier", caught_up).await;
    assert_eq!(host.values("out", 0)[23..], ["s8", "s9"]);

    let (status, body) = server
        .post("/processors/copier/rewind", json!({"to": {"0": 3, "5": 0}}))
        .await;
    assert_eq!(status, 404, "an unknown partition: {body}");
    assert_eq!(host.committed("copier", "two", 0), 10, "nothing moved");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processed_only_grows_across_a_scale_down_and_a_pause() {
    let host = Host::new();
    host.topic("many", 2);
    host.topic("out", 1);
    let values: Vec<String> = (0..50).map(|i| format!("v{i}")).collect();
    host.append_values("many", 0, &values);
    host.append_values("many", 1, &values);
    let server = Server::start(&host, None).await;
    server
        .deploy_scripted("counter", "many", json!({"instances": 2}))
        .await;
    let status = server.wait_for("counter", caught_up).await;
    assert_eq!(status["processed"], 100);

    let (_, scaled) = server
        .post("/processors/counter/scale", json!({"instances": 1}))
        .await;
    assert_eq!(scaled["processed"], 100, "after a scale-down: {scaled:#}");
    let (_, paused) = server.post("/processors/counter/pause", json!({})).await;
    assert_eq!(paused["processed"], 100, "while paused: {paused:#}");
    let (_, resumed) = server.post("/processors/counter/resume", json!({})).await;
    assert_eq!(resumed["processed"], 100, "after a resume");
    host.append_values("many", 1, &values[..10]);
    let status = server
        .wait_for("counter", |s| caught_up(s) && s["processed"] == 110)
        .await;
    assert_eq!(status["instances"], 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_waiting_for_a_batch_holds_up_no_other_processor() {
    let host = Host::new();
    for topic in ["slow", "quick", "out"] {
        host.topic(topic, 1);
    }
    host.append_values("slow", 0, &["spin"]);
    host.append_values("quick", 0, &["q"]);
    let server = Arc::new(Server::start(&host, None).await);
    server
        .deploy_scripted("slow", "slow", json!({"limits": {"deadline_ms": 4000}}))
        .await;
    server.deploy_scripted("quick", "quick", json!({})).await;
    server.wait_for("quick", caught_up).await;
    // The slow one is well into its spin.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pausing = {
        let server = server.clone();
        tokio::spawn(async move { server.post("/processors/slow/pause", json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = server.get("/processors/quick").await;
    assert_eq!(status, 200);
    let (status, paused) = server.post("/processors/quick/pause", json!({})).await;
    assert_eq!((status, &paused["state"]), (200, &json!("paused")));
    let (status, _) = server.post("/processors/quick/resume", json!({})).await;
    assert_eq!(status, 200);
    assert!(
        !pausing.is_finished(),
        "the other processor's calls were answered while the pause waited for its batch"
    );
    let (status, paused) = pausing.await.unwrap();
    assert_eq!(
        (status, &paused["state"]),
        (200, &json!("paused")),
        "{paused:#}"
    );
    Arc::into_inner(server).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_down_goes_all_the_way_past_members_that_had_failed() {
    let host = Host::new();
    host.topic("fatal", 3);
    host.topic("out", 1);
    let guest = host
        .guest(guests::SCRIPTED, "scaler", &[("output", "out")])
        .unwrap();
    let config = ProcessorConfig::new("scaler", &["fatal"]);
    let mut instances = Instances::start(config, host.broker.clone(), Arc::new(guest), 3).unwrap();
    // Every member holds a partition before any record arrives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for p in 0..3 {
        host.append_values("fatal", p, &["fail:fatal"]);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(instances.has_failed());

    instances.scale(1).await.expect("the scale-down finishes");
    assert_eq!(instances.count(), 1);
    assert!(instances.stop().await.is_err(), "member 0 had failed too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_beyond_the_bound_are_refused_as_busy_and_later_ones_succeed() {
    let host = Host::new();
    let server = Arc::new(Server::start(&host, None).await);
    let uploads: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move { server.upload(guests::CURRENCY_V2).await })
        })
        .collect();
    let mut statuses = Vec::new();
    for upload in uploads {
        let (status, body) = upload.await.unwrap();
        if status == 429 {
            let error = body["error"].as_str().unwrap_or_default();
            assert!(error.contains("try again"), "{body}");
        }
        statuses.push(status);
    }
    assert!(statuses.contains(&201), "{statuses:?}");
    assert!(statuses.contains(&429), "at most two at once: {statuses:?}");
    assert!(
        statuses.iter().all(|s| [201, 429].contains(s)),
        "{statuses:?}"
    );
    let (status, _) = server.upload(guests::CURRENCY_V2).await;
    assert_eq!(status, 201, "once the others are done");
    Arc::into_inner(server).unwrap().shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_processors_scratch_directory_is_not_handed_to_the_next_of_its_name() {
    let host = Host::new();
    for topic in ["in", "out"] {
        host.topic(topic, 1);
    }
    let server = Server::start(&host, None).await;
    server
        .deploy_scripted("scribe", "in", json!({"scratch": true}))
        .await;
    let scratch = host.dir.path().join("scratch/scribe");
    assert!(scratch.is_dir());
    std::fs::write(scratch.join("secret.txt"), "the first processor's").unwrap();

    assert_eq!(server.delete("/processors/scribe").await, 204);
    assert!(!scratch.exists(), "removed with its processor");
    server
        .deploy_scripted("scribe", "in", json!({"scratch": true}))
        .await;
    assert!(!scratch.join("secret.txt").exists());
    server.shutdown().await;
}
