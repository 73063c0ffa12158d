//! A kill -9 loop over a stateless `weir serve`: `passthrough` copies `in` to
//! `out` while producers write over HTTP, and the server is killed with
//! SIGKILL at a different instant each round, then restarted. Checked:
//! every acknowledged record is in the log, every record of the log reached
//! the output (at least once), and no committed offset ever went backwards
//! from one round to the next. 3 rounds by default; set
//! `WEIR_SERVE_KILL_ROUNDS` (1,000 for the long run) for more.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use weir_tests::server::spawn_serve;
use weir_tests::{Host, guests};

const PARTITIONS: u32 = 3;

fn rounds() -> usize {
    std::env::var("WEIR_SERVE_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("weir.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\n\n[[topics]]\nname = \"in\"\npartitions = {PARTITIONS}\n\n[[topics]]\nname = \"out\"\npartitions = {PARTITIONS}\n\n[[processors]]\nname = \"copy\"\nwasm = {:?}\ntopics = [\"in\"]\nconfig = {{ output = \"out\" }}\nmax_records = 50\nmax_wait_ms = 20\n",
        guests::PASSTHROUGH
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Posts keyed records `r<id>` in requests of 25 until `stop` or a failed
/// request; records the ids of every acknowledged one.
fn produce(
    url: String,
    next_id: Arc<AtomicU64>,
    acked: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        while !stop.load(Ordering::Relaxed) {
            let first = next_id.fetch_add(25, Ordering::SeqCst);
            let ids: Vec<u64> = (first..first + 25).collect();
            let records: Vec<Value> = ids
                .iter()
                .map(|i| json!({"key": format!("k{}", i % 7), "value": format!("r{i}")}))
                .collect();
            let sent = client
                .post(format!("{url}/topics/in/records"))
                .json(&json!({ "records": records }))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => acked.lock().unwrap().extend(ids),
                _ => return,
            }
        }
    });
}

/// The values of every partition of `topic`.
fn values(host: &Host, topic: &str) -> Vec<String> {
    (0..PARTITIONS)
        .flat_map(|p| host.values(topic, p))
        .collect()
}

/// `copy`'s committed offset per partition of `in`.
fn committed(host: &Host) -> Vec<u64> {
    (0..PARTITIONS)
        .map(|p| host.committed("copy", "in", p))
        .collect()
}

fn lag(url: &str) -> Option<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status: Value = runtime.block_on(async {
        let response = reqwest::get(format!("{url}/processors/copy")).await.ok()?;
        response.json().await.ok()
    })?;
    status["lag"].as_u64()
}

#[test]
fn kill_9_under_http_producers_loses_no_acknowledged_record_and_processes_every_one() {
    let Host { dir, .. } = Host::new();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config(config_dir.path());
    let args = ["--config".as_ref(), config.as_os_str()];
    let next_id = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut last = vec![0; PARTITIONS as usize];
    let mut dir = dir;
    for round in 0..rounds() {
        let (mut child, url) = spawn_serve(dir.path(), &args);
        let stop = Arc::new(AtomicBool::new(false));
        let producers: Vec<_> = (0..2)
            .map(|_| {
                let (url, next_id, acked, stop) =
                    (url.clone(), next_id.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || produce(url, next_id, acked, stop))
            })
            .collect();
        // A different instant each round, while producing and processing.
        std::thread::sleep(Duration::from_millis(150 + (round as u64 * 137) % 500));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.join().unwrap();
        }
        let host = Host::new_in(dir);
        let now = committed(&host);
        for (p, (before, after)) in last.iter().zip(&now).enumerate() {
            assert!(
                after >= before,
                "round {round}: partition {p}'s committed offset went back from {before} to {after}"
            );
        }
        last = now;
        Host { dir, .. } = host;
    }

    let (child, url) = spawn_serve(dir.path(), &args);
    let started = Instant::now();
    while lag(&url) != Some(0) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "never caught up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let mut child = child;
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(child.wait().unwrap().success());

    let host = Host::new_in(dir);
    let input: BTreeSet<String> = values(&host, "in").into_iter().collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<&u64> = acked
        .iter()
        .filter(|i| !input.contains(&format!("r{i}")))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not in the log: {lost:?}");
    let output: BTreeSet<String> = values(&host, "out").into_iter().collect();
    let missed: Vec<&String> = input.difference(&output).collect();
    assert!(
        missed.is_empty(),
        "in the log but never processed: {missed:?}"
    );
    let end = committed(&host);
    assert!(
        end.iter().zip(&last).all(|(e, l)| e >= l),
        "{end:?} < {last:?}"
    );
    eprintln!(
        "{} acknowledged, {} in the log, {} output records over {} kills",
        acked.len(),
        input.len(),
        values(&host, "out").len(),
        rounds()
    );
    assert!(!acked.is_empty(), "the producers got nothing acknowledged");
}
