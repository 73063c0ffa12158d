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
//! Every commit goes through [`Processor::commit`], the one place where a
//! batch's emits and its next offset reach the log: emits first, then the offset
//! (at-least-once). An exactly-once journal would replace that one function.

mod config;
mod instances;
mod poison;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

pub use config::{ProcessorConfig, RetryPolicy, WhenExhausted};
pub use instances::Instances;
pub use stats::Stats;

use crate::consumer::{Consumer, Membership, Polled};
use crate::group::{GroupError, Groups};
use crate::log::{Log, LogError, Record, TopicConfig};
use crate::offsets::{Offsets, OffsetsError};
use crate::runtime::{Emit, FailureKind, Handler, Output, RuntimeError, Slot};

/// Headers weir adds: `VERSION` on every emitted and dead-lettered record (the
/// guest version that produced it), the rest on dead-lettered records.
pub mod dlq_headers {
    pub const SOURCE_TOPIC: &str = "weir.source.topic";
    pub const SOURCE_PARTITION: &str = "weir.source.partition";
    pub const SOURCE_OFFSET: &str = "weir.source.offset";
    pub const ERROR: &str = "weir.error";
    pub const VERSION: &str = "weir.version";
}

/// Everything that stops a processor.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("log")]
    Log(#[from] LogError),
    #[error("committed offsets")]
    Offsets(#[from] OffsetsError),
    #[error("group")]
    Group(#[from] GroupError),
    #[error("guest reported a fatal failure at {topic}/{partition} offset {offset}: {message}")]
    Fatal {
        topic: String,
        partition: u32,
        offset: u64,
        message: String,
    },
    #[error("gave up on {topic}/{partition} offset {offset} after {attempts} attempts")]
    Exhausted {
        topic: String,
        partition: u32,
        offset: u64,
        attempts: u32,
        #[source]
        last: Box<Attempt>,
    },
    #[error("guest failed at index {index}, but the batch has {len} records")]
    BadFailureIndex { index: u32, len: usize },
    #[error("guest")]
    Guest(#[source] RuntimeError),
    #[error("processor task")]
    Task(#[source] tokio::task::JoinError),
}

/// Why the last attempt at a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum Attempt {
    #[error("guest asked to retry: {0}")]
    Retry(String),
    #[error(transparent)]
    Fault(RuntimeError),
}

/// An error and its sources on one line (for a dead-letter header, or a log).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// What one batch step commits: the emits to append and the next offset.
struct Step {
    emits: Vec<Emit>,
    next: u64,
}

/// One member of a processor's group, running its handler over polled batches.
pub struct Processor {
    config: ProcessorConfig,
    log: Arc<Log>,
    consumer: Consumer,
    /// The guest version; read once per batch, so a swap lands between batches.
    slot: Arc<Slot>,
    stats: Arc<Stats>,
    /// The version that paused partitions: once another is swapped in, they
    /// are fetched again, so a fix gets its chance at the poison record.
    paused_by: Option<String>,
}

impl Processor {
    /// Prepares a processor: validates its names, creates its dead-letter topic
    /// and joins its group.
    pub fn new(
        config: ProcessorConfig,
        log: Arc<Log>,
        offsets: Arc<Offsets>,
        groups: Arc<Groups>,
        handler: Arc<dyn Handler>,
    ) -> Result<Processor, ProcessorError> {
        Processor::with_slot(config, log, offsets, groups, Slot::new(handler))
    }

    /// Like [`Processor::new`], sharing a version slot with other members.
    pub fn with_slot(
        config: ProcessorConfig,
        log: Arc<Log>,
        offsets: Arc<Offsets>,
        groups: Arc<Groups>,
        slot: Arc<Slot>,
    ) -> Result<Processor, ProcessorError> {
        crate::name::validate("processor", &config.name).map_err(LogError::from)?;
        log.ensure_topic(&config.dlq_topic(), TopicConfig::with_partitions(1))?;
        let membership = Membership {
            group: config.group.clone().unwrap_or_else(|| config.name.clone()),
            topics: config.topics.clone(),
            instance_id: config.instance_id.clone(),
            reset: config.reset,
            settings: config.group_settings,
        };
        let consumer = Consumer::join(log.clone(), offsets, groups, membership)?;
        let stats = Arc::new(Stats::new(&config.name));
        Ok(Processor {
            config,
            log,
            consumer,
            slot,
            stats,
            paused_by: None,
        })
    }

    /// Counters that stay readable while the processor runs.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The consumer, for positions and lag.
    pub fn consumer(&self) -> &Consumer {
        &self.consumer
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
                self.process(batch, &mut shutdown).await?;
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
            self.process(batch, &mut rx).await?;
        }
        Ok(self.finish())
    }

    /// A dynamic member leaves its group when it stops, so the group can
    /// rebalance (or be reset) at once; a static member stays until its session
    /// times out, so a quick restart keeps its partitions without a rebalance.
    fn finish(self) -> Processor {
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
        loop {
            let (returned, result) = self.call(&handler, batch).await?;
            batch = returned;
            let first = batch.records[0].offset;
            let output = match result {
                Ok(output) => output,
                Err(RuntimeError::Init(message)) => {
                    return Err(ProcessorError::Guest(RuntimeError::Init(message)));
                }
                Err(fault) => {
                    self.stats.record_trap(handler.version());
                    tracing::warn!(processor = %self.config.name, offset = first, error = %fault, "guest fault");
                    attempts += 1;
                    let last = Attempt::Fault(fault);
                    if self
                        .retry_or_isolate(&handler, &batch, attempts, last, shutdown)
                        .await?
                    {
                        return Ok(());
                    }
                    continue;
                }
            };
            self.stats.record_call();
            let step = match output.outcome {
                Ok(()) => Step {
                    emits: output.emits,
                    next: batch
                        .records
                        .last()
                        .expect("batches are never empty")
                        .offset
                        + 1,
                },
                Err(f) if f.index as usize >= batch.records.len() => {
                    return Err(ProcessorError::BadFailureIndex {
                        index: f.index,
                        len: batch.records.len(),
                    });
                }
                Err(f) if f.index > 0 => {
                    // Run the prefix on its own so it commits with its own emits.
                    batch.records.truncate(f.index as usize);
                    continue;
                }
                Err(f) => match f.kind {
                    FailureKind::Retry => {
                        attempts += 1;
                        let last = Attempt::Retry(f.message);
                        if self
                            .retry_or_isolate(&handler, &batch, attempts, last, shutdown)
                            .await?
                        {
                            return Ok(());
                        }
                        continue;
                    }
                    FailureKind::Skip => {
                        self.stats.record_skip(handler.version());
                        tracing::warn!(processor = %self.config.name, offset = first, reason = %f.message, "skipping record");
                        Step {
                            emits: Vec::new(),
                            next: first + 1,
                        }
                    }
                    FailureKind::DeadLetter => {
                        self.stats.record_dead_letter(handler.version());
                        Step {
                            emits: vec![self.dead_letter(&batch, &f.message, handler.version())],
                            next: first + 1,
                        }
                    }
                    FailureKind::Fatal => {
                        return Err(ProcessorError::Fatal {
                            topic: batch.topic.clone(),
                            partition: batch.partition,
                            offset: first,
                            message: f.message,
                        });
                    }
                },
            };
            self.maybe_crash();
            let processed = step.next - first;
            match self.commit(&batch, step, handler.version()) {
                Err(ProcessorError::Group(e @ GroupError::Fenced { .. })) => {
                    // A zombie: the partition moved on while this batch ran. Its
                    // new owner processes the batch again; nothing was written.
                    tracing::warn!(processor = %self.config.name, error = %e, "batch abandoned");
                    self.stats.record_fenced();
                }
                other => {
                    other?;
                    self.stats.record_batch(processed, handler.version());
                }
            }
            return Ok(());
        }
    }

    /// Runs the handler on a blocking thread, heartbeating meanwhile so a long
    /// batch is not mistaken for a dead member (the max poll interval still
    /// bounds it).
    async fn call(
        &self,
        handler: &Arc<dyn Handler>,
        batch: Polled,
    ) -> Result<(Polled, Result<Output, RuntimeError>), ProcessorError> {
        let (handler, stats) = (handler.clone(), self.stats.clone());
        let call = tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let result = handler.handle(&batch);
            let seconds = started.elapsed().as_secs_f64();
            stats.record_latency("weir_guest_process_seconds", handler.version(), seconds);
            (batch, result)
        });
        tokio::pin!(call);
        let interval = self.config.group_settings.session_timeout / 3;
        loop {
            tokio::select! {
                done = &mut call => return done.map_err(ProcessorError::Task),
                _ = tokio::time::sleep(interval) => {
                    if let Err(e) = self.consumer.heartbeat() {
                        tracing::warn!(processor = %self.config.name, error = %e, "heartbeat refused");
                    }
                }
            }
        }
    }

    /// The commit step: append the batch's emits, then move the group's offset,
    /// both under the group's fence, so a zombie member writes neither.
    fn commit(&mut self, batch: &Polled, step: Step, version: &str) -> Result<(), ProcessorError> {
        let emitted = step.emits.len() as u64;
        let started = std::time::Instant::now();
        let log = &self.log;
        // A shadow's emits go to side topics; its dead letters stay put.
        let redirect = (self.config.emit_suffix.as_deref()).map(|s| (s, self.config.dlq_topic()));
        self.consumer
            .commit(&batch.topic, batch.partition, step.next, || {
                let mut by_partition: BTreeMap<(String, u32), Vec<Record>> = BTreeMap::new();
                // Side topic -> its source, to create each once per batch.
                let mut sides: BTreeMap<String, String> = BTreeMap::new();
                for mut emit in step.emits {
                    if !emit
                        .record
                        .headers
                        .iter()
                        .any(|(n, _)| n == dlq_headers::VERSION)
                    {
                        let header = (
                            dlq_headers::VERSION.to_string(),
                            version.as_bytes().to_vec(),
                        );
                        emit.record.headers.push(header);
                    }
                    // A side topic has its source's partition count, so the
                    // source's partitioner places the record.
                    let partition = log.partition_for(&emit.topic, emit.record.key.as_deref())?;
                    let topic = match &redirect {
                        Some((suffix, dlq)) if emit.topic != *dlq => {
                            let side = format!("{}{suffix}", emit.topic);
                            if !sides.contains_key(&side) {
                                sides.insert(side.clone(), emit.topic);
                            }
                            side
                        }
                        _ => emit.topic,
                    };
                    by_partition
                        .entry((topic, partition))
                        .or_default()
                        .push(emit.record);
                }
                for (side, source) in &sides {
                    let partitions = log.partition_count(source)?;
                    log.ensure_topic(side, TopicConfig::with_partitions(partitions))?;
                }
                for ((topic, partition), records) in by_partition {
                    log.append(&topic, partition, &records)?;
                }
                Ok::<(), ProcessorError>(())
            })?;
        self.stats.record_emitted(emitted, version);
        let seconds = started.elapsed().as_secs_f64();
        self.stats
            .record_latency("weir_commit_seconds", version, seconds);
        Ok(())
    }

    /// Leaves the group for good (scale-down).
    pub fn leave(&self) {
        self.consumer.leave();
    }

    /// The record at the front of `batch`, bound for the dead-letter topic.
    fn dead_letter(&self, batch: &Polled, error: &str, version: &str) -> Emit {
        let source = &batch.records[0];
        let mut headers = source.headers.clone();
        headers.extend([
            (
                dlq_headers::SOURCE_TOPIC.to_string(),
                batch.topic.clone().into_bytes(),
            ),
            (
                dlq_headers::SOURCE_PARTITION.to_string(),
                batch.partition.to_string().into_bytes(),
            ),
            (
                dlq_headers::SOURCE_OFFSET.to_string(),
                source.offset.to_string().into_bytes(),
            ),
            (dlq_headers::ERROR.to_string(), error.as_bytes().to_vec()),
            (
                dlq_headers::VERSION.to_string(),
                version.as_bytes().to_vec(),
            ),
        ]);
        Emit {
            topic: self.config.dlq_topic(),
            record: Record {
                key: source.key.clone(),
                value: source.value.clone(),
                headers,
                timestamp: Some(source.timestamp),
            },
        }
    }

    fn maybe_crash(&self) {
        if let Some(limit) = self.config.crash_before_commit
            && self.stats.batches() + 1 >= limit
        {
            tracing::error!("crash-test seam: aborting between process and commit");
            std::process::abort();
        }
    }
}
