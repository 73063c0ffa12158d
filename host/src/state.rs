//! Guest state: keyed values scoped to a processor's group and an input
//! partition, kept as records of an internal changelog topic and materialized
//! in a local embedded store.
//!
//! The changelog is the truth. Each topic a group reads has a changelog
//! `__state.<group>.<topic>` with as many partitions; a commit that changes
//! state (or, exactly-once, emits) appends one batch to the input partition's
//! changelog partition: the state changes, the emits bound for other topics
//! (exactly-once only), and a marker naming the input position the group
//! reaches. Records after the last marker never count (a torn commit), so a
//! batch of the changelog is the atomic unit that makes "state changes commit
//! with the offset" true in every mode, and "emits commit with them" in
//! exactly-once mode. A rewind appends a reset marker after a snapshot of the
//! state at the target position, so replaying the changelog from the start
//! always yields the current timeline (see [`changelog`]).
//!
//! The store ([`store`]) is a cache of the changelog in redb, so state is not
//! bound by RAM. It keeps, per partition, the changelog offset it reflects (its
//! checkpoint) and the input position; it catches up from its checkpoint
//! before a partition is processed, and is made durable between batches from
//! time to time and on a clean stop, so a restart replays only what came
//! after.

pub mod changelog;
pub mod store;
mod view;

use std::path::{Path, PathBuf};

pub use changelog::{Entry, Marker, changelog_topic};
pub use store::{PartitionMeta, StateStore};
pub use view::PartitionView;

/// The longest state key a guest may use.
pub const MAX_KEY_BYTES: usize = 4 << 10;
/// The largest state value a guest may store.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// The default budget of a processor's state (keys + values, every partition).
pub const DEFAULT_BUDGET_BYTES: u64 = 1 << 30;

/// One change to state: a key and its new value, or `None` for a delete.
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// One key and its stored value, as a scan or a snapshot returns them.
pub type KeyValue = (Vec<u8>, Vec<u8>);

/// Why state could not be read, written or restored.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store {path}")]
    Store {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    #[error("malformed changelog record at {topic}/{partition} offset {offset}: {reason}")]
    Malformed {
        topic: String,
        partition: u32,
        offset: u64,
        reason: String,
    },
    #[error("changelog")]
    Log(#[from] crate::log::LogError),
}

impl StateError {
    pub(crate) fn store(path: &Path, source: impl Into<redb::Error>) -> StateError {
        StateError::Store {
            path: path.to_path_buf(),
            source: source.into(),
        }
    }
}
