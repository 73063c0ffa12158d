//! Consumer groups on the real log: independent groups, instances sharing
//! partitions, rebalancing when scaling, zombie fencing, static membership,
//! seeking and the reset policy.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use weir::broker::{Moved, ResetPolicy, SeekTo};
use weir::consumer::Emit;
use weir::consumer::{ConsumerError, PollLimits, Polled};
use weir::group::{GroupError, GroupSettings, Protocol};
use weir::log::Record;
use weir::processor::{Instances, Processor, ProcessorConfig, ProcessorError};
use weir::runtime::{Handler, Output, RuntimeError, StateView};
use weir_tests::{Host, guests};

mod pacemaker;

/// A native handler that copies every record to `out`, optionally sleeping on
/// its first call (a guest stuck in a batch).
struct Copy {
    first_call_delay: Duration,
    calls: AtomicUsize,
}

impl Copy {
    fn new(first_call_delay: Duration) -> Arc<Copy> {
        Arc::new(Copy {
            first_call_delay,
            calls: AtomicUsize::new(0),
        })
    }
}

impl Handler for Copy {
    fn handle(&self, batch: &Polled, state: Arc<dyn StateView>) -> Result<Output, RuntimeError> {
        // Counts its partition's records in state, so a test can tell which
        // batches' state changes committed.
        let seen = state
            .get(b"n")
            .unwrap()
            .map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
        let counted = (seen + batch.records.len() as u64).to_be_bytes().to_vec();
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::thread::sleep(self.first_call_delay);
        }
        let emits = batch
            .records
            .iter()
            .map(|r| Emit {
                topic: "out".into(),
                record: Record::keyed(r.key.clone().unwrap_or_default(), r.value.clone()),
            })
            .collect();
        Ok(Output {
            outcome: Ok(()),
            emits,
            state: vec![(b"n".to_vec(), Some(counted))],
        })
    }

    fn version(&self) -> &str {
        "copy"
    }
}

fn config(name: &str, settings: GroupSettings) -> ProcessorConfig {
    let mut config = ProcessorConfig::new(name, &["in"]);
    config.poll = PollLimits {
        max_records: 25,
        max_bytes: 1 << 20,
        max_wait: Duration::from_millis(50),
    };
    config.group_settings = settings;
    config.retry = weir_tests::fast_retries();
    config
}

fn seed(host: &Host, partitions: u32, per_partition: usize) {
    host.topic("in", partitions);
    host.topic("out", 1);
    for p in 0..partitions {
        let records: Vec<Record> = (0..per_partition)
            .map(|i| Record::keyed(format!("p{p}"), format!("p{p}-r{i}")))
            .collect();
        host.log.append("in", p, &records).unwrap();
    }
}

