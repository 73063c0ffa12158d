//! Group commit and poisoning for one partition.
//!
//! Appends write their batch under the writer lock and leave; under
//! [`Durability::Always`](super::Durability::Always) each then waits here until
//! an fsync covers its last offset. The first waiter to find no fsync running
//! becomes the leader: it fsyncs the active segment for everything written so
//! far, without holding any lock, while later appends keep writing. When it
//! finishes, every waiter at or below the synced offset returns at once (one
//! fsync acknowledges the whole group) and the high watermark moves.
//!
//! Invariants: `durable <= written.offset`; the high watermark under `always`
//! never passes `durable`; once `poison` is set it is never cleared, every
//! waiter not yet covered fails, and no later append is written.

use std::sync::Arc;

use super::super::LogError;
use super::super::segment::{ActiveSegment, SealedSegment, SegmentReader};
use super::Partition;

/// How far the writer has got: offsets below `offset` are written; those in
/// older segments are durable (sealing fsyncs), the rest sit in `segment`.
#[derive(Debug, Clone)]
pub struct Mark {
    pub offset: u64,
    /// Bytes written to the segment.
    pub size: u64,
    /// The active segment the mark is in.
    segment: Arc<SegmentReader>,
}

impl Mark {
    pub fn of(active: &ActiveSegment) -> Mark {
        Mark {
            offset: active.next_offset(),
            size: active.size(),
            segment: active.reader().clone(),
        }
    }
}

/// The first failure, kept so every later append can say why it is refused.
#[derive(Debug, Clone)]
struct Poison {
    op: &'static str,
    source: Arc<std::io::Error>,
}

#[derive(Debug)]
pub struct CommitState {
    written: Mark,
    /// Offsets below this are known durable.
    durable: u64,
    /// Whether a leader is fsyncing right now.
    syncing: bool,
    poison: Option<Poison>,
}

impl CommitState {
    pub fn new(written: Mark) -> CommitState {
        CommitState {
            // Whatever recovery found is on disk: it was read back from it.
            durable: written.offset,
            written,
            syncing: false,
            poison: None,
        }
    }
}

impl Partition {
    fn poisoned(&self, poison: &Poison) -> LogError {
        LogError::Poisoned {
            path: self.dir.clone(),
            op: poison.op,
            source: poison.source.clone(),
        }
    }

    /// Marks the partition failed after `op` went wrong and returns the error
    /// for the caller. The first failure is the one every later append reports.
    pub(super) fn poison(&self, op: &'static str, error: std::io::Error) -> LogError {
        let mut state = self.commit.lock().expect("commit lock");
        let poison = state.poison.get_or_insert_with(|| {
            tracing::error!(partition = %self.dir.display(), op, error = %error, "partition poisoned");
            Poison {
                op,
                source: Arc::new(error),
            }
        });
        let err = self.poisoned(poison);
        drop(state);
        self.committed.notify_all();
        err
    }

    /// Fails if the partition is poisoned.
    pub(super) fn check_poison(&self) -> Result<(), LogError> {
        let state = self.commit.lock().expect("commit lock");
        match &state.poison {
            Some(poison) => Err(self.poisoned(poison)),
            None => Ok(()),
        }
    }

    /// Whether an earlier failure refuses appends until the log is reopened.
    pub fn is_poisoned(&self) -> bool {
        self.commit.lock().expect("commit lock").poison.is_some()
    }

    /// Records a written batch. Unless the policy is `always`, it becomes
    /// visible to readers at once.
    pub(super) fn record_written(&self, mark: Mark, visible_now: bool) {
        let mut state = self.commit.lock().expect("commit lock");
        if visible_now {
            self.publish(&mark);
        }
        state.written = mark;
    }

    /// After a roll: everything before `mark` is durable (sealing fsynced it)
    /// and the new segment is where appends go.
    pub(super) fn record_rolled(&self, mark: Mark, sealed: SealedSegment) {
        let mut state = self.commit.lock().expect("commit lock");
        state.durable = state.durable.max(mark.offset);
        let mut view = self.view.write().expect("view lock");
        let mut segments = Vec::clone(&view.sealed);
        segments.push(sealed);
        view.sealed = Arc::new(segments);
        view.active = mark.segment.clone();
        view.active_limit = 0;
        view.high_watermark = view.high_watermark.max(mark.offset);
        drop(view);
        state.written = mark;
        drop(state);
        self.committed.notify_all();
    }

    /// Moves the high watermark to `mark` if that is forward.
    fn publish(&self, mark: &Mark) {
        let mut view = self.view.write().expect("view lock");
        if mark.offset > view.high_watermark && mark.segment.base == view.active.base {
            view.high_watermark = mark.offset;
            view.active_limit = mark.size;
        }
    }

    /// Returns once offsets below `target` are durable, fsyncing as the group
    /// leader if no fsync is running. Under `always` this also publishes them.
    pub(super) fn wait_durable(&self, target: u64) -> Result<(), LogError> {
        let mut state = self.commit.lock().expect("commit lock");
        loop {
            if state.durable >= target {
                return Ok(());
            }
            if let Some(poison) = &state.poison {
                return Err(self.poisoned(poison));
            }
            if state.syncing {
                state = self.committed.wait(state).expect("commit lock");
                continue;
            }
            state.syncing = true;
            let mark = state.written.clone();
            drop(state);
            let result = mark.segment.file().sync_data();
            state = self.commit.lock().expect("commit lock");
            state.syncing = false;
            match result {
                Ok(()) => {
                    state.durable = state.durable.max(mark.offset);
                    self.publish(&mark);
                }
                Err(error) => {
                    tracing::error!(segment = %mark.segment.path.display(), error = %error, "fsync failed; partition poisoned");
                    state.poison.get_or_insert(Poison {
                        op: "fsync",
                        source: Arc::new(error),
                    });
                }
            }
            self.committed.notify_all();
        }
    }

    /// Makes everything written so far durable (and, under `always`, visible).
    pub fn sync(&self) -> Result<(), LogError> {
        let target = self.commit.lock().expect("commit lock").written.offset;
        self.wait_durable(target)
    }

    /// Whether written data is waiting for an fsync.
    pub fn is_dirty(&self) -> bool {
        let state = self.commit.lock().expect("commit lock");
        state.durable < state.written.offset
    }
}
