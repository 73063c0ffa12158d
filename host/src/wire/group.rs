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
    /// The metadata string of a Kafka client's commit, when its latest
    /// commit on the partition carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// A group's positions with their total lag, and its membership, as
/// `GET /groups/{group}` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupLag {
    pub group: String,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: u64,
    /// The coordinator's view: absent for a group known only by its
    /// committed offsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<GroupMembership>,
}

impl GroupLag {
    pub fn new(group: &str, partitions: Vec<PartitionLag>) -> GroupLag {
        GroupLag {
            group: group.to_string(),
            total_lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
            membership: None,
        }
    }
}

/// A group's members and how it assigns partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembership {
    /// Bumped by every rebalance; kept across restarts.
    pub generation: u32,
    /// `eager` or `cooperative`.
    pub protocol: String,
    /// `range`, `round-robin`, `sticky` or `cooperative-sticky`.
    pub assignor: String,
    pub members: Vec<GroupMember>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMember {
    pub member_id: String,
    /// The static instance id (`<processor>-<i>`), if the member is static.
    pub instance_id: Option<String>,
    /// The generation the member last synced at (its commits carry it).
    pub generation: u32,
    /// The partitions the member holds.
    pub assignment: Vec<Assigned>,
    /// Restored from the group's record when the host started, holding its
    /// partitions for its instance until that rejoins or its session times
    /// out.
    #[serde(default)]
    pub awaiting_rejoin: bool,
}

/// A partition assigned to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    pub topic: String,
    pub partition: u32,
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
