//! The service under abuse and under load, on 127.0.0.1:0.
//!
//! - Fuzzing: random methods, raw request paths (`..`, `%2e%2e`, long and
//!   non-ASCII names), queries (negative and huge numbers) and bodies (random
//!   bytes, broken JSON, binary frames) sent over a plain TCP socket, so no
//!   client library tidies them first. The server never answers 5xx, always
//!   answers, and still serves `/health` and the records it held before.
//!   Cases: `WEIR_PROPTEST_CASES` (default 64).
//! - Load: concurrent HTTP producers, bounded in requests
//!   (`WEIR_LOAD_BATCHES` per producer, default 40) and in time (30 s), with
//!   zero errors and every record readable afterwards; prints records/s,
//!   requests/s and the p99 request latency.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weir_tests::Host;
use weir_tests::server::Server;

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends one raw HTTP/1.1 request and returns the status code of the answer.
async fn raw_request(
    addr: &str,
    method: &str,
    target: &[u8],
    content_type: &str,
    body: &[u8],
) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let mut request = Vec::new();
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(target);
    let head = format!(
        " HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    request.extend_from_slice(head.as_bytes());
    request.extend_from_slice(body);
    stream.write_all(&request).await.ok()?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    let line = String::from_utf8_lossy(&answer);
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("topics".to_string()),
        Just("groups".to_string()),
        Just("records".to_string()),
        Just("partitions".to_string()),
        Just("seek".to_string()),
        Just("processors".to_string()),
        Just("fuzz".to_string()),
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("%2F".to_string()),
        Just("__consumer_offsets".to_string()),
        Just("naïve".to_string()),
        Just("x".repeat(300)),
        "[a-z.~%]{1,12}",
        "\\PC{1,8}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?offset=-1".to_string()),
        Just("?offset=18446744073709551616".to_string()),
        Just("?max_records=1e99&max_bytes=-5".to_string()),
        Just("?partition=4294967296".to_string()),
        Just("?offset=0&max_records=0&max_bytes=0".to_string()),
        "\\?[a-z_=&%0-9-]{0,30}",
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        Just(b"{\"records\": [{\"value\": 1e999}]}".to_vec()),
        Just(b"{\"name\": \"../x\", \"partitions\": -1}".to_vec()),
        Just(b"{\"name\": \"f\", \"partitions\": 99999999999}".to_vec()),
        Just(b"{\"to\": -3}".to_vec()),
        Just(b"{\"to\": \"ts:-99999999999999999999\"}".to_vec()),
        Just(b"{\"records\": [{\"value\": \"v\", \"partition\": 7}]}".to_vec()),
        Just(b"{\"records\": [".to_vec()),
        Just(u32::MAX.to_be_bytes().to_vec()),
    ]
}

#[test]
fn random_requests_never_get_a_5xx_and_never_hurt_the_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let host = Host::new();
    host.topic("fuzz", 2);
    host.topic("kept", 1);
    host.append_values("kept", 0, &["a", "b", "c"]);
    let server = rt.block_on(Server::start(&host, None));
    let addr = server.base.trim_start_matches("http://").to_string();
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
    let content_types = ["application/json", "application/octet-stream", "text/plain"];
    let strategy = (
        0..methods.len(),
        proptest::collection::vec(segment(), 0..6),
        query(),
        0..content_types.len(),
        body(),
    );
    let config = Config {
        cases: env_or("WEIR_PROPTEST_CASES", 64),
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |(method, segments, query, ct, body)| {
        let target = format!("/{}{query}", segments.join("/"));
        let status = rt.block_on(raw_request(
            &addr,
            methods[method],
            target.as_bytes(),
            content_types[ct],
            &body,
        ));
        let status = status.ok_or_else(|| TestCaseError::fail(format!("no answer to {target}")))?;
        prop_assert!(status < 500, "{} {target} got {status}", methods[method]);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let health = rt.block_on(raw_request(&addr, "GET", b"/health", "text/plain", b""));
    assert_eq!(health, Some(200), "the server still answers");
    assert_eq!(
        host.values("kept", 0),
        ["a", "b", "c"],
        "nothing stored was lost"
    );
    rt.block_on(server.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_lose_nothing_and_report_their_figures() {
    const PRODUCERS: usize = 8;
    const RECORDS: usize = 100;
    let batches = env_or("WEIR_LOAD_BATCHES", 40) as usize;
    let cap = Duration::from_secs(30);
    let host = Host::new();
    host.topic("load", 4);
    let server = Server::start(&host, None).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let (client, url) = (server.client.clone(), server.url("/topics/load/records"));
            tokio::spawn(async move {
                let (mut latencies, mut errors, mut sent) = (Vec::new(), 0, 0);
                for batch in 0..batches {
                    if started.elapsed() > cap {
                        break;
                    }
                    let records: Vec<_> = (0..RECORDS)
                        .map(|i| serde_json::json!({"key": format!("k{i}"), "value": format!("p{producer}-b{batch}-r{i}")}))
                        .collect();
                    let sent_at = Instant::now();
                    let response = client
                        .post(&url)
                        .json(&serde_json::json!({ "records": records }))
                        .send()
                        .await;
                    latencies.push(sent_at.elapsed());
                    match response {
                        Ok(r) if r.status().is_success() => sent += RECORDS,
                        _ => errors += 1,
                    }
                }
                (latencies, errors, sent)
            })
        })
        .collect();
    let (mut latencies, mut errors, mut sent) = (Vec::new(), 0, 0);
    for task in tasks {
        let (l, e, s) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
        sent += s;
    }
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(errors, 0, "every request succeeded");
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    println!(
        "load: {PRODUCERS} producers, {} requests of {RECORDS} records in {elapsed:.2} s: {:.0} records/s, {:.0} requests/s, p99 latency {:.2} ms",
        latencies.len(),
        sent as f64 / elapsed,
        latencies.len() as f64 / elapsed,
        p99.as_secs_f64() * 1e3
    );
    let mut values: Vec<String> = (0..4).flat_map(|p| host.values("load", p)).collect();
    assert_eq!(values.len(), sent, "every record is readable");
    values.sort();
    values.dedup();
    assert_eq!(values.len(), sent, "and each once");
    server.shutdown().await;
}
