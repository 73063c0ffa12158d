//! The consumer side of the log, as narrow as the processor loop needs: poll the
//! assigned partitions, commit (fenced), heartbeat, and follow assignment
//! changes. An embedded consumer reads the local [`Log`] and belongs to a group
//! of the local [`Groups`] coordinator; a Kafka-backed consumer could implement
//! the same calls later without the loop changing.
//!
//! Each poll first syncs with the coordinator: partitions no longer granted are
//! dropped (the batch in flight has already finished, since polls happen between
//! batches), newly granted ones start at the committed offset or by the reset
//! policy. Polls rotate over the partitions so a busy one cannot starve the rest,
//! and return records from one partition at a time. A partition can be paused
//! (the processor's "pause" failure policy): polls skip it until the member
//! resumes it or restarts, and its position stays where it was.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::group::admin::{self, ResetPolicy};
use crate::group::{GroupError, GroupSettings, Groups, MemberId, TopicPartition};
use crate::log::{Log, StoredRecord};
use crate::offsets::{Committed, Offsets};

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

/// Who a consumer is in its group.
#[derive(Debug, Clone)]
pub struct Membership {
    pub group: String,
    pub topics: Vec<String>,
    /// A static instance id (KIP-345): a restart that rejoins within the
    /// session timeout keeps its assignment without a rebalance.
    pub instance_id: Option<String>,
    pub reset: ResetPolicy,
    pub settings: GroupSettings,
}

/// One group member reading its assigned partitions.
pub struct Consumer {
    log: Arc<Log>,
    offsets: Arc<Offsets>,
    groups: Arc<Groups>,
    membership: Membership,
    member: MemberId,
    epoch: u32,
    /// (topic, partition, next offset to read), in polling order.
    assigned: Vec<(String, u32, u64)>,
    /// Where the next poll starts its rotation.
    cursor: usize,
    /// Assigned partitions that polls skip.
    paused: BTreeSet<(String, u32)>,
}

impl Consumer {
    /// Joins the group and takes its first assignment.
    pub fn join(
        log: Arc<Log>,
        offsets: Arc<Offsets>,
        groups: Arc<Groups>,
        membership: Membership,
    ) -> Result<Consumer, GroupError> {
        let member = groups.join(
            &membership.group,
            membership.instance_id.as_deref(),
            &membership.topics,
            membership.settings,
        )?;
        let mut consumer = Consumer {
            log,
            offsets,
            groups,
            membership,
            member,
            epoch: 0,
            assigned: Vec::new(),
            cursor: 0,
            paused: BTreeSet::new(),
        };
        consumer.sync()?;
        Ok(consumer)
    }

    /// The group this consumer commits for.
    pub fn group(&self) -> &str {
        &self.membership.group
    }

    /// This consumer's member id.
    pub fn member(&self) -> &str {
        &self.member
    }

    /// Reports liveness between polls (during a long guest call).
    pub fn heartbeat(&self) -> Result<(), GroupError> {
        self.groups.heartbeat(&self.membership.group, &self.member)
    }

    /// Follows the group's assignment: drops revoked partitions, positions new
    /// ones. A consumer the group no longer knows (evicted, fenced) joins again.
    pub fn sync(&mut self) -> Result<(), GroupError> {
        let owned: Vec<TopicPartition> = self
            .assigned
            .iter()
            .map(|(t, p, _)| TopicPartition::new(t.clone(), *p))
            .collect();
        let grant = match self
            .groups
            .sync(&self.membership.group, &self.member, &owned)
        {
            Err(GroupError::UnknownMember { .. }) => {
                tracing::warn!(group = %self.membership.group, member = %self.member, "no longer a member; rejoining");
                self.assigned.clear();
                self.member = self.groups.join(
                    &self.membership.group,
                    self.membership.instance_id.as_deref(),
                    &self.membership.topics,
                    self.membership.settings,
                )?;
                self.groups
                    .sync(&self.membership.group, &self.member, &[])?
            }
            other => other?,
        };
        self.epoch = grant.epoch;
        let mut next = Vec::with_capacity(grant.partitions.len());
        for tp in grant.partitions {
            let kept = self
                .assigned
                .iter()
                .find(|(t, p, _)| *t == tp.topic && *p == tp.partition)
                .map(|(_, _, pos)| *pos);
            let position = match kept {
                Some(pos) => pos,
                None => admin::start_position(
                    &self.log,
                    &self.offsets,
                    &self.membership.group,
                    &tp.topic,
                    tp.partition,
                    self.membership.reset,
                )?,
            };
            next.push((tp.topic, tp.partition, position));
        }
        if next.len() != self.assigned.len()
            || next
                .iter()
                .zip(&self.assigned)
                .any(|(a, b)| a.0 != b.0 || a.1 != b.1)
        {
            tracing::info!(group = %self.membership.group, member = %self.member, partitions = next.len(), "assignment changed");
            self.cursor = 0;
        }
        self.assigned = next;
        let assigned = &self.assigned;
        self.paused
            .retain(|(t, p)| assigned.iter().any(|(at, ap, _)| at == t && ap == p));
        Ok(())
    }

    /// Stops fetching a partition; its position stays at the committed offset.
    /// A revoked partition is no longer paused (its next owner starts afresh).
    pub fn pause(&mut self, topic: &str, partition: u32) {
        self.paused.insert((topic.to_string(), partition));
    }

    /// Fetches every paused partition again, from where it stopped.
    pub fn resume_all(&mut self) {
        self.paused.clear();
    }

    /// The paused partitions, in order.
    pub fn paused(&self) -> Vec<(String, u32)> {
        self.paused.iter().cloned().collect()
    }

    /// Returns the next batch from some assigned partition, waiting up to
    /// `limits.max_wait` for records to arrive; `None` when none did.
    pub async fn poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, GroupError> {
        self.sync()?;
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

    /// One pass over the assigned partitions without waiting or syncing.
    pub fn try_poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, GroupError> {
        let n = self.assigned.len();
        for i in 0..n {
            let slot = (self.cursor + i) % n;
            let (topic, partition, position) = &self.assigned[slot];
            if !self.paused.is_empty() && self.paused.contains(&(topic.clone(), *partition)) {
                continue;
            }
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

    /// Commits `next` as the group's position on the partition, after running
    /// `before` (the batch's emits), both only if this member still owns the
    /// partition at its current epoch. A fenced commit changes nothing.
    pub fn commit<E: From<GroupError> + From<crate::offsets::OffsetsError>>(
        &mut self,
        topic: &str,
        partition: u32,
        next: u64,
        before: impl FnOnce() -> Result<(), E>,
    ) -> Result<(), E> {
        let tp = TopicPartition::new(topic, partition);
        let committed = Committed {
            offset: next,
            generation: self.epoch,
        };
        let (group, offsets) = (&self.membership.group, &self.offsets);
        self.groups
            .commit(group, &self.member, self.epoch, &tp, || {
                before()?;
                offsets.commit(group, topic, partition, committed)?;
                Ok::<(), E>(())
            })?;
        if let Some(slot) = self
            .assigned
            .iter_mut()
            .find(|(t, p, _)| t == topic && *p == partition)
        {
            slot.2 = next;
        }
        Ok(())
    }

    /// Leaves the group for good (scale-down); a restart should not call it.
    pub fn leave(&self) {
        self.groups.leave(&self.membership.group, &self.member);
    }

    /// Every assigned partition with this consumer's position on it.
    pub fn positions(&self) -> &[(String, u32, u64)] {
        &self.assigned
    }

    /// Records between the position and the high watermark, over all partitions.
    pub fn lag(&self) -> Result<u64, GroupError> {
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
