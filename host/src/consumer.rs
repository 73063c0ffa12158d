//! The consumer side of the log, as narrow as the processor loop needs: poll the
//! assigned partitions, commit, know each position. An embedded consumer reads
//! the local [`Log`]; a Kafka-backed one could implement the same calls later
//! without the loop changing.
//!
//! Today a consumer owns every partition of its input topics (one member per
//! group). Positions start at the committed offset, or by the start policy when
//! the group never committed. Polls rotate over the partitions so a busy one
//! cannot starve the rest, and return whole records from one partition at a time.

use std::sync::Arc;
use std::time::Duration;

use crate::log::{Log, LogError, StoredRecord};
use crate::offsets::{Committed, Offsets, OffsetsError};

/// Where a group without a committed offset starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StartPolicy {
    /// The oldest record still in the log.
    #[default]
    Earliest,
    /// Only records appended from now on.
    Latest,
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

/// One group member reading its assigned partitions.
pub struct Consumer {
    log: Arc<Log>,
    offsets: Arc<Offsets>,
    group: String,
    generation: u32,
    /// (topic, partition, next offset to read), in polling order.
    assigned: Vec<(String, u32, u64)>,
    /// Where the next poll starts its rotation.
    cursor: usize,
}

impl Consumer {
    /// Joins `group` on every partition of `topics`.
    pub fn new(
        log: Arc<Log>,
        offsets: Arc<Offsets>,
        group: &str,
        topics: &[String],
        start: StartPolicy,
    ) -> Result<Consumer, OffsetsError> {
        crate::name::validate("group", group).map_err(LogError::from)?;
        let mut assigned = Vec::new();
        for topic in topics {
            for partition in 0..log.partition_count(topic)? {
                let position = match offsets.get(group, topic, partition) {
                    Some(c) => c.offset,
                    None => match start {
                        StartPolicy::Earliest => log.log_start(topic, partition)?,
                        StartPolicy::Latest => log.high_watermark(topic, partition)?,
                    },
                };
                assigned.push((topic.clone(), partition, position));
            }
        }
        Ok(Consumer {
            log,
            offsets,
            group: group.to_string(),
            generation: 1,
            assigned,
            cursor: 0,
        })
    }

    /// The group this consumer commits for.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// Returns the next batch from some assigned partition, waiting up to
    /// `limits.max_wait` for records to arrive; `None` when none did.
    pub async fn poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, LogError> {
        let deadline = tokio::time::Instant::now() + limits.max_wait;
        let log = self.log.clone();
        loop {
            let appended = log.appended();
            tokio::pin!(appended);
            appended.as_mut().enable();
            if let Some(polled) = self.try_poll(limits)? {
                return Ok(Some(polled));
            }
            if tokio::time::timeout_at(deadline, appended).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// One pass over the assigned partitions without waiting.
    pub fn try_poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, LogError> {
        let n = self.assigned.len();
        for i in 0..n {
            let slot = (self.cursor + i) % n;
            let (topic, partition, position) = &self.assigned[slot];
            let high_watermark = self.log.high_watermark(topic, *partition)?;
            if *position >= high_watermark {
                continue;
            }
            let records = self.log.read(
                topic,
                *partition,
                *position,
                limits.max_records,
                limits.max_bytes,
            )?;
            if records.is_empty() {
                continue;
            }
            self.cursor = (slot + 1) % n;
            return Ok(Some(Polled {
                topic: topic.clone(),
                partition: *partition,
                high_watermark,
                records,
            }));
        }
        Ok(None)
    }

    /// Commits `next` as the group's position on the partition and moves this
    /// consumer's position there.
    pub fn commit(&mut self, topic: &str, partition: u32, next: u64) -> Result<(), OffsetsError> {
        let committed = Committed {
            offset: next,
            generation: self.generation,
        };
        self.offsets
            .commit(&self.group, topic, partition, committed)?;
        if let Some(slot) = self
            .assigned
            .iter_mut()
            .find(|(t, p, _)| t == topic && *p == partition)
        {
            slot.2 = next;
        }
        Ok(())
    }

    /// Every assigned partition with this consumer's position on it.
    pub fn positions(&self) -> &[(String, u32, u64)] {
        &self.assigned
    }

    /// Records between the position and the high watermark, over all partitions.
    pub fn lag(&self) -> Result<u64, LogError> {
        let mut lag = 0;
        for (topic, partition, position) in &self.assigned {
            lag += self
                .log
                .high_watermark(topic, *partition)?
                .saturating_sub(*position);
        }
        Ok(lag)
    }
}
