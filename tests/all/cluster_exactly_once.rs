//! Exactly-once and guest state on the Kafka-cluster backend, against tansu
//! 0.6 (see `tests/src/tansu.rs`) through the real `weir` binary: the
//! `running-totals` guest keeps each customer's totals in state (a compacted
//! changelog in the cluster) and emits them; the output, read
//! `read_committed`, is checked against a model computed here.
//!
//! tansu 0.6 with memory storage runs transactions (init, send offsets,
//! commit, abort, producer fencing) but serves the records of an aborted
//! transaction to a `read_committed` reader: the SIGKILL test, whose killed
//! host leaves a transaction that the restart aborts, is ignored on tansu and
//! runs against weir's own Kafka listener (`weir serve --kafka-listen`), which
//! hides aborted transactions.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir_tests::command::{log_of, terminate};
use weir_tests::tansu::{ONE_RECORD_PER_BATCH, Tansu};
use weir_tests::{guests, weir_bin};

const PARTITIONS: i32 = 3;
const CUSTOMERS: usize = 12;

/// Order `i`: customer `c<i % CUSTOMERS>`, `i + 1` cents.
fn order(i: usize) -> (String, String) {
    let customer = format!("c{}", i % CUSTOMERS);
    let value = format!(
        r#"{{"id":{i},"customer":"{customer}","amount_cents":{},"currency":"EUR","country":"DE"}}"#,
        i + 1
    );
    (customer, value)
}

/// Produces orders `range`, keyed by customer (so a customer's orders share a
/// partition, and with it their state), one record per batch for tansu.
fn produce_orders(tansu: &Tansu, range: std::ops::Range<usize>) {
    let orders: Vec<(String, String)> = range.map(order).collect();
    let records: Vec<(&str, &str)> = orders
        .iter()
        .map(|(customer, value)| (customer.as_str(), value.as_str()))
        .collect();
    tansu.produce_keyed("orders", &records);
}

/// What `running-totals` emits for orders `0..n`, per customer, in order.
fn model(n: usize) -> BTreeMap<String, Vec<String>> {
    let mut totals: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..n {
        let (customer, _) = order(i);
        let t = totals.entry(customer.clone()).or_default();
        t.0 += 1;
        t.1 += i as i64 + 1;
        out.entry(customer.clone()).or_default().push(format!(
            r#"{{"customer":"{customer}","orders":{},"amount_cents":{}}}"#,
            t.0, t.1
        ));
    }
    out
}

/// Every committed record of `topic` (`read_committed`, to the end of every
/// partition), as (key, value), per partition in order.
fn committed_values(tansu: &Tansu, topic: &str) -> Vec<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", tansu.bootstrap())
        .set("group.id", "weir-tests-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(10);
    let mut tpl = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..PARTITIONS {
        ends.push(
            consumer
                .fetch_watermarks(topic, p, timeout)
                .expect("watermarks")
                .1,
        );
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((text(m.key()), text(m.payload())));
        }
        // The position moves past transaction markers, which are never read.
        let position = consumer.position().expect("position");
        let done = (0..PARTITIONS).all(|p| {
            let at = position.find_partition(topic, p).map(|e| e.offset());
            matches!(at, Some(Offset::Offset(o)) if o >= ends[p as usize]) || ends[p as usize] == 0
        });
        if done {
            return out;
        }
        assert!(Instant::now() < deadline, "reading {topic} took too long");
    }
}

/// The output per customer, in order.
fn by_customer(values: Vec<(String, String)>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in values {
        out.entry(key).or_default().push(value);
    }
    out
}

