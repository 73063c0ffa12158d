//! Processors against a real Kafka-protocol broker: tansu 0.6 (see
//! `tests/src/tansu.rs`), driven through the real `weir` binary, with input
//! produced and output read by rdkafka as any Kafka client would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use weir_tests::command::{log_of, terminate};
use weir_tests::tansu::{ONE_RECORD_PER_BATCH, Tansu, free_port};
use weir_tests::{guests, wait_for, weir_bin};

use watcher::Watcher;

const PARTITIONS: i32 = 4;

mod failover;
mod watcher;

fn values(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("v{i:05}")).collect()
}

/// `weir run` of the scripted guest from `in` to `out` against `tansu`, its
/// log in `<dir>/weir.log`.
fn weir_run(dir: &Path, tansu: &Tansu, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("weir.log")).expect("create the log file");
    Command::new(weir_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["run", "--name", "copy", "--wasm", guests::SCRIPTED])
        .args([
            "--topic",
            "in",
            "--config",
            "output=out",
            "--max-records",
            "50",
        ])
        .args(["--bootstrap-servers", &tansu.bootstrap()])
        .args(["--kafka-property", &one_record_per_batch()])
        .args(extra)
        // librdkafka's debug lines, when a test sets its `debug` property.
        .env("RUST_LOG", "info,librdkafka=debug")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn weir run")
}

/// What weir's producers need on tansu (see `tests/src/tansu.rs`).
fn one_record_per_batch() -> String {
    format!("{}={}", ONE_RECORD_PER_BATCH.0, ONE_RECORD_PER_BATCH.1)
}

fn caught_up(tansu: &Tansu) -> bool {
    tansu.committed("copy", "in", PARTITIONS) == tansu.ends("in", PARTITIONS)
}

/// Every input value appears in `out`; returns how many appear more than
/// once (at-least-once repeats).
fn check_output(tansu: &Tansu, input: &[String]) -> usize {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, value) in tansu.values("out") {
        *seen.entry(value).or_default() += 1;
    }
    let missing: Vec<&String> = input.iter().filter(|v| !seen.contains_key(*v)).collect();
    assert!(
        missing.is_empty(),
        "{} record(s) never processed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    seen.values().filter(|&&n| n > 1).count()
}

fn setup() -> Tansu {
    let tansu = Tansu::start();
    tansu.create_topic("in", PARTITIONS);
    tansu.create_topic("out", PARTITIONS);
    tansu
}

#[test]
fn a_broker_that_freezes_and_comes_back_loses_and_repeats_no_committed_work() {
    // tansu keeps its data in memory, so a restarted broker would come back
    // empty: it is frozen (SIGSTOP) and thawed (SIGCONT) instead, which a
    // client sees as a broker gone silent and back.
    let tansu = setup();
    let watcher = Watcher::start(tansu.port());
    let input = values(0..3000);
    tansu.produce("in", &input[..1500]);
    let dir = tempfile::tempdir().unwrap();
    let mut host = weir_run(dir.path(), &tansu, &["--session-timeout-ms", "30000"]);
    wait_for("some progress", Duration::from_secs(60), || {
        tansu
            .committed("copy", "in", PARTITIONS)
            .iter()
            .sum::<i64>()
            > 0
    });
    let at_freeze: i64 = tansu.committed("copy", "in", PARTITIONS).iter().sum();
    tansu.signal("STOP");
    eprintln!("froze the broker with {at_freeze} of 1500 records committed");
    std::thread::sleep(Duration::from_secs(5));
    tansu.signal("CONT");
    tansu.produce("in", &input[1500..]);
    wait_for("the group to catch up", Duration::from_secs(120), || {
        caught_up(&tansu)
    });
    let out = terminate(&mut host);
    assert!(
        out.status.success(),
        "weir run failed: {}",
        log_of(dir.path())
    );
    watcher.finish();
    let repeats = check_output(&tansu, &input);
    // A batch whose commit the freeze cut short may repeat; nothing else.
    assert!(
        repeats <= 50 * PARTITIONS as usize,
        "{repeats} repeated records"
    );
}

