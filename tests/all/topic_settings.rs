//! Topic settings and bounded batches, end to end: settings at create time
//! from the API, the CLI and `weir.toml`, shown and changed afterwards; a
//! misspelt field refused by name; retention and compaction applied by the
//! log's own background thread; batches over the limit refused (413 over
//! HTTP) and producers splitting below it; reads from the middle of a large
//! batch written before the limit.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::log::{Log, LogError, LogOptions, Record, TopicConfig};
use weir_tests::command;
use weir_tests::server::{Server, json_of, spawn_serve};
use weir_tests::{Host, weir_bin};

#[tokio::test]
async fn the_api_creates_shows_and_changes_settings_and_refuses_a_misspelt_field() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let (status, body) = server
        .post("/topics", json!({"name": "x", "partitons": 3}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("partitons"),
        "{body}"
    );
    assert_eq!(server.get("/topics/x").await.0, 404, "nothing was created");

    let create = json!({"name": "t", "partitions": 2, "retention_ms": 60000,
        "segment_bytes": 4096, "durability": "always", "cleanup_policy": "compact",
        "max_batch_records": 100});
    let (status, body) = server.post("/topics", create).await;
    assert_eq!(status, 201, "{body}");
    let config = &body["config"];
    assert_eq!(config["retention_ms"], 60000);
    assert_eq!(config["segment_bytes"], 4096);
    assert_eq!(config["durability"], "always");
    assert_eq!(config["cleanup_policy"], "compact");
    assert_eq!(config["max_batch_records"], 100);

    let patch = |body: Value| {
        server
            .client
            .patch(server.url("/topics/t"))
            .json(&body)
            .send()
    };
    let (status, body) = json_of(
        patch(json!({"retention_ms": null, "segment_ms": 1000, "cleanup_policy": "delete"}))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["config"]["retention_ms"], Value::Null);
    assert_eq!(body["config"]["segment_ms"], 1000);
    assert_eq!(body["config"]["cleanup_policy"], "delete");
    assert_eq!(body["config"]["durability"], "always", "left as it was");
    let (status, body) = json_of(patch(json!({"partitions": 1})).await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("never shrink"),
        "{body}"
    );
    // A larger count grows the topic.
    let (status, body) = json_of(patch(json!({"partitions": 3})).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["partitions"], 3);
    assert_eq!(body["high_watermarks"], json!([0, 0, 0]));
    let (status, body) = json_of(patch(json!({"retension_ms": 5})).await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("retension_ms"),
        "{body}"
    );
    server.shutdown().await;

    // The settings are in topic.json and come back after a restart.
    let host = host.reopen();
    let config = host.log.topic_config("t").unwrap();
    assert_eq!((config.retention_ms, config.segment_ms), (None, Some(1000)));
    assert_eq!(host.log.partition_count("t").unwrap(), 3);
}

fn weir(dir: &Path, args: &[&str]) -> String {
    command::stdout_of(&command::weir(dir, args).output().unwrap())
}

#[test]
fn the_cli_creates_alters_and_describes_settings() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    weir(
        d,
        &[
            "topic",
            "create",
            "t",
            "--partitions",
            "2",
            "--retention-ms",
            "5000",
            "--retention-bytes",
            "1000000",
            "--segment-ms",
            "100",
            "--durability",
            "interval:50",
            "--cleanup-policy",
            "compact",
            "--max-batch-bytes",
            "65536",
        ],
    );
    let described: Value =
        serde_json::from_str(&weir(d, &["--json", "topic", "describe", "t"])).unwrap();
    let config = &described["config"];
    assert_eq!(config["retention_ms"], 5000);
    assert_eq!(config["retention_bytes"], 1_000_000);
    assert_eq!(config["segment_ms"], 100);
    assert_eq!(config["durability"], "interval:50");
    assert_eq!(config["cleanup_policy"], "compact");
    assert_eq!(config["max_batch_bytes"], 65536);
    weir(
        d,
        &[
            "topic",
            "alter",
            "t",
            "--retention-ms",
            "none",
            "--segment-bytes",
            "2048",
        ],
    );
    let text = weir(d, &["topic", "alter", "t", "--partitions", "5"]);
    assert!(text.contains("5 partition(s)"), "{text}");
    let text = weir(d, &["topic", "describe", "t"]);
    assert!(text.contains("topic t (5 partition(s))"), "{text}");
    assert!(text.contains("retention.ms=none"), "{text}");
    assert!(text.contains("segment.bytes=2048"), "{text}");
    assert!(text.contains("cleanup.policy=compact"), "{text}");
}

