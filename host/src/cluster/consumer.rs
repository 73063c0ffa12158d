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
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::producer::Emitter;
use super::seek::{Pending, clear_pending, pending_target};
use super::settings::{assignor_name, reset_name};
use super::side::SideTopics;
use super::transaction::{self, Transactions};
use super::{ClusterError, ClusterSpec, partitions_of};
use crate::broker::SeekTo;
use crate::consumer::{
    Commit, Consumer, ConsumerError, Membership, PollFuture, PollLimits, Polled,
};
use crate::group::TopicPartition;
use crate::log::StoredRecord;

/// How long a poll that found nothing sleeps before asking again.
const IDLE: Duration = Duration::from_millis(5);
/// How long a seek or an offset commit may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Follows the rebalances librdkafka runs during a poll.
#[derive(Default)]
pub(super) struct Rebalances {
    /// Partitions revoked since the member last looked.
    revoked: Mutex<Vec<(String, u32)>>,
    /// Partitions assigned since the member last looked.
    assigned: Mutex<Vec<(String, u32)>>,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self
                .revoked
                .lock()
                .expect("rebalance lock")
                .extend(partitions_of(tpl)),
            Rebalance::Assign(tpl) => self
                .assigned
                .lock()
                .expect("rebalance lock")
                .extend(partitions_of(tpl)),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

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

    /// Asks librdkafka for what it has fetched (up to about `want` records)
    /// and follows the rebalances it ran meanwhile.
    fn pump(&mut self, want: usize) -> Result<(), ClusterError> {
        self.retry_seeks()?;
        let mut taken = 0;
        while taken < want {
            let Some(next) = self.consumer.poll(Duration::ZERO) else {
                break;
            };
            let next = next.map(|m| {
                let tp = TopicPartition::new(m.topic().to_string(), m.partition() as u32);
                (tp, detach(&m))
            });
            // Rebalances run inside the poll: apply them before the record.
            self.follow()?;
            match next {
                Ok((tp, record)) => {
                    self.buffer(tp, record);
                    taken += 1;
                }
                Err(e) => self.consumption_error(e)?,
            }
        }
        self.follow()
    }

    /// Applies the revocations and assignments librdkafka reported: a newly
    /// assigned partition's state is restored first, and a pending rewind of
    /// a partition gained is applied.
    fn follow(&mut self) -> Result<(), ClusterError> {
        let context = self.consumer.context();
        let revoked = std::mem::take(&mut *context.revoked.lock().expect("rebalance lock"));
        let assigned = std::mem::take(&mut *context.assigned.lock().expect("rebalance lock"));
        if revoked.is_empty() && assigned.is_empty() {
            return Ok(());
        }
        for (topic, partition) in &revoked {
            self.partitions
                .remove(&TopicPartition::new(topic.clone(), *partition));
        }
        for (topic, partition) in assigned {
            let tp = TopicPartition::new(topic, partition);
            if !self.partitions.contains_key(&tp) {
                self.txn.restore(&tp)?;
            }
            self.partitions.entry(tp.clone()).or_default();
            if let Some(target) = pending_target(&self.pending, &self.group, &tp) {
                // Committed through this member (fenced), then read from.
                self.commit_offset(&tp, target)?;
                if let Some(partition) = self.partitions.get_mut(&tp) {
                    partition.seek = Some(target);
                    partition.position = Some(target);
                    partition.buffered.clear();
                }
                clear_pending(&self.pending, &self.group, &tp);
                tracing::info!(group = %self.group, partition = %name(&tp), offset = target, "rewound");
            }
        }
        let now: Vec<String> = self.partitions.keys().map(name).collect();
        tracing::info!(group = %self.group, member = %self.member, partitions = ?now, revoked = revoked.len(), "assignment changed");
        self.cursor = 0;
        Ok(())
    }

    /// A record for a partition this member owns, in order, joins its
    /// buffer; a stale one (from before a seek) or a paused partition's is
    /// dropped.
    fn buffer(&mut self, tp: TopicPartition, record: StoredRecord) {
        let Some(partition) = self.partitions.get_mut(&tp) else {
            return;
        };
        let offset = record.offset;
        let expected = partition
            .buffered
            .back()
            .map(|r| r.offset + 1)
            .or(partition.position);
        if partition.paused || partition.seek.is_some() || expected.is_some_and(|e| offset < e) {
            return;
        }
        partition.position.get_or_insert(offset);
        partition.buffered.push_back(record);
    }

    /// Transport errors (a broker away) are logged and waited out: librdkafka
    /// reconnects. What no wait fixes stops the member.
    fn consumption_error(&self, e: KafkaError) -> Result<(), ClusterError> {
        let code = e.rdkafka_error_code();
        let fatal = matches!(
            code,
            Some(
                RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::AutoOffsetReset
                    | RDKafkaErrorCode::Fatal
            )
        );
        if fatal {
            return Err(ClusterError::Kafka {
                context: "reading the input",
                source: e,
            });
        }
        tracing::warn!(group = %self.group, member = %self.member, error = %e, "cluster unavailable; waiting for it");
        Ok(())
    }

