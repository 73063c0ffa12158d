//! The embedded side of the seam: a group member reading the local log
//! ([`EmbeddedConsumer`]), and the [`Broker`] as its [`Backend`].
//!
//! Each poll first syncs with the coordinator: partitions no longer granted are
//! dropped (the batch in flight has already finished, since polls happen between
//! batches), newly granted ones start at the committed offset or by the reset
//! policy. Polls rotate over the partitions so a busy one cannot starve the rest,
//! and return records from one partition at a time. A partition can be paused
//! (the processor's "pause" failure policy): polls skip it until the member
//! resumes it or restarts, and its position stays where it was.
//!
//! A commit writes the batch's emits, state changes and offset (see
//! `state.rs` for the order each commit mode needs), all under the group's
//! lock after the fence check, so a zombie writes none of them. A partition
//! gained is first brought up to date with the group's state changelog.

use std::collections::BTreeSet;

use super::{Broker, Moved, SeekTo};
use std::sync::Arc;

use crate::consumer::{
    Backend, Beat, Commit, Consumer, ConsumerError, Membership, PollFuture, PollLimits, Polled,
};
use crate::group::{GroupError, MemberId, TopicPartition};
use crate::log::{LogError, TopicConfig};
use crate::state::StateStore;

impl Backend for Broker {
    fn join(&self, membership: Membership) -> Result<Box<dyn Consumer>, ConsumerError> {
        Ok(Box::new(EmbeddedConsumer::join(self.clone(), membership)?))
    }

    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), ConsumerError> {
        Ok(self
            .log
            .ensure_topic(topic, TopicConfig::with_partitions(partitions))?)
    }

    fn state(&self, group: &str) -> Result<Arc<StateStore>, ConsumerError> {
        Ok(self.state_store(group)?)
    }

    fn reset(
        &self,
        group: &str,
        topics: &[String],
        to: SeekTo,
    ) -> Result<Vec<Moved>, ConsumerError> {
        Ok(Broker::reset(self, group, topics, None, to)?)
    }
}

/// One group member reading its assigned partitions of the local log.
pub struct EmbeddedConsumer {
    broker: Broker,
    membership: Membership,
    member: MemberId,
    epoch: u32,
    /// Assigned partitions with the next offset to read, in polling order.
    assigned: Vec<(TopicPartition, u64)>,
    /// Where the next poll starts its rotation.
    cursor: usize,
    /// Assigned partitions that polls skip.
    paused: BTreeSet<TopicPartition>,
}

impl EmbeddedConsumer {
    /// Joins the group and takes its first assignment.
    pub fn join(broker: Broker, membership: Membership) -> Result<EmbeddedConsumer, ConsumerError> {
        let member = broker.groups.join(
            &membership.group,
            membership.instance_id.as_deref(),
            &membership.topics,
            membership.settings,
        )?;
        let mut consumer = EmbeddedConsumer {
            broker,
            membership,
            member,
            epoch: 0,
            assigned: Vec::new(),
            cursor: 0,
            paused: BTreeSet::new(),
        };
        consumer.follow()?;
        Ok(consumer)
    }

    fn follow(&mut self) -> Result<(), ConsumerError> {
        let groups = &self.broker.groups;
        let group = &self.membership.group;
        let owned: Vec<TopicPartition> = self.assigned.iter().map(|(tp, _)| tp.clone()).collect();
        let grant = match groups.sync(group, &self.member, &owned) {
            Err(GroupError::UnknownMember { .. }) => {
                tracing::warn!(%group, member = %self.member, "no longer a member; rejoining");
                self.assigned.clear();
                self.member = groups.join(
                    group,
                    self.membership.instance_id.as_deref(),
                    &self.membership.topics,
                    self.membership.settings,
                )?;
                groups.sync(group, &self.member, &[])?
            }
            other => other?,
        };
        self.epoch = grant.epoch;
        let mut next = Vec::with_capacity(grant.partitions.len());
        for tp in grant.partitions {
            let kept = self.position(&tp);
            let position = match kept {
                Some(pos) => pos,
                None => match self.broker.recover(group, &tp, &self.membership.state)? {
                    Some(pos) => pos,
                    None => self
                        .broker
                        .start_position(group, &tp, self.membership.reset)?,
                },
            };
            next.push((tp, position));
        }
        let moved = next.len() != self.assigned.len()
            || next.iter().zip(&self.assigned).any(|(a, b)| a.0 != b.0);
        if moved {
            tracing::info!(%group, member = %self.member, partitions = next.len(), "assignment changed");
            self.cursor = 0;
        }
        self.assigned = next;
        let assigned = &self.assigned;
        self.paused
            .retain(|tp| assigned.iter().any(|(owned, _)| owned == tp));
        Ok(())
    }

