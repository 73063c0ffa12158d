//! Group membership and lag as the broker, the API and the metrics show them:
//! a processor stuck on its first batch still has lag and a description, and a
//! group's record (generation, static members, assignment) outlives the
//! process.

use std::sync::Arc;
use std::time::Duration;

use weir::processor::{Instances, ProcessorConfig, RetryPolicy, WhenExhausted};
use weir_tests::{Host, guests};

fn stuck_config() -> ProcessorConfig {
    let mut config = ProcessorConfig::new("stuck", &["in"]);
    config.retry = RetryPolicy {
        max_retries: u32::MAX,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        then: WhenExhausted::Stop,
    };
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_stuck_on_its_first_batch_has_lag_metrics_and_a_description() {
    let host = Host::new();
    host.topic("in", 2);
    host.append_values("in", 0, &["fail:retry", "a", "b"]);
    host.append_values("in", 1, &["fail:retry", "c"]);
    let guest = host.guest(guests::SCRIPTED, "stuck", &[]).unwrap();
    let instances =
        Instances::start(stuck_config(), host.broker.clone(), Arc::new(guest), 1).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(host.offsets.of_group("stuck").len(), 0, "nothing committed");

    let described = host
        .broker
        .describe_group("stuck")
        .expect("a live group is described");
    assert_eq!(described.total_lag, 5);
    assert_eq!(described.partitions.len(), 2);
    let membership = described.membership.expect("membership");
    assert_eq!(membership.protocol, "cooperative");
    assert_eq!(membership.assignor, "cooperative-sticky");
    assert!(membership.generation >= 1);
    assert_eq!(membership.members.len(), 1);
    let member = &membership.members[0];
    assert_eq!(member.instance_id.as_deref(), Some("stuck-0"));
    assert_eq!(member.assignment.len(), 2);
    assert!(!member.awaiting_rejoin);

    let lags = host.broker.group_lags();
    let (_, stuck) = lags
        .iter()
        .find(|(g, _)| g == "stuck")
        .expect("lag for the live group");
    assert_eq!(stuck.iter().map(|l| l.lag).sum::<u64>(), 5);
    let text = weir::service::Metrics::install().render(&host.broker);
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("weir_consumer_lag{") && l.contains("group=\"stuck\""))
        .collect();
    assert_eq!(series.len(), 2, "{text}");
    assert!(
        series
            .iter()
            .any(|l| l.contains("partition=\"0\"") && l.ends_with(" 3")),
        "{series:?}"
    );

    // Over the API too.
    let server = weir_tests::server::Server::start(&host, None).await;
    let (status, body) = server.get("/groups/stuck").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["membership"]["members"][0]["instance_id"], "stuck-0");
    assert_eq!(body["total_lag"], 5);
    instances.stop().await.unwrap();
}

/// Group `g` once both of its members hold two partitions each.
async fn settled(host: &Host) -> weir::group::GroupDescription {
    let started = std::time::Instant::now();
    loop {
        let d = host.groups.describe("g").unwrap();
        let live = d.members.iter().all(|m| !m.restored);
        if live && d.members.len() == 2 && d.members.iter().all(|m| m.assigned.len() == 2) {
            return d;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_record_is_restored_when_the_broker_reopens() {
    let host = Host::new();
    host.topic("in", 4);
    let guest = || Arc::new(host.guest(guests::SCRIPTED, "g", &[]).unwrap());
    let config = ProcessorConfig::new("g", &["in"]);
    let instances = Instances::start(config.clone(), host.broker.clone(), guest(), 2).unwrap();
    let before = settled(&host).await;
    instances.stop().await.unwrap();

    let host = host.reopen();
    let restored = host.groups.describe("g").expect("restored from its record");
    assert_eq!(restored.generation, before.generation);
    assert!(restored.members.iter().all(|m| m.restored));
    // Nothing runs the restored members, so the group can be moved.
    host.broker
        .seek(
            "g",
            &["in".to_string()],
            None,
            weir::broker::SeekTo::Earliest,
        )
        .expect("restored members do not block a seek");
    let by_instance = |d: &weir::group::GroupDescription| {
        let mut m: Vec<_> = d
            .members
            .iter()
            .map(|m| (m.instance_id.clone(), m.assigned.clone()))
            .collect();
        m.sort();
        m
    };
    assert_eq!(by_instance(&restored), by_instance(&before));

    let guest = Arc::new(host.guest(guests::SCRIPTED, "g", &[]).unwrap());
    let instances = Instances::start(config, host.broker.clone(), guest, 2).unwrap();
    let after = settled(&host).await;
    instances.stop().await.unwrap();
    assert_eq!(after.generation, before.generation, "no rebalance");
    assert!(after.members.iter().all(|m| !m.restored));
    assert_eq!(by_instance(&after), by_instance(&before));
}
