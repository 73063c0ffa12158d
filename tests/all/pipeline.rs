//! The processor loop end to end, embedded: produce → guest → emit → commit, and
//! what each failure kind commits.

use weir::error::chain as error_chain;
use weir::processor::{ProcessorError, dlq_headers};
use weir_tests::{Host, guests};

fn numbered(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("r{i}")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn produced_records_are_processed_emitted_and_committed() {
    let host = Host::new();
    host.topic("in", 2);
    host.topic("out", 1);
    let values = numbered(1200);
    host.append_values("in", 0, &refs(&values[..700]));
    host.append_values("in", 1, &refs(&values[700..]));
    let guest = host
        .guest(guests::SCRIPTED, "copy", &[("output", "out")])
        .unwrap();

    let processor = host.run("copy", &["in"], guest, 100).await.unwrap();

    assert_eq!(processor.stats().records(), 1200);
    assert_eq!(processor.stats().emitted(), 1200);
    assert_eq!(host.committed("copy", "in", 0), 700);
    assert_eq!(host.committed("copy", "in", 1), 500);
    let mut out = host.values("out", 0);
    out.sort();
    let mut expected = values.clone();
    expected.sort();
    assert_eq!(out, expected);
}

#[tokio::test]
async fn committed_offsets_survive_a_restart_and_nothing_is_processed_twice() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &refs(&numbered(50)));
    let guest = host
        .guest(guests::SCRIPTED, "copy", &[("output", "out")])
        .unwrap();
    host.run("copy", &["in"], guest, 20).await.unwrap();

    let host = host.reopen();
    assert_eq!(host.committed("copy", "in", 0), 50);
    host.append_values("in", 0, &["late"]);
    let guest = host
        .guest(guests::SCRIPTED, "copy", &[("output", "out")])
        .unwrap();
    let processor = host.run("copy", &["in"], guest, 20).await.unwrap();

    assert_eq!(
        processor.stats().records(),
        1,
        "only the new record is processed"
    );
    let out = host.values("out", 0);
    assert_eq!(out.len(), 51);
    assert_eq!(out.last().map(String::as_str), Some("late"));
}

#[tokio::test]
async fn a_fatal_failure_at_index_i_commits_exactly_the_prefix_and_its_emits() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "b", "c", "fail:fatal", "d", "e"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();

    let err = host
        .run("p", &["in"], guest, 100)
        .await
        .err()
        .expect("fatal stops the processor");

    match err {
        ProcessorError::Fatal {
            offset,
            ref message,
            ..
        } => {
            assert_eq!(offset, 3);
            assert!(message.contains("scripted fatal"), "{message}");
        }
        other => panic!("expected a fatal failure, got {other:?}"),
    }
    assert_eq!(
        host.committed("p", "in", 0),
        3,
        "exactly the prefix is committed"
    );
    assert_eq!(
        host.values("out", 0),
        vec!["a", "b", "c"],
        "the prefix's emits, once; nothing after"
    );
}

#[tokio::test]
async fn emits_of_a_failed_batch_never_appear() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    // Every call emits x and y before failing at index 2; the retries never
    // succeed. Only the prefix's own successful run may leave emits behind.
    host.append_values("in", 0, &["x", "y", "fail:retry", "z"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();

    let err = host
        .run("p", &["in"], guest, 100)
        .await
        .err()
        .expect("retries run out");

    assert!(
        matches!(
            err,
            ProcessorError::Exhausted {
                offset: 2,
                attempts: 4,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        host.values("out", 0),
        vec!["x", "y"],
        "x and y once, from the committed prefix"
    );
    assert_eq!(host.committed("p", "in", 0), 2);
}

#[tokio::test]
async fn a_trapping_guest_commits_nothing_and_emits_nothing() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["x", "y", "trap"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();

    let err = host
        .run("p", &["in"], guest, 100)
        .await
        .err()
        .expect("traps exhaust retries");

    assert!(
        matches!(err, ProcessorError::Exhausted { offset: 0, .. }),
        "{err:?}"
    );
    let chain = format!("{:?}", error_chain(&err));
    assert!(
        chain.contains("scripted trap"),
        "the guest's panic message reaches the error: {chain}"
    );
    assert!(host.values("out", 0).is_empty());
    assert_eq!(host.committed("p", "in", 0), 0);
}

#[tokio::test]
async fn skip_commits_past_the_record_and_carries_on() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "fail:skip", "b"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();

    let processor = host.run("p", &["in"], guest, 100).await.unwrap();

    assert_eq!(host.values("out", 0), vec!["a", "b"]);
    assert_eq!(host.committed("p", "in", 0), 3);
    assert_eq!(processor.stats().skipped(), 1);
    assert_eq!(processor.stats().records(), 3);
}

#[tokio::test]
async fn dead_lettered_records_carry_their_source_and_error_in_headers() {
    let host = Host::new();
    host.topic("in", 2);
    host.topic("out", 1);
    host.append_values("in", 1, &["a", "b", "fail:dead-letter", "c"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();
    let version = weir::runtime::Handler::version(&guest).to_string();

    let processor = host.run("p", &["in"], guest, 100).await.unwrap();

    assert_eq!(processor.stats().dead_lettered(), 1);
    assert_eq!(host.values("out", 0), vec!["a", "b", "c"]);
    assert_eq!(host.committed("p", "in", 1), 4);
    let dlq = host.records("p.dlq", 0);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].value, &b"fail:dead-letter"[..]);
    let header = |name: &str| {
        dlq[0]
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| panic!("missing header {name}"))
    };
    assert_eq!(header(dlq_headers::SOURCE_TOPIC), "in");
    assert_eq!(header(dlq_headers::SOURCE_PARTITION), "1");
    assert_eq!(header(dlq_headers::SOURCE_OFFSET), "2");
    assert!(header(dlq_headers::ERROR).contains("scripted dead-letter"));
    assert_eq!(header(dlq_headers::VERSION), version);
}

/// Runs the scripted guest over one record `value` under `limits` and returns
/// the error chain that stopped it; nothing may be committed.
async fn run_limited(value: &str, limits: weir::runtime::Limits) -> String {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &[value]);
    let spec = weir::runtime::GuestSpec {
        processor: "p".into(),
        limits,
        ..Default::default()
    };
    let guest = host
        .runtime
        .load_file(guests::SCRIPTED.as_ref(), spec)
        .unwrap();
    let err = host
        .run("p", &["in"], guest, 100)
        .await
        .err()
        .expect("the limit traps");
    assert_eq!(host.committed("p", "in", 0), 0);
    error_chain(&err)
}

