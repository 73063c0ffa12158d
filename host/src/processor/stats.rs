//! A processor's counters, shared with whoever reports on it while it runs.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters since the processor started.
#[derive(Debug, Default)]
pub struct Stats {
    records: AtomicU64,
    batches: AtomicU64,
    emitted: AtomicU64,
    calls: AtomicU64,
    traps: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    fenced: AtomicU64,
}

macro_rules! counters {
    ($($field:ident => $getter:ident, $doc:literal;)*) => {
        impl Stats {
            $(
                #[doc = $doc]
                pub fn $getter(&self) -> u64 {
                    self.$field.load(Ordering::Relaxed)
                }
            )*
        }
    };
}

counters! {
    records => records, "Records committed past (processed, skipped or dead-lettered).";
    batches => batches, "Commits made.";
    emitted => emitted, "Records emitted by committed batches.";
    calls => calls, "Guest calls that returned (successfully or with a failure).";
    traps => traps, "Guest calls that trapped or overran a limit.";
    retries => retries, "Backoffs taken before calling again.";
    skipped => skipped, "Records skipped at the guest's request.";
    dead_lettered => dead_lettered, "Records sent to the dead-letter topic.";
    fenced => fenced, "Batches abandoned because the group fenced their commit.";
}

impl Stats {
    pub(super) fn record_batch(&self, records: u64) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
    }

    pub(super) fn record_emitted(&self, n: u64) {
        self.emitted.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn record_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_trap(&self) {
        self.traps.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_fenced(&self) {
        self.fenced.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_dead_letter(&self) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }
}
