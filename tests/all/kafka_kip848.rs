//! The KIP-848 consumer protocol with real clients: confluent-kafka
//! consumers with `group.protocol=consumer` against a real `weir serve
//! --kafka-listen`, as members come and go (every record consumed, no
//! partition owned twice, the offsets in weir's own group description and
//! kept across a restart of the server), and a static member restarting
//! within its session. Skipped loudly outside CI when a client is missing
//! (see `weir_tests::kafka_clients`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use weir_tests::kafka_clients::KafkaServe;
use weir_tests::kafka_groups_env::{
    GroupConsumer, consumed, create, of, owned, ownership, produce, python,
};

const WAIT: Duration = Duration::from_secs(90);

/// A confluent-kafka consumer speaking the consumer protocol.
fn consumer(serve: &KafkaServe, group: &str, topic: &str, config: Value) -> GroupConsumer {
    let mut config = config;
    config["group.protocol"] = json!("consumer");
    let spec = json!({"client": "confluent", "bootstrap": serve.kafka, "group": group,
                      "topics": [topic], "config": config});
    GroupConsumer::start(&python().expect("clients installed"), &spec)
}

/// The group's committed offset and end per partition, from weir's API.
fn committed(serve: &KafkaServe, group: &str) -> BTreeMap<u64, (Option<u64>, u64)> {
    let body = get(&format!("{}/groups/{group}", serve.http));
    body["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let end = p["high_watermark"].as_u64().unwrap();
            (
                p["partition"].as_u64().unwrap(),
                (p["committed"].as_u64(), end),
            )
        })
        .collect()
}

fn get(url: &str) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::get(url).await.expect("GET");
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    })
}

fn no_partition_owned_twice(all: &[&Vec<Value>]) {
    let intervals: Vec<(usize, (u64, f64, f64))> = all
        .iter()
        .enumerate()
        .flat_map(|(who, e)| ownership(e).into_iter().map(move |i| (who, i)))
        .collect();
    for (i, (w1, (p1, s1, e1))) in intervals.iter().enumerate() {
        for (w2, (p2, s2, e2)) in &intervals[i + 1..] {
            if w1 != w2 && p1 == p2 {
                assert!(
                    e1 <= s2 || e2 <= s1,
                    "partition {p1} owned by consumers {w1} and {w2} at once: {s1}..{e1} and {s2}..{e2}"
                );
            }
        }
    }
}

