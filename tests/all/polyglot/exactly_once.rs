//! Exactly-once running totals and dedupe with state, in every language.

use super::*;

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
        nulls: Default::default(),
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
