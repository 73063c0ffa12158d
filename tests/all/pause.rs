//! The "pause the partition" failure policy: a batch that keeps failing stops
//! its partition only; the member goes on with its other partitions, and the
//! paused one resumes on a restart or when a new version is swapped in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir::consumer::PollLimits;
use weir::group::TopicPartition;
use weir::processor::{Instances, Processor, ProcessorConfig, RetryPolicy, WhenExhausted};
use weir_tests::{Host, fast_retries, guests};

const POISONED: [&str; 7] = ["a", "b", "c", "d", "fail:retry", "e", "f"];

/// `in` with ten good records on partition 0 and a poison record at offset 4
/// of partition 1.
fn poisoned_host() -> Host {
    let host = Host::new();
    host.topic("in", 2);
    host.topic("out", 1);
    let good: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    host.append_values("in", 0, &good);
    host.append_values("in", 1, &POISONED);
    host
}

fn config(then: WhenExhausted) -> ProcessorConfig {
    let mut config = ProcessorConfig::new("p", &["in"]);
    config.retry = RetryPolicy {
        then,
        ..fast_retries()
    };
    config.poll = PollLimits {
        max_wait: Duration::from_millis(20),
        ..PollLimits::default()
    };
    config
}

fn member(host: &Host, then: WhenExhausted) -> Processor {
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();
    Processor::new(config(then), host.broker.as_ref(), Arc::new(guest)).unwrap()
}

#[tokio::test]
async fn a_poisoned_partition_pauses_while_the_other_is_processed_and_committed() {
    let host = poisoned_host();

    let processor = member(&host, WhenExhausted::Pause)
        .run_until_caught_up()
        .await
        .expect("pausing is not a failure of the processor");

    assert_eq!(
        host.committed("p", "in", 0),
        10,
        "the other partition, all of it"
    );
    assert_eq!(
        host.committed("p", "in", 1),
        4,
        "stays at the poison record"
    );
    assert_eq!(
        processor.stats().paused_partitions(),
        vec![TopicPartition::new("in", 1)]
    );
    assert_eq!(processor.stats().records(), 14);
    let out = host.values("out", 0);
    assert_eq!(out.len(), 14, "{out:?}");
    assert!(
        !out.iter().any(|v| v == "e" || v == "f"),
        "nothing past the poison"
    );

    // A restart fetches the partition again; with dead-lettering it gets past.
    drop(processor);
    let restarted = member(&host, WhenExhausted::DeadLetter)
        .run_until_caught_up()
        .await
        .unwrap();
    assert_eq!(host.committed("p", "in", 1), 7);
    assert!(restarted.stats().paused_partitions().is_empty());
    assert_eq!(host.values("p.dlq", 0), vec!["fail:retry"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapping_in_a_new_version_resumes_the_paused_partition() {
    let host = poisoned_host();
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();
    let mut instances = Instances::start(
        config(WhenExhausted::Pause),
        host.broker.clone(),
        Arc::new(guest),
        1,
    )
    .unwrap();
    let wait = async |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(20), "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let stats = instances.stats()[0].clone();
    wait("pausing", &|| !stats.paused_partitions().is_empty()).await;
    assert_eq!(
        stats.paused_partitions(),
        vec![TopicPartition::new("in", 1)]
    );
    assert_eq!(host.committed("p", "in", 1), 4);

    // The fix: a version that processes the poison record.
    let fixed = host
        .guest(guests::PASSTHROUGH, "p", &[("output", "out")])
        .unwrap();
    instances.deploy(Arc::new(fixed), None).await.unwrap();
    wait("resuming", &|| host.committed("p", "in", 1) == 7).await;

    assert!(stats.paused_partitions().is_empty());
    assert_eq!(host.committed("p", "in", 0), 10);
    let out = host.values("out", 0);
    assert_eq!(out.len(), 17, "{out:?}");
    assert!(
        out.contains(&"fail:retry".to_string()),
        "the fix processed it"
    );
    instances.stop().await.unwrap();
}
