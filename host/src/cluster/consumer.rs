//! One member of a processor's group in a Kafka cluster.
//!
//! The cluster's coordinator assigns the partitions (cooperative-sticky by
//! default); librdkafka reports the changes while it is polled, and a
//! partition revoked drops what was read from it and not yet handed out.
//! Polling never blocks the processor's task: librdkafka is asked for what it
//! has fetched, and the member sleeps briefly when it had nothing. A batch is
//! consecutive records of one partition, within the seam's limits, and the
//! partitions take turns.
//!
//! A commit first checks the member still owns the partition (else it is
//! fenced and writes nothing), produces the batch's emits and waits for the
//! cluster to acknowledge every one, then commits the offset synchronously;
//! a commit the coordinator refuses for the generation is fenced too (the
//! emits may then repeat, as at-least-once allows). A commit to an offset
//! before what was handed out (a prefix, a dead letter) seeks back there.
//! Exactly-once commits, and every commit of a group that keeps state, are
//! Kafka transactions instead (`transaction.rs`); a newly assigned
//! partition's state is restored from its changelog before its first batch,
//! and a failed transaction moves the partition back to its committed offset.
//! A shadow's side topics are created before its first emits to them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::producer::Emitter;
use super::seek::Pending;
use super::settings::{assignor_name, reset_name};
use super::side::SideTopics;
use super::transaction::Transactions;
use super::{ClusterError, ClusterSpec};
use crate::broker::SeekTo;
use crate::consumer::{
    Beat, Commit, Consumer, ConsumerError, Membership, PollFuture, PollLimits, Polled,
};
use crate::group::TopicPartition;
use crate::log::StoredRecord;

mod intake;
mod position;
mod rebalance;

pub(in crate::cluster) use position::is_fencing;
pub(in crate::cluster) use rebalance::Rebalances;

/// How long a poll that found nothing sleeps before asking again.
const IDLE: Duration = Duration::from_millis(5);
/// How long a seek or an offset commit may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One member's read state of an assigned partition.
#[derive(Default)]
struct Partition {
    /// The next offset to hand out, once known (the first record read, or
    /// a commit or seek).
    position: Option<u64>,
    /// Records read and not yet handed out, in order from `position`.
    buffered: VecDeque<StoredRecord>,
    paused: bool,
    /// A rewind's target librdkafka could not seek to yet (a partition just
    /// assigned is still fetching its committed offset): retried at each
    /// poll, and what is read meanwhile is dropped.
    seek: Option<u64>,
}

/// One member of a processor's group in a Kafka cluster.
pub struct ClusterConsumer {
    group: String,
    member: String,
    consumer: BaseConsumer<Rebalances>,
    emitter: Emitter,
    /// Transactions and state (exactly-once, or a group that keeps state).
    txn: Transactions,
    /// A shadow's side topics, created before its first emits to them.
    sides: SideTopics,
    /// Rewinds of the group waiting for its members (see `seek.rs`).
    pending: Pending,
    partitions: BTreeMap<TopicPartition, Partition>,
    /// Where the next poll starts its rotation.
    cursor: usize,
}

impl ClusterConsumer {
    /// Subscribes to the membership's topics; the coordinator's assignment
    /// arrives while the member polls.
    pub fn join(
        spec: &ClusterSpec,
        membership: Membership,
        pending: Pending,
    ) -> Result<ClusterConsumer, ClusterError> {
        let settings = membership.settings;
        let mut config = spec.client_config();
        config
            .set("group.id", &membership.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("allow.auto.create.topics", "false")
            // Emits and state of aborted transactions are never read.
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", reset_name(membership.reset))
            .set(
                "partition.assignment.strategy",
                assignor_name(settings.assignor),
            )
            .set(
                "session.timeout.ms",
                settings.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (settings.session_timeout.as_millis() / 3)
                    .max(1)
                    .to_string(),
            )
            .set(
                "max.poll.interval.ms",
                settings.max_poll_interval.as_millis().to_string(),
            );
        let member = match (&spec.instance_id, &membership.instance_id) {
            (Some(host), Some(instance)) => {
                let id = format!("{host}.{instance}");
                config.set("group.instance.id", &id);
                id
            }
            (_, instance) => instance.clone().unwrap_or_else(|| membership.group.clone()),
        };
        let txn = Transactions::new(spec, &membership, &member)?;
        let consumer: BaseConsumer<Rebalances> = config
            .create_with_context(Rebalances::default())
            .map_err(ClusterError::Client)?;
        let topics: Vec<&str> = membership.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(ClusterError::kafka("subscribing to the input topics"))?;
        tracing::info!(group = %membership.group, %member, servers = %spec.bootstrap_servers, "joining the cluster's group");
        Ok(ClusterConsumer {
            group: membership.group,
            member,
            consumer,
            emitter: Emitter::new(spec)?,
            txn,
            sides: SideTopics::new(spec),
            pending,
            partitions: BTreeMap::new(),
            cursor: 0,
        })
    }
}

/// `topic/partition`, for logs.
fn name(tp: &TopicPartition) -> String {
    format!("{}/{}", tp.topic, tp.partition)
}

impl Consumer for ClusterConsumer {
    fn group(&self) -> &str {
        &self.group
    }

