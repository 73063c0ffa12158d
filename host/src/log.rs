//! The log: named topics, each with a number of partitions (which may grow), each an
//! append-only sequence of segments on disk (`<data>/topics/<topic>/<partition>/`).
//!
//! # Layout
//!
//! - `config.rs`: [`TopicConfig`] (every topic setting), the [`Durability`]
//!   policy and the [`CleanupPolicy`].
//! - `storage.rs`: the [`Storage`] seam every file operation goes through.
//! - `batch.rs` (+ `batch/decode.rs`): the CRC32C-checked record batch codec.
//! - `index.rs`, `timeindex.rs`: the sparse offset and time indexes.
//! - `segment.rs` (+ `segment/active.rs`, `segment/sealed.rs`): one segment,
//!   its reads and its recovery; active and sealed are distinct types.
//! - `partition.rs` (+ `partition/writer.rs`, `partition/commit.rs`): the single
//!   writer, group commit, poisoning, retention and the view readers use;
//!   `partition/compactor.rs`: compaction and its crash-safe swap.
//! - `settings.rs`: [`Log::alter_topic`] and maintenance on demand.
//! - `topics.rs`: creating, deleting and listing topics; opening one topic.
//! - `topic_id.rs`: each topic's UUID (`topic.id`), new at every creation.
//! - `flusher.rs`: the background thread: the fsync behind
//!   [`Durability::Interval`], and maintenance (rolls by age, retention,
//!   compaction) every [`LogOptions::maintenance`].
//! - `model.rs` (tests only): the model-based property test against an oracle.
//!
//! The `Log` keeps every partition behind its own writer lock (one writer at a
//! time per partition; readers never take it and never see past the high
//! watermark) and wakes waiting consumers after each append. A user topic's
//! batches stay within its `max_batch_bytes` and `max_batch_records`. A topic exists once
//! its `topic.json` does: the file is written last, atomically, so a
//! half-created topic is never opened. Deleting a topic renames its directory
//! away in one step (to a name no topic can have) before removing it, so a
//! crash half-way through a delete never leaves half a topic to reopen.

mod batch;
mod config;
mod error;
mod flusher;
mod index;
#[cfg(test)]
mod model;
mod partition;
mod placement;
mod segment;
mod settings;
pub mod storage;
mod timeindex;
mod topic_id;
mod topics;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use batch::{Nulls, Record, StoredRecord, chunks, encoded_len};
pub use config::{
    CleanupPolicy, DEFAULT_DELETE_RETENTION_MS, DEFAULT_INTERVAL_MS, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_BATCH_RECORDS, Durability, MAX_PARTITIONS, TopicConfig,
};
pub use error::LogError;
pub use partition::{DeletedSegment, segment_path};
pub use placement::Placement;
pub use storage::{OsStorage, Storage, StorageFile};

use crate::durable;
use crate::name;
use flusher::Flusher;
use partition::Partition;

const META_FILE: &str = "topic.json";
/// Marks the directory of a topic being deleted: `<name>~deleted-<nanos>`
/// (`~` is not allowed in a topic name, so it is never opened as one).
const DELETED_MARK: &str = "~deleted-";

/// A source of wall-clock milliseconds; tests substitute their own.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// How often the background thread applies retention and rolls aged
/// segments unless told otherwise ([`LogOptions::maintenance`]).
pub const DEFAULT_MAINTENANCE: std::time::Duration = std::time::Duration::from_secs(60);

/// How to open a log: where its bytes go and what time it is.
#[derive(Clone)]
pub struct LogOptions {
    pub storage: Arc<dyn Storage>,
    /// Stamps records without a timestamp, ages segments and drives retention.
    pub clock: Clock,
    /// How often the background thread rolls aged segments and applies
    /// retention (see `log/flusher.rs`); `None` leaves it to explicit calls
    /// ([`Log::enforce_retention`]), as tests that drive time do.
    pub maintenance: Option<std::time::Duration>,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            storage: Arc::new(OsStorage),
            clock: Arc::new(now_ms),
            maintenance: Some(DEFAULT_MAINTENANCE),
        }
    }
}

/// What retention deleted from one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    pub topic: String,
    pub partition: u32,
    pub deleted: Vec<DeletedSegment>,
}

