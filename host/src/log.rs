//! The log: named topics, each with a fixed number of partitions, each an
//! append-only sequence of segments on disk (`<data>/topics/<topic>/<partition>/`).
//!
//! The `Log` owns every partition behind its own lock (one writer at a time per
//! partition, readers never see past the high watermark) and wakes waiting
//! consumers after each append. A topic exists once its `topic.json` does: the
//! file is written last, atomically, so a half-created topic is never opened.

mod batch;
mod index;
mod partition;
mod segment;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

pub use batch::{Record, StoredRecord};
pub use partition::segment_path;

use crate::name::{self, NameError};
use partition::Partition;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("corrupt data in {path} at byte {position}: {what}")]
    Corrupt {
        path: PathBuf,
        position: u64,
        what: String,
    },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition} (it has {count})")]
    UnknownPartition {
        topic: String,
        partition: u32,
        count: u32,
    },
    #[error("topic {0:?} already exists")]
    TopicExists(String),
    #[error("a topic needs between 1 and {max} partitions, not {partitions}", max = MAX_PARTITIONS)]
    BadPartitionCount { partitions: u32 },
    #[error("offset {offset} is outside the log [{start}, {end}]")]
    OffsetOutOfRange { offset: u64, start: u64, end: u64 },
    #[error("unreadable topic metadata {path}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Name(#[from] NameError),
}

impl LogError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> LogError {
        LogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;
const META_FILE: &str = "topic.json";

/// A topic's settings, fixed at creation and kept in its `topic.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub partitions: u32,
    /// A segment is rolled once it would grow past this many bytes.
    pub segment_bytes: u64,
}

impl TopicConfig {
    /// `partitions` partitions with the default 64 MiB segments.
    pub fn with_partitions(partitions: u32) -> TopicConfig {
        TopicConfig {
            partitions,
            segment_bytes: 64 << 20,
        }
    }
}

struct Topic {
    config: TopicConfig,
    partitions: Vec<Mutex<Partition>>,
}

/// The on-disk log of every topic.
pub struct Log {
    dir: PathBuf,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Wakes consumers waiting for new records; notified after every append.
    appended: tokio::sync::Notify,
}