#[test]
fn until_caught_up_dead_letters_to_the_cluster_and_reports_lag() {
    let tansu = setup();
    let mut input = values(0..500);
    input[120] = "fail:dead-letter".into();
    tansu.produce("in", &input);
    let dir = tempfile::tempdir().unwrap();
    let child = weir_run(dir.path(), &tansu, &["--until-caught-up", "--json"]);
    let out = child.wait_with_output().expect("weir run");
    assert!(
        out.status.success(),
        "weir run failed: {}",
        log_of(dir.path())
    );
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(done["lag"], 0, "{done}");
    assert_eq!(done["processed"], 500, "{done}");
    let mut expected: BTreeSet<String> = input.iter().cloned().collect();
    expected.remove("fail:dead-letter");
    let got: Vec<String> = tansu.values("out").into_iter().map(|(_, v)| v).collect();
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(got.len(), expected.len(), "no repeats in one clean run");
    let dead: Vec<String> = tansu
        .values("copy.dlq")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(dead, ["fail:dead-letter"]);
    assert!(caught_up(&tansu));
}

fn run_fails(dir: &Path, bootstrap: &str, extra: &[&str]) -> String {
    let out = Command::new(weir_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["run", "--name", "copy", "--wasm", guests::SCRIPTED])
        .args(["--topic", "in", "--config", "output=out"])
        .args(["--bootstrap-servers", bootstrap, "--until-caught-up"])
        .args(extra)
        .output()
        .expect("spawn weir run");
    assert!(!out.status.success(), "weir run {extra:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn cluster_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = format!("127.0.0.1:{}", free_port());
    let err = run_fails(dir.path(), &nobody, &[]);
    assert!(
        err.contains(&format!("cannot reach the Kafka cluster at {nobody}")),
        "{err}"
    );

    let tansu = setup();
    let err = run_fails(dir.path(), &tansu.bootstrap(), &["--topic", "nope"]);
    assert!(
        err.contains("the input topic \"nope\" does not exist in the Kafka cluster"),
        "{err}"
    );
    let err = run_fails(dir.path(), &tansu.bootstrap(), &["--config", "output=ou"]);
    assert!(err.contains("the output topic \"ou\""), "{err}");
    let err = run_fails(
        dir.path(),
        &tansu.bootstrap(),
        &["--kafka-property", "group.id=x"],
    );
    assert!(err.contains("\"group.id\" is weir's to set"), "{err}");
    // Exactly-once and guest state work there: see cluster_exactly_once.rs.
}

pub(super) fn http(
    method: reqwest::Method,
    url: String,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    })
}

#[test]
fn weir_serve_runs_a_cluster_processor_beside_the_api_and_rewinds_it() {
    let tansu = setup();
    let input = values(0..400);
    tansu.produce("in", &input);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n\n[[processors]]\nname = \"copy\"\nwasm = {:?}\n\
             topics = [\"in\"]\nconfig = {{ output = \"out\" }}\nmax_records = 50\n\
             cluster = {{ bootstrap_servers = {:?}, instance_id = \"serve\", properties = {{ {:?} = {:?} }} }}\n",
            guests::SCRIPTED,
            tansu.bootstrap(),
            ONE_RECORD_PER_BATCH.0,
            ONE_RECORD_PER_BATCH.1,
        ),
    )
    .unwrap();
    let (mut child, url) =
        weir_tests::server::spawn_serve(dir.path(), &["--config".as_ref(), config.as_os_str()]);
    wait_for("the group to catch up", Duration::from_secs(120), || {
        caught_up(&tansu)
    });
    let (status, body) = http(reqwest::Method::GET, format!("{url}/processors/copy"), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lag"], 0, "{body}");
    assert_eq!(
        body["cluster"]["bootstrap_servers"],
        tansu.bootstrap(),
        "{body}"
    );
    let partitions = body["partitions"].as_array().expect("partitions");
    assert_eq!(partitions.len(), PARTITIONS as usize, "{body}");
    let (status, body) = http(
        reqwest::Method::POST,
        format!("{url}/processors/copy/rewind"),
        Some(serde_json::json!({"to": "earliest"})),
    );
    assert_eq!(status, 200, "{body}");
    // The running processor replays everything once more.
    wait_for("the replay", Duration::from_secs(120), || {
        tansu.values("out").len() >= 2 * input.len() && caught_up(&tansu)
    });
    let out = terminate(&mut child);
    assert!(out.status.success());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (_, value) in tansu.values("out") {
        *seen.entry(value).or_default() += 1;
    }
    assert_eq!(seen.len(), input.len());
    assert!(
        seen.values().all(|&n| n == 2),
        "every record once before the rewind and once after"
    );
}
