//! `weir diff`: the currency guests over generated orders, embedded and
//! through a real `weir serve`. The expected differences are computed here
//! from the orders themselves (v1 divides by the rate, v2 multiplies; they
//! agree only on USD orders, whose rate is 1), and the diff must leave the
//! log as it was.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use weir::broker::Broker;
use weir_tests::command;
use weir_tests::guests;
use weir_tests::server::spawn_serve;
use weir_tests::weir_bin;

/// `weir --data-dir DIR args…`; its stdout, after asserting it succeeded.
fn weir(dir: &Path, args: &[&str]) -> String {
    command::stdout_of(&command::weir(dir, args).output().unwrap())
}

/// The USD cents of an order as (v1, v2) compute them, by (partition,
/// offset), for the orders v2 changes: every non-USD one.
fn expected_changes(dir: &Path) -> BTreeMap<(u64, u64), (u64, i64, i64)> {
    let broker = Broker::open(dir).unwrap();
    let mut expected = BTreeMap::new();
    for partition in 0..broker.log().partition_count("orders").unwrap() {
        let end = broker.log().high_watermark("orders", partition).unwrap();
        let records = broker
            .log()
            .read("orders", partition, 0, end as usize, u64::MAX)
            .unwrap();
        assert_eq!(records.len() as u64, end);
        for r in records {
            let order: Value = serde_json::from_slice(&r.value).unwrap();
            let amount = order["amount_cents"].as_i64().unwrap();
            let rate = match order["currency"].as_str().unwrap() {
                "USD" => continue,
                "EUR" => 1080,
                "GBP" => 1270,
                "JPY" => 7,
                other => panic!("unexpected currency {other}"),
            };
            let id = order["id"].as_u64().unwrap();
            let old = amount * 1000 / rate;
            let new = amount * rate / 1000;
            expected.insert((partition as u64, r.offset), (id, old, new));
        }
    }
    expected
}

fn usd_cents(value: &Value) -> i64 {
    let emitted: Value = serde_json::from_str(value.as_str().unwrap()).unwrap();
    emitted["usd_cents"].as_i64().unwrap()
}

/// Checks `report` lists exactly `expected` (each a changed value of one
/// emit to `orders-usd` keyed by order id), and nothing else.
fn assert_reports(report: &Value, expected: &BTreeMap<(u64, u64), (u64, i64, i64)>) {
    let records = report["records"].as_array().unwrap();
    let mut found = BTreeMap::new();
    for r in records {
        let at = (
            r["partition"].as_u64().unwrap(),
            r["offset"].as_u64().unwrap(),
        );
        let emits = r["emits"].as_array().unwrap();
        assert_eq!(emits.len(), 1, "{r}");
        let e = &emits[0];
        assert_eq!(
            (e["change"].as_str(), e["topic"].as_str()),
            (Some("changed"), Some("orders-usd")),
            "{r}"
        );
        assert!(r.get("failure").is_none(), "{r}");
        let id: u64 = e["key"].as_str().unwrap().parse().unwrap();
        found.insert(at, (id, usd_cents(&e["old"]), usd_cents(&e["new"])));
    }
    assert_eq!(&found, expected);
    let s = &report["summary"];
    let n = expected.len() as u64;
    assert_eq!(s["records_differing"], n);
    assert_eq!(s["emits_changed"], n);
    assert_eq!(s["keys_changed"], n, "order ids are unique keys");
    for zero in [
        "emits_added",
        "emits_removed",
        "new_failures",
        "fixed_failures",
        "changed_failures",
    ] {
        assert_eq!(s[zero], 0, "{zero}: {s}");
    }
    assert_eq!(report["state"], "empty");
}

#[test]
fn diff_reports_exactly_the_orders_v2_converts_differently_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    weir(d, &["topic", "create", "orders", "--partitions", "2"]);
    weir(d, &["topic", "create", "orders-usd"]);
    weir(d, &["produce", "--topic", "orders", "--generate", "400"]);
    let expected = expected_changes(d);
    assert!(
        (100..400).contains(&expected.len()),
        "both kinds of order are there: {}",
        expected.len()
    );

    let json = weir(
        d,
        &[
            "diff",
            guests::CURRENCY_V1,
            guests::CURRENCY_V2,
            "--topic",
            "orders",
            "--format",
            "json",
        ],
    );
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["summary"]["records"], 400);
    assert_eq!(report["topic"], "orders");
    assert!(report["old_version"].as_str().unwrap().starts_with("old@"));
    assert_reports(&report, &expected);

    // The text form: one line per change and the summary.
    let text = weir(
        d,
        &[
            "diff",
            guests::CURRENCY_V1,
            guests::CURRENCY_V2,
            "--topic",
            "orders",
            "--limit",
            "5",
        ],
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("~ ")).count(),
        5,
        "{text}"
    );
    let summary = text.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!(
            "400 records, {} differ: {} emits changed, 0 added",
            expected.len(),
            expected.len()
        )),
        "{summary}"
    );

    // The same version against itself differs nowhere.
    let same = weir(
        d,
        &[
            "--json",
            "diff",
            guests::CURRENCY_V1,
            guests::CURRENCY_V1,
            "--topic",
            "orders",
        ],
    );
    let same: Value = serde_json::from_str(&same).unwrap();
    assert_eq!(same["summary"]["records"], 400);
    assert_eq!(same["summary"]["records_differing"], 0);
    assert_eq!(same["records"], Value::Array(vec![]));
    assert_eq!(same["keys"], Value::Array(vec![]));

    // Nothing reached the log: no emit, no group.
    let broker = Broker::open(d).unwrap();
    assert_eq!(broker.log().high_watermark("orders-usd", 0).unwrap(), 0);
    assert!(broker.list_groups().is_empty());
}