impl Log {
    /// Opens the log under `data_dir`, recovering every partition.
    pub fn open(data_dir: &Path) -> Result<Log, LogError> {
        let dir = data_dir.join("topics");
        std::fs::create_dir_all(&dir).map_err(|e| LogError::io(&dir, e))?;
        let mut topics = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| LogError::io(&dir, e))? {
            let entry = entry.map_err(|e| LogError::io(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.path().join(META_FILE);
            if name::validate("topic", &name).is_err() || !meta.exists() {
                continue; // not a topic, or one whose creation never finished
            }
            let bytes = std::fs::read(&meta).map_err(|e| LogError::io(&meta, e))?;
            let config: TopicConfig = serde_json::from_slice(&bytes)
                .map_err(|source| LogError::Meta { path: meta, source })?;
            topics.insert(name, Arc::new(open_topic(&entry.path(), config)?));
        }
        Ok(Log {
            dir,
            topics: RwLock::new(topics),
            appended: tokio::sync::Notify::new(),
        })
    }

    /// Creates a topic; fails if it exists or the name or settings are invalid.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<(), LogError> {
        name::validate("topic", name)?;
        if config.partitions == 0 || config.partitions > MAX_PARTITIONS {
            return Err(LogError::BadPartitionCount {
                partitions: config.partitions,
            });
        }
        let mut topics = self.topics.write().expect("topic map lock");
        if topics.contains_key(name) {
            return Err(LogError::TopicExists(name.to_string()));
        }
        let dir = self.dir.join(name);
        let topic = open_topic(&dir, config)?;
        let meta = dir.join(META_FILE);
        let tmp = dir.join("topic.json.tmp");
        let json = serde_json::to_vec_pretty(&config).expect("config serializes");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &meta))
            .and_then(|()| std::fs::File::open(&dir)?.sync_all())
            .map_err(|e| LogError::io(&meta, e))?;
        topics.insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    /// Creates the topic unless it exists already.
    pub fn ensure_topic(&self, name: &str, config: TopicConfig) -> Result<(), LogError> {
        match self.create_topic(name, config) {
            Err(LogError::TopicExists(_)) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every topic with its settings, by name.
    pub fn topics(&self) -> Vec<(String, TopicConfig)> {
        let topics = self.topics.read().expect("topic map lock");
        topics.iter().map(|(n, t)| (n.clone(), t.config)).collect()
    }

    /// The number of partitions of `topic`.
    pub fn partition_count(&self, topic: &str) -> Result<u32, LogError> {
        Ok(self.topic(topic)?.config.partitions)
    }

    /// Appends `records` to one partition as a single batch and returns the
    /// offset of the first record.
    pub fn append(&self, topic: &str, partition: u32, records: &[Record]) -> Result<u64, LogError> {
        let base = self.with_partition(topic, partition, |p| p.append(records, now_ms()))?;
        self.appended.notify_waiters();
        Ok(base)
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
        self.with_partition(topic, partition, |p| p.read(from, max_records, max_bytes))
    }

    /// The offset the next record appended to the partition will get.
    pub fn high_watermark(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.with_partition(topic, partition, |p| Ok(p.high_watermark()))
    }

    /// The first offset still held by the partition.
    pub fn log_start(&self, topic: &str, partition: u32) -> Result<u64, LogError> {
        self.with_partition(topic, partition, |p| Ok(p.log_start()))
    }

    /// How many segment files the partition has.
    pub fn segment_count(&self, topic: &str, partition: u32) -> Result<usize, LogError> {
        self.with_partition(topic, partition, |p| Ok(p.segment_count()))
    }

    /// The directory of one partition.
    pub fn partition_dir(&self, topic: &str, partition: u32) -> PathBuf {
        self.dir.join(topic).join(partition.to_string())
    }

    /// The partition a keyed record belongs to: CRC32C of the key modulo the
    /// partition count. Records without a key go to partition 0.
    pub fn partition_for(&self, topic: &str, key: Option<&[u8]>) -> Result<u32, LogError> {
        let count = self.partition_count(topic)?;
        Ok(key.map_or(0, |k| crc32c::crc32c(k) % count))
    }

    /// A future that completes at the next append to any partition. Create it
    /// (and `enable` it) before checking for records, so no append is missed.
    pub fn appended(&self) -> tokio::sync::futures::Notified<'_> {
        self.appended.notified()
    }

    /// Flushes every partition's active segment to disk.
    pub fn sync_all(&self) -> Result<(), LogError> {
        let topics: Vec<Arc<Topic>> = self
            .topics
            .read()
            .expect("topic map lock")
            .values()
            .cloned()
            .collect();
        for topic in topics {
            for partition in &topic.partitions {
                partition.lock().expect("partition lock").sync()?;
            }
        }
        Ok(())
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, LogError> {
        self.topics
            .read()
            .expect("topic map lock")
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))
    }

    fn with_partition<T>(
        &self,
        topic: &str,
        partition: u32,
        f: impl FnOnce(&mut Partition) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let t = self.topic(topic)?;
        let p = t
            .partitions
            .get(partition as usize)
            .ok_or(LogError::UnknownPartition {
                topic: topic.to_string(),
                partition,
                count: t.config.partitions,
            })?;
        f(&mut p.lock().expect("partition lock"))
    }
}

fn open_topic(dir: &Path, config: TopicConfig) -> Result<Topic, LogError> {
    let partitions = (0..config.partitions)
        .map(|p| Partition::open(&dir.join(p.to_string()), config.segment_bytes).map(Mutex::new))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Topic { config, partitions })
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