/// A log whose background thread runs maintenance every 50 ms.
fn maintained_log(dir: &Path) -> Log {
    let options = LogOptions {
        maintenance: Some(Duration::from_millis(50)),
        ..LogOptions::default()
    };
    Log::open_with(dir, options).unwrap()
}

fn wait_for(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_background_thread_deletes_expired_segments_with_no_call_and_no_new_append() {
    let dir = tempfile::tempdir().unwrap();
    let log = maintained_log(dir.path());
    let config = TopicConfig::with_partitions(1)
        .segment_bytes(1024)
        .retention(Some(60_000), None);
    log.create_topic("t", config).unwrap();
    let old = weir::log::now_ms() - 120_000;
    for i in 0..50 {
        let record = Record {
            timestamp: Some(old + i),
            ..Record::value(vec![b'x'; 100])
        };
        log.append("t", 0, &[record]).unwrap();
    }
    // Every record is past retention, the active segment included: it is
    // rolled, and every sealed segment deleted, with nothing else happening.
    wait_for("retention", || log.log_start("t", 0).unwrap() == 50);
    assert_eq!(log.high_watermark("t", 0).unwrap(), 50);
    // The files go right after the view moves on: only the new, empty
    // active segment is left.
    let dir = log.partition_dir("t", 0);
    wait_for("the removal of the files", || {
        std::fs::read_dir(&dir).unwrap().count() == 1
    });
}

#[test]
fn the_background_thread_compacts_a_compact_topic() {
    let dir = tempfile::tempdir().unwrap();
    let log = maintained_log(dir.path());
    let mut config = TopicConfig::with_partitions(1).segment_bytes(512);
    config.cleanup_policy = weir::log::CleanupPolicy::Compact;
    log.create_topic("t", config).unwrap();
    for i in 0..200 {
        let record = Record::keyed(format!("k{}", i % 4), format!("v{i}"));
        log.append("t", 0, &[record]).unwrap();
    }
    let segments = log.segment_count("t", 0).unwrap();
    wait_for("compaction", || {
        log.segment_count("t", 0).unwrap() < segments
    });
    let records = log.read("t", 0, 0, usize::MAX, u64::MAX).unwrap();
    // Each key's latest record in the sealed segments, plus the active one's.
    assert!(records.len() < 40, "{} records left", records.len());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r.value,
            format!("v{}", r.offset).into_bytes(),
            "offsets kept"
        );
        let later = records[i + 1..].iter().any(|s| s.key == r.key);
        assert!(later || r.offset >= 196, "the latest of each key stays");
    }
    assert!(records.iter().any(|r| r.offset == 199));
}

#[test]
fn an_oversized_append_is_refused_and_produce_splits_below_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    let mut config = TopicConfig::with_partitions(1);
    config.max_batch_records = 100;
    config.max_batch_bytes = 4096;
    log.create_topic("t", config).unwrap();
    let records: Vec<Record> = (0..101).map(|i| Record::value(format!("{i}"))).collect();
    let refused = log.append("t", 0, &records).unwrap_err();
    assert!(
        matches!(
            refused,
            LogError::BatchTooLarge {
                records: 101,
                max_records: 100,
                ..
            }
        ),
        "{refused}"
    );
    assert!(refused.to_string().contains("100 records"), "{refused}");
    assert_eq!(log.high_watermark("t", 0).unwrap(), 0, "nothing appended");
    // The placement path splits by both limits.
    let many: Vec<(Option<u32>, Record)> = (0..1000)
        .map(|i| (None, Record::value(vec![b'a' + (i % 26) as u8; 40])))
        .collect();
    let batches = log.produce("t", many).unwrap();
    assert!(batches.len() >= 10, "{batches:?}");
    let read = log.read("t", 0, 0, usize::MAX, u64::MAX).unwrap();
    assert_eq!(read.len(), 1000);
    for batch in batch_sizes(&log.partition_dir("t", 0)) {
        assert!(batch.0 <= 100 && batch.1 <= 4096, "{batch:?}");
    }
}

/// (records, bytes) of every batch in a partition directory's segments, read
/// from the files by the documented layout (u32 length at 0, u32 count at 12).
fn batch_sizes(dir: &Path) -> Vec<(u32, u64)> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).unwrap();
        let mut pos = 0;
        while pos < bytes.len() {
            let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize + 4;
            let count = u32::from_le_bytes(bytes[pos + 12..pos + 16].try_into().unwrap());
            out.push((count, len as u64));
            pos += len;
        }
    }
    out
}

