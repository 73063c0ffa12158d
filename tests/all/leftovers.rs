//! Nothing of a removed processor, topic or shadow is left behind: its
//! group (in `group list` and `/metrics` lag), its guest state, its
//! dead-letter topic (unless kept), a shadow's side topics; and a processor
//! removed from `weir.toml` is removed at the next start, while one deployed
//! through the API stays.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::service::Metrics;
use weir_tests::server::{Server, spawn_serve};
use weir_tests::{Host, guests};

/// Polls `GET /processors/{name}` until it has caught up (at most 20 s).
async fn caught_up(server: &Server, name: &str) {
    let started = Instant::now();
    loop {
        let (status, body) = server.get(&format!("/processors/{name}")).await;
        assert_eq!(status, 200, "{body}");
        if body["state"] == "running" && body["lag"] == 0 {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{body:#}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn groups(server: &Server) -> Vec<String> {
    let (_, body) = server.get("/groups").await;
    serde_json::from_value(body).unwrap()
}

async fn metrics(server: &Server) -> String {
    let response = server.client.get(server.url("/metrics")).send().await;
    response.unwrap().text().await.unwrap()
}

async fn topic_exists(server: &Server, topic: &str) -> bool {
    server.get(&format!("/topics/{topic}")).await.0 == 200
}

/// Deploys `scripted` as `name` over `in` (output `out`) and has it
/// dead-letter one of three records.
async fn deploy_with_a_dead_letter(server: &Server, name: &str) -> Value {
    let (_, component) = server.upload(guests::SCRIPTED).await;
    let body = json!({"component": component["id"], "topics": ["in"], "config": {"output": "out"}});
    let (status, deployed) = server.put(&format!("/processors/{name}"), body).await;
    assert_eq!(status, 201, "{deployed}");
    let records =
        json!({"records": [{"value": "a"}, {"value": "fail:dead-letter"}, {"value": "b"}]});
    assert_eq!(server.post("/topics/in/records", records).await.0, 200);
    caught_up(server, name).await;
    component
}

#[tokio::test]
async fn deleting_a_processor_removes_its_group_lag_and_dead_letter_topic() {
    Metrics::install();
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let server = Server::start(&host, None).await;
    deploy_with_a_dead_letter(&server, "gone").await;
    assert!(topic_exists(&server, "gone.dlq").await);
    assert!(groups(&server).await.contains(&"gone".to_string()));
    assert!(
        metrics(&server)
            .await
            .contains("weir_consumer_lag{group=\"gone\"")
    );

    assert_eq!(server.delete("/processors/gone").await, 204);
    assert!(!groups(&server).await.contains(&"gone".to_string()));
    assert_eq!(server.get("/groups/gone").await.0, 404);
    assert!(!topic_exists(&server, "gone.dlq").await);
    let text = metrics(&server).await;
    assert!(!text.contains("group=\"gone\""), "{text}");
    assert!(topic_exists(&server, "out").await, "outputs stay");

    // Asked to, the dead letters stay; the group goes all the same.
    deploy_with_a_dead_letter(&server, "kept").await;
    assert_eq!(server.delete("/processors/kept?keep_dlq=true").await, 204);
    assert!(topic_exists(&server, "kept.dlq").await);
    assert!(!groups(&server).await.contains(&"kept".to_string()));
    assert_eq!(server.delete("/processors/x?keep_dlq=maybe").await, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_topic_removes_its_lag_series() {
    Metrics::install();
    let host = Host::new();
    host.topic("doomed", 1);
    host.topic("out", 1);
    host.append_values("doomed", 0, &["a", "b"]);
    let guest = host
        .guest(guests::SCRIPTED, "reader", &[("output", "out")])
        .unwrap();
    host.run("reader", &["doomed"], guest, 10).await.unwrap();
    let server = Server::start(&host, None).await;
    let lag = "weir_consumer_lag{group=\"reader\",topic=\"doomed\"";
    let text = metrics(&server).await;
    assert!(text.contains(lag), "{text}");
    assert_eq!(server.delete("/topics/doomed").await, 204);
    let text = metrics(&server).await;
    assert!(!text.contains(lag), "{text}");
    assert!(!groups(&server).await.contains(&"reader".to_string()));
    server.shutdown().await;
}

#[tokio::test]
async fn promoting_or_dropping_a_shadow_removes_its_side_topics_dead_letters_and_group() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let server = Server::start(&host, None).await;
    let component = deploy_with_a_dead_letter(&server, "p").await;
    for finish in ["promote", "drop"] {
        let body = json!({"component": component["id"], "label": finish, "from": "earliest"});
        let (status, shadow) = server.post("/processors/p/shadow", body).await;
        assert_eq!(status, 201, "{shadow}");
        caught_up(&server, "p.shadow").await;
        for topic in ["out.shadow", "p.shadow.dlq"] {
            assert!(topic_exists(&server, topic).await, "{topic}");
        }
        assert!(groups(&server).await.contains(&"p.shadow".to_string()));
        if finish == "promote" {
            let (status, body) = server.post("/processors/p/shadow/promote", json!({})).await;
            assert_eq!(status, 200, "{body}");
        } else {
            assert_eq!(server.delete("/processors/p/shadow").await, 204);
        }
        for topic in ["out.shadow", "p.shadow.dlq"] {
            assert!(
                !topic_exists(&server, topic).await,
                "{finish}: {topic} stays"
            );
        }
        let groups = groups(&server).await;
        assert_eq!(groups, ["p"], "{finish}");
        assert!(
            topic_exists(&server, "p.dlq").await,
            "the live processor's stays"
        );
    }
    server.shutdown().await;
}

#[test]
fn a_processor_removed_from_weir_toml_is_removed_and_an_api_one_stays() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "b"]);
    let Host { dir, .. } = host;
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("weir.toml");
    let declare = |names: &[&str]| {
        let mut text = String::from("listen = \"127.0.0.1:0\"\n");
        for name in names {
            text += &format!(
                "\n[[processors]]\nname = \"{name}\"\nwasm = {:?}\ntopics = [\"in\"]\nconfig = {{ output = \"out\" }}\n",
                guests::PASSTHROUGH
            );
        }
        std::fs::write(&config, text).unwrap();
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let get = |url: &str, path: &str| -> (u16, Value) {
        runtime.block_on(async {
            let response = reqwest::get(format!("{url}{path}")).await.unwrap();
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        })
    };
    let names = |url: &str| -> Vec<String> {
        let (_, all) = get(url, "/processors");
        let all = all.as_array().unwrap().iter();
        all.map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };

    declare(&["kept", "dropped"]);
    let (mut child, url) = spawn_serve(dir.path(), &["--config".as_ref(), config.as_os_str()]);
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let wasm = std::fs::read(guests::PASSTHROUGH).unwrap();
        let uploaded: Value = client
            .post(format!("{url}/components"))
            .body(wasm)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let body =
            json!({"component": uploaded["id"], "topics": ["in"], "config": {"output": "out"}});
        let response = client
            .put(format!("{url}/processors/by-api"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    });
    let started = Instant::now();
    while get(&url, "/groups/dropped").0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "dropped never committed"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(names(&url), ["by-api", "dropped", "kept"]);
    child.kill().unwrap();
    child.wait().unwrap();

    declare(&["kept"]);
    let (mut child, url) = spawn_serve(dir.path(), &["--config".as_ref(), config.as_os_str()]);
    let listed = names(&url);
    let dropped_group = get(&url, "/groups/dropped").0;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(listed, ["by-api", "kept"], "the file's removal removes it");
    assert_eq!(dropped_group, 404, "with its group");
    assert!(!dir.path().join("deployments/dropped.json").exists());

    // Without a file, nothing is removed.
    let listen = ["--listen".as_ref(), "127.0.0.1:0".as_ref()];
    let (mut child, url) = spawn_serve(dir.path(), &listen);
    let listed = names(&url);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(listed, ["by-api", "kept"]);
}

#[test]
fn processor_delete_keep_dlq_from_the_cli_keeps_the_dead_letters_only() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "fail:dead-letter", "b"]);
    let Host { dir, .. } = host;
    let listen = ["--listen".as_ref(), "127.0.0.1:0".as_ref()];
    let (mut child, url) = spawn_serve(dir.path(), &listen);
    let weir = |args: &[&str]| {
        std::process::Command::new(weir_tests::weir_bin())
            .arg("--server")
            .arg(&url)
            .args(args)
            .env_remove("WEIR_TOKEN")
            .output()
            .unwrap()
    };
    let deploy = [
        "deploy",
        "--processor",
        "p",
        "--wasm",
        guests::SCRIPTED,
        "--topic",
        "in",
        "--config",
        "output=out",
        "--wait",
    ];
    let outcomes = [
        weir(&deploy).status.success(),
        weir(&["topic", "describe", "p.dlq"]).status.success(),
        weir(&["processor", "delete", "p", "--keep-dlq"])
            .status
            .success(),
        weir(&["topic", "describe", "p.dlq"]).status.success(),
        weir(&["group", "describe", "p"]).status.success(),
    ];
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        outcomes,
        [true, true, true, true, false],
        "deployed, dead-lettered, deleted; the DLQ kept, the group gone"
    );
}

