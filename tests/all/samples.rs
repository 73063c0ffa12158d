//! The sample guests over generated orders: each one's output is checked
//! against the same logic computed here, in the test.

use std::collections::BTreeMap;

use serde_json::Value;
use weir::demo::produce_orders;
use weir_tests::{Host, guests};

fn orders(host: &Host, topic: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for p in 0..host.log.partition_count(topic).unwrap() {
        for r in host.records(topic, p) {
            all.push(serde_json::from_slice(&r.value).unwrap());
        }
    }
    all
}

fn all_values(host: &Host, topic: &str) -> Vec<String> {
    let mut all = Vec::new();
    for p in 0..host.log.partition_count(topic).unwrap() {
        all.extend(host.values(topic, p));
    }
    all
}

fn home_currency(country: &str) -> &'static str {
    match country {
        "US" => "USD",
        "GB" => "GBP",
        "JP" => "JPY",
        _ => "EUR",
    }
}

#[tokio::test]
async fn fraud_filter_alerts_on_exactly_the_suspicious_orders() {
    let host = Host::new();
    host.topic("orders", 3);
    host.topic("alerts", 1);
    produce_orders(&host.log, "orders", 3000).unwrap();
    let guest = host.guest(guests::FRAUD_FILTER, "fraud", &[]).unwrap();

    host.run("fraud", &["orders"], guest, 500).await.unwrap();

    let mut expected = Vec::new();
    for o in orders(&host, "orders") {
        let cents = o["amount_cents"].as_i64().unwrap();
        let currency = o["currency"].as_str().unwrap();
        let reason = if cents >= 500_000 {
            "large-amount"
        } else if cents >= 200_000 && currency != home_currency(o["country"].as_str().unwrap()) {
            "foreign-currency"
        } else {
            continue;
        };
        expected.push(format!(
            r#"{{"order_id":{},"customer":"{}","amount_cents":{cents},"currency":"{currency}","reason":"{reason}"}}"#,
            o["id"],
            o["customer"].as_str().unwrap()
        ));
    }
    let mut got = all_values(&host, "alerts");
    expected.sort();
    got.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

#[tokio::test]
async fn fraud_filter_dead_letters_a_malformed_order_and_goes_on() {
    let host = Host::new();
    host.topic("orders", 1);
    host.topic("alerts", 1);
    let big = r#"{"id":1,"customer":"c-1","amount_cents":900000,"currency":"EUR","country":"DE"}"#;
    host.append_values("orders", 0, &["{not json", big]);
    let guest = host.guest(guests::FRAUD_FILTER, "fraud", &[]).unwrap();

    let processor = host.run("fraud", &["orders"], guest, 500).await.unwrap();

    assert_eq!(processor.stats().dead_lettered(), 1);
    assert_eq!(host.values("fraud.dlq", 0), vec!["{not json"]);
    assert_eq!(host.values("alerts", 0).len(), 1);
    assert_eq!(host.committed("fraud", "orders", 0), 2);
}

#[tokio::test]
async fn order_totals_sum_to_each_customers_total() {
    let host = Host::new();
    host.topic("orders", 3);
    host.topic("customer-totals", 3);
    produce_orders(&host.log, "orders", 2000).unwrap();
    host.append_values("orders", 0, &["{malformed"]);
    let guest = host.guest(guests::ORDER_TOTALS, "analytics", &[]).unwrap();

    let processor = host
        .run("analytics", &["orders"], guest, 250)
        .await
        .unwrap();

    assert_eq!(
        processor.stats().records(),
        2001,
        "the malformed order is skipped, not fatal"
    );
    let mut expected: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for o in orders_skipping_malformed(&host) {
        let e = expected
            .entry(o["customer"].as_str().unwrap().to_string())
            .or_default();
        e.0 += 1;
        e.1 += o["amount_cents"].as_i64().unwrap();
    }
    let mut got: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for v in all_values(&host, "customer-totals") {
        let t: Value = serde_json::from_str(&v).unwrap();
        let e = got
            .entry(t["customer"].as_str().unwrap().to_string())
            .or_default();
        e.0 += t["orders"].as_u64().unwrap();
        e.1 += t["amount_cents"].as_i64().unwrap();
    }
    assert_eq!(got, expected);
}

fn orders_skipping_malformed(host: &Host) -> Vec<Value> {
    let mut all = Vec::new();
    for p in 0..3 {
        for r in host.records("orders", p) {
            if let Ok(v) = serde_json::from_slice(&r.value) {
                all.push(v);
            }
        }
    }
    all
}

#[tokio::test]
async fn currency_v2_fixes_the_conversion_that_v1_gets_wrong() {
    let host = Host::new();
    host.topic("orders", 1);
    host.topic("usd-v1", 1);
    host.topic("usd-v2", 1);
    let order = r#"{"id":7,"customer":"c-7","amount_cents":10000,"currency":"EUR","country":"DE"}"#;
    host.append_values("orders", 0, &[order]);
    let v1 = host
        .guest(guests::CURRENCY_V1, "fx1", &[("output", "usd-v1")])
        .unwrap();
    let v2 = host
        .guest(guests::CURRENCY_V2, "fx2", &[("output", "usd-v2")])
        .unwrap();

    host.run("fx1", &["orders"], v1, 10).await.unwrap();
    host.run("fx2", &["orders"], v2, 10).await.unwrap();

    // 100.00 EUR at 1.08 USD/EUR is 108.00 USD.
    assert_eq!(
        host.values("usd-v2", 0),
        vec![r#"{"order_id":7,"customer":"c-7","usd_cents":10800}"#]
    );
    assert_eq!(
        host.values("usd-v1", 0),
        vec![r#"{"order_id":7,"customer":"c-7","usd_cents":9259}"#]
    );
}

#[tokio::test]
async fn passthrough_copies_every_record_unchanged() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.log
        .append(
            "in",
            0,
            &[
                weir::log::Record::keyed("k", "v"),
                weir::log::Record::value("w"),
            ],
        )
        .unwrap();
    let guest = host
        .guest(guests::PASSTHROUGH, "copy", &[("output", "out")])
        .unwrap();

    host.run("copy", &["in"], guest, 10).await.unwrap();

    let out = host.records("out", 0);
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].key.as_deref(), &out[0].value[..]),
        (Some(&b"k"[..]), &b"v"[..])
    );
    assert_eq!(
        (out[1].key.as_deref(), &out[1].value[..]),
        (None, &b"w"[..])
    );
}

