//! The seam under the processor loop: the few calls it makes of whatever holds
//! the records. A [`Backend`] lets members join groups and resets a stopped
//! group's positions; a [`Consumer`] is one member: it follows the group's
//! assignment, polls the assigned partitions, commits a batch's outcome
//! (fenced), and seeks. The embedded [`crate::broker::Broker`] implements both
//! now; a Kafka-cluster backend implements the same calls without the loop
//! changing.
//!
//! What a backend promises: a [`Commit`] is one unit. Its emits reach their
//! topics and its next offset becomes the group's committed position only if
//! the member still owns the partition at its generation; a fenced commit
//! writes nothing and says so ([`ConsumerError::is_fenced`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::broker::{Moved, ResetPolicy, SeekTo};
use crate::group::{GroupError, GroupSettings, TopicPartition};
use crate::log::{LogError, Record, StoredRecord};
use crate::offsets::OffsetsError;
use crate::state::{Change, StateError, StateStore};

/// Why a call through the seam failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Offsets(#[from] OffsetsError),
    #[error("{topic}/{partition} is not assigned to this member")]
    NotAssigned { topic: String, partition: u32 },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// When a batch's offset is committed relative to its processing: the
/// strategies of Kafka's consumer chapter (idempotent processing is the
/// fourth, a guest helper built on state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitMode {
    /// The offset is committed before the guest runs: a crash or a trap loses
    /// the batch and never repeats it.
    AtMostOnce,
    /// The offset (with the state changes) is committed after the emits: a
    /// crash may repeat the batch in flight's emits, never its state changes.
    #[default]
    AtLeastOnce,
    /// Emits, state changes and offset commit as one unit: after any crash
    /// every input record's effects appear exactly once, and no reader sees
    /// an emit of a batch that did not commit.
    ExactlyOnce,
}

impl FromStr for CommitMode {
    type Err = String;

    fn from_str(s: &str) -> Result<CommitMode, String> {
        match s {
            "at-most-once" => Ok(CommitMode::AtMostOnce),
            "at-least-once" => Ok(CommitMode::AtLeastOnce),
            "exactly-once" => Ok(CommitMode::ExactlyOnce),
            _ => Err(format!(
                "unknown commit mode {s:?}: expected at-most-once, at-least-once or exactly-once"
            )),
        }
    }
}

impl fmt::Display for CommitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommitMode::AtMostOnce => "at-most-once",
            CommitMode::AtLeastOnce => "at-least-once",
            CommitMode::ExactlyOnce => "exactly-once",
        })
    }
}

impl ConsumerError {
    /// The commit was refused because this member no longer owns the
    /// partition at its generation (a zombie); nothing was written.
    pub fn is_fenced(&self) -> bool {
        matches!(
            self,
            ConsumerError::Group(GroupError::Fenced { .. })
                | ConsumerError::Cluster(crate::cluster::ClusterError::Fenced { .. })
        )
    }
}

/// A batch of consecutive records from one partition.
#[derive(Debug, Clone)]
pub struct Polled {
    pub topic: String,
    pub partition: u32,
    /// The partition's high watermark at the time of the read.
    pub high_watermark: u64,
    /// Never empty.
    pub records: Vec<StoredRecord>,
}

impl Polled {
    /// The offset after the batch's last record: what committing it all moves
    /// the group to.
    pub fn next_offset(&self) -> u64 {
        self.records.last().map_or(0, |r| r.offset + 1)
    }