#[tokio::test]
async fn deleting_a_stateful_processor_removes_its_state_so_a_new_one_of_its_name_starts_empty() {
    Metrics::install();
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let server = Server::start(&host, None).await;
    let (_, component) = server.upload(guests::SCRIPTED).await;
    let body = json!({"component": component["id"], "topics": ["in"], "config": {"output": "out"}});
    let deploy = || server.put("/processors/stateful", body.clone());
    assert_eq!(deploy().await.0, 201);
    let records = json!({"records": [{"value": "state-put:3"}]});
    assert_eq!(server.post("/topics/in/records", records).await.0, 200);
    caught_up(&server, "stateful").await;
    let store = host.dir.path().join("state").join("stateful.redb");
    assert!(store.exists());
    assert!(host.log.partition_count("__state.stateful.in").is_ok());
    let keys = host
        .broker
        .state_store("stateful")
        .unwrap()
        .totals()
        .unwrap()
        .0;
    assert_eq!(keys, 3);

    assert_eq!(server.delete("/processors/stateful").await, 204);
    assert!(!store.exists(), "the local store goes");
    assert!(
        host.log.partition_count("__state.stateful.in").is_err(),
        "the changelog goes"
    );

    // A new processor of the same name (starting at the end, so that it does
    // not process the put again) finds no state of the old one's.
    let mut body = body.clone();
    body["reset"] = json!("latest");
    let (status, deployed) = server.put("/processors/stateful", body).await;
    assert_eq!(status, 201, "{deployed}");
    caught_up(&server, "stateful").await;
    let keys = host
        .broker
        .state_store("stateful")
        .unwrap()
        .totals()
        .unwrap()
        .0;
    assert_eq!(keys, 0);
}
