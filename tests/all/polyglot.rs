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

/// Runs the component at `path` as processor `name` over `orders` until it
/// has caught up, exactly-once, in batches of `max_records`.
async fn run_exactly_once(
    host: &Host,
    path: &Path,
    name: &str,
    config: &[(&str, &str)],
    max_records: usize,
) -> Processor {
    let guest = polyglot::load(host, path, name, config).unwrap();
    let mut processor = ProcessorConfig::new(name, &["orders"]);
    processor.poll.max_records = max_records;
    processor.retry = fast_retries();
    processor.commit = CommitMode::ExactlyOnce;
    Processor::new(processor, host.broker.as_ref(), Arc::new(guest))
        .unwrap()
        .run_until_caught_up()
        .await
        .unwrap()
}

/// Key and value of every record of one partition.
fn key_values(host: &Host, topic: &str, partition: u32) -> Vec<(Option<Vec<u8>>, String)> {
    host.records(topic, partition)
        .into_iter()
        .map(|r| {
            (
                r.key.map(Into::into),
                String::from_utf8_lossy(&r.value).into_owned(),
            )
        })
        .collect()
}

/// What `running-totals` must emit for `orders`, per partition: for each
/// well-formed order in turn, its customer's count and amount so far, keyed
/// by customer. Computed here, independently of every guest's code.
fn expected_totals(host: &Host, partitions: u32) -> Vec<Vec<(Option<Vec<u8>>, String)>> {
    let mut totals: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut out = Vec::new();
    for p in 0..partitions {
        let mut emitted = Vec::new();
        for r in host.records("orders", p) {
            let Ok(order) = serde_json::from_slice::<Value>(&r.value) else {
                continue;
            };
            let customer = order["customer"].as_str().unwrap().to_string();
            let t = totals.entry(customer.clone()).or_default();
            t.0 += 1;
            t.1 += order["amount_cents"].as_i64().unwrap();
            let value = format!(
                r#"{{"customer":{},"orders":{},"amount_cents":{}}}"#,
                Value::String(customer.clone()),
                t.0,
                t.1
            );
            emitted.push((Some(customer.into_bytes()), value));
        }
        out.push(emitted);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn running_totals_are_identical_in_rust_javascript_and_python_across_a_restart() {
    let languages = in_every_language(
        guests::RUNNING_TOTALS,
        polyglot::js("running-totals"),
        polyglot::python("running-totals"),
    );
    let mut outputs = Vec::new();
    for (language, path) in &languages {
        // A host per language, so each writes to the default output topic.
        let host = polyglot::host();
        host.topic("orders", 3);
        host.topic("customer-totals", 3);
        produce_orders(&host.log, "orders", 700).unwrap();
        host.log
            .append("orders", 0, &[Record::keyed("c-001", "not json")])
            .unwrap();
        run_exactly_once(&host, path, "totals", &[], 64).await;

        let host = polyglot::reopen(host);
        produce_orders(&host.log, "orders", 500).unwrap();
        let processor = run_exactly_once(&host, path, "totals", &[], 64).await;

        assert_eq!(processor.stats().traps(), 0, "{language}");
        assert_eq!(
            host.values("totals.dlq", 0),
            vec!["not json"],
            "{language}: the malformed order alone is dead-lettered"
        );
        let expected = expected_totals(&host, 3);
        assert_eq!(expected.iter().map(Vec::len).sum::<usize>(), 1200);
        let got: Vec<_> = (0..3)
            .map(|p| key_values(&host, "customer-totals", p))
            .collect();
        for (p, (got, want)) in got.iter().zip(&expected).enumerate() {
            assert!(
                got == want,
                "{language}, partition {p}: {} totals for {} orders, first difference {:?}",
                got.len(),
                want.len(),
                got.iter().zip(want).find(|(g, w)| g != w),
            );
        }
        outputs.push((language, got));
    }
    let (_, rust) = &outputs[0];
    for (language, theirs) in &outputs[1..] {
        assert!(theirs == rust, "{language} totals differ from Rust's");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dedupe_drops_repeated_ids_within_the_ttl_in_every_language_with_rusts_state_keys() {
    let languages = in_every_language(
        guests::DEDUPE_ORDERS,
        polyglot::js("dedupe-orders"),
        polyglot::python("dedupe-orders"),
    );
    let order = |id: u64, at: i64| Record {
        key: Some(b"c-1".to_vec()),
        value: format!(
            r#"{{"id":{id},"customer":"c-1","amount_cents":5,"currency":"USD","country":"US"}}"#
        )
        .into_bytes(),
        headers: Vec::new(),
        timestamp: Some(at),
    };
    let t0: i64 = 1_700_000_000_000;
    let input = [
        order(1, t0),
        order(2, t0 + 1),
        order(1, t0 + 2), // a producer's retry: dropped
        order(3, t0 + 3),
        order(2, t0 + 500),   // still within the TTL: dropped
        order(1, t0 + 2_000), // past the TTL: forwarded again
    ];
    for (language, path) in &languages {
        let host = polyglot::host();
        host.topic("orders", 1);
        host.topic("unique", 1);
        host.log.append("orders", 0, &input).unwrap();

        let config = [("output", "unique"), ("ttl_ms", "1000")];
        run_exactly_once(&host, path, "dedupe", &config, 2).await;

        let ids: Vec<u64> = host
            .records("unique", 0)
            .iter()
            .map(|r| {
                serde_json::from_slice::<Value>(&r.value).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, [1, 2, 3, 1], "{language}");

        // The keys the Rust SDK documents: after the last batch, ids 2 and 3
        // have expired, and id 1 is remembered from its second sighting.
        let state = |key: &[u8]| {
            host.broker
                .state_get("dedupe", "orders", Some(0), key)
                .unwrap()
                .map(|(_, v)| v)
        };
        let last = t0 + 2_000;
        assert_eq!(
            state(b"dedupe/orders/id/1"),
            Some(last.to_be_bytes().to_vec()),
            "{language}: the first-seen time, 8 big-endian bytes"
        );
        let flipped = (last as u64 ^ (1 << 63)).to_be_bytes();
        let index = [&b"dedupe/orders/t/"[..], &flipped, b"1"].concat();
        assert_eq!(
            state(&index),
            Some(Vec::new()),
            "{language}: the expiry index"
        );
        for expired in [&b"dedupe/orders/id/2"[..], b"dedupe/orders/id/3"] {
            assert_eq!(
                state(expired),
                None,
                "{language}: expired ids are forgotten"
            );
        }
        let old = [
            &b"dedupe/orders/t/"[..],
            &(t0 as u64 ^ (1 << 63)).to_be_bytes(),
            b"1",
        ]
        .concat();
        assert_eq!(
            state(&old),
            None,
            "{language}: a renewed id leaves no stale index entry"
        );
    }
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
    let source = include_str!("polyglot.rs");
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