struct Topic {
    /// The settings in `topic.json`; each partition holds a copy it follows.
    config: RwLock<TopicConfig>,
    /// The topic's id (`topic.id`, see `log/topic_id.rs`).
    id: uuid::Uuid,
    partitions: Vec<Arc<Partition>>,
}

impl Topic {
    fn config(&self) -> TopicConfig {
        *self.config.read().expect("topic config lock")
    }
}

/// The on-disk log of every topic.
pub struct Log {
    dir: PathBuf,
    options: LogOptions,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Wakes consumers waiting for new records; notified after every append.
    appended: tokio::sync::Notify,
    flusher: Flusher,
}

impl Log {
    /// Opens the log under `data_dir`, recovering every partition.
    pub fn open(data_dir: &Path) -> Result<Log, LogError> {
        Log::open_with(data_dir, LogOptions::default())
    }

    /// Opens the log with another storage or clock (tests inject faults and
    /// time this way).
    pub fn open_with(data_dir: &Path, options: LogOptions) -> Result<Log, LogError> {
        let dir = data_dir.join("topics");
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
        let flusher = Flusher::new(options.clock.clone(), options.maintenance);
        let log = Log {
            dir,
            options,
            topics: RwLock::new(BTreeMap::new()),
            appended: tokio::sync::Notify::new(),
            flusher,
        };
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(&log.dir).map_err(|e| LogError::io(&log.dir, e))? {
            let entry = entry.map_err(|e| LogError::io(&log.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(DELETED_MARK) {
                // A delete that crashed after its rename: finish it.
                std::fs::remove_dir_all(entry.path())
                    .map_err(|e| LogError::io(&entry.path(), e))?;
                continue;
            }
            let meta = entry.path().join(META_FILE);
            if name::validate("topic", &name).is_err() || !meta.exists() {
                continue; // not a topic, or one whose creation never finished
            }
            let bytes = std::fs::read(&meta).map_err(|e| LogError::io(&meta, e))?;
            let config: TopicConfig = serde_json::from_slice(&bytes)
                .map_err(|source| LogError::Meta { path: meta, source })?;
            topics.insert(name, Arc::new(log.open_topic(&entry.path(), config)?));
        }
        *log.topics.write().expect("topic map lock") = topics;
        Ok(log)
    }

    /// The number of partitions of `topic`.
    pub fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        Ok(self.topic(topic)?.partitions.len() as u32)
    }

    /// Appends `records` to one partition as a single batch and returns the
    /// offset of the first record, once the topic's durability policy holds.
    /// A batch over the topic's `max_batch_records` or `max_batch_bytes` is
    /// refused ([`LogError::BatchTooLarge`]); internal topics (`__…`) take
    /// any batch, since weir writes a changelog unit as one batch by design.
    pub fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<u64, LogError> {
        let now = (self.options.clock)();
        let partition = self.partition(topic, partition)?;
        if !topic.starts_with("__") {
            let config = partition.config();
            let bytes = batch::encoded_len(records);
            if records.len() > config.max_batch_records as usize || bytes > config.max_batch_bytes {
                return Err(LogError::BatchTooLarge {
                    topic: topic.to_string(),
                    records: records.len(),
                    bytes,
                    max_records: config.max_batch_records,
                    max_bytes: config.max_batch_bytes,
                });
            }
        }
        let base = partition.append(records, now)?;
        self.appended.notify_waiters();
        Ok(base)
    }

    /// Appends `records` to one partition in as many batches as the topic's
    /// batch limits need, in order. Returns the first offset of each batch.
    /// Not atomic: a failure or crash part-way leaves the batches before it.
    /// A single record over `max_batch_bytes` is refused.
    pub fn append_chunked(
        &self,
        topic: &str,
        partition: u32,
        records: &[Record],
    ) -> Result<Vec<u64>, LogError> {
        let config = self.topic(topic)?.config();
        batch::chunks(records, config.max_batch_records, config.max_batch_bytes)
            .map(|chunk| self.append(topic, partition, chunk))
            .collect()
    }

    /// Reads records of one partition from offset `from`, at most `max_records`
    /// and about `max_bytes` (whole batches; at least one).
    pub fn read(
        &self,
        topic: &str,
        partition: u32,
        from: u64,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<Vec<StoredRecord>, LogError> {
        self.partition(topic, partition)?
            .read(from, max_records, max_bytes)
    }

    /// The earliest offset whose record's timestamp is `>= ts_ms`, or `None` if
    /// every record up to the high watermark is older (Kafka's ListOffsets).
    pub fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: u32,
        ts_ms: i64,
    ) -> Result<Option<u64>, LogError> {
        self.partition(topic, partition)?
            .offset_for_timestamp(ts_ms)
    }

    /// The offset after the last record readers may see.
    pub fn high_watermark(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(topic, partition)?.high_watermark())
    }

