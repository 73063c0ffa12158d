//! Guest state and commit modes through the real processor loop: running
//! totals exact across restarts, state rewound with the group's offsets,
//! failures that keep only what committed, idempotent processing, and a
//! commit a crash cut short finished on the next start.

use std::collections::BTreeMap;
use std::sync::Arc;

use weir::broker::SeekTo;
use weir::consumer::{CommitMode, PollLimits};
use weir::log::{Record, StoredRecord};
use weir::processor::{Processor, ProcessorConfig, dlq_headers};
use weir_tests::{Host, fast_retries, guests};

/// Per customer, the (orders, amount) sequence the input implies, in order.
type Model = BTreeMap<String, Vec<(u64, i64)>>;

fn model(host: &Host, topic: &str, partitions: u32, upto: Option<u64>) -> Model {
    let mut totals: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut out = Model::new();
    for p in 0..partitions {
        for r in host.records(topic, p) {
            if upto.is_some_and(|end| r.offset >= end) {
                break;
            }
            let Ok(order) = serde_json::from_slice::<serde_json::Value>(&r.value) else {
                continue;
            };
            let customer = order["customer"].as_str().unwrap().to_string();
            let t = totals.entry(customer.clone()).or_default();
            t.0 += 1;
            t.1 += order["amount_cents"].as_i64().unwrap();
            out.entry(customer).or_default().push(*t);
        }
    }
    out
}

/// Per customer, the (orders, amount) values emitted to `topic`, in order.
fn emitted(host: &Host, topic: &str, partitions: u32) -> Model {
    let records: Vec<StoredRecord> = (0..partitions)
        .flat_map(|p| host.records(topic, p))
        .collect();
    totals_of(&records)
}

/// Per customer, the (orders, amount) values of these emitted records.
fn totals_of(records: &[StoredRecord]) -> Model {
    let mut out = Model::new();
    for r in records {
        let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
        out.entry(v["customer"].as_str().unwrap().to_string())
            .or_default()
            .push((
                v["orders"].as_u64().unwrap(),
                v["amount_cents"].as_i64().unwrap(),
            ));
    }
    out
}

fn produce(host: &Host, topic: &str, n: u64) {
    weir::demo::produce_orders(&host.log, topic, n).unwrap();
}

async fn run(host: &Host, name: &str, mode: CommitMode, max_records: usize) -> Processor {
    let guest = host
        .guest(guests::RUNNING_TOTALS, name, &[("output", "totals")])
        .unwrap();
    let mut config = ProcessorConfig::new(name, &["orders"]);
    config.poll = PollLimits {
        max_records,
        ..PollLimits::default()
    };
    config.retry = fast_retries();
    config.commit = mode;
    Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap()
}

fn topics(host: &Host, partitions: u32) {
    host.topic("orders", partitions);
    host.topic("totals", partitions);
}

#[tokio::test]
async fn running_totals_are_exact_in_every_mode_and_across_restarts() {
    for mode in [
        CommitMode::AtMostOnce,
        CommitMode::AtLeastOnce,
        CommitMode::ExactlyOnce,
    ] {
        let host = Host::new();
        topics(&host, 3);
        produce(&host, "orders", 700);
        run(&host, "totals", mode, 64).await;
        let host = host.reopen();
        produce(&host, "orders", 500);
        run(&host, "totals", mode, 64).await;
        assert_eq!(
            emitted(&host, "totals", 3),
            model(&host, "orders", 3, None),
            "{mode}: every customer's totals run 1, 2, ... N with the right amounts"
        );
    }
}

