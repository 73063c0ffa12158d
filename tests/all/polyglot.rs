//! Guests in JavaScript and Python, run by the real host beside the Rust ones:
//! the same `fraud-filter` in three languages emits identical alerts, the same
//! stateful `running-totals` emits identical totals across a restart, the
//! helpers' `Dedupe` drops and forgets ids as the Rust SDK's does, with the
//! same state keys, each language reports a malformed record through the WIT
//! failure result, and a guest that throws or raises is a trap the host
//! survives.
//!
//! The components are built by `weir_tests::polyglot` (which installs the
//! toolchains from `guests/js/package-lock.json` and
//! `guests/python/requirements.txt`). Without `node`/`python3` these tests
//! skip with a loud message, except in CI. All hosts share one
//! compiled-artifact cache, so each component is compiled once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use weir::consumer::CommitMode;
use weir::demo::produce_orders;
use weir::error::chain as error_chain;
use weir::log::{Record, StoredRecord};
use weir::processor::{Processor, ProcessorConfig, ProcessorError, dlq_headers};
use weir::runtime::Source;
use weir_tests::polyglot::{self, Language};
use weir_tests::{Host, fast_retries, guests};

mod exactly_once;

/// The guest built from `rust` and its JavaScript and Python namesakes, each
/// as (language, component), for every language whose toolchain is present.
fn in_every_language(
    rust: &str,
    js: Option<PathBuf>,
    python: Option<PathBuf>,
) -> Vec<(&'static str, PathBuf)> {
    let mut all = vec![("rust", PathBuf::from(rust))];
    all.extend(js.map(|p| ("js", p)));
    all.extend(python.map(|p| ("python", p)));
    all
}

/// The `fraud-filter` guest of every language whose toolchain is present.
fn fraud_filters() -> Vec<(&'static str, PathBuf)> {
    in_every_language(
        guests::FRAUD_FILTER,
        polyglot::js("fraud-filter"),
        polyglot::python("fraud-filter"),
    )
}

type Keyed = (Option<Vec<u8>>, Vec<u8>, Vec<(String, Vec<u8>)>);

/// Key, value and the guest's own headers: the `weir.version` header the host
/// adds differs by language by design (each component has its own hash).
fn keyed(records: Vec<StoredRecord>) -> Vec<Keyed> {
    records
        .into_iter()
        .map(|r| {
            (
                r.key.map(Into::into),
                r.value.into(),
                guest_headers(r.headers),
            )
        })
        .collect()
}

