//! Group shapes: a group's positions and lag (`Group` in `docs/api.md`), the
//! seek body, and what a seek moved (`Moved`). The broker's admin methods
//! return these types as they are, so the embedded CLI and the API print the
//! same thing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::position::{SeekTo, parse_position, position};

/// A partition a seek moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub topic: String,
    pub partition: u32,
    /// The committed offset before the seek, if there was one.
    pub from: Option<u64>,
    pub to: u64,
}

/// One partition as a group sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub log_start: u64,
    pub high_watermark: u64,
    /// Records between the committed offset (or the log start) and the end.
    pub lag: u64,
}

/// A group's positions with their total lag, as `GET /groups/{group}` shows
/// them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLag {
    pub group: String,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: u64,
}

impl GroupLag {
    pub fn new(group: &str, partitions: Vec<PartitionLag>) -> GroupLag {
        GroupLag {
            group: group.to_string(),
            total_lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
        }
    }
}

/// The body of `POST /groups/{group}/seek`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seek {
    /// A position (see [`parse_position`]); kept as JSON so that a bad one is
    /// a 400 naming what was wrong.
    pub to: Value,
    /// Only this topic (every topic the group has committed to when absent).
    #[serde(default)]
    pub topic: Option<String>,
    /// Only this partition.
    #[serde(default)]
    pub partition: Option<u32>,
}

impl Seek {
    pub fn new(to: SeekTo, topic: Option<String>, partition: Option<u32>) -> Seek {
        Seek {
            to: position(to),
            topic,
            partition,
        }
    }

    /// Where the seek goes.
    pub fn target(&self) -> Result<SeekTo, String> {
        parse_position(&self.to)
    }
}

/// What `POST /groups/{group}/seek` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seeked {
    pub moved: Vec<Moved>,
}
