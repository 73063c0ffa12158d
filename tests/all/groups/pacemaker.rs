//! A member's liveness while its guest call runs longer than the session
//! timeout: the pacemaker heartbeats for it, on both kinds of tokio runtime.

use std::time::Duration;

use weir::group::GroupSettings;
use weir::processor::Processor;
use weir_tests::Host;

use super::{Copy, config, output_counts, seed, total_committed, wait_until};

/// A guest call three times longer than the session timeout: the member's
/// pacemaker heartbeats meanwhile, so the member is not expired and its
/// commit stands.
async fn a_call_longer_than_the_session_timeout_keeps_the_member() {
    let host = Host::new();
    seed(&host, 1, 50);
    let settings = GroupSettings {
        session_timeout: Duration::from_millis(300),
        max_poll_interval: Duration::from_secs(30),
        ..GroupSettings::default()
    };
    let slow = Processor::new(
        config("long", settings),
        host.broker.as_ref(),
        Copy::new(Duration::from_millis(1000)),
    )
    .unwrap();
    let stats = slow.stats();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(slow.run(stopped));
    wait_until(
        "all 50 records are committed",
        Duration::from_secs(15),
        || total_committed(&host, "long", 1) == 50,
    )
    .await;
    stop.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert_eq!(
        stats.fenced(),
        0,
        "the member was expired during its long call"
    );
    assert!(output_counts(&host).values().all(|c| *c == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_heartbeats_on_a_multi_threaded_runtime() {
    a_call_longer_than_the_session_timeout_keeps_the_member().await;
}

#[tokio::test]
async fn a_long_call_heartbeats_on_a_current_thread_runtime() {
    a_call_longer_than_the_session_timeout_keeps_the_member().await;
}
