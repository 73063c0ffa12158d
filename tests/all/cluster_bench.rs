//! The cluster backend's pipeline rate, run by hand (`bench/cluster.sh`):
//! the passthrough guest emitting every record, through `weir run` against
//! tansu 0.6 with one host and with two hosts sharing the partitions, beside
//! the embedded pipeline (`weir bench --only pipeline`) in the same run.
//! It prints figures and asserts nothing about them.
//!
//! Each cluster figure: the hosts start on empty topics and hold their
//! partitions first; then the input is produced, and the rate is the records
//! committed from the first commit seen to the last (the committed offsets
//! sampled every 50 ms), so start-up and joins are not counted.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::tansu::{ONE_RECORD_PER_BATCH, Tansu};
use weir_tests::{guests, weir_bin};

use weir_tests::command::{log_of, terminate};
use weir_tests::wait_for;

const PARTITIONS: i32 = 4;

/// The broker a figure runs against.
#[derive(Clone, Copy)]
enum Broker {
    Tansu,
    Weir,
}

fn records() -> usize {
    std::env::var("WEIR_CLUSTER_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// A host running the passthrough guest from `in` (emitting to `out` when
/// `emit`) against `tansu`.
fn host(dir: &Path, tansu: &Tansu, id: &str, emit: bool, batch: &str) -> Child {
    let log = std::fs::File::create(dir.join("weir.log")).expect("create the log file");
    let mut cmd = Command::new(weir_bin());
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["run", "--name", "pass", "--wasm", guests::PASSTHROUGH])
        .args(["--topic", "in", "--max-records", "500"])
        .args(["--bootstrap-servers", &tansu.bootstrap()])
        .args(["--cluster-instance-id", id])
        .args([
            "--kafka-property",
            &format!("{}={batch}", ONE_RECORD_PER_BATCH.0),
        ]);
    if emit {
        cmd.args(["--config", "output=out"]);
    }
    cmd.env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn weir run")
}

/// The partitions the last "assignment changed" line of `dir`'s log names.
fn held(dir: &Path) -> usize {
    let log = log_of(dir);
    let last = log.lines().rev().find(|l| l.contains("assignment changed"));
    last.and_then(|l| l.split("partitions=[").nth(1))
        .and_then(|l| l.split(']').next())
        .map_or(0, |list| list.split(", ").filter(|p| !p.is_empty()).count())
}

/// rec/s through `hosts` hosts: (pipeline rate, produce rate).
/// The rate through `broker` (tansu: one record per produce request, which
/// its memory storage needs; weir's listener: librdkafka's default batching).
fn cluster_rate(broker: Broker, hosts: usize, emit: bool, n: usize) -> (f64, f64) {
    let (tansu, batch) = match broker {
        Broker::Tansu => (Tansu::start(), ONE_RECORD_PER_BATCH.1),
        Broker::Weir => (Tansu::weir_listener(), "10000"),
    };
    tansu.create_topic("in", PARTITIONS);
    tansu.create_topic("out", PARTITIONS);
    let dirs: Vec<_> = (0..hosts).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children: Vec<Child> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| host(d.path(), &tansu, &format!("h{i}"), emit, batch))
        .collect();
    wait_for(
        "the hosts to share the partitions",
        Duration::from_secs(120),
        || {
            let counts: Vec<usize> = dirs.iter().map(|d| held(d.path())).collect();
            counts.iter().all(|&c| c > 0) && counts.iter().sum::<usize>() == PARTITIONS as usize
        },
    );
    let input: Vec<String> = (0..n).map(|i| format!("{i:0100}")).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let port = tansu.bootstrap();
    let producer = std::thread::spawn(move || {
        let started = Instant::now();
        TansuAt(port).produce(&input, batch);
        tx.send(started.elapsed().as_secs_f64()).ok();
    });
    let (mut first, mut last, mut done) = (None, Instant::now(), 0i64);
    let deadline = Instant::now() + Duration::from_secs(1800);
    while done < n as i64 {
        assert!(Instant::now() < deadline, "the hosts never caught up");
        let committed: i64 = tansu
            .committed("pass", "in", PARTITIONS)
            .iter()
            .map(|&c| c.max(0))
            .sum();
        if committed > done {
            first.get_or_insert((Instant::now(), committed));
            last = Instant::now();
            done = committed;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    producer.join().expect("the producer");
    let produce_seconds = rx.recv().expect("the produce time");
    for child in &mut children {
        terminate(child);
    }
    let (start, at_start) = first.expect("a first commit");
    let seconds = last.duration_since(start).as_secs_f64().max(1e-3);
    (
        (done - at_start) as f64 / seconds,
        n as f64 / produce_seconds,
    )
}

/// A second producer connection to the broker (the fixture owns the first).
struct TansuAt(String);

impl TansuAt {
    fn produce(&self, values: &[String], batch: &str) {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &self.0)
            .set(ONE_RECORD_PER_BATCH.0, batch)
            .create()
            .expect("producer");
        for value in values {
            let mut record = BaseRecord::to("in")
                .key(value.as_str())
                .payload(value.as_str());
            while let Err((_, back)) = producer.send(record) {
                producer.poll(Duration::from_millis(5));
                record = back;
            }
        }
        producer.flush(Duration::from_secs(600)).expect("flush");
    }
}

/// The embedded pipeline's rate, from `weir bench --only pipeline --quick`.
fn embedded_rate() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(weir_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["bench", "--only", "pipeline", "--quick", "--json"])
        .output()
        .expect("weir bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let figures: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    figures["pipeline"]["wasm_rec_per_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("no pipeline figure in {figures}"))
}

#[test]
#[ignore = "a benchmark: run by hand with bench/cluster.sh"]
fn pipeline_rates_through_the_cluster_backend() {
    let n = records();
    let embedded = embedded_rate();
    let (one, produced_one) = cluster_rate(Broker::Tansu, 1, true, n);
    let (two, produced_two) = cluster_rate(Broker::Tansu, 2, true, n);
    let (no_emit, _) = cluster_rate(Broker::Tansu, 1, false, n);
    let (weir_one, weir_produced) = cluster_rate(Broker::Weir, 1, true, n);
    let (weir_two, _) = cluster_rate(Broker::Weir, 2, true, n);
    println!(
        "cluster pipeline: passthrough, 4 partitions, batches up to 500, {n} records of 100 B"
    );
    println!("embedded (weir bench --only pipeline --quick):  {embedded:>10.0} rec/s");
    println!(
        "tansu, one host, emit every record:             {one:>10.0} rec/s (input produced at {produced_one:.0} rec/s)"
    );
    println!(
        "tansu, two hosts, emit every record:            {two:>10.0} rec/s (input produced at {produced_two:.0} rec/s)"
    );
    println!("tansu, one host, no emits:                      {no_emit:>10.0} rec/s");
    println!(
        "weir's listener, one host, emit every record:   {weir_one:>10.0} rec/s (input produced at {weir_produced:.0} rec/s)"
    );
    println!("weir's listener, two hosts, emit every record:  {weir_two:>10.0} rec/s");
}