/// The headers the guest emitted, without those the host adds to every emit
/// (its version and source).
fn guest_headers(headers: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let host_added = [
        dlq_headers::VERSION,
        dlq_headers::SOURCE_TOPIC,
        dlq_headers::SOURCE_PARTITION,
        dlq_headers::SOURCE_OFFSET,
        dlq_headers::SOURCE_SEQ,
    ];
    headers
        .into_iter()
        .filter(|(name, _)| !host_added.contains(&name.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fraud_filter_alerts_are_identical_in_rust_javascript_and_python() {
    let host = polyglot::host();
    host.topic("orders", 3);
    produce_orders(&host.log, "orders", 3000).unwrap();

    let mut outputs = Vec::new();
    for (language, path) in fraud_filters() {
        let name = format!("fraud-{language}");
        let topic = format!("alerts-{language}");
        host.topic(&topic, 3);
        let guest = polyglot::load(&host, &path, &name, &[("output", &topic)]).unwrap();
        let processor = host.run(&name, &["orders"], guest, 500).await.unwrap();
        assert_eq!(processor.stats().records(), 3000, "{language}");
        assert_eq!(processor.stats().traps(), 0, "{language}");
        let partitions: Vec<Vec<Keyed>> = (0..3).map(|p| keyed(host.records(&topic, p))).collect();
        outputs.push((language, partitions));
    }

    let (_, rust) = &outputs[0];
    let alerts: usize = rust.iter().map(Vec::len).sum();
    assert!(alerts > 50, "the input has suspicious orders: {alerts}");
    for (p, records) in rust.iter().enumerate() {
        for (key, value, _) in records {
            let alert: Value = serde_json::from_slice(value).unwrap();
            assert_eq!(
                key.as_deref(),
                alert["customer"].as_str().map(str::as_bytes),
                "partition {p}: alerts are keyed by customer"
            );
        }
    }
    for (language, partitions) in &outputs[1..] {
        for (p, (theirs, ours)) in partitions.iter().zip(rust).enumerate() {
            assert!(
                theirs == ours,
                "{language} alerts on partition {p} differ from Rust's: {} vs {} records, first {:?} vs {:?}",
                theirs.len(),
                ours.len(),
                theirs
                    .first()
                    .map(|r| String::from_utf8_lossy(&r.1).into_owned()),
                ours.first()
                    .map(|r| String::from_utf8_lossy(&r.1).into_owned()),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_language_dead_letters_a_malformed_order_without_trapping() {
    let big =
        r#"{"id":1,"customer":"c-\"1\"","amount_cents":900000,"currency":"EUR","country":"DE"}"#;
    let wrong_type =
        r#"{"id":2,"customer":"c-2","amount_cents":"lots","currency":"EUR","country":"DE"}"#;
    let expected_alert = r#"{"order_id":1,"customer":"c-\"1\"","amount_cents":900000,"currency":"EUR","reason":"large-amount"}"#;
    for (language, path) in fraud_filters() {
        let host = polyglot::host();
        host.topic("orders", 1);
        host.topic("alerts", 1);
        host.append_values("orders", 0, &["{not json", big, wrong_type]);
        let guest = polyglot::load(&host, &path, "fraud", &[]).unwrap();

        let processor = host.run("fraud", &["orders"], guest, 500).await.unwrap();

        let stats = processor.stats();
        assert_eq!(stats.traps(), 0, "{language}: a failure result, not a trap");
        assert_eq!(stats.dead_lettered(), 2, "{language}");
        assert_eq!(
            host.values("fraud.dlq", 0),
            vec!["{not json", wrong_type],
            "{language}"
        );
        let dlq = host.records("fraud.dlq", 0);
        let error = dlq[0]
            .headers
            .iter()
            .find(|(n, _)| n == dlq_headers::ERROR)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        assert!(
            error.contains("malformed order"),
            "{language}: the guest's message reaches the dead-letter headers: {error:?}"
        );
        assert_eq!(
            host.values("alerts", 0),
            vec![expected_alert],
            "{language}: the default output topic is `alerts`"
        );
        assert_eq!(host.committed("fraud", "orders", 0), 3, "{language}");
    }
}

/// Runs `careless` (which throws or raises on malformed JSON) of `language`,
/// and checks that the host reports the exception and commits nothing, then
/// that the same host still runs the guest over good input.
async fn a_throwing_guest_is_a_trap_the_host_survives(language: Language, exception: &str) {
    let Some(path) = polyglot::built(language, "careless") else {
        return;
    };
    let host = polyglot::host();
    host.topic("orders", 1);
    host.topic("ids", 1);
    host.append_values("orders", 0, &[r#"{"id":7}"#, "{not json"]);
    let guest = polyglot::load(&host, &path, "careless", &[]).unwrap();

    let err = host
        .run("careless", &["orders"], guest, 100)
        .await
        .err()
        .expect("an uncaught exception traps until retries run out");

    assert!(
        matches!(err, ProcessorError::Exhausted { offset: 0, .. }),
        "{err:?}"
    );
    let chain = error_chain(&err);
    assert!(chain.contains("trapped"), "{chain}");
    assert!(
        chain.contains(exception),
        "the guest's exception reaches the error: {chain}"
    );
    assert!(
        host.values("ids", 0).is_empty(),
        "a trapped batch emits nothing"
    );
    assert_eq!(host.committed("careless", "orders", 0), 0);

    // The host goes on: the same component processes good input.
    host.topic("good", 1);
    host.append_values("good", 0, &[r#"{"id":8}"#, r#"{"id":9}"#]);
    let guest = polyglot::load(&host, &path, "careful", &[]).unwrap();
    let processor = host.run("careful", &["good"], guest, 100).await.unwrap();
    assert_eq!(processor.stats().traps(), 0);
    assert_eq!(host.values("ids", 0), vec!["8", "9"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_guest_that_throws_is_a_trap_the_host_survives() {
    a_throwing_guest_is_a_trap_the_host_survives(Language::JavaScript, "SyntaxError").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_guest_that_raises_is_a_trap_the_host_survives() {
    a_throwing_guest_is_a_trap_the_host_survives(Language::Python, "JSONDecodeError").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_order_stats_summarizes_each_batch_with_the_standard_library() {
    let Some(path) = polyglot::python("order-stats") else {
        return;
    };
    let host = polyglot::host();
    host.topic("orders", 1);
    host.topic("order-stats", 1);
    produce_orders(&host.log, "orders", 1000).unwrap();
    host.append_values("orders", 0, &["{malformed"]);
    let guest = polyglot::load(&host, &path, "stats", &[]).unwrap();

    let processor = host.run("stats", &["orders"], guest, 500).await.unwrap();

    assert_eq!(processor.stats().records(), 1001);
    let inputs = host.records("orders", 0);
    let summaries = host.records("order-stats", 0);
    assert_eq!(summaries.len(), 3, "one summary per batch: 500, 500, 1");
    for (summary, batch) in summaries.iter().zip(inputs.chunks(500)).take(2) {
        assert_eq!(summary.key.as_deref(), Some(&b"orders/0"[..]));
        let s: Value = serde_json::from_slice(&summary.value).unwrap();
        let mut amounts: Vec<i64> = batch
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(&r.value).ok())
            .map(|o| o["amount_cents"].as_i64().unwrap())
            .collect();
        amounts.sort();
        let n = amounts.len() as f64;
        let mean = amounts.iter().sum::<i64>() as f64 / n;
        let median = if amounts.len() % 2 == 1 {
            amounts[amounts.len() / 2] as f64
        } else {
            (amounts[amounts.len() / 2 - 1] + amounts[amounts.len() / 2]) as f64 / 2.0
        };
        let stdev = (amounts
            .iter()
            .map(|a| (*a as f64 - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        assert_eq!(s["first_offset"], batch[0].offset);
        assert_eq!(s["last_offset"], batch[batch.len() - 1].offset);
        assert_eq!(s["orders"], amounts.len());
        assert_eq!(s["max_cents"], *amounts.last().unwrap());
        for (field, want) in [
            ("mean_cents", mean),
            ("median_cents", median),
            ("stdev_cents", stdev),
        ] {
            let got = s[field].as_f64().unwrap();
            assert!((got - want).abs() <= 0.05, "{field}: {got} vs {want}");
        }
        let counted: u64 = s["currencies"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(counted, amounts.len() as u64);
    }
    let last: Value = serde_json::from_slice(&summaries[2].value).unwrap();
    assert_eq!(last["first_offset"], 1000);
    assert_eq!(last["orders"], 0);
    assert_eq!(
        last["skipped"], 1,
        "the malformed order is counted, not fatal"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_redact_masks_personal_fields_and_keeps_keys_and_headers() {
    let Some(path) = polyglot::js("redact") else {
        return;
    };
    let host = polyglot::host();
    host.topic("in", 1);
    host.topic("redacted", 1);
    let mut with_header = weir::log::Record::keyed(
        "k-1",
        r#"{"id":1,"customer":"c-1","note":"mail ann@example.com","nested":{"customer":"c-2"}}"#,
    );
    with_header.headers.push(("trace".into(), b"t-1".to_vec()));
    host.log
        .append(
            "in",
            0,
            &[
                with_header,
                weir::log::Record::value("not json"),
                weir::log::Record::value(r#"{"id":2,"amount":5}"#),
            ],
        )
        .unwrap();
    let guest = polyglot::load(&host, &path, "redact", &[]).unwrap();

    let processor = host.run("redact", &["in"], guest, 100).await.unwrap();

    assert_eq!(processor.stats().skipped(), 1, "the value that is not JSON");
    let out = host.records("redacted", 0);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].key.as_deref(), Some(&b"k-1"[..]));
    assert_eq!(
        String::from_utf8_lossy(&out[0].value),
        r#"{"id":1,"customer":"***","note":"mail ***@***","nested":{"customer":"***"}}"#
    );
    assert_eq!(
        guest_headers(out[0].headers.clone()),
        vec![
            ("trace".to_string(), b"t-1".to_vec()),
            ("redacted-fields".to_string(), b"customer,note".to_vec()),
        ]
    );
    assert_eq!(out[1].key, None);
    assert_eq!(
        String::from_utf8_lossy(&out[1].value),
        r#"{"id":2,"amount":5}"#
    );
}

#[test]
fn each_component_is_compiled_once_and_then_loaded_from_the_shared_cache() {
    let Some(path) = polyglot::js("fraud-filter") else {
        return;
    };
    let first = polyglot::host();
    polyglot::load(&first, &path, "fraud", &[]).unwrap();
    let second = polyglot::host();
    let guest = polyglot::load(&second, &path, "fraud", &[]).unwrap();
    assert_eq!(
        guest.source(),
        Source::Cached,
        "a second host finds the artifact the first compiled"
    );
}

#[test]
fn every_javascript_and_python_guest_is_used_by_a_test() {
    let source = [
        include_str!("polyglot.rs"),
        include_str!("polyglot/exactly_once.rs"),
    ]
    .concat();
    for language in [Language::JavaScript, Language::Python] {
        let names = language.guest_names();
        assert!(!names.is_empty(), "{language:?} has guests");
        for name in names {
            assert!(
                source.contains(&format!("{name:?})")),
                "{language:?} guest {name} is not used by any test in {}",
                file!()
            );
        }
    }
}