#[test]
fn diff_through_a_server_compares_a_range_of_one_partition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut child, url) = spawn_serve(d, &["--listen".as_ref(), "127.0.0.1:0".as_ref()]);
    let remote = |args: &[&str]| {
        let mut all = vec!["--server", url.as_str()];
        all.extend_from_slice(args);
        weir(d, &all)
    };
    remote(&["topic", "create", "orders", "--partitions", "2"]);
    remote(&["topic", "create", "orders-usd"]);
    remote(&["produce", "--topic", "orders", "--generate", "300"]);
    let json = remote(&[
        "diff",
        guests::CURRENCY_V1,
        guests::CURRENCY_V2,
        "--topic",
        "orders",
        "--partition",
        "1",
        "--from",
        "10",
        "--to",
        "60",
        "--format",
        "json",
    ]);
    let report: Value = serde_json::from_str(&json).unwrap();
    // A time back from now reaches the first record too.
    let since = remote(&[
        "diff",
        guests::CURRENCY_V1,
        guests::CURRENCY_V2,
        "--topic",
        "orders",
        "--partition",
        "1",
        "--from",
        "-1h",
        "--format",
        "json",
    ]);
    let since: Value = serde_json::from_str(&since).unwrap();
    let usd = remote(&["--json", "topic", "describe", "orders-usd"]);
    child.kill().ok();
    child.wait().ok();

    assert_eq!(
        report["ranges"],
        serde_json::json!([{"partition": 1, "from": 10, "to": 60}])
    );
    assert_eq!(report["summary"]["records"], 50);
    let expected: BTreeMap<_, _> = expected_changes(d)
        .into_iter()
        .filter(|((p, o), _)| *p == 1 && (10..60).contains(o))
        .collect();
    assert_reports(&report, &expected);
    assert_eq!(since["ranges"][0]["from"], 0);
    let usd: Value = serde_json::from_str(&usd).unwrap();
    assert_eq!(usd["high_watermarks"][0], 0, "the server's log got no emit");
}

#[test]
fn diff_tells_new_and_changed_failures_and_emits_that_moved() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    weir(d, &["topic", "create", "mixed"]);
    weir(d, &["topic", "create", "orders-usd"]);
    let order = r#"{"id":7,"customer":"c-1","amount_cents":1000,"currency":"EUR","country":"DE"}"#;
    let lines = format!("c-1|{order}\nk|fail:dead-letter\nk|hello\nk|trap\n");
    let mut produce = Command::new(weir_bin())
        .arg("--data-dir")
        .arg(d)
        .args(["produce", "--topic", "mixed", "--key-separator", "|"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    produce
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(produce.wait().unwrap().success());

    // scripted emits every record as it is (or fails as it says); currency-v2
    // converts orders and dead-letters anything else. Both read `output`.
    let json = weir(
        d,
        &[
            "diff",
            guests::SCRIPTED,
            guests::CURRENCY_V2,
            "--topic",
            "mixed",
            "--config",
            "output=orders-usd",
            "--format",
            "json",
        ],
    );
    let report: Value = serde_json::from_str(&json).unwrap();
    let by_offset: BTreeMap<u64, &Value> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["offset"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(by_offset.len(), 4, "{report:#}");

    // The order: emitted under another key, so one removed and one added.
    let emits = by_offset[&0]["emits"].as_array().unwrap();
    let changes: Vec<(&str, &str)> = emits
        .iter()
        .map(|e| (e["change"].as_str().unwrap(), e["key"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("removed", "c-1"), ("added", "7")]);
    assert_eq!(emits[0]["old"], order);
    assert_eq!(usd_cents(&emits[1]["new"]), 1080);

    // Both dead-letter it, with other messages.
    let f = &by_offset[&1]["failure"];
    assert!(
        f["old"].as_str().unwrap().starts_with("dead-letter: "),
        "{f}"
    );
    assert!(
        f["new"]
            .as_str()
            .unwrap()
            .starts_with("dead-letter: malformed order"),
        "{f}"
    );
    // A new failure, and the emit it loses.
    let f = &by_offset[&2]["failure"];
    assert_eq!(f["old"], Value::Null);
    assert!(
        f["new"]
            .as_str()
            .unwrap()
            .starts_with("dead-letter: malformed order"),
        "{f}"
    );
    assert_eq!(by_offset[&2]["emits"][0]["change"], "removed");
    // A trap in the old version that the new one dead-letters instead.
    let f = &by_offset[&3]["failure"];
    assert!(f["old"].as_str().unwrap().starts_with("trap: "), "{f}");

    let s = &report["summary"];
    assert_eq!(
        (
            s["new_failures"].as_u64(),
            s["changed_failures"].as_u64(),
            s["fixed_failures"].as_u64()
        ),
        (Some(1), Some(2), Some(0))
    );
    assert_eq!(
        (
            s["emits_removed"].as_u64(),
            s["emits_added"].as_u64(),
            s["emits_changed"].as_u64()
        ),
        (Some(2), Some(1), Some(0))
    );
}
