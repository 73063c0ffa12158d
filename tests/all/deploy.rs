//! Hot swap and deploy-and-rewind on running instances: the new version takes
//! over at a batch boundary, every emitted record names the version that
//! produced it, and a rewind replays history through the fixed version only.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::broker::SeekTo;
use weir::consumer::PollLimits;
use weir::demo::produce_orders;
use weir::group::GroupSettings;
use weir::processor::{Instances, ProcessorConfig, dlq_headers};
use weir::runtime::{Guest, GuestSpec, Handler};
use weir_tests::{Host, guests};

fn currency(host: &Host, path: &str, label: &str) -> Arc<Guest> {
    let spec = GuestSpec {
        processor: "fx".into(),
        label: Some(label.into()),
        ..GuestSpec::default()
    };
    Arc::new(host.runtime.load_file(Path::new(path), spec).unwrap())
}

fn start(host: &Host, guest: Arc<Guest>) -> Instances {
    host.topic("orders", 1);
    host.topic("orders-usd", 1);
    let mut config = ProcessorConfig::new("fx", &["orders"]);
    config.poll = PollLimits {
        max_records: 10,
        max_bytes: 1 << 20,
        max_wait: Duration::from_millis(50),
    };
    config.group_settings = GroupSettings::default();
    Instances::start(config, host.broker.clone(), guest, 1).unwrap()
}