fn total_committed(host: &Host, group: &str, partitions: u32) -> u64 {
    (0..partitions)
        .map(|p| host.committed(group, "in", p))
        .sum()
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn output_counts(host: &Host) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for v in host.values("out", 0) {
        *counts.entry(v).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_out_shares_the_partitions_and_every_record_is_processed_once() {
    let host = Host::new();
    seed(&host, 4, 200);
    let handler = Copy::new(Duration::ZERO);
    let mut instances = Instances::start(
        config("copy", GroupSettings::default()),
        host.broker.clone(),
        handler,
        1,
    )
    .unwrap();
    wait_until(
        "the first member made progress",
        Duration::from_secs(10),
        || total_committed(&host, "copy", 4) > 0,
    )
    .await;

    instances.scale(2).await.unwrap();
    wait_until(
        "both members hold partitions",
        Duration::from_secs(10),
        || {
            let d = host.groups.describe("copy").unwrap();
            d.members.len() == 2 && d.members.iter().all(|m| m.assigned.len() == 2)
        },
    )
    .await;
    for p in 0..4 {
        let more: Vec<Record> = (200..400)
            .map(|i| Record::keyed(format!("p{p}"), format!("p{p}-r{i}")))
            .collect();
        host.log.append("in", p, &more).unwrap();
    }
    wait_until("everything is committed", Duration::from_secs(20), || {
        total_committed(&host, "copy", 4) == 1600
    })
    .await;
    let stats = instances.stats();
    instances.stop().await.unwrap();

    assert!(
        stats.iter().all(|s| s.records() > 0),
        "both members processed records"
    );
    let counts = output_counts(&host);
    assert_eq!(counts.len(), 1600, "every record emitted");
    assert!(
        counts.values().all(|c| *c == 1),
        "a cooperative handover repeats nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stuck_past_the_max_poll_interval_is_fenced_and_its_work_reassigned() {
    let host = Host::new();
    seed(&host, 2, 100);
    let settings = GroupSettings {
        max_poll_interval: Duration::from_millis(400),
        ..GroupSettings::default()
    };
    let slow = Processor::new(
        config("g", settings),
        host.broker.as_ref(),
        Copy::new(Duration::from_millis(1500)),
    )
    .unwrap();
    let mut fast_config = config("g", settings);
    fast_config.instance_id = Some("fast".into());
    let (stop_slow, slow_stopped) = tokio::sync::watch::channel(false);
    let slow_stats = slow.stats();
    let slow_task = tokio::spawn(slow.run(slow_stopped));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let fast =
        Processor::new(fast_config, host.broker.as_ref(), Copy::new(Duration::ZERO)).unwrap();
    let (stop_fast, fast_stopped) = tokio::sync::watch::channel(false);
    let fast_task = tokio::spawn(fast.run(fast_stopped));

    wait_until(
        "all 200 records are committed",
        Duration::from_secs(15),
        || total_committed(&host, "g", 2) == 200,
    )
    .await;
    wait_until(
        "the zombie's commit was refused",
        Duration::from_secs(5),
        || slow_stats.fenced() >= 1,
    )
    .await;
    stop_slow.send(true).unwrap();
    stop_fast.send(true).unwrap();
    slow_task.await.unwrap().unwrap();
    fast_task.await.unwrap().unwrap();

    let counts = output_counts(&host);
    assert_eq!(counts.len(), 200);
    assert!(
        counts.values().all(|c| *c == 1),
        "the fenced batch appended nothing: {:?}",
        counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    for p in 0..2 {
        let (_, n) = host
            .broker
            .state_get("g", "in", Some(p), b"n")
            .unwrap()
            .unwrap();
        assert_eq!(
            u64::from_be_bytes(n.try_into().unwrap()),
            100,
            "partition {p}: the zombie's state changes were fenced with its offset"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_instance_that_restarts_in_time_causes_no_rebalance() {
    let host = Host::new();
    seed(&host, 4, 10);
    let start = || {
        Instances::start(
            config("s", GroupSettings::default()),
            host.broker.clone(),
            Copy::new(Duration::ZERO),
            2,
        )
        .unwrap()
    };
    let first = start();
    wait_until(
        "both instances hold two partitions",
        Duration::from_secs(10),
        || {
            let d = host.groups.describe("s").unwrap();
            d.members.len() == 2 && d.members.iter().all(|m| m.assigned.len() == 2)
        },
    )
    .await;
    let before = host.groups.describe("s").unwrap();
    first.stop().await.unwrap();

    let second = start();
    wait_until(
        "the instances are back with their partitions",
        Duration::from_secs(10),
        || {
            let d = host.groups.describe("s").unwrap();
            d.members.iter().all(|m| m.assigned.len() == 2)
        },
    )
    .await;
    let after = host.groups.describe("s").unwrap();
    second.stop().await.unwrap();

    assert_eq!(after.generation, before.generation, "no rebalance");
    let by_instance = |d: &weir::group::GroupDescription| {
        d.members
            .iter()
            .map(|m| (m.instance_id.clone(), m.assigned.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(
        by_instance(&after),
        by_instance(&before),
        "each instance keeps its partitions"
    );
}

#[tokio::test]
async fn independent_groups_keep_their_own_offsets_and_seek_rewinds_one() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "b", "c"]);
    let guest = host
        .guest(guests::SCRIPTED, "one", &[("output", "out")])
        .unwrap();
    host.run("one", &["in"], guest, 10).await.unwrap();
    assert_eq!(host.committed("one", "in", 0), 3);
    assert_eq!(
        host.committed("two", "in", 0),
        0,
        "another group is untouched"
    );

    let moved = host
        .broker
        .seek("one", &[], None, SeekTo::Offset(1))
        .unwrap();
    assert_eq!(
        moved,
        vec![Moved {
            topic: "in".to_string(),
            partition: 0,
            from: Some(3),
            to: 1
        }]
    );
    let guest = host
        .guest(guests::SCRIPTED, "one", &[("output", "out")])
        .unwrap();
    host.run("one", &["in"], guest, 10).await.unwrap();
    assert_eq!(
        host.values("out", 0),
        vec!["a", "b", "c", "b", "c"],
        "replayed from offset 1"
    );

    let lag = host.broker.lag("one", &[]).unwrap();
    assert_eq!(lag.len(), 1);
    assert_eq!(
        (lag[0].committed, lag[0].high_watermark, lag[0].lag),
        (Some(3), 3, 0)
    );
    let bad = host.broker.seek("one", &[], None, SeekTo::Offset(99));
    assert!(matches!(bad, Err(GroupError::Log(_))), "{bad:?}");
    assert_eq!(
        host.committed("one", "in", 0),
        3,
        "a refused seek moves nothing"
    );
}

#[tokio::test]
async fn seek_by_timestamp_lands_on_the_first_record_at_or_after_it() {
    let host = Host::new();
    host.topic("in", 1);
    let records: Vec<Record> = [1_000, 2_000, 3_000, 4_000]
        .iter()
        .map(|ts| Record {
            timestamp: Some(*ts),
            ..Record::value(format!("at-{ts}"))
        })
        .collect();
    host.log.append("in", 0, &records).unwrap();
    let topics = vec!["in".to_string()];
    for (ts, expected) in [(0, 0), (2_000, 1), (2_001, 2), (4_000, 3), (9_999, 4)] {
        let moved = host
            .broker
            .seek("g", &topics, None, SeekTo::Timestamp(ts))
            .unwrap();
        assert_eq!(moved[0].to, expected, "timestamp {ts}");
    }
    let moved = host
        .broker
        .seek("g", &topics, Some(0), SeekTo::Earliest)
        .unwrap();
    assert_eq!(moved[0].to, 0);
    let moved = host
        .broker
        .seek("g", &topics, Some(0), SeekTo::Latest)
        .unwrap();
    assert_eq!(moved[0].to, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeking_a_group_with_live_members_is_refused() {
    let host = Host::new();
    seed(&host, 1, 5);
    let instances = Instances::start(
        config("live", GroupSettings::default()),
        host.broker.clone(),
        Copy::new(Duration::ZERO),
        1,
    )
    .unwrap();
    let refused = host
        .broker
        .seek("live", &["in".into()], None, SeekTo::Earliest);
    instances.stop().await.unwrap();
    assert!(
        matches!(refused, Err(GroupError::Active { members: 1, .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn reset_policies_pick_the_start_of_a_partition_without_a_commit() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["old"]);
    for (reset, expected) in [
        (ResetPolicy::Earliest, vec!["old", "new"]),
        (ResetPolicy::Latest, vec!["newer"]),
    ] {
        let group = format!("{reset:?}").to_lowercase();
        let mut config = ProcessorConfig::new(&group, &["in"]);
        config.reset = reset;
        let guest = host
            .guest(guests::SCRIPTED, &group, &[("output", "out")])
            .unwrap();
        let processor = Processor::new(config, host.broker.as_ref(), Arc::new(guest)).unwrap();
        if reset == ResetPolicy::Earliest {
            host.append_values("in", 0, &["new"]);
        } else {
            // "latest" positioned itself at the end when it joined; only records
            // appended afterwards reach it.
            assert_eq!(processor.consumer().positions()[0].1, 2);
            host.append_values("in", 0, &["newer"]);
        }
        let before = host.values("out", 0).len();
        let processor = processor.run_until_caught_up().await.unwrap();
        assert_eq!(
            processor.stats().records() as usize,
            expected.len(),
            "{reset:?}"
        );
        assert_eq!(host.values("out", 0)[before..], expected[..]);
    }

    let mut config = ProcessorConfig::new("strict", &["in"]);
    config.reset = ResetPolicy::None;
    let guest = host.guest(guests::SCRIPTED, "strict", &[]).unwrap();
    let err = Processor::new(config, host.broker.as_ref(), Arc::new(guest))
        .err()
        .expect("no committed offset and no reset policy");
    assert!(
        matches!(
            err,
            ProcessorError::Consumer(ConsumerError::Group(GroupError::NoOffset { .. }))
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eager_and_cooperative_protocols_both_process_everything_exactly_once() {
    for protocol in [Protocol::Eager, Protocol::Cooperative] {
        let host = Host::new();
        seed(&host, 3, 40);
        let settings = GroupSettings {
            protocol,
            assignor: match protocol {
                Protocol::Eager => weir::group::AssignorKind::Range,
                Protocol::Cooperative => weir::group::AssignorKind::CooperativeSticky,
            },
            ..GroupSettings::default()
        };
        let mut instances = Instances::start(
            config("p", settings),
            host.broker.clone(),
            Copy::new(Duration::ZERO),
            3,
        )
        .unwrap();
        instances.scale(2).await.unwrap();
        wait_until("everything is committed", Duration::from_secs(10), || {
            total_committed(&host, "p", 3) == 120
        })
        .await;
        instances.stop().await.unwrap();
        let counts = output_counts(&host);
        assert_eq!(counts.len(), 120, "{protocol:?}");
        assert!(
            counts.values().all(|c| *c == 1),
            "{protocol:?}: no partition was processed twice"
        );
        assert_eq!(
            host.groups.describe("p").unwrap().members.len(),
            2,
            "{protocol:?}: the scaled-down member left"
        );
    }
}