    /// The partition the batch came from.
    pub fn source(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

/// A record a batch sends to a topic; the backend places it by its key.
#[derive(Debug, Clone)]
pub struct Emit {
    pub topic: String,
    pub record: Record,
}

/// What one batch commits, as one unit.
#[derive(Debug)]
pub struct Commit {
    /// The partition the batch was read from.
    pub source: TopicPartition,
    /// The group's next position on it.
    pub next: u64,
    /// Records to append, in order.
    pub emits: Vec<Emit>,
    /// Topics to create (if missing) with as many partitions as another,
    /// before the emits are placed: (topic, like). A shadow's side topics.
    pub create_like: Vec<(String, String)>,
    /// The batch's state changes: they commit with the offset in every mode.
    pub state: Vec<Change>,
    pub mode: CommitMode,
}

/// Bounds on one poll.
#[derive(Debug, Clone, Copy)]
pub struct PollLimits {
    pub max_records: usize,
    pub max_bytes: u64,
    /// How long a poll waits for new records before returning nothing.
    pub max_wait: Duration,
}

impl Default for PollLimits {
    fn default() -> Self {
        PollLimits {
            max_records: 500,
            max_bytes: 1 << 20,
            max_wait: Duration::from_millis(500),
        }
    }
}

/// Who a consumer is in its group.
#[derive(Debug, Clone)]
pub struct Membership {
    pub group: String,
    pub topics: Vec<String>,
    /// A static instance id (KIP-345): a restart that rejoins within the
    /// session timeout keeps its assignment without a rebalance.
    pub instance_id: Option<String>,
    pub reset: ResetPolicy,
    pub settings: GroupSettings,
    /// The group's state: caught up (and, after a crash, the last commit
    /// completed) before a partition is polled.
    pub state: Arc<StateStore>,
}

/// A boxed future, for the seam's one asynchronous call.
pub type PollFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Polled>, ConsumerError>> + Send + 'a>>;

/// Where processors' records live: lets members join, and moves a stopped
/// group.
pub trait Backend: Send + Sync {
    /// Joins `membership.group` and takes the first assignment.
    fn join(&self, membership: Membership) -> Result<Box<dyn Consumer>, ConsumerError>;

    /// Creates `topic` with `partitions` partitions unless it exists (a
    /// processor's dead-letter topic).
    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), ConsumerError>;

    /// The local copy of `group`'s state, shared by every member in this
    /// process.
    fn state(&self, group: &str) -> Result<Arc<StateStore>, ConsumerError>;

    /// Moves `group`'s committed positions (and its state with them) on
    /// `topics`, every partition or none; the caller has stopped the group's
    /// members.
    fn reset(
        &self,
        group: &str,
        topics: &[String],
        to: SeekTo,
    ) -> Result<Vec<Moved>, ConsumerError>;
}

/// Reports a member (by id) alive to its group; see [`Consumer::beat`].
pub type Beat = Arc<dyn Fn(&str) -> Result<(), ConsumerError> + Send + Sync>;

/// One member of a group, reading its assigned partitions.
pub trait Consumer: Send + Sync {
    /// The group this consumer commits for.
    fn group(&self) -> &str;

    /// This consumer's member id.
    fn member(&self) -> &str;

    /// How to report this member alive while a guest call runs (given the
    /// member id current at the call), or `None` when the client heartbeats
    /// by itself.
    fn beat(&self) -> Option<Beat>;

    /// Follows the group's assignment: drops revoked partitions, positions
    /// new ones. A consumer the group no longer knows joins again.
    fn sync(&mut self) -> Result<(), ConsumerError>;

    /// Syncs, then returns the next batch from some assigned partition,
    /// waiting up to `limits.max_wait` for records; `None` when none came.
    fn poll(&mut self, limits: PollLimits) -> PollFuture<'_>;

    /// One pass over the assigned partitions, without waiting or syncing.
    fn try_poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, ConsumerError>;

    /// Commits a batch's outcome as one unit, fenced by the generation.
    fn commit(&mut self, commit: Commit) -> Result<(), ConsumerError>;

    /// Moves this consumer's position on an assigned partition (the next
    /// poll reads from there); commits nothing.
    fn seek(&mut self, tp: &TopicPartition, to: SeekTo) -> Result<u64, ConsumerError>;

    /// Stops fetching a partition; its position stays where it was. A
    /// revoked partition is no longer paused.
    fn pause(&mut self, tp: &TopicPartition);

    /// Fetches every paused partition again, from where it stopped.
    fn resume_all(&mut self);

    /// The paused partitions, in order.
    fn paused(&self) -> Vec<TopicPartition>;

    /// Every assigned partition with this consumer's position on it.
    fn positions(&self) -> Vec<(TopicPartition, u64)>;

    /// Records between the positions and the high watermarks.
    fn lag(&self) -> Result<u64, ConsumerError>;

    /// Leaves the group for good (scale-down); a restart should not call it.
    fn leave(&self);
}
