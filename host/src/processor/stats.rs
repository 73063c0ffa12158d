//! A processor's counters, shared with whoever reports on it while it runs.

use std::sync::Mutex;

use crate::group::TopicPartition;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Counters since the processor started. Each count also goes to the
/// `metrics` facade (and so to `/metrics` under `weir serve`), labelled by
/// processor and guest version.
#[derive(Debug, Default)]
pub struct Stats {
    processor: String,
    records: AtomicU64,
    batches: AtomicU64,
    emitted: AtomicU64,
    calls: AtomicU64,
    traps: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    dead_lettered: AtomicU64,
    fenced: AtomicU64,
    lost: AtomicU64,
    lag_skipped: AtomicU64,
    /// Partitions the pause policy stopped, as (topic, partition).
    paused: Mutex<Vec<TopicPartition>>,
    /// Failed attempts at the batch in flight (0 once it commits).
    attempts: AtomicU32,
    /// Why the last attempt at the batch in flight failed.
    last_error: Mutex<Option<String>>,
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
    lost => lost, "Records an at-most-once processor lost to a failure.";
    lag_skipped => lag_skipped, "Records skipped by lag tolerance.";
}

/// The failure kinds `weir_failures_total` counts.
const FAILURE_KINDS: [&str; 3] = ["trap", "skip", "dead-letter"];

impl Stats {
    /// Creates `processor`'s series for guest `version` at 0 (counters, the
    /// paused-partitions gauge, the latency histograms), so an idle
    /// processor shows on `/metrics` before its first batch. Called when a
    /// version starts running.
    pub fn register(processor: &str, version: &str) {
        let (p, v) = (processor.to_string(), version.to_string());
        for name in [
            "weir_batches_total",
            "weir_records_processed_total",
            "weir_emitted_records_total",
            "weir_records_lost_total",
            "weir_dlq_records_total",
        ] {
            metrics::counter!(name, "processor" => p.clone(), "version" => v.clone()).increment(0);
        }
        for kind in FAILURE_KINDS {
            metrics::counter!("weir_failures_total", "processor" => p.clone(), "version" => v.clone(), "kind" => kind)
                .increment(0);
        }
        metrics::counter!("weir_lag_skipped_records_total", "processor" => p.clone()).increment(0);
        metrics::counter!("weir_breaker_trips_total", "processor" => p.clone()).increment(0);
        metrics::gauge!("weir_paused_partitions", "processor" => p.clone()).increment(0.0);
        for name in ["weir_guest_process_seconds", "weir_commit_seconds"] {
            // Registering a histogram records nothing.
            let _ = metrics::histogram!(name, "processor" => p.clone(), "version" => v.clone());
        }
    }

    pub(super) fn new(processor: &str) -> Stats {
        Stats {
            processor: processor.to_string(),
            ..Stats::default()
        }
    }

    fn count(&self, name: &'static str, version: &str, n: u64) {
        metrics::counter!(name, "processor" => self.processor.clone(), "version" => version.to_string()).increment(n);
    }

    fn failure(&self, kind: &'static str, version: &str) {
        metrics::counter!("weir_failures_total", "processor" => self.processor.clone(), "version" => version.to_string(), "kind" => kind)
            .increment(1);
    }

    pub(super) fn record_batch(&self, records: u64, version: &str) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.count("weir_batches_total", version, 1);
        self.count("weir_records_processed_total", version, records);
    }

    pub(super) fn record_emitted(&self, n: u64, version: &str) {
        self.emitted.fetch_add(n, Ordering::Relaxed);
        self.count("weir_emitted_records_total", version, n);
    }

    /// How long a guest call or a commit took.
    pub(super) fn record_latency(&self, name: &'static str, version: &str, seconds: f64) {
        metrics::histogram!(name, "processor" => self.processor.clone(), "version" => version.to_string()).record(seconds);
    }

    pub(super) fn record_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_trap(&self, version: &str) {
        self.traps.fetch_add(1, Ordering::Relaxed);
        self.failure("trap", version);
    }

    pub(super) fn record_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn record_skip(&self, version: &str) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.failure("skip", version);
    }

    pub(super) fn record_lost(&self, records: u64, version: &str) {
        self.lost.fetch_add(records, Ordering::Relaxed);
        self.count("weir_records_lost_total", version, records);
    }

    pub(super) fn record_lag_skip(&self, records: u64) {
        self.lag_skipped.fetch_add(records, Ordering::Relaxed);
        metrics::counter!("weir_lag_skipped_records_total", "processor" => self.processor.clone())
            .increment(records);
    }

    pub(super) fn record_fenced(&self) {
        self.fenced.fetch_add(1, Ordering::Relaxed);
    }

    /// A failed attempt at the batch in flight: the `attempts`-th, failing
    /// with `error`.
    pub(super) fn record_attempt(&self, attempts: u32, error: String) {
        self.attempts.store(attempts, Ordering::Relaxed);
        *self.last_error.lock().expect("stats lock") = Some(error);
    }

    /// The batch in flight is done with (committed, or left): no failure
    /// stands.
    pub(super) fn clear_attempts(&self) {
        self.attempts.store(0, Ordering::Relaxed);
        *self.last_error.lock().expect("stats lock") = None;
    }

    /// Failed attempts at the batch in flight, and why the last one failed
    /// (0 and `None` while nothing fails).
    pub fn retrying(&self) -> (u32, Option<String>) {
        let error = self.last_error.lock().expect("stats lock").clone();
        (self.attempts.load(Ordering::Relaxed), error)
    }

    /// The circuit breaker tripped.
    pub(super) fn record_trip(&self) {
        metrics::counter!("weir_breaker_trips_total", "processor" => self.processor.clone())
            .increment(1);
    }

    /// The partitions this member has paused after a batch kept failing (as
    /// they were when it stopped, once it has).
    pub fn paused_partitions(&self) -> Vec<TopicPartition> {
        self.paused.lock().expect("stats lock").clone()
    }

    /// Publishes the member's paused partitions (the `weir_paused_partitions`
    /// gauge sums them over the processor's members).
    pub(super) fn set_paused(&self, now: Vec<TopicPartition>) {
        let mut paused = self.paused.lock().expect("stats lock");
        if *paused == now {
            return;
        }
        let change = now.len() as f64 - paused.len() as f64;
        metrics::gauge!("weir_paused_partitions", "processor" => self.processor.clone())
            .increment(change);
        *paused = now;
    }

    /// The member stopped: its paused partitions leave the gauge (a restarted
    /// member fetches them again), but stay listed here.
    pub(super) fn stopped(&self) {
        let paused = self.paused.lock().expect("stats lock");
        metrics::gauge!("weir_paused_partitions", "processor" => self.processor.clone())
            .decrement(paused.len() as f64);
    }

    pub(super) fn record_dead_letter(&self, version: &str) {
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        self.failure("dead-letter", version);
        self.count("weir_dlq_records_total", version, 1);
    }
}
