//! The embedded broker: one handle owning the log, the committed offsets and
//! the group coordinator of a data directory, opened in one place. Everything
//! that reads or moves a group's position goes through it ([`admin`]: the
//! reset policy, lag, seek and reset, group listing, topic deletion with its
//! offsets), and so do the API's topic and produce operations (`topics.rs`:
//! topic info, creation, produce by the log's placement rule), and it is the embedded backend of the processor loop's seam
//! ([`crate::consumer::Backend`]).
//!
//! Lock order: a group's lock (the coordinator) is taken before the offsets'
//! lock, never the other way round; the log's locks are innermost.

pub mod admin;
mod consumer;
mod state;
mod topics;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use crate::wire::{GroupLag, Moved, PartitionLag, SeekTo};
pub use admin::ResetPolicy;
pub use consumer::EmbeddedConsumer;

use crate::group::Groups;
use crate::log::{Log, LogError, LogOptions};
use crate::offsets::{Offsets, OffsetsError};
use crate::state::StateStore;

/// Why a data directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("opening the log")]
    Log(#[from] LogError),
    #[error("loading committed offsets")]
    Offsets(#[from] OffsetsError),
}

/// The log, committed offsets and groups of one data directory. Cloning it
/// clones three handles to the same state.
#[derive(Clone)]
pub struct Broker {
    log: Arc<Log>,
    offsets: Arc<Offsets>,
    groups: Arc<Groups>,
    /// Each group's state store, opened once (redb allows one handle per
    /// file).
    stores: Arc<Mutex<HashMap<String, Arc<StateStore>>>>,
}

impl Broker {
    /// Opens (creating if needed) the data directory with default options.
    pub fn open(data_dir: &Path) -> Result<Arc<Broker>, BrokerError> {
        Broker::open_with(data_dir, LogOptions::default())
    }

    /// Opens the data directory: recovers the log, replays the committed
    /// offsets, and starts a coordinator with no members.
    pub fn open_with(data_dir: &Path, options: LogOptions) -> Result<Arc<Broker>, BrokerError> {
        let log = Arc::new(Log::open_with(data_dir, options)?);
        Broker::over(log)
    }

    /// A broker over an already opened log.
    pub fn over(log: Arc<Log>) -> Result<Arc<Broker>, BrokerError> {
        let offsets = Arc::new(Offsets::open(log.clone())?);
        let groups = Arc::new(Groups::open(log.clone(), offsets.clone()));
        Ok(Arc::new(Broker {
            log,
            offsets,
            groups,
            stores: Arc::default(),
        }))
    }

    /// The partitioned log.
    pub fn log(&self) -> &Arc<Log> {
        &self.log
    }

    /// Every group's committed offsets.
    pub fn offsets(&self) -> &Arc<Offsets> {
        &self.offsets
    }

    /// The group coordinator.
    pub fn groups(&self) -> &Arc<Groups> {
        &self.groups
    }
}
