//! How a member reads: what librdkafka has fetched joins a per-partition
//! buffer (never blocking, never out of order, nothing from a paused
//! partition or from before a seek), and batches are cut from the buffers
//! within the seam's limits, the partitions taking turns.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};

use super::ClusterConsumer;
use crate::cluster::ClusterError;
use crate::consumer::{PollLimits, Polled};
use crate::group::TopicPartition;
use crate::log::StoredRecord;

impl ClusterConsumer {
    /// Asks librdkafka for what it has fetched (up to about `want` records)
    /// and follows the rebalances it ran meanwhile.
    pub(super) fn pump(&mut self, want: usize) -> Result<(), ClusterError> {
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

    /// A record for a partition this member owns, in order, joins its
    /// buffer; a stale one (from before a seek) or a paused partition's is
    /// dropped.
    pub(super) fn buffer(&mut self, tp: TopicPartition, record: StoredRecord) {
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
    pub(super) fn consumption_error(&self, e: KafkaError) -> Result<(), ClusterError> {
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
    pub(super) fn take(&mut self, limits: PollLimits) -> Option<Polled> {
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