#[tokio::test]
async fn a_rewind_restores_the_state_at_the_rewind_point() {
    let host = Host::new();
    topics(&host, 1);
    produce(&host, "orders", 600);
    run(&host, "totals", CommitMode::ExactlyOnce, 50).await;
    let first_pass = host.records("totals", 0).len();

    // Mid-batch: state is kept per batch, so the rewind lands on the batch
    // boundary before it, with the state as it was there.
    let moved = host
        .broker
        .seek("totals", &[], None, SeekTo::Offset(230))
        .unwrap();
    assert_eq!(moved[0].to, 200, "{moved:?}");
    run(&host, "totals", CommitMode::ExactlyOnce, 50).await;

    let replayed = &host.records("totals", 0)[first_pass..];
    assert_eq!(replayed.len(), 400, "records 200.. were processed again");
    let again = totals_of(replayed);
    let full = model(&host, "orders", 1, None);
    let before = model(&host, "orders", 1, Some(200));
    for (customer, replay) in &again {
        let skip = before.get(customer).map_or(0, Vec::len);
        assert_eq!(
            replay,
            &full[customer][skip..],
            "customer {customer}: the replay continues from the state at offset 200"
        );
    }

    // Earliest: empty state, and the replay emits the whole model again.
    host.broker
        .seek("totals", &[], None, SeekTo::Earliest)
        .unwrap();
    let mark = host.records("totals", 0).len();
    run(&host, "totals", CommitMode::AtLeastOnce, 50).await;
    let third = totals_of(&host.records("totals", 0)[mark..]);
    assert_eq!(third, full, "a rewind to earliest starts from empty state");
}

#[tokio::test]
async fn a_malformed_order_is_dead_lettered_and_the_prefix_state_is_kept() {
    let host = Host::new();
    topics(&host, 1);
    produce(&host, "orders", 40);
    host.log
        .append("orders", 0, &[Record::keyed("c-001", "not json")])
        .unwrap();
    produce(&host, "orders", 40);
    run(&host, "totals", CommitMode::ExactlyOnce, 500).await;
    assert_eq!(emitted(&host, "totals", 1), model(&host, "orders", 1, None));
    let dead = host.records("totals.dlq", 0);
    assert_eq!(dead.len(), 1, "the malformed order alone is dead-lettered");
    let offset = dead[0]
        .headers
        .iter()
        .find(|(n, _)| n == dlq_headers::SOURCE_OFFSET)
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    assert_eq!(offset.as_deref(), Some("40"));
}

#[tokio::test]
async fn emits_name_their_source_partition_and_batch() {
    let host = Host::new();
    topics(&host, 1);
    produce(&host, "orders", 30);
    run(&host, "totals", CommitMode::AtLeastOnce, 10).await;
    let out = host.records("totals", 0);
    let header = |i: usize, name: &str| {
        out[i]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(0, dlq_headers::SOURCE_TOPIC), "orders");
    assert_eq!(header(0, dlq_headers::SOURCE_PARTITION), "0");
    assert_eq!(
        header(12, dlq_headers::SOURCE_OFFSET),
        "10",
        "the batch's first offset"
    );
    assert_eq!(
        header(12, dlq_headers::SOURCE_SEQ),
        "2",
        "its place in the batch's emits"
    );
}

#[tokio::test]
async fn state_can_be_read_for_debugging() {
    let host = Host::new();
    topics(&host, 3);
    produce(&host, "orders", 300);
    run(&host, "totals", CommitMode::ExactlyOnce, 100).await;
    let model = model(&host, "orders", 3, None);
    let (customer, totals) = model.iter().next().unwrap();
    let (_, value) = host
        .broker
        .state_get(
            "totals",
            "orders",
            None,
            format!("customer/{customer}").as_bytes(),
        )
        .unwrap()
        .expect("the customer has state");
    let v: serde_json::Value = serde_json::from_slice(&value).unwrap();
    let last = totals.last().unwrap();
    assert_eq!(
        (
            v["orders"].as_u64().unwrap(),
            v["amount_cents"].as_i64().unwrap()
        ),
        *last
    );
}

