//! Commits as Kafka transactions: exactly-once, and every commit of a group
//! that keeps guest state.
//!
//! A member's transactional producer has a stable `transactional.id`,
//! `weir.<group>.<member>`: with a host id (`cluster.instance_id`) the member
//! id is `<host>.<processor>-<i>`, so a restarted host's producer fences the
//! producer of the process it replaces and aborts its open transaction
//! (without one, the id gets a random suffix: two hosts never share an id,
//! and a dead host's open transaction holds `read_committed` readers until
//! `transaction.timeout.ms`). One transaction per batch holds the batch's
//! emits, its state changes with the position marker (`changelog.rs`) and its
//! next offset (`send_offsets_to_transaction` with the consumer's group
//! metadata, so a member of an older generation is fenced, KIP-447). It
//! commits, or it is aborted and nothing of it is seen by a `read_committed`
//! reader. Once a member has a transactional producer, all its commits go
//! through it. The local state copy is updated only after the commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer as _};
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::{self, Restorer};
use super::consumer::Rebalances;
use super::producer::Emitter;
use super::{ClusterError, ClusterSpec};
use crate::consumer::{Commit, CommitMode, Membership};
use crate::group::TopicPartition;
use crate::state::changelog::{Marker, Unit};
use crate::state::{PartitionMeta, StateStore};

/// How long a transactional call (init, send offsets, commit, abort) may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// A member's transactions and its side of the group's state.
pub(super) struct Transactions {
    spec: ClusterSpec,
    group: String,
    transactional_id: String,
    store: Arc<StateStore>,
    restorer: Restorer,
    /// Made on the first commit that needs it, or when a partition with a
    /// changelog is assigned (so a zombie's open transaction is aborted
    /// before its changelog is read).
    producer: Option<Emitter>,
    /// Changelogs known to exist.
    changelogs: HashSet<String>,
}

impl Transactions {
    pub fn new(
        spec: &ClusterSpec,
        membership: &Membership,
        member: &str,
    ) -> Result<Transactions, ClusterError> {
        let stable = spec.instance_id.is_some() && membership.instance_id.is_some();
        let transactional_id = transactional_id(&membership.group, member, stable);
        Ok(Transactions {
            spec: spec.clone(),
            group: membership.group.clone(),
            transactional_id,
            store: membership.state.clone(),
            restorer: Restorer::new(spec, &membership.group)?,
            producer: None,
            changelogs: HashSet::new(),
        })
    }

    /// Whether `commit` goes through a transaction.
    pub fn wanted(&self, commit: &Commit) -> bool {
        self.producer.is_some()
            || commit.mode == CommitMode::ExactlyOnce
            || !commit.state.is_empty()
    }

    /// The transactional producer, made (and its transactions initialized,
    /// fencing an older producer of the same id) on first use.
    fn producer(&mut self) -> Result<&Emitter, ClusterError> {
        if self.producer.is_none() {
            let emitter = Emitter::with(&self.spec, Some(&self.transactional_id))?;
            emitter
                .producer()
                .init_transactions(TXN_TIMEOUT)
                .map_err(ClusterError::kafka(
                    "initializing the member's transactions",
                ))?;
            tracing::info!(group = %self.group, transactional_id = %self.transactional_id, "transactions initialized");
            self.producer = Some(emitter);
        }
        Ok(self.producer.as_ref().expect("made above"))
    }

    /// Brings the local copy of a newly assigned partition's state up to
    /// its changelog, before the partition's first batch. Without a
    /// changelog, a copy left from an earlier one is emptied.
    pub fn restore(&mut self, tp: &TopicPartition) -> Result<(), ClusterError> {
        let changelog = super::changelog::topic(&self.group, &tp.topic);
        if !self.changelogs.contains(&changelog) {
            if self.restorer.partitions(&changelog)?.is_none() {
                if self.store.meta(tp)? != PartitionMeta::default() {
                    self.store.apply(tp, &empty(), 0)?;
                }
                return Ok(());
            }
            self.changelogs.insert(changelog.clone());
        }
        self.producer()?;
        self.restorer.restore(&self.store, tp, &changelog)
    }