#[tokio::test]
async fn a_guest_that_spins_forever_is_stopped_by_its_deadline() {
    let limits = weir::runtime::Limits {
        deadline: std::time::Duration::from_millis(50),
        ..Default::default()
    };
    let chain = run_limited("spin", limits).await;
    assert!(chain.contains("deadline"), "{chain}");
}

#[tokio::test]
async fn a_guest_that_grows_past_its_memory_cap_traps() {
    let limits = weir::runtime::Limits {
        memory_bytes: 16 << 20,
        ..Default::default()
    };
    let chain = run_limited("grow", limits).await;
    assert!(chain.contains("memory"), "{chain}");
}

#[tokio::test]
async fn an_init_error_stops_the_processor_with_the_guests_message() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["a"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("reject-init", "yes")])
        .unwrap();

    let err = host
        .run("p", &["in"], guest, 100)
        .await
        .err()
        .expect("init fails");

    assert!(
        error_chain(&err).contains("init rejected by configuration"),
        "{err:?}"
    );
    assert_eq!(host.committed("p", "in", 0), 0);
}

#[tokio::test]
async fn emitting_to_an_unknown_topic_is_an_error_the_guest_sees() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["a"]);
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "nowhere")])
        .unwrap();

    let err = host
        .run("p", &["in"], guest, 100)
        .await
        .err()
        .expect("fatal");

    match err {
        ProcessorError::Fatal { message, .. } => {
            assert!(message.contains("unknown topic \"nowhere\""), "{message}")
        }
        other => panic!("expected fatal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_poison_record_is_isolated_by_bisection_and_dead_lettered_alone() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let mut values = numbered(10);
    values[6] = "trap".to_string();
    host.append_values("in", 0, &refs(&values));
    let guest = host
        .guest(guests::SCRIPTED, "p", &[("output", "out")])
        .unwrap();
    let mut config = weir::processor::ProcessorConfig::new("p", &["in"]);
    config.retry = weir::processor::RetryPolicy {
        then: weir::processor::WhenExhausted::DeadLetter,
        ..weir_tests::fast_retries()
    };
    let processor =
        weir::processor::Processor::new(config, host.broker.as_ref(), std::sync::Arc::new(guest))
            .unwrap();

    let processor = processor.run_until_caught_up().await.unwrap();

    let expected: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| *v != "trap")
        .collect();
    assert_eq!(
        host.values("out", 0),
        expected,
        "every other record, once, in order"
    );
    assert_eq!(host.committed("p", "in", 0), 10);
    let dlq = host.records("p.dlq", 0);
    assert_eq!(dlq.len(), 1);
    assert_eq!(dlq[0].value, &b"trap"[..]);
    let error = dlq[0]
        .headers
        .iter()
        .find(|(n, _)| n == dlq_headers::ERROR)
        .unwrap();
    assert!(
        String::from_utf8_lossy(&error.1).contains("scripted trap"),
        "the trap's stderr reaches the header"
    );
    assert!(processor.stats().traps() >= 4, "retried before isolating");
}