    /// The next batch from a partition with buffered records, in turn.
    fn take(&mut self, limits: PollLimits) -> Option<Polled> {
        let n = self.partitions.len();
        let keys: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for i in 0..n {
            let slot = (self.cursor + i) % n;
            let tp = &keys[slot];
            let partition = self.partitions.get_mut(tp).expect("a listed partition");
            if partition.paused || partition.buffered.is_empty() {
                continue;
            }
            let mut records = Vec::new();
            let mut bytes = 0u64;
            while let Some(record) = partition.buffered.front() {
                let size = (record.value.len() + record.key.as_ref().map_or(0, |k| k.len())) as u64;
                if records.len() >= limits.max_records
                    || (!records.is_empty() && bytes + size > limits.max_bytes)
                {
                    break;
                }
                bytes += size;
                records.push(partition.buffered.pop_front().expect("a front record"));
            }
            let next = records.last().map_or(0, |r| r.offset + 1);
            partition.position = Some(next);
            let high_watermark = self.cached_high(tp).map_or(next, |high| high.max(next));
            self.cursor = (slot + 1) % n;
            return Some(Polled {
                topic: tp.topic.clone(),
                partition: tp.partition,
                high_watermark,
                records,
            });
        }
        None
    }

    /// Moves librdkafka's fetch position on `tp` to `offset` and drops what
    /// was read past it.
    fn seek_to(&mut self, tp: &TopicPartition, offset: u64) -> Result<(), ClusterError> {
        self.consumer
            .seek(
                &tp.topic,
                tp.partition as i32,
                Offset::Offset(offset as i64),
                CALL_TIMEOUT,
            )
            .map_err(ClusterError::kafka("seeking a partition"))?;
        if let Some(partition) = self.partitions.get_mut(tp) {
            partition.buffered.clear();
            partition.position = Some(offset);
        }
        Ok(())
    }

    /// Seeks the partitions a rewind left waiting, those librdkafka now
    /// accepts.
    fn retry_seeks(&mut self) -> Result<(), ClusterError> {
        let waiting: Vec<(TopicPartition, u64)> = self
            .partitions
            .iter()
            .filter_map(|(tp, p)| p.seek.map(|t| (tp.clone(), t)))
            .collect();
        for (tp, target) in waiting {
            match self.seek_to(&tp, target) {
                Ok(()) => {
                    if let Some(partition) = self.partitions.get_mut(&tp) {
                        partition.seek = None;
                    }
                }
                Err(ClusterError::Kafka { source, .. })
                    if source.rdkafka_error_code() == Some(RDKafkaErrorCode::State) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `tp`'s high watermark as of librdkafka's last fetch from it: no
    /// request (the safe API only offers the querying form).
    fn cached_high(&self, tp: &TopicPartition) -> Option<u64> {
        let topic = std::ffi::CString::new(tp.topic.as_str()).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client pointer is live while `self.consumer` is, the
        // topic is a NUL-terminated string that outlives the call, and both
        // out-pointers are valid i64s.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                tp.partition as i32,
                &mut low,
                &mut high,
            )
        };
        let ok = err == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
        (ok && high >= 0).then_some(high as u64)
    }

    /// After an aborted transaction: reads `tp` again from its committed
    /// offset (if it is still assigned), with its state caught up.
    fn back_to_committed(&mut self, tp: &TopicPartition) -> Result<(), ClusterError> {
        if !self.partitions.contains_key(tp) {
            return Ok(());
        }
        let committed = match transaction::committed(&self.consumer, tp)? {
            Some(committed) => committed,
            None => {
                // Nothing committed yet: from the start, a repeat rather
                // than a loss.
                let (low, _) = self
                    .consumer
                    .fetch_watermarks(&tp.topic, tp.partition as i32, CALL_TIMEOUT)
                    .map_err(ClusterError::kafka("reading a partition's bounds"))?;
                low.max(0) as u64
            }
        };
        self.seek_to(tp, committed)?;
        self.txn.resync(tp)
    }

    fn owns(&self, tp: &TopicPartition) -> bool {
        let assigned = self.consumer.assignment().map(|tpl| partitions_of(&tpl));
        assigned.is_ok_and(|a| a.contains(&(tp.topic.clone(), tp.partition)))
            && self.partitions.contains_key(tp)
    }

    fn commit_offset(&self, tp: &TopicPartition, next: u64) -> Result<(), ClusterError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(next as i64))
            .map_err(ClusterError::kafka("naming the offset to commit"))?;
        match self
            .consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        {
            Ok(()) => Ok(()),
            Err(e) if is_fencing(&e) => Err(ClusterError::Fenced {
                topic: tp.topic.clone(),
                partition: tp.partition,
                reason: e.to_string(),
            }),
            Err(e) => Err(ClusterError::Kafka {
                context: "committing the offset",
                source: e,
            }),
        }
    }
}

/// `topic/partition`, for logs.
fn name(tp: &TopicPartition) -> String {
    format!("{}/{}", tp.topic, tp.partition)
}

/// Whether the coordinator refused a commit because the member's generation
/// or membership is gone (the partition has moved on).
pub(super) fn is_fencing(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::StaleMemberEpoch
                | RDKafkaErrorCode::AssignmentLost
        )
    )
}

/// A record read from the cluster as the log's record type.
fn detach(message: &BorrowedMessage<'_>) -> StoredRecord {
    let headers = message.headers().map_or_else(Vec::new, |headers| {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    h.value.map_or_else(Vec::new, <[u8]>::to_vec),
                )
            })
            .collect()
    });
    StoredRecord {
        offset: message.offset() as u64,
        timestamp: message
            .timestamp()
            .to_millis()
            .unwrap_or_else(crate::log::now_ms),
        key: message.key().map(bytes::Bytes::copy_from_slice),
        value: message
            .payload()
            .map_or_else(bytes::Bytes::new, bytes::Bytes::copy_from_slice),
        headers,
        nulls: Default::default(),
    }
}

impl Consumer for ClusterConsumer {
    fn group(&self) -> &str {
        &self.group
    }

    fn member(&self) -> &str {
        &self.member
    }

    /// librdkafka heartbeats from its own thread.
    fn heartbeat(&self) -> Result<(), ConsumerError> {
        Ok(())
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
