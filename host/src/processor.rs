//! The trigger: one group member's poll → process → commit loop.
//!
//! A batch is committed only after its handler returns. When the guest reports a
//! failure at record *i* > 0, the prefix before *i* is run again on its own and
//! committed with its own emits (the failed call's emits are never appended, and
//! they cannot be split by record); the loop then meets record *i* at the front
//! of the next batch and applies the failure kind to it: `retry` backs off and
//! calls again, `skip` commits past it, `dead-letter` appends it to
//! `<processor>.dlq` and commits past it, `fatal` stops the processor. A trap
//! (or a blown limit) commits nothing and is retried with backoff; when the
//! retries run out, the policy stops the processor, isolates the poison record,
//! or pauses the partition.
//!
//! Every commit goes through the commit step (`commit.rs`), the one place
//! where a batch's emits and its next offset leave the processor, through the
//! seam ([`crate::consumer::Consumer`]) as one unit. What each guest call leads
//! to is decided by one pure function (`decision.rs`) that the poison-record
//! isolation shares.
//!
//! A circuit breaker (`breaker.rs`) stops the member when failures are
//! systemic rather than one poison record's, before the input drains into the
//! dead-letter topic. A batch the host interrupts (a shutdown past its grace)
//! is left uncommitted, for the next start.

mod breaker;
mod commit;
mod config;
#[cfg(feature = "crash-seam")]
mod crash;
mod decision;
mod error;
mod instances;
mod pacemaker;
mod poison;
mod slot;
pub mod spec;
mod stats;

use std::sync::Arc;

use tokio::sync::watch;

pub use config::{
    DEFAULT_BREAKER_THRESHOLD, LagSkip, ProcessorConfig, RetryPolicy, WhenExhausted, WhenTripped,
};
pub use decision::{Decision, Handled, Step, dead_letter, decide, dlq_headers};
pub use error::{Attempt, ProcessorError};
pub use instances::{Instances, Processed};
pub use slot::Slot;
pub use spec::{MAX_DEADLINE, MAX_INSTANCES, ProcessorSpec, SpecChanges};
pub use stats::Stats;

use pacemaker::Pacemaker;

use crate::consumer::{Backend, Commit, CommitMode, Consumer, Membership, Polled};
use crate::runtime::{Handler, Output, RuntimeError, StateView};
use crate::state::{PartitionView, StateStore};

/// One member of a processor's group, running its handler over polled batches.
pub struct Processor {
    config: ProcessorConfig,
    consumer: Box<dyn Consumer>,
    /// The guest version; read once per batch, so a swap lands between batches.
    slot: Arc<Slot>,
    stats: Arc<Stats>,
    /// The version that paused partitions: once another is swapped in, they
    /// are fetched again, so a fix gets its chance at the poison record.
    paused_by: Option<String>,
    /// The group's state, read by every batch.
    state: Arc<StateStore>,
    /// When the state store was last made durable.
    persisted: std::time::Instant,
    /// Records dead-lettered since one was last processed: the breaker's count.
    dead_letters_in_row: u32,
    /// Heartbeats while a guest call runs, started with the first call.
    pacemaker: Option<Pacemaker>,
}