#[tokio::test]
async fn the_api_answers_413_with_the_limit_for_a_record_over_it() {
    let host = Host::new();
    let server = Server::start(&host, None).await;
    let (status, _) = server
        .post("/topics", json!({"name": "t", "max_batch_bytes": 1000}))
        .await;
    assert_eq!(status, 201);
    let big = "x".repeat(2000);
    let (status, body) = server
        .post("/topics/t/records", json!({"records": [{"value": big}]}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("1000 bytes"),
        "{body}"
    );
    // Many small records are split, not refused.
    let records: Vec<Value> = (0..3000)
        .map(|i| json!({"value": format!("record {i}")}))
        .collect();
    let (status, body) = server
        .post("/topics/t/records", json!({"records": records}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["batches"].as_array().unwrap().len() > 10, "{body}");
    server.shutdown().await;
}

#[test]
fn a_hundred_thousand_stdin_lines_end_up_in_bounded_batches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    weir(
        d,
        &[
            "topic",
            "create",
            "lines",
            "--max-batch-records",
            "700",
            "--max-batch-bytes",
            "50000",
        ],
    );
    let input: String = (0..100_000)
        .map(|i| format!("line {i:06} {}\n", "y".repeat(90)))
        .collect();
    let mut child = Command::new(weir_bin())
        .arg("--data-dir")
        .arg(d)
        .args(["produce", "--topic", "lines"])
        .env_remove("WEIR_SERVER")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let batches = batch_sizes(&d.join("topics/lines/0"));
    assert_eq!(batches.iter().map(|b| u64::from(b.0)).sum::<u64>(), 100_000);
    let largest = batches.iter().max_by_key(|b| b.1).unwrap();
    assert!(
        batches.iter().all(|b| b.0 <= 700 && b.1 <= 50_000),
        "largest {largest:?}"
    );
}

#[test]
fn consuming_from_the_middle_of_a_large_legacy_batch_returns_the_right_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    // A batch of 100,000 records, as weir wrote before batches had a limit:
    // the topic allowed it then, and has the default limits now.
    let mut config = TopicConfig::with_partitions(1);
    config.max_batch_records = 200_000;
    config.max_batch_bytes = 64 << 20;
    log.create_topic("t", config).unwrap();
    let records: Vec<Record> = (0..100_000)
        .map(|i| Record::keyed(format!("k{i}"), format!("value {i}")))
        .collect();
    log.append("t", 0, &records).unwrap();
    log.alter_topic("t", |c| TopicConfig {
        max_batch_records: 10_000,
        max_batch_bytes: 1 << 20,
        ..c
    })
    .unwrap();
    let mut next = 0;
    let mut polls = 0;
    while next < 100_000 {
        let polled = log.read("t", 0, next, 500, 1 << 20).unwrap();
        assert_eq!(polled.len(), 500);
        for (i, r) in polled.iter().enumerate() {
            let offset = next + i as u64;
            assert_eq!(r.offset, offset);
            assert_eq!(r.key.as_deref(), Some(format!("k{offset}").as_bytes()));
            assert_eq!(r.value, format!("value {offset}").into_bytes());
        }
        next += 500;
        polls += 1;
    }
    assert_eq!(polls, 200);
    // From odd places, including reads that end inside and past a sample.
    for (from, max) in [(1, 1), (127, 2), (128, 1), (99_999, 10), (54_321, 777)] {
        let got = log.read("t", 0, from, max, 1 << 20).unwrap();
        let want = (100_000 - from).min(max as u64) as usize;
        assert_eq!(got.len(), want, "from {from}");
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, r)| r.offset == from + i as u64)
        );
    }
}

#[test]
fn weir_toml_declares_topic_settings_and_serve_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "retention_check_secs = 1\n[[topics]]\nname = \"t\"\npartitions = 1\nretention_ms = 1000\nsegment_bytes = 1024\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let (mut child, url) = spawn_serve(&data, &["--config".as_ref(), config.as_os_str()]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = weir::client::Client::new(&url, None).unwrap();
    let info = runtime.block_on(client.topic("t")).unwrap();
    assert_eq!(info.config.retention_ms, Some(1000));
    let records: Vec<Record> = (0..40).map(|_| Record::value(vec![b'z'; 100])).collect();
    runtime
        .block_on(client.produce("t", Some(0), &records))
        .unwrap();
    // Nothing appends after this: the server's maintenance deletes it all.
    let started = Instant::now();
    loop {
        let bytes: usize = std::fs::read_dir(data.join("topics/t/0"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len() as usize)
            .sum();
        if bytes == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "retention never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().ok();
    child.wait().ok();
}