    fn position(&self, tp: &TopicPartition) -> Option<u64> {
        self.assigned
            .iter()
            .find(|(owned, _)| owned == tp)
            .map(|(_, pos)| *pos)
    }

    fn set_position(&mut self, tp: &TopicPartition, next: u64) {
        if let Some(slot) = self.assigned.iter_mut().find(|(owned, _)| owned == tp) {
            slot.1 = next;
        }
    }

    fn scan(&mut self, limits: PollLimits) -> Result<Option<Polled>, LogError> {
        let log = &self.broker.log;
        let n = self.assigned.len();
        for i in 0..n {
            let slot = (self.cursor + i) % n;
            let (tp, position) = &self.assigned[slot];
            if !self.paused.is_empty() && self.paused.contains(tp) {
                continue;
            }
            let high_watermark = log.high_watermark(&tp.topic, tp.partition)?;
            if *position >= high_watermark {
                continue;
            }
            let records = log.read(
                &tp.topic,
                tp.partition,
                *position,
                limits.max_records,
                limits.max_bytes,
            )?;
            if records.is_empty() {
                continue;
            }
            self.cursor = (slot + 1) % n;
            return Ok(Some(Polled {
                topic: tp.topic.clone(),
                partition: tp.partition,
                high_watermark,
                records,
            }));
        }
        Ok(None)
    }
}

impl Consumer for EmbeddedConsumer {
    fn group(&self) -> &str {
        &self.membership.group
    }

    fn member(&self) -> &str {
        &self.member
    }

    fn beat(&self) -> Option<Beat> {
        let (groups, group) = (self.broker.groups.clone(), self.membership.group.clone());
        Some(Arc::new(move |member: &str| {
            Ok(groups.heartbeat(&group, member)?)
        }))
    }

    fn sync(&mut self) -> Result<(), ConsumerError> {
        self.follow()
    }

    fn poll(&mut self, limits: PollLimits) -> PollFuture<'_> {
        Box::pin(async move {
            self.follow()?;
            let deadline = tokio::time::Instant::now() + limits.max_wait;
            let log = self.broker.log.clone();
            loop {
                let appended = log.appended();
                tokio::pin!(appended);
                appended.as_mut().enable();
                if let Some(polled) = self.scan(limits)? {
                    return Ok(Some(polled));
                }
                if tokio::time::timeout_at(deadline, appended).await.is_err() {
                    return Ok(None);
                }
            }
        })
    }

    fn try_poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, ConsumerError> {
        Ok(self.scan(limits)?)
    }

    fn commit(&mut self, commit: Commit) -> Result<(), ConsumerError> {
        let (source, next) = (commit.source.clone(), commit.next);
        let (group, epoch) = (&self.membership.group, self.epoch);
        let store = &self.membership.state;
        self.broker
            .groups
            .commit(group, &self.member, epoch, &source, || {
                self.broker.write_commit(group, commit, epoch, store)
            })?;
        self.set_position(&source, next);
        Ok(())
    }

    fn seek(&mut self, tp: &TopicPartition, to: SeekTo) -> Result<u64, ConsumerError> {
        let log = &self.broker.log;
        let (start, end) = (
            log.log_start(&tp.topic, tp.partition)?,
            log.high_watermark(&tp.topic, tp.partition)?,
        );
        let target = match to {
            SeekTo::Earliest => start,
            SeekTo::Latest => end,
            SeekTo::Offset(o) => o.clamp(start, end),
            SeekTo::Timestamp(ts) => log
                .offset_for_timestamp(&tp.topic, tp.partition, ts)?
                .unwrap_or(end),
        };
        if self.position(tp).is_none() {
            return Err(ConsumerError::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
        self.set_position(tp, target);
        Ok(target)
    }

    fn pause(&mut self, tp: &TopicPartition) {
        self.paused.insert(tp.clone());
    }

    fn resume_all(&mut self) {
        self.paused.clear();
    }

    fn paused(&self) -> Vec<TopicPartition> {
        self.paused.iter().cloned().collect()
    }

    fn positions(&self) -> Vec<(TopicPartition, u64)> {
        self.assigned.clone()
    }

    fn lag(&self) -> Result<u64, ConsumerError> {
        let mut lag = 0;
        for (tp, position) in &self.assigned {
            lag += self
                .broker
                .log
                .high_watermark(&tp.topic, tp.partition)?
                .saturating_sub(*position);
        }
        Ok(lag)
    }

    fn leave(&self) {
        self.broker
            .groups
            .leave(&self.membership.group, &self.member);
    }
}