    /// Commits `commit` as one transaction, then applies its state changes to
    /// the local copy. On an error the transaction is aborted (nothing of it
    /// is visible) and the caller moves back to the committed offset.
    pub fn commit(
        &mut self,
        consumer: &BaseConsumer<Rebalances>,
        commit: Commit,
    ) -> Result<(), ClusterError> {
        let tp = commit.source.clone();
        let changelog = super::changelog::topic(&self.group, &tp.topic);
        if !commit.state.is_empty() && !self.changelogs.contains(&changelog) {
            let partitions = self.restorer.partitions(&tp.topic)?.ok_or_else(|| {
                ClusterError::Settings(format!("the input topic {:?} is gone", tp.topic))
            })?;
            changelog::create(&self.spec, &changelog, partitions)?;
            self.changelogs.insert(changelog.clone());
        }
        let metadata = consumer
            .group_metadata()
            .ok_or_else(|| ClusterError::Fenced {
                topic: tp.topic.clone(),
                partition: tp.partition,
                reason: "the member has no group metadata (not in the group)".into(),
            })?;
        let emitter = self.producer()?;
        let producer = emitter.producer();
        producer
            .begin_transaction()
            .map_err(|e| transaction_error(&tp, "beginning a transaction", e))?;
        let written = (|| {
            emitter.enqueue(&commit.emits)?;
            if !commit.state.is_empty() {
                let marker = changelog::marker_record(commit.next);
                let records = commit.state.iter().map(changelog::change_record);
                for (key, value) in records.chain([marker]) {
                    let record = BaseRecord::to(&changelog)
                        .partition(tp.partition as i32)
                        .key(key.as_slice())
                        .payload(value.as_slice());
                    emitter.send(record, &changelog)?;
                }
            }
            let first = commit.emits.first().map_or(&changelog, |e| &e.topic);
            emitter.settle(first)?;
            let mut offsets = TopicPartitionList::new();
            offsets
                .add_partition_offset(
                    &tp.topic,
                    tp.partition as i32,
                    Offset::Offset(commit.next as i64),
                )
                .map_err(ClusterError::kafka("naming the offset to commit"))?;
            producer
                .send_offsets_to_transaction(&offsets, &metadata, TXN_TIMEOUT)
                .map_err(|e| transaction_error(&tp, "adding the offset to the transaction", e))?;
            producer
                .commit_transaction(TXN_TIMEOUT)
                .map_err(|e| transaction_error(&tp, "committing the transaction", e))
        })();
        if let Err(e) = written {
            self.abort(&e);
            return Err(e);
        }
        if !commit.state.is_empty() {
            let last = producer
                .context()
                .last_offset(&changelog, tp.partition as i32);
            let checkpoint = match last {
                Some(offset) => offset as u64 + 1,
                None => self.store.meta(&tp)?.checkpoint,
            };
            let unit = Unit {
                changes: commit.state,
                emits: Vec::new(),
                marker: Marker::Commit {
                    position: commit.next,
                    dests: Vec::new(),
                },
                marker_offset: checkpoint.saturating_sub(1),
            };
            self.store.apply(&tp, &unit, checkpoint)?;
        }
        Ok(())
    }

    /// Aborts the open transaction after `cause`; a producer that failed
    /// for good is dropped (the next commit makes a new one).
    fn abort(&mut self, cause: &ClusterError) {
        let Some(emitter) = &self.producer else {
            return;
        };
        if let Err(e) = emitter.producer().abort_transaction(TXN_TIMEOUT) {
            tracing::warn!(group = %self.group, cause = %cause, error = %e, "could not abort the transaction; making a new producer");
            self.producer = None;
        }
    }

    /// Brings the local copy of `tp` up to its changelog again (after a
    /// failed commit, whose outcome the copy cannot know).
    pub fn resync(&mut self, tp: &TopicPartition) -> Result<(), ClusterError> {
        let changelog = super::changelog::topic(&self.group, &tp.topic);
        if self.changelogs.contains(&changelog) {
            self.restorer.restore(&self.store, tp, &changelog)?;
        }
        Ok(())
    }
}

/// `weir.<group>.<member>`, with a random suffix unless the member id is
/// stable across restarts (a host id and a static instance).
fn transactional_id(group: &str, member: &str, stable: bool) -> String {
    match stable {
        true => format!("weir.{group}.{member}"),
        false => format!("weir.{group}.{member}.{}", uuid::Uuid::new_v4()),
    }
}

/// A unit that empties a partition's state.
fn empty() -> Unit {
    Unit {
        changes: Vec::new(),
        emits: Vec::new(),
        marker: Marker::Reset { position: 0 },
        marker_offset: 0,
    }
}

/// A transactional call's error: fenced when the group moved on (KIP-447) or
/// another producer took this member's transactional id.
fn transaction_error(tp: &TopicPartition, context: &'static str, e: KafkaError) -> ClusterError {
    let fenced = super::consumer::is_fencing(&e)
        || matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::InvalidProducerEpoch)
        );
    match fenced {
        true => ClusterError::Fenced {
            topic: tp.topic.clone(),
            partition: tp.partition,
            reason: format!("{context}: {e}"),
        },
        false => ClusterError::Kafka { context, source: e },
    }
}

/// `group`'s committed offset on `tp`, as the coordinator has it.
pub(super) fn committed(
    consumer: &BaseConsumer<Rebalances>,
    tp: &TopicPartition,
) -> Result<Option<u64>, ClusterError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(&tp.topic, tp.partition as i32);
    let committed = consumer
        .committed_offsets(tpl, TXN_TIMEOUT)
        .map_err(ClusterError::kafka("reading the committed offset"))?;
    Ok(committed
        .find_partition(&tp.topic, tp.partition as i32)
        .and_then(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 => Some(o as u64),
            _ => None,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stable_member_keeps_its_transactional_id_and_a_dynamic_one_never_shares_it() {
        assert_eq!(
            transactional_id("totals", "host-a.totals-0", true),
            "weir.totals.host-a.totals-0"
        );
        let dynamic = transactional_id("totals", "totals-0", false);
        assert!(dynamic.starts_with("weir.totals.totals-0."), "{dynamic}");
        assert_ne!(dynamic, transactional_id("totals", "totals-0", false));
    }
}
