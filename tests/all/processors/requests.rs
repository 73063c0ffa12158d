//! Bad processor requests over HTTP: each gets a 4xx and changes nothing.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_processor_requests_get_4xx_and_change_nothing() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let v1_version = deploy_currency_v1(&server).await;
    produce_orders(&host.log, "orders", 10).unwrap();
    server.wait_for("fx", caught_up).await;

    let garbage = server
        .client
        .post(server.url("/components"))
        .body(b"\0asm not really".to_vec())
        .send()
        .await
        .unwrap();
    let (status, body) = weir_tests::server::json_of(garbage).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("component"),
        "{body}"
    );
    let (status, _) = server.upload(guests::WRONG_WORLD).await;
    assert_eq!(status, 422);

    let unknown = "0".repeat(64);
    let (_, v1) = server.upload(guests::CURRENCY_V1).await;
    let cases: Vec<(&str, &str, Value, u16)> = vec![
        (
            "PUT",
            "/processors/new",
            json!({"component": v1["id"], "topics": ["orders"], "group": "fx"}),
            409,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": ["orders"], "group": "__consumer_offsets"}),
            400,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": ["orders"], "group": "fx.shadow"}),
            400,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": ["orders"], "limits": {"deadline_ms": 3_600_000}}),
            400,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": ["orders"], "limits": {"deadline": 5}}),
            422,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": unknown, "topics": ["orders"]}),
            404,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": ["nope"]}),
            404,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": []}),
            400,
        ),
        (
            "PUT",
            "/processors/a..b%2F",
            json!({"component": "x", "topics": ["orders"]}),
            400,
        ),
        (
            "PUT",
            "/processors/x.shadow",
            json!({"component": "x", "topics": ["orders"]}),
            400,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topics": ["orders"], "instances": 0}),
            400,
        ),
        (
            "PUT",
            "/processors/new",
            json!({"component": "x", "topic": ["orders"]}),
            422,
        ),
        (
            "POST",
            "/processors/fx/swap",
            json!({"component": unknown}),
            404,
        ),
        (
            "POST",
            "/processors/fx/swap",
            json!({"component": unknown, "rewind_to": "yesterday"}),
            400,
        ),
        ("POST", "/processors/fx/rewind", json!({"to": "99999"}), 400),
        ("POST", "/processors/fx/rewind", json!({"to": "-1"}), 400),
        ("POST", "/processors/fx/rewind", json!({"to": 99_999}), 400),
        ("POST", "/processors/fx/rewind", json!({"to": -1}), 400),
        (
            "POST",
            "/processors/fx/scale",
            json!({"instances": 1000}),
            400,
        ),
        ("POST", "/processors/ghost/pause", json!({}), 404),
        ("POST", "/processors/fx/shadow/promote", json!({}), 404),
    ];
    for (method, path, body, expected) in cases {
        let request = match method {
            "PUT" => server.client.put(server.url(path)),
            _ => server.client.post(server.url(path)),
        };
        let response = request.json(&body).send().await.unwrap();
        let (status, reply) = weir_tests::server::json_of(response).await;
        assert_eq!(status, expected, "{method} {path} {body}: {reply}");
        assert!(reply["error"].is_string(), "{method} {path}: {reply}");
    }

    assert_eq!(
        server.delete("/topics/orders").await,
        409,
        "a topic a processor reads is not deleted"
    );
    let (_, status) = server.get("/processors/fx").await;
    assert_eq!(status["version"], v1_version.as_str(), "still v1");
    assert_eq!(status["partitions"][0]["committed"], 10, "no offset moved");
    assert_eq!(status["state"], "running");
    server.shutdown().await;
}
