//! `weir serve`'s API against a real server on 127.0.0.1:0: topics (with
//! delete), produce and fetch in JSON and binary, groups, metrics, the token
//! check, size limits and JSON errors.

use serde_json::{Value, json};
use weir::log::Record;
use weir::service::Metrics;
use weir::wire::frame;
use weir_tests::Host;
use weir_tests::server::{Server, json_of};

#[tokio::test]
async fn topics_are_created_produced_to_fetched_and_described() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let c = &server.client;

    let (status, body) = json_of(
        c.post(server.url("/topics"))
            .json(&json!({"name": "events", "partitions": 2}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["partitions"], 2);
    let produce = json!({"records": [
        {"key": "k", "value": "one", "headers": {"h": "x"}, "partition": 1},
        {"value": "two", "partition": 1},
    ]});
    let (status, body) = json_of(
        c.post(server.url("/topics/events/records"))
            .json(&produce)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2);

    let (status, records) = json_of(
        c.get(server.url("/topics/events/partitions/1/records?offset=0"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(records.as_array().unwrap().len(), 2);
    assert_eq!(records[0]["key"], "k");
    assert_eq!(records[0]["value"], "one");
    assert_eq!(records[0]["headers"]["h"], "x");
    assert_eq!(records[1]["key"], Value::Null);
    assert_eq!(records[1]["offset"], 1);

    let (_, topics) = json_of(c.get(server.url("/topics")).send().await.unwrap()).await;
    let events = topics
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "events")
        .unwrap();
    assert_eq!(events["high_watermarks"], json!([0, 2]));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_error_and_changes_nothing() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let c = &server.client;
    let cases = [
        (
            c.post(server.url("/topics"))
                .json(&json!({"name": "../etc", "partitions": 1})),
            400,
        ),
        (
            c.post(server.url("/topics"))
                .json(&json!({"name": "__internal"})),
            400,
        ),
        (
            c.post(server.url("/topics"))
                .json(&json!({"name": "t", "partitions": 0})),
            400,
        ),
        (c.get(server.url("/topics/ghost")), 404),
        (
            c.post(server.url("/topics/ghost/records"))
                .json(&json!({"records": [{"value": "v"}]})),
            404,
        ),
        (c.get(server.url("/topics/ghost/partitions/0/records")), 404),
        (c.get(server.url("/groups/nobody")), 404),
        (
            c.post(server.url("/groups/g/seek"))
                .json(&json!({"to": "whenever"})),
            400,
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = json_of(request.send().await.unwrap()).await;
        assert_eq!(status, expected, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let oversized = "x".repeat(weir::service::MAX_BODY_BYTES + 1);
    let response = c
        .post(server.url("/topics"))
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert!(
        host.log
            .topics()
            .iter()
            .all(|(name, _)| name == "__consumer_offsets"),
        "nothing was created"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_configured_token_is_required_on_every_route_but_health() {
    let host = Host::new();
    let server = Server::start(&host, Some("s3cret")).await;
    let c = &server.client;
    assert_eq!(
        c.get(server.url("/topics"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let wrong = c
        .get(server.url("/topics"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    let right = c
        .get(server.url("/topics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(right.status().as_u16(), 200);
    assert_eq!(
        c.get(server.url("/health"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    server.shutdown().await;
}

#[tokio::test]
async fn listening_beyond_loopback_without_a_token_is_refused() {
    let host = Host::new();
    let state = host.app_state(None);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = weir::service::serve(listener, state, async {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("needs a bearer token"), "{err}");
}

#[tokio::test]
async fn groups_show_lag_can_be_seeked_and_metrics_are_exposed() {
    // The recorder must exist before the processor runs, as it does in `weir serve`.
    Metrics::install();
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "b", "c"]);
    let guest = host
        .guest(weir_tests::guests::SCRIPTED, "copy", &[("output", "out")])
        .unwrap();
    host.run("copy", &["in"], guest, 10).await.unwrap();
    let server = Server::start(&host, None).await;
    let c = &server.client;

    let (_, groups) = json_of(c.get(server.url("/groups")).send().await.unwrap()).await;
    assert_eq!(groups, json!(["copy"]));
    let (_, group) = json_of(c.get(server.url("/groups/copy")).send().await.unwrap()).await;
    assert_eq!(group["total_lag"], 0);
    let (status, moved) = json_of(
        c.post(server.url("/groups/copy/seek"))
            .json(&json!({"to": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["moved"][0]["to"], 1);
    let (_, group) = json_of(c.get(server.url("/groups/copy")).send().await.unwrap()).await;
    assert_eq!(group["total_lag"], 2);

    c.post(server.url("/topics/in/records"))
        .json(&json!({"records": [{"value": "d"}]}))
        .send()
        .await
        .unwrap();
    let metrics = c
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("weir_consumer_lag{group=\"copy\",topic=\"in\",partition=\"0\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_appended_records_total{topic=\"in\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("weir_records_processed_total{processor=\"copy\""),
        "{metrics}"
    );
    assert!(metrics.contains("weir_guest_process_seconds"), "{metrics}");
    server.shutdown().await;
}

#[tokio::test]
async fn binary_produce_and_fetch_carry_any_bytes_and_garbage_is_refused() {
    let host = Host::new();
    host.topic("bin", 2);
    let server = Server::start(&host, None).await;
    let c = &server.client;
    let records = vec![
        Record {
            key: Some(vec![0, 0xff, 0xfe]),
            value: vec![0x80, 0, 1],
            headers: vec![("raw".into(), vec![0xc3, 0x28])],
            timestamp: None,
            nulls: Default::default(),
        },
        Record::value(Vec::new()),
    ];
    let response = c
        .post(server.url("/topics/bin/records?partition=1"))
        .header("content-type", weir::wire::OCTET_STREAM)
        .body(frame::encode_records(&records))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["batches"], json!([[1, 0]]));

    let fetched = c
        .get(server.url("/topics/bin/partitions/1/records"))
        .header("accept", weir::wire::OCTET_STREAM)
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status().as_u16(), 200);
    let stored = frame::decode_stored(&fetched.bytes().await.unwrap()).unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!((stored[0].offset, stored[1].offset), (0, 1));
    assert_eq!(stored[0].key.as_deref(), records[0].key.as_deref());
    assert_eq!(stored[0].value, records[0].value);
    assert_eq!(stored[0].headers, records[0].headers);
    assert_eq!(stored[1].key, None);

    let good = frame::encode_records(&records);
    for garbage in [
        good[..good.len() - 1].to_vec(),
        [good.clone(), vec![0]].concat(),
        u32::MAX.to_be_bytes().to_vec(),
        b"{\"records\": []}".to_vec(),
    ] {
        let (status, body) = json_of(
            c.post(server.url("/topics/bin/records"))
                .header("content-type", weir::wire::OCTET_STREAM)
                .body(garbage)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("binary body"),
            "{body}"
        );
    }
    assert_eq!(
        host.log.high_watermark("bin", 1).unwrap(),
        2,
        "nothing more appended"
    );
    assert_eq!(host.log.high_watermark("bin", 0).unwrap(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn a_deleted_topic_is_gone_with_its_offsets_and_comes_back_empty() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let c = &server.client;
    let create = || {
        c.post(server.url("/topics"))
            .json(&json!({"name": "doomed", "partitions": 2}))
    };
    assert_eq!(create().send().await.unwrap().status().as_u16(), 201);
    let produce =
        json!({"records": [{"value": "a", "partition": 0}, {"value": "b", "partition": 1}]});
    // Producers keep writing while the topic is deleted under them: each
    // request either lands before the delete or gets a 404, never a 5xx.
    let producers: Vec<_> = (0..4)
        .map(|_| {
            let (c, url, body) = (
                c.clone(),
                server.url("/topics/doomed/records"),
                produce.clone(),
            );
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for _ in 0..50 {
                    statuses.push(
                        c.post(&url)
                            .json(&body)
                            .send()
                            .await
                            .unwrap()
                            .status()
                            .as_u16(),
                    );
                }
                statuses
            })
        })
        .collect();
    host.offsets
        .commit(
            "readers",
            "doomed",
            0,
            weir::offsets::Committed {
                offset: 1,
                generation: 1,
            },
        )
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let deleted = c.delete(server.url("/topics/doomed")).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    for producer in producers {
        for status in producer.await.unwrap() {
            assert!(status == 200 || status == 404, "status {status}");
        }
    }
    let (status, body) = json_of(c.get(server.url("/topics/doomed")).send().await.unwrap()).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = json_of(c.delete(server.url("/topics/doomed")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, body) = json_of(
        c.delete(server.url("/topics/__consumer_offsets"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        host.offsets.get("readers", "doomed", 0),
        None,
        "offsets are dropped"
    );

    assert_eq!(create().send().await.unwrap().status().as_u16(), 201);
    let (_, topic) = json_of(c.get(server.url("/topics/doomed")).send().await.unwrap()).await;
    assert_eq!(
        topic["high_watermarks"],
        json!([0, 0]),
        "the new topic starts empty"
    );
    let leftovers: Vec<String> = std::fs::read_dir(host.dir.path().join("topics"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains('~'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    server.shutdown().await;
}