    fn member(&self) -> &str {
        &self.member
    }

    /// librdkafka heartbeats from its own thread.
    fn beat(&self) -> Option<Beat> {
        None
    }

    fn sync(&mut self) -> Result<(), ConsumerError> {
        // A zero-wait poll serves the rebalance callbacks.
        Ok(self.pump(1)?)
    }

    fn poll(&mut self, limits: PollLimits) -> PollFuture<'_> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + limits.max_wait;
            loop {
                self.pump(limits.max_records)?;
                if let Some(polled) = self.take(limits) {
                    return Ok(Some(polled));
                }
                if tokio::time::Instant::now() >= deadline {
                    return Ok(None);
                }
                tokio::time::sleep(IDLE).await;
            }
        })
    }

    fn try_poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, ConsumerError> {
        self.pump(limits.max_records)?;
        Ok(self.take(limits))
    }

    fn commit(&mut self, commit: Commit) -> Result<(), ConsumerError> {
        let tp = commit.source.clone();
        if !self.owns(&tp) {
            return Err(ClusterError::Fenced {
                topic: tp.topic,
                partition: tp.partition,
                reason: "revoked by a rebalance".into(),
            }
            .into());
        }
        self.sides.ensure(&commit.create_like)?;
        let next = commit.next;
        if self.txn.wanted(&commit) {
            if let Err(e) = self.txn.commit(&self.consumer, commit) {
                self.back_to_committed(&tp)?;
                return Err(e.into());
            }
        } else {
            self.emitter.send_all(&commit.emits)?;
            self.commit_offset(&tp, next)?;
        }
        let handed_out = self.partitions.get(&tp).and_then(|p| p.position);
        if handed_out != Some(next) {
            self.seek_to(&tp, next)?;
        }
        Ok(())
    }

    fn seek(&mut self, tp: &TopicPartition, to: SeekTo) -> Result<u64, ConsumerError> {
        if !self.partitions.contains_key(tp) {
            return Err(ConsumerError::NotAssigned {
                topic: tp.topic.clone(),
                partition: tp.partition,
            });
        }
        let target = match to {
            SeekTo::Offset(o) => o,
            _ => {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(&tp.topic, tp.partition as i32, CALL_TIMEOUT)
                    .map_err(ClusterError::kafka("reading a partition's bounds"))?;
                match to {
                    SeekTo::Earliest => low.max(0) as u64,
                    SeekTo::Timestamp(ms) => {
                        super::seek::offset_for_time(&self.consumer, tp, ms)?.unwrap_or(high as u64)
                    }
                    _ => high.max(0) as u64,
                }
            }
        };
        self.seek_to(tp, target)?;
        Ok(target)
    }

    fn pause(&mut self, tp: &TopicPartition) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&tp.topic, tp.partition as i32);
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::warn!(partition = %name(tp), error = %e, "could not pause the partition");
        }
        let position = match self.partitions.get_mut(tp) {
            Some(partition) => {
                partition.paused = true;
                partition.position
            }
            None => return,
        };
        // What was read past the position is dropped: fetch it again on resume.
        if let Some(position) = position
            && let Err(e) = self.seek_to(tp, position)
        {
            tracing::warn!(partition = %name(tp), error = %e, "could not rewind the paused partition");
        }
    }

    fn resume_all(&mut self) {
        let paused = self.paused();
        let mut tpl = TopicPartitionList::new();
        for tp in &paused {
            tpl.add_partition(&tp.topic, tp.partition as i32);
            if let Some(partition) = self.partitions.get_mut(tp) {
                partition.paused = false;
            }
        }
        if !paused.is_empty()
            && let Err(e) = self.consumer.resume(&tpl)
        {
            tracing::warn!(error = %e, "could not resume the paused partitions");
        }
    }

    fn paused(&self) -> Vec<TopicPartition> {
        let paused = self.partitions.iter().filter(|(_, p)| p.paused);
        paused
            .map(|(tp, _)| tp.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn positions(&self) -> Vec<(TopicPartition, u64)> {
        let known = self.partitions.iter();
        known
            .filter_map(|(tp, p)| p.position.map(|pos| (tp.clone(), pos)))
            .collect()
    }

    /// From the high watermarks librdkafka last fetched (no request).
    fn lag(&self) -> Result<u64, ConsumerError> {
        let mut lag = 0;
        for (tp, position) in self.positions() {
            if let Some(high) = self.cached_high(&tp) {
                lag += high.saturating_sub(position);
            }
        }
        Ok(lag)
    }

    fn leave(&self) {
        // Unsubscribing leaves the group (a static member's id stays until
        // its session times out: Kafka has no leave by instance id for a
        // member itself).
        self.consumer.unsubscribe();
    }
}