    /// The first offset still held by the partition.
    pub fn log_start(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(topic, partition)?.log_start())
    }

    /// How many segment files the partition has.
    pub fn segment_count(&self, topic: &str, partition: u32) -> Result<usize, LogError> {
        Ok(self.partition(topic, partition)?.segment_count())
    }

    /// Bytes of the partition's segments.
    pub fn partition_bytes(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        Ok(self.partition(topic, partition)?.size_bytes())
    }

    /// Seals the partition's active segment and starts a new one (no-op when it
    /// is empty). Returns whether a segment was sealed.
    pub fn roll(&self, topic: &str, partition: u32) -> Result<bool, LogError> {
        self.partition(topic, partition)?.roll()
    }

    /// Whether the partition refuses appends after a failed write or fsync.
    pub fn is_poisoned(&self, topic: &str, partition: u32) -> Result<bool, LogError> {
        Ok(self.partition(topic, partition)?.is_poisoned())
    }

    /// Corruption found in sealed segments when the log was opened, as
    /// [`LogError::Corrupt`] naming the file and byte position. Such segments
    /// are kept as they are; reads that reach the damage fail the same way.
    pub fn damage(&self) -> Vec<LogError> {
        self.all_partitions()
            .iter()
            .flat_map(|p| p.damage().to_vec())
            .map(|(path, position, what)| LogError::Corrupt {
                path,
                position,
                what,
            })
            .collect()
    }

    /// Applies every topic's retention: deletes whole sealed segments that are
    /// too old or beyond the size limit. Returns what was deleted.
    pub fn enforce_retention(&self) -> Result<Vec<Retained>, LogError> {
        self.sweep(|partition, now| partition.enforce_retention(now))
    }

    /// Runs `pass` over every partition at the log's clock's now, collecting
    /// the segments each deleted.
    fn sweep(
        &self,
        pass: impl Fn(&Partition, i64) -> Result<Vec<DeletedSegment>, LogError>,
    ) -> Result<Vec<Retained>, LogError> {
        let now = (self.options.clock)();
        let topics: Vec<(String, Arc<Topic>)> = {
            let topics = self.topics.read().expect("topic map lock");
            topics.iter().map(|(n, t)| (n.clone(), t.clone())).collect()
        };
        let mut out = Vec::new();
        for (name, topic) in topics {
            for (i, partition) in topic.partitions.iter().enumerate() {
                let deleted = pass(partition, now)?;
                if !deleted.is_empty() {
                    out.push(Retained {
                        topic: name.clone(),
                        partition: i as u32,
                        deleted,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Deletes the partition's sealed segments that hold only offsets below
    /// `offset` (Kafka's DeleteRecords, at segment granularity): the log start
    /// moves to the first segment kept. Used to drop what a compacted snapshot
    /// replaces.
    pub fn delete_before(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> Result<Vec<DeletedSegment>, LogError> {
        self.partition(topic, partition)?.delete_before(offset)
    }

    /// Makes one partition's written data durable, whatever its policy.
    pub fn sync(&self, topic: &str, partition: u32) -> Result<(), LogError> {
        self.partition(topic, partition)?.sync()
    }

    /// The data directory the log lives in.
    pub fn data_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// The directory of one partition.
    pub fn partition_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.dir.join(topic).join(partition.to_string())
    }

    /// A future that completes at the next append to any partition. Create it
    /// (and `enable` it) before checking for records, so no append is missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// Makes every partition's written data durable, whatever its policy.
    pub fn sync_all(&self) -> Result<(), LogError> {
        for partition in self.all_partitions() {
            partition.sync()?;
        }
        Ok(())
    }

    fn all_partitions(&self) -> Vec<Arc<Partition>> {
        let topics = self.topics.read().expect("topic map lock");
        topics
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.topics
            .read()
            .expect("topic map lock")
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))
    }

    fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Partition>, LogError> {
        let t = self.topic(topic)?;
        t.partitions
            .get(partition as usize)
            .cloned()
            .ok_or(LogError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                count: t.partitions.len() as u32,
            })
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
