//! Where a member stands on its partitions: seeks (and the rewinds that
//! wait for librdkafka to accept them), the cached high watermark, going back
//! to the committed offset after an aborted transaction, and the fenced
//! offset commit.

use rdkafka::consumer::Consumer as _;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::{CALL_TIMEOUT, ClusterConsumer};
use crate::cluster::transaction;
use crate::cluster::{ClusterError, partitions_of};
use crate::group::TopicPartition;

impl ClusterConsumer {
    /// Moves librdkafka's fetch position on `tp` to `offset` and drops what
    /// was read past it.
    pub(super) fn seek_to(&mut self, tp: &TopicPartition, offset: u64) -> Result<(), ClusterError> {
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
    pub(super) fn retry_seeks(&mut self) -> Result<(), ClusterError> {
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
    pub(super) fn cached_high(&self, tp: &TopicPartition) -> Option<u64> {
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
    pub(super) fn back_to_committed(&mut self, tp: &TopicPartition) -> Result<(), ClusterError> {
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

    pub(super) fn owns(&self, tp: &TopicPartition) -> bool {
        let assigned = self.consumer.assignment().map(|tpl| partitions_of(&tpl));
        assigned.is_ok_and(|a| a.contains(&(tp.topic.clone(), tp.partition)))
            && self.partitions.contains_key(tp)
    }

    pub(super) fn commit_offset(&self, tp: &TopicPartition, next: u64) -> Result<(), ClusterError> {
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

/// Whether the coordinator refused a commit because the member's generation
/// or membership is gone (the partition has moved on).
pub(in crate::cluster) fn is_fencing(e: &KafkaError) -> bool {
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