#[tokio::test]
async fn passthrough_with_emit_batch_copies_every_record_unchanged_in_order() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let records: Vec<weir::log::Record> = (0..1200)
        .map(|i| match i % 3 {
            0 => weir::log::Record::keyed(format!("k{i}"), format!("v{i}")),
            1 => weir::log::Record::value(format!("v{i}")),
            _ => weir::log::Record::keyed("", ""),
        })
        .collect();
    host.log.append("in", 0, &records).unwrap();
    let guest = host
        .guest(
            guests::PASSTHROUGH,
            "copy",
            &[("output", "out"), ("emit", "batch")],
        )
        .unwrap();

    let processor = host.run("copy", &["in"], guest, 500).await.unwrap();

    assert_eq!(processor.stats().emitted(), 1200);
    assert_eq!(host.committed("copy", "in", 0), 1200);
    let out = host.records("out", 0);
    let got: Vec<_> = out
        .iter()
        .map(|r| (r.key.as_deref(), &r.value[..]))
        .collect();
    let want: Vec<_> = records
        .iter()
        .map(|r| (r.key.as_deref(), &r.value[..]))
        .collect();
    assert_eq!(got, want);
    // Each emit is stamped with where it came from, as with `emit`.
    assert_eq!(
        out[700]
            .headers
            .iter()
            .find(|(n, _)| n == "weir.source.offset")
            .map(|(_, v)| &v[..]),
        Some(&b"500"[..])
    );
}

#[tokio::test]
async fn an_emit_batch_to_an_unknown_topic_fails_the_batch_and_queues_nothing() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["a", "b"]);
    let guest = host
        .guest(
            guests::PASSTHROUGH,
            "copy",
            &[("output", "nowhere"), ("emit", "batch")],
        )
        .unwrap();

    let err = host
        .run("copy", &["in"], guest, 10)
        .await
        .err()
        .expect("fatal");

    let message = weir::error::chain(&err);
    assert!(message.contains("unknown topic \"nowhere\""), "{message}");
    assert_eq!(host.committed("copy", "in", 0), 0);
    assert!(host.log.partition_count("nowhere").is_err());
}

#[tokio::test]
async fn passthrough_refuses_an_unknown_emit_mode_at_init() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a"]);
    let guest = host
        .guest(
            guests::PASSTHROUGH,
            "copy",
            &[("output", "out"), ("emit", "sometimes")],
        )
        .unwrap();

    let err = host
        .run("copy", &["in"], guest, 10)
        .await
        .err()
        .expect("init");

    let message = weir::error::chain(&err);
    assert!(
        message.contains("emit must be each or batch, not \"sometimes\""),
        "{message}"
    );
    assert!(host.records("out", 0).is_empty());
}
