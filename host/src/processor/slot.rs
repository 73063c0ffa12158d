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
        let mut current = self.current.write().expect("slot lock");
        tracing::info!(
            from = current.version(),
            to = handler.version(),
            "swapping guest version"
        );
        std::mem::replace(&mut current, handler)
    }
}
