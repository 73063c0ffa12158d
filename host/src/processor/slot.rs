//! The version slot a processor's members share: a hot swap replaces what it
//! holds, and each batch reads it once, so a swap lands between batches.

use std::sync::Arc;

use crate::runtime::Handler;

/// The version a processor runs, swappable while its members run. Each batch
/// takes the version that is current when it starts, so every record is
/// processed by exactly one version, and a swap neither waits for nor interrupts
/// a batch in flight: members pick the new version up at their next batch.
pub struct Slot {
    current: std::sync::RwLock<Arc<dyn Handler>>,
}

impl Slot {
    /// A slot holding `handler`.
    pub fn new(handler: Arc<dyn Handler>) -> Arc<Slot> {
        Arc::new(Slot {
            current: std::sync::RwLock::new(handler),
        })
    }

    /// The version to use for the next batch.
    pub fn current(&self) -> Arc<dyn Handler> {
        self.current.read().expect("slot lock").clone()
    }

    /// Installs `handler` for every batch that starts from now on; returns the
    /// version it replaced.
    pub fn swap(&self, handler: Arc<dyn Handler>) -> Arc<dyn Handler> {
        let to = handler.version().to_owned();
        // The lock is held for the exchange only: members read the slot at
        // every batch, and a writer that logged (or was descheduled) while
        // holding it would stall them all.
        let old = std::mem::replace(&mut *self.current.write().expect("slot lock"), handler);
        tracing::info!(from = old.version(), to, "swapping guest version");
        old
    }
}
