//! Shared fixtures for the integration tests: the built guests, an embedded host
//! in a temporary directory, and the path of the real `weir` binary (run it
//! through [`command`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use weir::broker::Broker;
use weir::consumer::PollLimits;
use weir::group::Groups;
use weir::log::{Log, Record, StoredRecord, TopicConfig};
use weir::offsets::Offsets;
use weir::processor::{Processor, ProcessorConfig, ProcessorError, RetryPolicy, WhenExhausted};
use weir::runtime::{Guest, GuestSpec, Runtime, RuntimeError};

pub mod command;
pub mod kafka_clients;
pub mod kafka_groups_env;
pub mod kafka_wire;
pub mod polyglot;
pub mod server;
pub mod tansu;
pub mod tls;
/// Every guest component, built by `build.rs` from `guests/`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// An embedded host over a fresh temporary data directory.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub broker: Arc<Broker>,
    pub log: Arc<Log>,
    pub offsets: Arc<Offsets>,
    pub groups: Arc<Groups>,
    pub runtime: Runtime,
}

impl Host {
    /// A host with nothing in it.
    pub fn new() -> Host {
        Host::new_in(tempfile::tempdir().expect("temp dir"))
    }

    /// A host over an existing data directory (say, one a `weir` process used).
    pub fn new_in(dir: tempfile::TempDir) -> Host {
        let cache = dir.path().to_path_buf();
        Host::with_cache(dir, &cache)
    }

    /// A host over `dir` whose runtime keeps compiled components under
    /// `cache`.
    pub fn with_cache(dir: tempfile::TempDir, cache: &Path) -> Host {
        let broker = Broker::open(dir.path()).expect("open the data directory");
        let runtime = Runtime::new(cache, broker.log().clone()).expect("runtime");
        let (log, offsets, groups) = (
            broker.log().clone(),
            broker.offsets().clone(),
            broker.groups().clone(),
        );
        Host {
            dir,
            broker,
            log,
            offsets,
            groups,
            runtime,
        }
    }

    /// Drops every handle and opens the same data directory again, as a
    /// restarted process would.
    pub fn reopen(self) -> Host {
        let cache = self.dir.path().to_path_buf();
        self.reopen_with_cache(&cache)
    }

    /// [`reopen`](Host::reopen), with the new runtime keeping compiled
    /// components under `cache` (so a restart does not compile them again).
    pub fn reopen_with_cache(self, cache: &Path) -> Host {
        let Host {
            dir,
            broker,
            log,
            offsets,
            groups,
            runtime,
        } = self;
        drop((runtime, groups, offsets, log, broker));
        Host::with_cache(dir, cache)
    }

    /// The state `weir serve` shares between its handlers, over this host,
    /// with a supervisor keeping its records in the host's data directory.
    pub fn app_state(&self, token: Option<&str>) -> Arc<weir::service::AppState> {
        let runtime = Runtime::new(self.dir.path(), self.log.clone()).expect("runtime");
        let supervisor = weir::supervisor::Supervisor::new(
            self.dir.path(),
            self.broker.clone(),
            Arc::new(runtime),
        )
        .expect("supervisor");
        Arc::new(weir::service::AppState {
            broker: self.broker.clone(),
            supervisor: Arc::new(supervisor),
            metrics: weir::service::Metrics::install(),
            token: token.map(str::to_string),
        })
    }

    /// Creates a topic.
    pub fn topic(&self, name: &str, partitions: u32) {
        self.log
            .create_topic(name, TopicConfig::with_partitions(partitions))
            .expect("create topic");
    }

    /// Appends unkeyed records with these values to one partition.
    pub fn append_values<S: AsRef<str>>(&self, topic: &str, partition: u32, values: &[S]) {
        let records: Vec<Record> = values.iter().map(|v| Record::value(v.as_ref())).collect();
        self.log.append(topic, partition, &records).expect("append");
    }

    /// Loads a guest component from `path` for processor `name`.
    pub fn guest(
        &self,
        path: impl AsRef<Path>,
        name: &str,
        config: &[(&str, &str)],
    ) -> Result<Guest, RuntimeError> {
        let spec = GuestSpec {
            processor: name.to_string(),
            config: config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..GuestSpec::default()
        };
        self.runtime.load_file(path.as_ref(), spec)
    }

    /// Runs `guest` as processor `name` over `topics` until it has caught up
    /// (or failed), with fast retries and batches of `max_records`.
    pub async fn run(
        &self,
        name: &str,
        topics: &[&str],
        guest: Guest,
        max_records: usize,
    ) -> Result<Processor, ProcessorError> {
        let mut config = ProcessorConfig::new(name, topics);
        config.poll = PollLimits {
            max_records,
            ..PollLimits::default()
        };
        config.retry = fast_retries();
        let processor = Processor::new(config, self.broker.as_ref(), Arc::new(guest))?;
        processor.run_until_caught_up().await
    }

    /// Every record of one partition.
    pub fn records(&self, topic: &str, partition: u32) -> Vec<StoredRecord> {
        let end = self
            .log
            .high_watermark(topic, partition)
            .expect("high watermark");
        let mut out = Vec::new();
        while (out.len() as u64) < end {
            let from = out.len() as u64;
            out.extend(
                self.log
                    .read(topic, partition, from, 10_000, 16 << 20)
                    .expect("read"),
            );
        }
        out
    }

    /// Every value of one partition, as strings.
    pub fn values(&self, topic: &str, partition: u32) -> Vec<String> {
        self.records(topic, partition)
            .iter()
            .map(|r| String::from_utf8_lossy(&r.value).into_owned())
            .collect()
    }

    /// The group's committed offset on a partition (0 if none).
    pub fn committed(&self, group: &str, topic: &str, partition: u32) -> u64 {
        self.offsets
            .get(group, topic, partition)
            .map_or(0, |c| c.offset)
    }
}

impl Default for Host {
    fn default() -> Self {
        Host::new()
    }
}

/// Retries that keep tests fast: 3 retries from 5 ms, then stop.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        then: WhenExhausted::Stop,
    }
}

/// Polls `done` every 100 ms until it holds; fails the test after `timeout`.
#[track_caller]
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `weir` binary that `cargo test` built beside this test executable.
pub fn weir_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join("weir");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --release` from the workspace root, which builds it",
        bin.display()
    );
    bin
}

/// The correct conversion to US cents of every order in `orders` partition 0,
/// in order: the tests' own oracle for the currency guests (independent of
/// their code, so a bug shared by guest and test cannot hide).
pub fn expected_usd(host: &Host) -> Vec<i64> {
    host.records("orders", 0)
        .iter()
        .map(|r| {
            let o: serde_json::Value = serde_json::from_slice(&r.value).unwrap();
            let rate = match o["currency"].as_str().unwrap() {
                "USD" => 1000,
                "EUR" => 1080,
                "GBP" => 1270,
                _ => 7,
            };
            o["amount_cents"].as_i64().unwrap() * rate / 1000
        })
        .collect()
}