#[tokio::test]
async fn dedupe_drops_repeated_ids_within_the_ttl_and_forgets_them_after() {
    let host = Host::new();
    host.topic("orders", 1);
    host.topic("unique", 1);
    let order = |id: u64, at: i64| Record {
        key: Some(b"c-1".to_vec()),
        value: format!(
            r#"{{"id":{id},"customer":"c-1","amount_cents":5,"currency":"USD","country":"US"}}"#
        )
        .into_bytes(),
        headers: Vec::new(),
        timestamp: Some(at),
        nulls: Default::default(),
    };
    let t0 = 1_700_000_000_000;
    let input = [
        order(1, t0),
        order(2, t0 + 1),
        order(1, t0 + 2), // a producer's retry: dropped
        order(3, t0 + 3),
        order(2, t0 + 500),   // still within the TTL: dropped
        order(1, t0 + 2_000), // past the TTL: forwarded again
    ];
    host.log.append("orders", 0, &input[..3]).unwrap();
    host.log.append("orders", 0, &input[3..]).unwrap();
    let guest = host
        .guest(
            guests::DEDUPE_ORDERS,
            "dedupe",
            &[("output", "unique"), ("ttl_ms", "1000")],
        )
        .unwrap();
    let mut config = ProcessorConfig::new("dedupe", &["orders"]);
    config.poll.max_records = 2;
    config.retry = fast_retries();
    config.commit = CommitMode::ExactlyOnce;
    Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap();
    let ids: Vec<u64> = host
        .records("unique", 0)
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.value).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ids, [1, 2, 3, 1]);
}