async fn wait_committed(host: &Host, n: u64) {
    let started = Instant::now();
    while host.committed("fx", "orders", 0) != n {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "stuck at {}",
            host.committed("fx", "orders", 0)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// (version header, usd_cents) of every converted order, in order.
fn converted(host: &Host) -> Vec<(String, i64)> {
    host.records("orders-usd", 0)
        .iter()
        .map(|r| {
            let version = r
                .headers
                .iter()
                .find(|(n, _)| n == dlq_headers::VERSION)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .expect("every emit names its version");
            let value: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
            (version, value["usd_cents"].as_i64().unwrap())
        })
        .collect()
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_takes_over_at_the_next_batch_and_emits_name_their_version() {
    let host = Host::new();
    let v1 = currency(&host, guests::CURRENCY_V1, "v1");
    let v2 = currency(&host, guests::CURRENCY_V2, "v2");
    let (v1_version, v2_version) = (v1.version().to_string(), v2.version().to_string());
    let mut instances = start(&host, v1);
    produce_orders(&host.log, "orders", 50).unwrap();
    wait_committed(&host, 50).await;

    instances.deploy(v2, None).await.unwrap();
    produce_orders(&host.log, "orders", 50).unwrap();
    wait_committed(&host, 100).await;
    instances.stop().await.unwrap();

    let out = converted(&host);
    let expected = weir_tests::expected_usd(&host);
    assert_eq!(out.len(), 100, "no record lost or repeated by the swap");
    assert!(out[..50].iter().all(|(v, _)| *v == v1_version));
    assert!(out[50..].iter().all(|(v, _)| *v == v2_version));
    let fixed: Vec<i64> = out[50..].iter().map(|(_, c)| *c).collect();
    assert_eq!(fixed, expected[50..], "v2 converts correctly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_and_rewind_replays_history_through_the_fixed_version() {
    let host = Host::new();
    let v1 = currency(&host, guests::CURRENCY_V1, "v1");
    let v2 = currency(&host, guests::CURRENCY_V2, "v2");
    let v2_version = v2.version().to_string();
    let mut instances = start(&host, v1);
    produce_orders(&host.log, "orders", 40).unwrap();
    wait_committed(&host, 40).await;
    let generation = host.groups.describe("fx").unwrap().generation;

    instances.deploy(v2, Some(SeekTo::Earliest)).await.unwrap();
    let started = Instant::now();
    while converted(&host).len() < 80 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the replay never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_committed(&host, 40).await;
    instances.stop().await.unwrap();

    let out = converted(&host);
    assert_eq!(out.len(), 80, "history once through v1, once through v2");
    assert!(
        out[40..].iter().all(|(v, _)| *v == v2_version),
        "the replay is v2's alone"
    );
    let replayed: Vec<i64> = out[40..].iter().map(|(_, c)| *c).collect();
    assert_eq!(replayed, weir_tests::expected_usd(&host));
    assert_eq!(
        host.groups.describe("fx").unwrap().generation,
        generation,
        "no rebalance"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewind_that_cannot_apply_changes_neither_version_nor_offsets() {
    let host = Host::new();
    let v1 = currency(&host, guests::CURRENCY_V1, "v1");
    let v1_version = v1.version().to_string();
    let v2 = currency(&host, guests::CURRENCY_V2, "v2");
    let mut instances = start(&host, v1);
    produce_orders(&host.log, "orders", 20).unwrap();
    wait_committed(&host, 20).await;

    let err = instances
        .deploy(v2, Some(SeekTo::Offset(9_999)))
        .await
        .unwrap_err();

    assert!(
        err.to_string().contains("group") || format!("{err:?}").contains("OffsetOutOfRange"),
        "{err:?}"
    );
    assert_eq!(host.committed("fx", "orders", 0), 20);
    assert_eq!(instances.slot().current().version(), v1_version);
    produce_orders(&host.log, "orders", 5).unwrap();
    wait_committed(&host, 25).await;
    instances.stop().await.unwrap();
    assert!(
        converted(&host).iter().all(|(v, _)| *v == v1_version),
        "the old version kept running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_under_load_give_every_record_exactly_one_version_without_gaps() {
    let host = Host::new();
    host.topic("in", 4);
    host.topic("out", 1);
    let version = |label: &str| -> Arc<Guest> {
        let spec = GuestSpec {
            processor: "load".into(),
            label: Some(label.into()),
            config: vec![("output".into(), "out".into())],
            ..GuestSpec::default()
        };
        Arc::new(
            host.runtime
                .load_file(Path::new(guests::SCRIPTED), spec)
                .unwrap(),
        )
    };
    let (a, b) = (version("a"), version("b"));
    let names = [a.version().to_string(), b.version().to_string()];
    let mut config = ProcessorConfig::new("load", &["in"]);
    config.poll = PollLimits {
        max_records: 25,
        max_bytes: 1 << 20,
        max_wait: Duration::from_millis(5),
    };
    let mut instances = Instances::start(config, host.broker.clone(), a.clone(), 2).unwrap();
    // A producer appends 4,000 records while the version changes 20 times.
    let log = host.log.clone();
    let producer = tokio::spawn(async move {
        for i in 0..200 {
            let batch: Vec<weir::log::Record> = (0..20)
                .map(|j| weir::log::Record::value(format!("r{}", i * 20 + j)))
                .collect();
            log.append("in", i % 4, &batch).unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    for swap in 0..20 {
        let next = if swap % 2 == 0 { b.clone() } else { a.clone() };
        instances.deploy(next, None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.await.unwrap();
    let started = Instant::now();
    while (0..4).map(|p| host.committed("load", "in", p)).sum::<u64>() < 4000 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    instances.stop().await.unwrap();

    let out = host.records("out", 0);
    let mut seen = std::collections::BTreeMap::new();
    for r in &out {
        let versions: Vec<_> = r
            .headers
            .iter()
            .filter(|(n, _)| n == dlq_headers::VERSION)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect();
        assert_eq!(versions.len(), 1, "exactly one version header");
        assert!(names.contains(&versions[0]), "{versions:?}");
        *seen
            .entry(String::from_utf8_lossy(&r.value).into_owned())
            .or_insert(0) += 1;
    }
    let expected: std::collections::BTreeSet<String> = (0..4000).map(|i| format!("r{i}")).collect();
    let got: std::collections::BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(got, expected, "no gaps");
    assert!(
        seen.values().all(|&n| n == 1),
        "a plain swap redelivers nothing"
    );
    let by_version = |v: &str| {
        out.iter()
            .filter(|r| r.headers.iter().any(|(_, h)| h == v.as_bytes()))
            .count()
    };
    assert!(
        by_version(&names[0]) > 0 && by_version(&names[1]) > 0,
        "both versions processed records"
    );
}
