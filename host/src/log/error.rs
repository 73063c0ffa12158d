//! [`LogError`]: everything that can go wrong in the log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::MAX_PARTITIONS;
use crate::name::NameError;

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
    #[error("partition {path} refuses appends after a failed {op}; reopen the log to recover it")]
    Poisoned {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("partition {path} belongs to a deleted topic")]
    Deleted { path: PathBuf },
    #[error("internal topic {0:?} cannot be deleted")]
    Internal(String),
    #[error(
        "topic {0:?} is internal: names starting with __ are reserved, and only weir writes to them"
    )]
    Reserved(String),
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
    #[error("invalid topic settings: {what}")]
    BadConfig { what: &'static str },
    #[error(
        "topic {topic:?} has {partitions} partition(s); a partition count can grow, never shrink (asked for {asked})"
    )]
    PartitionCountFixed {
        topic: String,
        partitions: u32,
        asked: u32,
    },
    #[error(
        "a batch of {records} record(s) and {bytes} bytes is over topic {topic:?}'s limit of {max_records} records and {max_bytes} bytes per batch; send fewer or smaller records at a time"
    )]
    BatchTooLarge {
        topic: String,
        records: usize,
        bytes: u64,
        max_records: u32,
        max_bytes: u64,
    },
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