/// `weir run` of `running-totals` from `orders` to `totals`, its log in
/// `<dir>/weir.log`.
fn weir_run(dir: &Path, tansu: &Tansu, commit: &str) -> Child {
    let log = std::fs::File::create(dir.join("weir.log")).expect("create the log file");
    Command::new(weir_bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["run", "--name", "totals", "--wasm", guests::RUNNING_TOTALS])
        .args(["--topic", "orders", "--config", "output=totals"])
        .args(["--max-records", "20", "--commit", commit])
        .args(["--session-timeout-ms", "6000"])
        .args(["--bootstrap-servers", &tansu.bootstrap()])
        .args(["--cluster-instance-id", "a"])
        .args([
            "--kafka-property",
            &format!("{}={}", ONE_RECORD_PER_BATCH.0, ONE_RECORD_PER_BATCH.1),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn weir run")
}

fn committed_total(tansu: &Tansu) -> i64 {
    let committed = tansu.committed("totals", "orders", PARTITIONS);
    committed.iter().map(|&o| o.max(0)).sum()
}

/// Waits until group `totals` has committed every order (or `child` died).
fn wait_caught_up(tansu: &Tansu, child: &mut Child, dir: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        if tansu.committed("totals", "orders", PARTITIONS) == tansu.ends("orders", PARTITIONS) {
            return;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("weir run exited with {status}: {}", log_of(dir));
        }
        assert!(
            Instant::now() < deadline,
            "the group did not catch up: {}",
            log_of(dir)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn sigterm(child: &mut Child, dir: &Path) {
    let out = terminate(child);
    assert!(out.status.success(), "weir run failed: {}", log_of(dir));
}

fn setup() -> Tansu {
    topics(Tansu::start())
}

fn topics(tansu: Tansu) -> Tansu {
    tansu.create_topic("orders", PARTITIONS);
    tansu.create_topic("totals", PARTITIONS);
    tansu
}

/// Runs on tansu: every commit of a stateful group is a transaction (in
/// at-least-once too), its state reaches the compacted changelog in the
/// cluster, and a host started on an empty data directory restores it before
/// its first batch and goes on exactly-once (the totals go on from where
/// they were, nothing repeated); the first host, back, catches its copy up
/// from its checkpoint. A rewind of the group is refused.
#[test]
fn state_lives_in_the_cluster_and_a_new_host_restores_it() {
    let tansu = setup();
    produce_orders(&tansu, 0..120);
    let first = tempfile::tempdir().unwrap();
    let mut host = weir_run(first.path(), &tansu, "at-least-once");
    wait_caught_up(&tansu, &mut host, first.path(), Duration::from_secs(120));
    sigterm(&mut host, first.path());
    assert!(
        log_of(first.path()).contains("transactions initialized"),
        "a stateful group commits through transactions: {}",
        log_of(first.path())
    );

    // Another machine: nothing local, the state comes from the cluster; and
    // the processor now runs exactly-once.
    produce_orders(&tansu, 120..240);
    let second = tempfile::tempdir().unwrap();
    let mut host = weir_run(second.path(), &tansu, "exactly-once");
    wait_caught_up(&tansu, &mut host, second.path(), Duration::from_secs(120));
    sigterm(&mut host, second.path());
    assert!(
        log_of(second.path()).contains("state restored from the cluster"),
        "{}",
        log_of(second.path())
    );
    assert_eq!(by_customer(committed_values(&tansu, "totals")), model(240));

    // Back on the first machine: its local copy catches up from its own
    // checkpoint through what the second host committed.
    produce_orders(&tansu, 240..300);
    let mut host = weir_run(first.path(), &tansu, "at-least-once");
    wait_caught_up(&tansu, &mut host, first.path(), Duration::from_secs(120));
    sigterm(&mut host, first.path());
    assert_eq!(by_customer(committed_values(&tansu, "totals")), model(300));

    let changelog = committed_values(&tansu, "weir-state.totals.orders");
    assert!(
        changelog.iter().any(|(k, _)| k == "scustomer/c3"),
        "the changelog holds the guest's keys: {changelog:?}"
    );

    let backend = weir::cluster::ClusterBackend::connect(
        &weir::cluster::ClusterSpec::at(tansu.bootstrap()),
        second.path(),
    )
    .expect("connect");
    use weir::consumer::Backend;
    let err = backend
        .reset(
            "totals",
            &["orders".to_string()],
            weir::broker::SeekTo::Earliest,
        )
        .expect_err("a stateful group's rewind is refused");
    assert!(err.to_string().contains("whose guest keeps state"), "{err}");
}

/// The issue's exactly-once test: a host is SIGKILLed mid-stream and
/// restarted (same host id: its transactional ids fence the dead process's
/// and abort its open transaction); the totals per customer and the output
/// match the model, with no duplicates and nothing missing.
#[test]
#[ignore = "tansu 0.6 (memory storage) serves the records of aborted transactions to read_committed readers (checked with confluent-kafka 2.16: an aborted transaction's records are read back), so the killed host's transaction, aborted by the restart, still shows in the output and in the restored state (seen: a customer's totals count the re-read batch twice); run against a broker that filters aborted transactions"]
fn running_totals_exactly_once_through_a_sigkill_match_the_model() {
    exactly_once_through_a_sigkill(setup());
}

/// The same test with weir's own Kafka listener as the cluster, which hides
/// aborted transactions from `read_committed` readers.
#[test]
fn running_totals_exactly_once_through_a_sigkill_match_the_model_on_weirs_listener() {
    exactly_once_through_a_sigkill(topics(Tansu::weir_listener()));
}

fn exactly_once_through_a_sigkill(tansu: Tansu) {
    let total = 600;
    produce_orders(&tansu, 0..total / 2);
    let first = tempfile::tempdir().unwrap();
    let mut host = weir_run(first.path(), &tansu, "exactly-once");
    let deadline = Instant::now() + Duration::from_secs(120);
    while committed_total(&tansu) < 60 {
        assert!(
            Instant::now() < deadline,
            "no progress: {}",
            log_of(first.path())
        );
        assert!(
            host.try_wait().expect("try_wait").is_none(),
            "{}",
            log_of(first.path())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    host.kill().expect("SIGKILL the host");
    host.wait().ok();
    produce_orders(&tansu, total / 2..total);
    // The same host, restarted (its local copy of the state is kept).
    let mut host = weir_run(first.path(), &tansu, "exactly-once");
    wait_caught_up(&tansu, &mut host, first.path(), Duration::from_secs(180));
    sigterm(&mut host, first.path());
    let output = by_customer(committed_values(&tansu, "totals"));
    let expected = model(total);
    for (customer, want) in &expected {
        let got = output.get(customer).cloned().unwrap_or_default();
        assert_eq!(&got, want, "customer {customer}'s running totals");
    }
    assert_eq!(output.len(), expected.len(), "no other keys in the output");
}
