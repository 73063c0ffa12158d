//! Guest state in a Kafka cluster: the changelog topic and its restore.
//!
//! A group's state for input topic T lives in the compacted topic
//! `weir-state.<group>.<T>` ([`topic`]; not the embedded log's
//! `__state.…`: names starting `__` are a broker's own, and weir's Kafka
//! listener refuses to create them), partitioned like T and
//! created on the first commit that changes state. Every record is written
//! inside the transaction that commits its batch (`transaction.rs`), so a
//! `read_committed` reader sees only state that committed with its offset;
//! the unit boundaries the embedded changelog marks by hand are Kafka's
//! transactions here. Compaction keeps the latest record per key, so the keys
//! of state and of the position marker never meet:
//!
//! - a state change: key `s` + the guest's key; value `p` + the new value, or
//!   `d` for a delete (an explicit record rather than a tombstone, so a
//!   compacted changelog still says "deleted" to a reader that was behind);
//! - the position marker, last in each transaction: key `m`; value the input
//!   position (8 bytes, big-endian) the batch moved the group to.
//!
//! When a partition is assigned, its local copy (the group's [`StateStore`])
//! catches up from its checkpoint to the changelog's end before the
//! partition's first batch is handed out. A checkpoint outside the
//! changelog's bounds (the topic was recreated) starts the copy again from
//! empty. Reading to the end waits for open transactions (a zombie's) to be
//! resolved, as `read_committed` does.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::{ClusterError, ClusterSpec};
use crate::group::TopicPartition;
use crate::state::changelog::{Entry, Marker, Unit, Units};

/// The changelog topic of `group`'s state for input `topic` in a cluster.
pub fn topic(group: &str, topic: &str) -> String {
    format!("weir-state.{group}.{topic}")
}
use crate::state::{Change, StateError, StateStore};

/// How long a restore may wait for the changelog's end (open transactions
/// of a zombie included).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The key of the position marker.
const MARKER_KEY: &[u8] = b"m";

/// A changelog record as (key, value).
pub(super) type Raw = (Vec<u8>, Vec<u8>);

/// The record of a state change.
pub(super) fn change_record((key, value): &Change) -> Raw {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(b's');
    k.extend(key);
    let v = match value {
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(b'p');
            out.extend(v);
            out
        }
        None => vec![b'd'],
    };
    (k, v)
}

/// The record of the position marker.
pub(super) fn marker_record(position: u64) -> Raw {
    (MARKER_KEY.to_vec(), position.to_be_bytes().to_vec())
}

