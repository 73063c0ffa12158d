//! Kafka consumer groups with real clients against a real `weir serve
//! --kafka-listen`: confluent-kafka consumers under cooperative-sticky as
//! members come and go, committed offsets across a restart of the server,
//! static membership across a restart of a consumer, and kafka-python's
//! group consumer, whose commits show in weir's own group description.
//! Skipped loudly outside CI when a client is missing (see
//! `weir_tests::kafka_clients`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use weir_tests::kafka_clients::KafkaServe;
use weir_tests::kafka_groups_env::{
    GroupConsumer, consumed, create, of, owned, ownership, produce, python,
};

const WAIT: Duration = Duration::from_secs(90);

fn consumer(
    serve: &KafkaServe,
    client: &str,
    group: &str,
    topic: &str,
    config: Value,
) -> GroupConsumer {
    consumer_with(
        serve,
        json!({"client": client, "group": group, "topics": [topic], "config": config}),
    )
}

fn consumer_with(serve: &KafkaServe, mut config: Value) -> GroupConsumer {
    config["bootstrap"] = json!(serve.kafka);
    GroupConsumer::start(&python().expect("clients installed"), &config)
}

fn records_seen(events: &[Value]) -> usize {
    of(events, "record").count()
}

/// The group's committed offset per partition, from weir's HTTP API.
fn committed(serve: &KafkaServe, group: &str) -> BTreeMap<u64, (Option<u64>, u64)> {
    let body = reqwest_get(&format!("{}/groups/{group}", serve.http));
    body["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partition"].as_u64().unwrap(),
                (
                    p["committed"].as_u64(),
                    p["high_watermark"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn reqwest_get(url: &str) -> Value {
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

#[test]
fn cooperative_sticky_consumers_share_a_stream_as_members_join_and_leave() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    create(&serve, "orders", 6);
    produce(&serve, "orders", 6, 50, "a");
    let coop = json!({"partition.assignment.strategy": "cooperative-sticky"});
    let a = consumer(&serve, "confluent", "shop", "orders", coop.clone());
    let b = consumer(&serve, "confluent", "shop", "orders", coop.clone());
    assert!(
        a.wait_for(WAIT, |e| owned(e).len() == 3) && b.wait_for(WAIT, |e| owned(e).len() == 3),
        "a and b share the six partitions: {:?} / {:?}",
        owned(&a.events()),
        owned(&b.events())
    );
    // c joins mid-stream.
    let c = consumer(&serve, "confluent", "shop", "orders", coop.clone());
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
    assert!(of(&b_events, "closed").count() == 1, "b closed cleanly");
    produce(&serve, "orders", 6, 50, "d");
    let total = 6 * 200;
    let all_seen = |a: &GroupConsumer, c: &GroupConsumer| {
        let mut seen: BTreeSet<(u64, u64)> = consumed(&b_events).into_iter().collect();
        seen.extend(consumed(&a.events()));
        seen.extend(consumed(&c.events()));
        seen.len()
    };
    let started = std::time::Instant::now();
    while all_seen(&a, &c) < total && started.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(owned(&a.events()).len() + owned(&c.events()).len(), 6);
    let a_events = a.stop();
    let c_events = c.stop();

    // Every record consumed.
    let mut seen: BTreeSet<(u64, u64)> = BTreeSet::new();
    for events in [&a_events, &b_events, &c_events] {
        seen.extend(consumed(events));
    }
    let expected: BTreeSet<(u64, u64)> =
        (0..6).flat_map(|p| (0..200).map(move |o| (p, o))).collect();
    assert_eq!(seen, expected, "every record of every partition consumed");
    // No partition owned by two consumers at once.
    let intervals: Vec<(usize, (u64, f64, f64))> = [&a_events, &b_events, &c_events]
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
    // Everything committed, in weir's own offsets.
    let positions = committed(&serve, "shop");
    assert_eq!(positions.len(), 6);
    for (p, (committed, end)) in positions {
        assert_eq!((committed, end), (Some(200), 200), "partition {p}");
    }
}

#[test]
fn a_restart_of_weir_serve_keeps_the_groups_committed_offsets() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut serve = KafkaServe::start(dir.path(), &[]);
    create(&serve, "r", 2);
    produce(&serve, "r", 2, 100, "x");
    let mut first = consumer_with(
        &serve,
        json!({"client": "confluent", "group": "resume", "topics": ["r"], "stop_after": 70}),
    );
    let first_events = first.wait_exit(WAIT);
    assert_eq!(records_seen(&first_events), 70);
    let before = committed(&serve, "resume");
    drop(first);

    drop(serve);
    serve = KafkaServe::start(dir.path(), &[]);
    assert_eq!(
        committed(&serve, "resume"),
        before,
        "the offsets survived the restart"
    );
    let second = consumer(&serve, "confluent", "resume", "r", json!({}));
    assert!(
        second.wait_for(WAIT, |e| records_seen(e) >= 130),
        "the rest is consumed: {}",
        records_seen(&second.events())
    );
    let second_events = second.stop();
    // It resumed where the first committed: nothing twice, nothing missed.
    let mut all = consumed(&first_events);
    all.extend(consumed(&second_events));
    let unique: BTreeSet<(u64, u64)> = all.iter().copied().collect();
    assert_eq!(all.len(), 200, "no record consumed twice");
    assert_eq!(unique.len(), 200);
    for (p, (start, _)) in &before {
        let resumed = consumed(&second_events)
            .into_iter()
            .filter(|(q, _)| q == p)
            .map(|(_, o)| o)
            .min();
        let start = start.unwrap_or(0);
        assert_eq!(
            resumed,
            Some(start),
            "partition {p} resumed at its committed offset"
        );
    }
}

#[test]
fn a_static_member_restarting_within_its_session_gets_its_partitions_back_without_a_rebalance() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    create(&serve, "s", 4);
    let config = |instance: &str| {
        json!({"group.instance.id": instance, "session.timeout.ms": 20000,
               "partition.assignment.strategy": "range"})
    };
    let one = consumer(&serve, "confluent", "statics", "s", config("one"));
    let two = consumer(&serve, "confluent", "statics", "s", config("two"));
    assert!(
        one.wait_for(WAIT, |e| owned(e).len() == 2) && two.wait_for(WAIT, |e| owned(e).len() == 2),
        "both get two partitions: {:?} / {:?}",
        one.events(),
        two.events()
    );
    // Let the group settle: no event for a while.
    std::thread::sleep(Duration::from_secs(2));
    let theirs = two.events().len();
    let before = owned(&one.events());

    let killed = one.kill();
    assert_eq!(owned(&killed), before);
    let again = consumer(&serve, "confluent", "statics", "s", config("one"));
    assert!(
        again.wait_for(WAIT, |e| !owned(e).is_empty()),
        "the restarted member gets partitions: {:?}",
        again.events()
    );
    assert_eq!(owned(&again.events()), before, "its old partitions");
    produce(&serve, "s", 4, 10, "y");
    assert!(again.wait_for(WAIT, |e| records_seen(e) >= 20));
    assert!(two.wait_for(WAIT, |e| records_seen(e) >= 20));
    let after: Vec<Value> = two.events()[theirs..].to_vec();
    assert!(
        of(&after, "assigned").count() + of(&after, "revoked").count() == 0,
        "the other member saw no rebalance: {after:?}"
    );
}

#[test]
fn kafka_pythons_group_consumer_commits_and_weir_group_describe_shows_them() {
    if python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    create(&serve, "kp", 3);
    produce(&serve, "kp", 3, 30, "z");
    let mut reader = consumer_with(
        &serve,
        json!({"client": "kafka-python", "group": "pyg", "topics": ["kp"], "stop_after": 90}),
    );
    let events = reader.wait_exit(WAIT);
    let seen: BTreeSet<(u64, u64)> = consumed(&events).into_iter().collect();
    assert_eq!(seen.len(), 90, "every record once");
    let positions = committed(&serve, "pyg");
    assert_eq!(positions.len(), 3);
    for (p, position) in positions {
        assert_eq!(position, (Some(30), 30), "partition {p}");
    }
    let lag = reqwest_get(&format!("{}/groups/pyg", serve.http));
    assert_eq!(lag["total_lag"], json!(0));
    let groups = reqwest_get(&format!("{}/groups", serve.http));
    assert!(
        groups.as_array().unwrap().contains(&json!("pyg")),
        "{groups}"
    );
}