#[tokio::test]
async fn an_exactly_once_commit_cut_short_is_finished_on_the_next_start() {
    // A commit whose changelog unit landed but whose emits and offset did
    // not (a kill at that instant), made by hand: the unit's emits are held
    // in the changelog, so the next start appends them once and moves the
    // offset.
    let host = Host::new();
    topics(&host, 1);
    produce(&host, "orders", 20);
    run(&host, "totals", CommitMode::ExactlyOnce, 10).await;
    let before = host.records("totals", 0).len();
    assert_eq!(host.committed("totals", "orders", 0), 20);

    let changelog = weir::state::changelog_topic("totals", "orders");
    let emit = Record::keyed(
        "c-zzz",
        r#"{"customer":"c-zzz","orders":1,"amount_cents":1}"#,
    );
    let unit = [
        weir::state::changelog::change_record(&(
            b"customer/c-zzz".to_vec(),
            Some(br#"{"orders":1,"amount_cents":1}"#.to_vec()),
        )),
        weir::state::changelog::emit_record("totals", 0, &emit),
        weir::state::changelog::marker_record(&weir::state::Marker::Commit {
            position: 21,
            dests: vec![("totals".into(), 0, before as u64)],
        }),
    ];
    host.log
        .append("orders", 0, &[Record::keyed("c-zzz", "{}")])
        .unwrap();
    host.log.append(&changelog, 0, &unit).unwrap();

    let host = host.reopen();
    run(&host, "totals", CommitMode::ExactlyOnce, 10).await;
    let after = host.records("totals", 0);
    assert_eq!(
        after.len(),
        before + 1,
        "the held emit appears exactly once"
    );
    assert_eq!(after.last().unwrap().key.as_deref(), Some(&b"c-zzz"[..]));
    assert_eq!(
        host.committed("totals", "orders", 0),
        21,
        "the offset was finished"
    );
    let (_, value) = host
        .broker
        .state_get("totals", "orders", Some(0), b"customer/c-zzz")
        .unwrap()
        .unwrap();
    assert_eq!(value, br#"{"orders":1,"amount_cents":1}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_moves_with_its_partitions_when_the_group_scales() {
    let host = Host::new();
    topics(&host, 3);
    produce(&host, "orders", 600);
    let guest = host
        .guest(guests::RUNNING_TOTALS, "totals", &[("output", "totals")])
        .unwrap();
    let mut config = ProcessorConfig::new("totals", &["orders"]);
    config.poll.max_records = 25;
    config.poll.max_wait = std::time::Duration::from_millis(20);
    config.commit = CommitMode::ExactlyOnce;
    let mut instances =
        weir::processor::Instances::start(config, host.broker.clone(), Arc::new(guest), 1).unwrap();
    let committed = |host: &Host| {
        (0..3)
            .map(|p| host.committed("totals", "orders", p))
            .sum::<u64>()
    };
    let wait = |target: u64| {
        let host = &host;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while committed(host) < target {
                assert!(
                    std::time::Instant::now() < deadline,
                    "stuck at {}",
                    committed(host)
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    wait(200).await;
    instances.scale(3).await.unwrap();
    produce(&host, "orders", 600);
    wait(800).await;
    instances.scale(1).await.unwrap();
    produce(&host, "orders", 300);
    wait(1500).await;
    instances.stop().await.unwrap();
    assert_eq!(emitted(&host, "totals", 3), model(&host, "orders", 3, None));
}

#[tokio::test]
async fn a_trap_keeps_only_the_state_of_what_committed() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["a", "b", "trap", "c"]);
    host.append_values("in", 0, &["d"]);
    let guest = host
        .guest(guests::SCRIPTED, "s", &[("count", "1")])
        .unwrap();
    let mut config = ProcessorConfig::new("s", &["in"]);
    config.retry = weir::processor::RetryPolicy {
        then: weir::processor::WhenExhausted::DeadLetter,
        ..fast_retries()
    };
    config.commit = CommitMode::ExactlyOnce;
    Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap();
    assert_eq!(
        host.records("s.dlq", 0).len(),
        1,
        "the trapping record is isolated"
    );
    let (_, seen) = host
        .broker
        .state_get("s", "in", Some(0), b"seen")
        .unwrap()
        .unwrap();
    assert_eq!(
        seen, b"4",
        "a, b, c and d counted once each; no trapped call's changes"
    );
}

#[tokio::test]
async fn at_most_once_loses_a_trapped_batch_and_never_repeats_it() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["a", "trap", "b"]);
    host.append_values("in", 0, &["c"]);
    let guest = host
        .guest(guests::SCRIPTED, "m", &[("count", "1")])
        .unwrap();
    let mut config = ProcessorConfig::new("m", &["in"]);
    config.retry = fast_retries();
    config.poll.max_records = 3;
    config.commit = CommitMode::AtMostOnce;
    let processor = Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap();
    assert_eq!(processor.stats().lost(), 3, "the first batch is lost whole");
    assert_eq!(host.committed("m", "in", 0), 4);
    let (_, seen) = host
        .broker
        .state_get("m", "in", Some(0), b"seen")
        .unwrap()
        .unwrap();
    assert_eq!(seen, b"1", "only c's call committed its state");
}

#[tokio::test]
async fn lag_tolerance_jumps_a_lagging_partition_to_the_latest_offset() {
    let host = Host::new();
    topics(&host, 1);
    produce(&host, "orders", 1000);
    let guest = host
        .guest(guests::RUNNING_TOTALS, "dash", &[("output", "totals")])
        .unwrap();
    let mut config = ProcessorConfig::new("dash", &["orders"]);
    config.poll.max_records = 100;
    config.lag_skip = Some(weir::processor::LagSkip {
        records: Some(500),
        age_ms: None,
    });
    let processor = Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap();
    assert_eq!(
        processor.stats().lag_skipped(),
        1000,
        "all 1000 were behind by more than 500"
    );
    assert_eq!(host.committed("dash", "orders", 0), 1000);
    assert!(
        host.records("totals", 0).is_empty(),
        "nothing was processed"
    );
    produce(&host, "orders", 200);
    let guest = host
        .guest(guests::RUNNING_TOTALS, "dash", &[("output", "totals")])
        .unwrap();
    let mut config = ProcessorConfig::new("dash", &["orders"]);
    config.lag_skip = Some(weir::processor::LagSkip {
        records: Some(500),
        age_ms: None,
    });
    Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap();
    assert_eq!(
        host.records("totals", 0).len(),
        200,
        "within the bound, records are processed"
    );
}