/// Decodes the record at `offset` of changelog `topic`/`partition`.
pub(super) fn decode(
    topic: &str,
    partition: u32,
    offset: u64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<Entry, StateError> {
    let bad = |reason: &str| StateError::Malformed {
        topic: topic.to_string(),
        partition,
        offset,
        reason: reason.to_string(),
    };
    let key = key.ok_or_else(|| bad("a record without a key"))?;
    let value = value.unwrap_or_default();
    match key.split_first() {
        Some((b'm', [])) => {
            let position = value
                .try_into()
                .map_err(|_| bad("a marker whose value is not 8 bytes"))?;
            Ok(Entry::Marker(Marker::Commit {
                position: u64::from_be_bytes(position),
                dests: Vec::new(),
            }))
        }
        Some((b's', state_key)) => match value.split_first() {
            Some((b'p', v)) => Ok(Entry::Change((state_key.to_vec(), Some(v.to_vec())))),
            Some((b'd', [])) => Ok(Entry::Change((state_key.to_vec(), None))),
            _ => Err(bad("a state change that is neither a put nor a delete")),
        },
        _ => Err(bad("neither a state change nor a position marker")),
    }
}

/// Creates the compacted changelog `topic` with `partitions` partitions
/// unless it exists.
pub(super) fn create(spec: &ClusterSpec, topic: &str, partitions: u32) -> Result<(), ClusterError> {
    let admin: AdminClient<DefaultClientContext> = spec
        .client_config()
        .create()
        .map_err(ClusterError::Client)?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
    let results = futures_executor::block_on(admin.create_topics([&new], &options))
        .map_err(ClusterError::kafka("creating a state changelog"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(ClusterError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// Reads changelogs (`read_committed`, never in a group's assignment) into
/// the local state copy.
pub(super) struct Restorer {
    consumer: BaseConsumer,
}

impl Restorer {
    pub fn new(spec: &ClusterSpec, group: &str) -> Result<Restorer, ClusterError> {
        let mut config = spec.client_config();
        // librdkafka wants a group even for a manual assignment; nothing is
        // ever committed for it.
        config
            .set("group.id", format!("{group}.restore"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed");
        Ok(Restorer {
            consumer: config.create().map_err(ClusterError::Client)?,
        })
    }

    /// `topic`'s partition count, if it exists in the cluster.
    pub fn partitions(&self, topic: &str) -> Result<Option<u32>, ClusterError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(ClusterError::kafka("reading a changelog's metadata"))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .map(|t| t.partitions().len() as u32))
    }

    /// Brings `store`'s copy of `tp` up to `changelog`'s end.
    pub fn restore(
        &self,
        store: &StateStore,
        tp: &TopicPartition,
        changelog: &str,
    ) -> Result<(), ClusterError> {
        let partition = tp.partition as i32;
        let (low, high) = self
            .consumer
            .fetch_watermarks(changelog, partition, REQUEST_TIMEOUT)
            .map_err(ClusterError::kafka("reading a changelog's bounds"))?;
        let (low, high) = (low.max(0) as u64, high.max(0) as u64);
        let mut from = store.meta(tp)?.checkpoint;
        if from < low || from > high {
            tracing::warn!(%changelog, partition, checkpoint = from, low, high, "the local state copy is outside the changelog: restoring it from empty");
            let empty = Unit {
                changes: Vec::new(),
                emits: Vec::new(),
                marker: Marker::Reset { position: 0 },
                marker_offset: low,
            };
            store.apply(tp, &empty, low)?;
            from = low;
        }
        if from >= high {
            return Ok(());
        }
        let started = Instant::now();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(changelog, partition, Offset::Offset(from as i64))
            .map_err(ClusterError::kafka("naming the changelog to read"))?;
        self.consumer
            .assign(&tpl)
            .map_err(ClusterError::kafka("reading a changelog"))?;
        let result = self.read_to(store, tp, changelog, high, started);
        self.consumer.unassign().ok();
        result?;
        metrics::histogram!("weir_state_restore_seconds", "group" => changelog.to_string())
            .record(started.elapsed().as_secs_f64());
        tracing::info!(%changelog, partition, from, to = high, "state restored from the cluster");
        Ok(())
    }

    fn read_to(
        &self,
        store: &StateStore,
        tp: &TopicPartition,
        changelog: &str,
        high: u64,
        started: Instant,
    ) -> Result<(), ClusterError> {
        let partition = tp.partition as i32;
        let mut units = Units::default();
        loop {
            if let Some(message) = self.consumer.poll(Duration::from_millis(100)) {
                let message = message.map_err(ClusterError::kafka("reading a changelog"))?;
                let offset = message.offset() as u64;
                let entry = decode(
                    changelog,
                    tp.partition,
                    offset,
                    message.key(),
                    message.payload(),
                )?;
                if let Some(unit) = units.push(entry, offset) {
                    store.apply(tp, &unit, offset + 1)?;
                }
            }
            // The position moves past transaction markers and aborted
            // records too, which a reader never sees.
            let position = self
                .consumer
                .position()
                .map_err(ClusterError::kafka("reading a changelog's position"))?;
            let at = position
                .find_partition(changelog, partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o as u64),
                    _ => None,
                });
            if at.is_some_and(|at| at >= high) {
                return Ok(());
            }
            if started.elapsed() > RESTORE_TIMEOUT {
                return Err(ClusterError::Restore {
                    changelog: changelog.to_string(),
                    partition: tp.partition,
                    reason: format!(
                        "its end ({high}) was not reached in {RESTORE_TIMEOUT:?} (at {at:?}); an \
                         open transaction of another member may hold it"
                    ),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: Raw) -> Entry {
        decode("weir-state.g.in", 0, 7, Some(&raw.0), Some(&raw.1)).unwrap()
    }

    #[test]
    fn changes_and_markers_round_trip_with_keys_that_never_meet() {
        let put = (b"m".to_vec(), Some(b"v".to_vec()));
        let del = (b"gone".to_vec(), None);
        assert_eq!(round_trip(change_record(&put)), Entry::Change(put.clone()));
        assert_eq!(round_trip(change_record(&del)), Entry::Change(del));
        assert_eq!(
            round_trip(marker_record(42)),
            Entry::Marker(Marker::Commit {
                position: 42,
                dests: Vec::new()
            })
        );
        assert_ne!(
            change_record(&put).0,
            marker_record(1).0,
            "a guest key \"m\" does not compact away the marker"
        );
    }

    #[test]
    fn a_foreign_record_is_an_error_naming_its_place() {
        let err = decode("weir-state.g.in", 3, 17, Some(b"x"), Some(b"y")).unwrap_err();
        assert!(
            err.to_string().contains("weir-state.g.in/3 offset 17"),
            "{err}"
        );
        let err = decode("weir-state.g.in", 3, 18, None, Some(b"y")).unwrap_err();
        assert!(err.to_string().contains("without a key"), "{err}");
    }
}