/// How often the state store is made durable between batches (the changelog
/// holds everything anyway; this bounds what a restart replays).
const PERSIST_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Processor {
    /// Prepares a processor: validates its names, creates its dead-letter topic
    /// and joins its group.
    pub fn new(
        config: ProcessorConfig,
        backend: &dyn Backend,
        handler: Arc<dyn Handler>,
    ) -> Result<Processor, ProcessorError> {
        Processor::with_slot(config, backend, Slot::new(handler))
    }

    /// Like [`Processor::new`], sharing a version slot with other members.
    pub fn with_slot(
        config: ProcessorConfig,
        backend: &dyn Backend,
        slot: Arc<Slot>,
    ) -> Result<Processor, ProcessorError> {
        crate::name::validate("processor", &config.name)
            .map_err(|e| ProcessorError::Name(e.into()))?;
        backend.ensure_topic(&config.dlq_topic(), 1)?;
        let group = config.group.clone().unwrap_or_else(|| config.name.clone());
        let state = backend.state(&group)?;
        let membership = Membership {
            group,
            topics: config.topics.clone(),
            instance_id: config.instance_id.clone(),
            reset: config.reset,
            settings: config.group_settings,
            state: state.clone(),
        };
        let consumer = backend.join(membership)?;
        #[cfg(feature = "crash-seam")]
        let consumer = crash::wrap(consumer);
        let stats = Arc::new(Stats::new(&config.name));
        Ok(Processor {
            config,
            consumer,
            slot,
            stats,
            paused_by: None,
            state,
            persisted: std::time::Instant::now(),
            dead_letters_in_row: 0,
            pacemaker: None,
        })
    }

    /// Counters that stay readable while the processor runs.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The consumer, for positions and lag.
    pub fn consumer(&self) -> &dyn Consumer {
        self.consumer.as_ref()
    }

    /// Runs until `shutdown` turns true (finishing and committing the batch in
    /// flight) or a failure stops the processor.
    pub async fn run(
        mut self,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<Processor, ProcessorError> {
        while !*shutdown.borrow() {
            self.resume_after_swap();
            let polled = tokio::select! {
                polled = self.consumer.poll(self.config.poll) => polled?,
                // A dropped sender means nobody can stop us any more: stop now.
                changed = shutdown.changed() => if changed.is_err() { break } else { continue },
            };
            if self.paused_by.is_some() {
                // A rebalance may have taken paused partitions away.
                self.stats.set_paused(self.consumer.paused());
            }
            if let Some(batch) = polled {
                match self.process(batch, &mut shutdown).await {
                    Err(ProcessorError::Interrupted) => break,
                    done => done?,
                }
            }
        }
        Ok(self.finish())
    }

    /// Runs until every assigned partition is caught up, then returns.
    pub async fn run_until_caught_up(mut self) -> Result<Processor, ProcessorError> {
        let (_tx, mut rx) = watch::channel(false);
        loop {
            // Syncing every round keeps the member polling in the group's eyes
            // (max poll interval) and follows any reassignment.
            self.consumer.sync()?;
            self.resume_after_swap();
            let Some(batch) = self.consumer.try_poll(self.config.poll)? else {
                break;
            };
            match self.process(batch, &mut rx).await {
                Err(ProcessorError::Interrupted) => break,
                done => done?,
            }
        }
        Ok(self.finish())
    }

    /// A dynamic member leaves its group when it stops, so the group can
    /// rebalance (or be reset) at once; a static member stays until its session
    /// times out, so a quick restart keeps its partitions without a rebalance.
    fn finish(mut self) -> Processor {
        self.persist();
        if self.config.instance_id.is_none() {
            self.consumer.leave();
        }
        self.stats.stopped();
        self
    }

    /// Fetches paused partitions again once a new version has been swapped in.
    fn resume_after_swap(&mut self) {
        let Some(paused_by) = &self.paused_by else {
            return;
        };
        let current = self.slot.current();
        if current.version() != paused_by {
            tracing::info!(processor = %self.config.name, version = current.version(), partitions = ?self.consumer.paused(), "new version: resuming paused partitions");
            self.consumer.resume_all();
            self.paused_by = None;
            self.stats.set_paused(Vec::new());
        }
    }

    async fn process(
        &mut self,
        mut batch: Polled,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProcessorError> {
        let mut attempts = 0u32;
        let handler = self.slot.current();
        let dlq = self.config.dlq_topic();
        if self.skip_lagging(&batch)? {
            return Ok(());
        }
        let at_most_once = self.config.commit == CommitMode::AtMostOnce;
        if at_most_once && !self.commit_before(&batch)? {
            return Ok(());
        }
        loop {
            let (returned, result) = self.call(&handler, batch).await?;
            batch = returned;
            let first = batch.records[0].offset;
            if result.is_ok() {
                self.stats.record_call();
            }
            let last = match decide(&batch, result, &dlq, handler.version()) {
                Decision::Commit(step) => {
                    self.note(&step.handled, handler.version(), first);
                    let moved = (step.next - first) as usize;
                    self.commit(&batch, step, handler.version())?;
                    if at_most_once && moved < batch.records.len() {
                        // The offset already stands past the batch: what is
                        // left of it is handled here or never.
                        batch.records.drain(..moved);
                        attempts = 0;
                        continue;
                    }
                    self.persist_now_and_then();
                    return Ok(());
                }
                Decision::Prefix(len) => {
                    batch.records.truncate(len);
                    continue;
                }
                Decision::Stop(e) => return Err(e),
                Decision::Retry(last) => last,
            };
            if let Attempt::Fault(fault) = &last {
                self.stats.record_trap(handler.version());
                tracing::warn!(processor = %self.config.name, offset = first, error = %fault, "guest fault");
            }
            if at_most_once {
                tracing::warn!(processor = %self.config.name, offset = first, records = batch.records.len(), error = %last, "at-most-once: the batch is lost");
                self.stats
                    .record_lost(batch.records.len() as u64, handler.version());
                return Ok(());
            }
            attempts += 1;
            self.stats
                .record_attempt(attempts, crate::error::chain(&last));
            if self
                .retry_or_isolate(&handler, &batch, attempts, last, shutdown)
                .await?
            {
                return Ok(());
            }
        }
    }

    /// Runs the handler on this member's thread, the pacemaker heartbeating
    /// meanwhile so a long batch is not mistaken for a dead member (the max
    /// poll interval still bounds it). On a multi-threaded runtime the call
    /// blocks in place (the worker's other tasks move to another thread); a
    /// current-thread runtime hands it to a blocking thread instead.
    async fn call(
        &mut self,
        handler: &Arc<dyn Handler>,
        batch: Polled,
    ) -> Result<(Polled, Result<Output, RuntimeError>), ProcessorError> {
        let view: Arc<dyn StateView> = Arc::new(
            PartitionView::new(self.state.clone(), batch.source(), self.config.state_budget)
                .map_err(|e| ProcessorError::Consumer(e.into()))?,
        );
        if self.pacemaker.is_none()
            && let Some(beat) = self.consumer.beat()
        {
            let interval = self.config.group_settings.session_timeout / 3;
            self.pacemaker = Some(Pacemaker::start(&self.config.name, beat, interval));
        }
        let _beating = self
            .pacemaker
            .as_ref()
            .map(|p| p.beating(self.consumer.member()));
        let (handler, stats) = (handler.clone(), self.stats.clone());
        let run = move || {
            let started = std::time::Instant::now();
            let result = handler.handle(&batch, view);
            let seconds = started.elapsed().as_secs_f64();
            stats.record_latency("weir_guest_process_seconds", handler.version(), seconds);
            (batch, result)
        };
        let multi_thread = tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
        let done = if multi_thread {
            tokio::task::block_in_place(run)
        } else {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(ProcessorError::Task)?
        };
        match done {
            (batch, Err(RuntimeError::Interrupted)) => {
                tracing::warn!(processor = %self.config.name, topic = %batch.topic, partition = batch.partition, offset = batch.records[0].offset, "batch interrupted by the shutdown; it is redelivered on the next start");
                Err(ProcessorError::Interrupted)
            }
            done => Ok(done),
        }
    }

    /// Lag tolerance: when `batch` shows its partition too far behind, moves
    /// the partition to its latest offset (committing it, so a restart does
    /// not go back) instead of processing. Returns whether it skipped.
    fn skip_lagging(&mut self, batch: &Polled) -> Result<bool, ProcessorError> {
        let Some(bound) = self.config.lag_skip else {
            return Ok(false);
        };
        let first = &batch.records[0];
        let lag = batch.high_watermark - first.offset;
        if !bound.exceeded(lag, crate::log::now_ms() - first.timestamp) {
            return Ok(false);
        }
        let commit = Commit {
            source: batch.source(),
            next: batch.high_watermark,
            emits: Vec::new(),
            create_like: Vec::new(),
            state: Vec::new(),
            mode: self.config.commit,
        };
        match self.consumer.commit(commit) {
            Err(e) if e.is_fenced() => {
                self.stats.record_fenced();
                return Ok(true);
            }
            other => other?,
        }
        tracing::warn!(processor = %self.config.name, topic = %batch.topic, partition = batch.partition, from = first.offset, to = batch.high_watermark, skipped = lag, "lagging too far: skipped to the latest offset");
        self.stats.record_lag_skip(lag);
        Ok(true)
    }

    /// At-most-once: commits the batch's end before the guest sees it.
    /// Returns `false` when the group fenced the commit (the batch is left to
    /// its new owner).
    fn commit_before(&mut self, batch: &Polled) -> Result<bool, ProcessorError> {
        let commit = Commit {
            source: batch.source(),
            next: batch.next_offset(),
            emits: Vec::new(),
            create_like: Vec::new(),
            state: Vec::new(),
            mode: CommitMode::AtMostOnce,
        };
        match self.consumer.commit(commit) {
            Err(e) if e.is_fenced() => {
                self.stats.record_fenced();
                Ok(false)
            }
            other => Ok(other.map(|()| true)?),
        }
    }

    /// Makes the state store durable every [`PERSIST_EVERY`], between
    /// batches, so a restart replays little of the changelog.
    fn persist_now_and_then(&mut self) {
        if self.persisted.elapsed() >= PERSIST_EVERY {
            self.persist();
        }
    }

    fn persist(&mut self) {
        if let Err(e) = self.state.persist() {
            tracing::warn!(processor = %self.config.name, error = %crate::error::chain(&e), "could not make the state durable");
        }
        self.persisted = std::time::Instant::now();
    }

    /// Counts (and logs) what a committed step did with its front record.
    fn note(&self, handled: &Handled, version: &str, offset: u64) {
        match handled {
            Handled::Processed => {}
            Handled::Skipped(reason) => {
                self.stats.record_skip(version);
                tracing::warn!(processor = %self.config.name, offset, %reason, "skipping record");
            }
            Handled::DeadLettered => self.stats.record_dead_letter(version),
        }
    }

    /// Leaves the group for good (scale-down).
    pub fn leave(&self) {
        self.consumer.leave();
    }
}