#[test]
fn consumer_protocol_members_share_a_stream_as_they_come_and_go_and_a_restart_keeps_the_offsets() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut serve = KafkaServe::start(dir.path(), &[]);
    create(&serve, "orders", 6);
    produce(&serve, "orders", 6, 50, "a");
    let a = consumer(&serve, "shop", "orders", json!({}));
    let b = consumer(&serve, "shop", "orders", json!({}));
    assert!(
        a.wait_for(WAIT, |e| owned(e).len() == 3) && b.wait_for(WAIT, |e| owned(e).len() == 3),
        "a and b share the six partitions: {:?} / {:?}",
        owned(&a.events()),
        owned(&b.events())
    );
    // c joins mid-stream.
    let c = consumer(&serve, "shop", "orders", json!({}));
    produce(&serve, "orders", 6, 50, "b");
    assert!(
        c.wait_for(WAIT, |e| owned(e).len() == 2),
        "c gets two partitions: {:?}",
        c.events()
    );
    assert!(a.wait_for(WAIT, |e| owned(e).len() == 2) && b.wait_for(WAIT, |e| owned(e).len() == 2));
    // b leaves mid-stream.
    produce(&serve, "orders", 6, 50, "c");
    let b_events = b.stop();
    assert_eq!(of(&b_events, "closed").count(), 1, "b closed cleanly");
    produce(&serve, "orders", 6, 50, "d");
    let total = 6 * 200;
    let seen_by = |events: &[&[Value]]| {
        let mut seen: BTreeSet<(u64, u64)> = BTreeSet::new();
        for e in events {
            seen.extend(consumed(e));
        }
        seen.len()
    };
    let started = std::time::Instant::now();
    while seen_by(&[&b_events, &a.events(), &c.events()]) < total && started.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        a.wait_for(WAIT, |e| owned(e).len() == 3) && c.wait_for(WAIT, |e| owned(e).len() == 3),
        "a and c share b's partitions: {:?} / {:?}",
        owned(&a.events()),
        owned(&c.events())
    );
    let a_events = a.stop();
    let c_events = c.stop();

    let mut seen: BTreeSet<(u64, u64)> = BTreeSet::new();
    for events in [&a_events, &b_events, &c_events] {
        seen.extend(consumed(events));
    }
    let expected: BTreeSet<(u64, u64)> =
        (0..6).flat_map(|p| (0..200).map(move |o| (p, o))).collect();
    assert_eq!(seen, expected, "every record of every partition consumed");
    no_partition_owned_twice(&[&a_events, &b_events, &c_events]);
    let positions = committed(&serve, "shop");
    assert_eq!(positions.len(), 6);
    for (p, position) in &positions {
        assert_eq!(*position, (Some(200), 200), "partition {p}");
    }
    // weir's own view: the CLI over the API, and the Kafka listings.
    let described = weir_tests::command::weir(
        dir.path(),
        &["--server", &serve.http, "group", "describe", "shop"],
    )
    .output()
    .expect("weir group describe");
    let text = String::from_utf8_lossy(&described.stdout);
    assert!(
        described.status.success(),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );
    assert!(text.contains("total lag 0"), "{text}");

    // A restart keeps the offsets; a new member resumes from them.
    drop(serve);
    serve = KafkaServe::start(dir.path(), &[]);
    assert_eq!(
        committed(&serve, "shop"),
        positions,
        "the offsets survived the restart"
    );
    produce(&serve, "orders", 6, 5, "e");
    let d = consumer(&serve, "shop", "orders", json!({}));
    assert!(
        d.wait_for(WAIT, |e| consumed(e).len() >= 30),
        "the new records are consumed: {:?}",
        d.events()
    );
    let d_events = d.stop();
    let resumed: BTreeSet<(u64, u64)> = consumed(&d_events).into_iter().collect();
    let fresh: BTreeSet<(u64, u64)> = (0..6)
        .flat_map(|p| (200..205).map(move |o| (p, o)))
        .collect();
    assert_eq!(resumed, fresh, "only what came after the committed offsets");
}

#[test]
fn a_consumer_protocol_static_member_restarting_quickly_gets_its_partitions_back() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    create(&serve, "s", 4);
    let config = |instance: &str| json!({"group.instance.id": instance});
    let one = consumer(&serve, "statics", "s", config("one"));
    let two = consumer(&serve, "statics", "s", config("two"));
    assert!(
        one.wait_for(WAIT, |e| owned(e).len() == 2) && two.wait_for(WAIT, |e| owned(e).len() == 2),
        "both get two partitions: {:?} / {:?}",
        one.events(),
        two.events()
    );
    std::thread::sleep(Duration::from_secs(2));
    let theirs = two.events().len();
    let before = owned(&one.events());

    // SIGKILL: no leave at all; the new process takes the instance over.
    let killed = one.kill();
    assert_eq!(owned(&killed), before);
    let again = consumer(&serve, "statics", "s", config("one"));
    assert!(
        again.wait_for(WAIT, |e| !owned(e).is_empty()),
        "the restarted member gets partitions: {:?}",
        again.events()
    );
    assert_eq!(owned(&again.events()), before, "its old partitions");
    produce(&serve, "s", 4, 10, "y");
    assert!(again.wait_for(WAIT, |e| consumed(e).len() >= 20));
    assert!(two.wait_for(WAIT, |e| consumed(e).len() >= 20));
    let after: Vec<Value> = two.events()[theirs..].to_vec();
    assert_eq!(
        of(&after, "assigned").count() + of(&after, "revoked").count(),
        0,
        "the other member saw no rebalance: {after:?}"
    );
}
