//! Processors run by `weir serve`, driven over HTTP against a real server on
//! 127.0.0.1:0: deploy, fetch their output, metrics, swap with rewind (the
//! bug-fix replay), pause, resume, scale, shadow, delete, restart, and bad input.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::demo::produce_orders;
use weir_tests::server::Server;
use weir_tests::{Host, guests};

mod settings;

mod requests;

fn caught_up(status: &Value) -> bool {
    status["state"] == "running"
        && status["lag"] == 0
        && status["partitions"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["committed"] == p["high_watermark"]))
}

/// (version header, usd_cents) of every record in `orders-usd` (over HTTP).
async fn converted(server: &Server, topic: &str) -> Vec<(String, i64)> {
    let path = format!("/topics/{topic}/partitions/0/records?offset=0&max_records=10000");
    let (status, body) = server.get(&path).await;
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let value: Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
            let version = r["headers"]["weir.version"].as_str().unwrap().to_string();
            (version, value["usd_cents"].as_i64().unwrap())
        })
        .collect()
}

async fn deploy_currency_v1(server: &Server) -> String {
    for (name, partitions) in [("orders", 1), ("orders-usd", 1)] {
        let (status, body) = server
            .post("/topics", json!({"name": name, "partitions": partitions}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, v1) = server.upload(guests::CURRENCY_V1).await;
    assert_eq!(status, 201, "{v1}");
    let body = json!({"component": v1["id"], "topics": ["orders"], "label": "v1"});
    let (status, created) = server.put("/processors/fx", body).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["state"], "running");
    created["version"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bug_fix_is_deployed_with_a_rewind_and_replays_history_over_http() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let v1_version = deploy_currency_v1(&server).await;
    produce_orders(&host.log, "orders", 60).unwrap();
    let status = server.wait_for("fx", caught_up).await;
    assert_eq!(status["version"], v1_version.as_str());
    assert!(v1_version.starts_with("v1@"), "{v1_version}");

    let (_, v2) = server.upload(guests::CURRENCY_V2).await;
    // A label of its own: the metrics recorder is shared by every test here.
    let swap = json!({"component": v2["id"], "label": "v2-fix", "rewind_to": "earliest"});
    let (status, swapped) = server.post("/processors/fx/swap", swap).await;
    assert_eq!(status, 200, "{swapped}");
    let v2_version = swapped["version"].as_str().unwrap().to_string();
    assert!(v2_version.starts_with("v2-fix@"), "{v2_version}");
    // `processed` only grows: 60 by v1, then the same 60 again by v2.
    server
        .wait_for("fx", |s| caught_up(s) && s["processed"] == 120)
        .await;

    let out = converted(&server, "orders-usd").await;
    assert_eq!(out.len(), 120, "history once through v1, once through v2");
    assert!(out[..60].iter().all(|(v, _)| *v == v1_version));
    assert!(out[60..].iter().all(|(v, _)| *v == v2_version));
    let fixed: Vec<i64> = out[60..].iter().map(|(_, c)| *c).collect();
    assert_eq!(
        fixed,
        weir_tests::expected_usd(&host),
        "v2's totals cover every record"
    );

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let emitted_by_v2 = metrics
        .lines()
        .find(|l| {
            l.starts_with("weir_emitted_records_total")
                && l.contains(&format!("version=\"{v2_version}\""))
        })
        .unwrap_or_else(|| panic!("no emitted counter for v2 in:\n{metrics}"));
    assert!(emitted_by_v2.ends_with(" 60"), "{emitted_by_v2}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_paused_state_and_offsets_survive_a_restart() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let v1_version = deploy_currency_v1(&server).await;
    produce_orders(&host.log, "orders", 30).unwrap();
    server.wait_for("fx", caught_up).await;
    server.shutdown().await;

    let host = host.reopen();
    let server = Server::start(&host, None).await;
    let (status, list) = server.get("/processors").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["version"], v1_version.as_str());
    produce_orders(&host.log, "orders", 10).unwrap();
    server
        .wait_for("fx", |s| {
            caught_up(s) && s["partitions"][0]["committed"] == 40
        })
        .await;
    assert_eq!(
        converted(&server, "orders-usd").await.len(),
        40,
        "the restart reprocessed nothing committed"
    );

    let (status, paused) = server.post("/processors/fx/pause", json!({})).await;
    assert_eq!((status, paused["state"].as_str()), (200, Some("paused")));
    server.shutdown().await;

    let host = host.reopen();
    let server = Server::start(&host, None).await;
    produce_orders(&host.log, "orders", 5).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, status) = server.get("/processors/fx").await;
    assert_eq!(status["state"], "paused", "still paused after the restart");
    assert_eq!(status["lag"], 5);
    let (status, resumed) = server.post("/processors/fx/resume", json!({})).await;
    assert_eq!((status, resumed["state"].as_str()), (200, Some("running")));
    server.wait_for("fx", caught_up).await;
    assert_eq!(converted(&server, "orders-usd").await.len(), 45);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_replays_into_side_topics_and_is_promoted() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    deploy_currency_v1(&server).await;
    produce_orders(&host.log, "orders", 25).unwrap();
    server.wait_for("fx", caught_up).await;

    let (_, v2) = server.upload(guests::CURRENCY_V2).await;
    let body = json!({"component": v2["id"], "label": "v2", "from": "earliest"});
    let (status, shadow) = server.post("/processors/fx/shadow", body.clone()).await;
    assert_eq!(status, 201, "{shadow}");
    assert_eq!(shadow["name"], "fx.shadow");
    assert_eq!(shadow["group"], "fx.shadow");
    assert_eq!(shadow["shadow_of"], "fx");
    let (status, again) = server.post("/processors/fx/shadow", body).await;
    assert_eq!(status, 409, "{again}");
    server.wait_for("fx.shadow", caught_up).await;
    let (_, main) = server.get("/processors/fx").await;
    assert_eq!(main["shadow"], "fx.shadow");

    let side: Vec<i64> = converted(&server, "orders-usd.shadow")
        .await
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert_eq!(
        side,
        weir_tests::expected_usd(&host),
        "the shadow's output is v2's"
    );
    assert_eq!(
        converted(&server, "orders-usd").await.len(),
        25,
        "the live output is untouched by the shadow"
    );

    let (status, promoted) = server
        .post("/processors/fx/shadow/promote", json!({}))
        .await;
    assert_eq!(status, 200, "{promoted}");
    assert_eq!(promoted["version"], shadow["version"]);
    let (status, _) = server.get("/processors/fx.shadow").await;
    assert_eq!(status, 404, "promotion removes the shadow");
    produce_orders(&host.log, "orders", 5).unwrap();
    server.wait_for("fx", caught_up).await;
    let live = converted(&server, "orders-usd").await;
    assert_eq!(live.len(), 30, "promotion does not replay the live group");
    assert!(live[25..].iter().all(|(v, _)| v.starts_with("v2@")));
    assert_eq!(server.delete("/processors/fx/shadow").await, 404);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_failing_and_deleting_are_reported_in_the_status() {
    let host = Host::new();
    host.topic("in", 4);
    let server = Server::start(&host, None).await;
    let (_, scripted) = server.upload(guests::SCRIPTED).await;
    host.topic("in-copy", 1);
    let config = json!({"output": "in-copy", "reject-init": "yes"});
    let body = json!({"component": scripted["id"], "topics": ["in"], "config": config});
    let (status, refused) = server.put("/processors/copy", body).await;
    assert_eq!(status, 422, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("init"),
        "{refused}"
    );
    let body = json!({
        "component": scripted["id"],
        "topics": ["in"],
        "config": {"output": "in-copy"},
        "limits": {"deadline_ms": 2000, "fuel": 1_000_000_000u64},
        "scratch": true,
    });
    let (status, created) = server.put("/processors/copy", body.clone()).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["limits"]["deadline_ms"], 2000);
    assert_eq!(created["limits"]["fuel"], 1_000_000_000u64);
    assert_eq!(created["scratch"], true);
    assert!(host.dir.path().join("scratch/copy").is_dir());
    let (status, _) = server.put("/processors/copy", body).await;
    assert_eq!(status, 409);

    let (status, scaled) = server
        .post("/processors/copy/scale", json!({"instances": 3}))
        .await;
    assert_eq!((status, scaled["instances"].as_u64()), (200, Some(3)));
    for p in 0..4 {
        host.append_values("in", p, &["a", "b"]);
    }
    server.wait_for("copy", caught_up).await;

    host.append_values("in", 0, &["fail:fatal"]);
    let failed = server.wait_for("copy", |s| s["state"] == "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("fatal"),
        "{failed}"
    );
    let (status, resumed) = server.post("/processors/copy/resume", json!({})).await;
    assert_eq!(status, 200, "{resumed}");

    assert_eq!(server.delete("/processors/copy").await, 204);
    assert_eq!(server.get("/processors/copy").await.0, 404);
    assert_eq!(server.get("/processors").await.1, json!([]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_swapped_in_right_after_a_failure_replays_and_runs() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("in-copy", 1);
    let server = Server::start(&host, None).await;
    let (_, scripted) = server.upload(guests::SCRIPTED).await;
    let (_, passthrough) = server.upload(guests::PASSTHROUGH).await;
    let config = json!({"output": "in-copy"});
    let body = json!({"component": scripted["id"], "topics": ["in"], "config": config});
    assert_eq!(server.put("/processors/copy", body).await.0, 201);
    host.append_values("in", 0, &["a", "fail:fatal", "b"]);
    tokio::time::sleep(Duration::from_millis(50)).await;

    // The member has failed (or is about to): the fix still goes in.
    let swap = json!({"component": passthrough["id"], "label": "fix", "rewind_to": "earliest"});
    let (status, swapped) = server.post("/processors/copy/swap", swap).await;
    assert_eq!(status, 200, "{swapped}");
    let done = server.wait_for("copy", caught_up).await;
    assert_eq!(done["label"], "fix");
    let out = host.values("in-copy", 0);
    assert_eq!(
        &out[out.len() - 3..],
        ["a", "fail:fatal", "b"],
        "the fix replayed all of it"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_means_from_the_deploy_on_even_across_a_pause() {
    let host = Host::new();
    host.topic("in", 2);
    host.topic("in-copy", 1);
    host.append_values("in", 0, &["old-1", "old-2"]);
    let server = Server::start(&host, None).await;
    let (_, scripted) = server.upload(guests::SCRIPTED).await;
    let body = json!({
        "component": scripted["id"],
        "topics": ["in"],
        "config": {"output": "in-copy"},
        "reset": "latest",
    });
    assert_eq!(server.put("/processors/copy", body).await.0, 201);
    assert_eq!(
        server.post("/processors/copy/pause", json!({})).await.0,
        200
    );
    host.append_values("in", 0, &["new-1"]);
    host.append_values("in", 1, &["new-2"]);
    let (_, paused) = server.get("/processors/copy").await;
    assert_eq!(paused["lag"], 2, "{paused}");
    assert_eq!(
        server.post("/processors/copy/resume", json!({})).await.0,
        200
    );
    server.wait_for("copy", caught_up).await;
    let mut out = host.values("in-copy", 0);
    out.sort();
    assert_eq!(
        out,
        ["new-1", "new-2"],
        "nothing before the deploy, nothing skipped after"
    );
    server.shutdown().await;
}
