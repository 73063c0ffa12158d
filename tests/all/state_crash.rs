//! Kill -9 loops over a stateful processor: `weir serve` runs `running-totals`
//! while a producer writes orders over HTTP the whole time, and the server is
//! killed with SIGKILL at random instants, then restarted. At the end, each
//! customer's emitted totals are checked against a model computed from the
//! input topic itself. A small count of rounds by default; set
//! `WEIR_STATE_KILL_ROUNDS` (1,000 for the long run) for more.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir::workload::Orders;
use weir_tests::command;
use weir_tests::server::spawn_serve;
use weir_tests::{Host, guests};

type Totals = BTreeMap<String, Vec<(u64, i64)>>;

fn rounds() -> usize {
    std::env::var("WEIR_STATE_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn config(dir: &Path, mode: &str) -> std::path::PathBuf {
    let path = dir.join("weir.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\n[[topics]]\nname = \"orders\"\npartitions = 3\n\n[[topics]]\nname = \"totals\"\npartitions = 3\n\n[[processors]]\nname = \"totals\"\nwasm = {:?}\ntopics = [\"orders\"]\nconfig = {{ output = \"totals\" }}\nmax_records = 40\nmax_wait_ms = 20\ncommit = \"{mode}\"\n",
        guests::RUNNING_TOTALS
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Posts orders in small requests until `stop`; counts the acknowledged.
fn produce(url: String, next_id: Arc<AtomicU64>, acked: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        while !stop.load(Ordering::Relaxed) {
            let first = next_id.fetch_add(20, Ordering::SeqCst);
            let records: Vec<Value> = Orders::new(first, first)
                .take(20)
                .map(|r| {
                    json!({
                        "key": String::from_utf8(r.key.unwrap()).unwrap(),
                        "value": String::from_utf8(r.value).unwrap(),
                    })
                })
                .collect();
            let sent = client
                .post(format!("{url}/topics/orders/records"))
                .json(&json!({ "records": records }))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    acked.fetch_add(20, Ordering::SeqCst);
                }
                _ => return,
            }
        }
    });
}

fn lag(url: &str) -> Option<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status: Value = runtime.block_on(async {
        let response = reqwest::get(format!("{url}/processors/totals"))
            .await
            .ok()?;
        response.json().await.ok()
    })?;
    status["lag"].as_u64()
}

fn sigterm(mut child: Child) {
    let (status, _) = command::sigterm(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit status {status}");
}

/// Runs the loop in `mode`; returns (the model, what was emitted, acked).
fn crash_loop(mode: &str) -> (Totals, Totals, u64) {
    let host = Host::new();
    let Host { dir, .. } = host;
    let config_dir = tempfile::tempdir().unwrap();
    let config = config(config_dir.path(), mode);
    let (next_id, acked) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    for round in 0..rounds() {
        let (mut child, url) = spawn_serve(dir.path(), &["--config".as_ref(), config.as_os_str()]);
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (url, next_id, acked, stop) =
                (url.clone(), next_id.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || produce(url, next_id, acked, stop))
        };
        // A different instant each round, inside processing and producing.
        std::thread::sleep(Duration::from_millis(200 + (round as u64 * 137) % 600));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        producer.join().unwrap();
    }
    let (child, url) = spawn_serve(dir.path(), &["--config".as_ref(), config.as_os_str()]);
    let started = Instant::now();
    while lag(&url) != Some(0) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never caught up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sigterm(child);

    let host = Host::new_in(dir);
    let mut model = Totals::new();
    let mut running: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut produced = 0;
    for p in 0..3 {
        for r in host.records("orders", p) {
            produced += 1;
            let order: Value = serde_json::from_slice(&r.value).unwrap();
            let customer = order["customer"].as_str().unwrap().to_string();
            let t = running.entry(customer.clone()).or_default();
            t.0 += 1;
            t.1 += order["amount_cents"].as_i64().unwrap();
            model.entry(customer).or_default().push(*t);
        }
    }
    assert!(
        produced >= acked.load(Ordering::SeqCst),
        "{mode}: every acknowledged order is in the log ({produced} < {})",
        acked.load(Ordering::SeqCst)
    );
    let mut emitted = Totals::new();
    for p in 0..3 {
        for r in host.records("totals", p) {
            let v: Value = serde_json::from_slice(&r.value).unwrap();
            emitted
                .entry(v["customer"].as_str().unwrap().to_string())
                .or_default()
                .push((
                    v["orders"].as_u64().unwrap(),
                    v["amount_cents"].as_i64().unwrap(),
                ));
        }
    }
    eprintln!("{mode}: {produced} orders over {} kills", rounds());
    (model, emitted, produced)
}

#[test]
fn exactly_once_survives_kill_9_with_every_total_exactly_once() {
    let (model, emitted, _) = crash_loop("exactly-once");
    assert_eq!(
        emitted, model,
        "each customer's totals run 1, 2, ... N with no gap and no repeat"
    );
}

#[test]
fn at_least_once_survives_kill_9_with_exact_state_and_only_in_flight_repeats() {
    let (model, emitted, _) = crash_loop("at-least-once");
    assert_eq!(
        emitted.keys().collect::<Vec<_>>(),
        model.keys().collect::<Vec<_>>()
    );
    for (customer, seq) in &emitted {
        let expected = &model[customer];
        // Repeats are stretches of a redelivered batch: dropping every value
        // seen before leaves the model, and the last total is the model's.
        let mut seen = std::collections::BTreeSet::new();
        let firsts: Vec<(u64, i64)> = seq.iter().filter(|v| seen.insert(**v)).copied().collect();
        assert_eq!(&firsts, expected, "customer {customer}");
        assert_eq!(
            seq.last(),
            expected.last(),
            "customer {customer}: state counted once"
        );
    }
}

#[test]
fn at_most_once_survives_kill_9_and_never_repeats() {
    let (model, emitted, _) = crash_loop("at-most-once");
    for (customer, seq) in &emitted {
        assert!(
            seq.windows(2).all(|w| w[0].0 < w[1].0),
            "customer {customer}: nothing repeats: {seq:?}"
        );
        assert!(seq.len() <= model[customer].len(), "customer {customer}");
    }
}
