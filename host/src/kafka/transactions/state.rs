//! The transaction coordinator's state, as pure logic over an explicit
//! `now`: which producer id and epoch own each transactional id, and what an
//! ongoing transaction holds (its partitions, groups, records and offsets)
//! until EndTxn.
//!
//! Invariants: only the newest epoch of a transactional id may act (an older
//! one is fenced, a newer one is unknown); records and offsets are held here
//! and reach the log only through [`Txns::prepare_commit`], which takes them
//! out whole; a transaction that refused a record (over the byte limit) can
//! only abort; a transaction older than its timeout is aborted and its epoch
//! bumped, so its producer is fenced as Kafka fences it; while a commit is
//! being written ([`Phase::Committing`]) every other request of that id gets
//! CONCURRENT_TRANSACTIONS.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::log::Record;
use crate::offsets::Committed;

use super::TxnError;

/// The longest transaction timeout a producer may ask for (Kafka's
/// `transaction.max.timeout.ms` default).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Where a transactional id stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No transaction: the next AddPartitionsToTxn or AddOffsetsToTxn begins one.
    Empty,
    /// A transaction began at `since`.
    Ongoing { since: Instant },
    /// EndTxn(commit) is writing it.
    Committing,
}

/// One transactional id.
#[derive(Debug)]
struct Txn {
    producer_id: i64,
    epoch: i16,
    timeout: Duration,
    phase: Phase,
    /// Why this transaction can no longer commit (a record was refused).
    doomed: Option<String>,
    partitions: BTreeSet<(String, u32)>,
    groups: BTreeSet<String>,
    held: Held,
}

/// What a transaction holds until it ends.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Held {
    /// Records per (topic, partition), in produce order.
    pub records: BTreeMap<(String, u32), Vec<Record>>,
    /// Offsets per (group, topic, partition).
    pub offsets: BTreeMap<(String, String, u32), Committed>,
    /// The encoded size of the held records.
    pub bytes: u64,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.offsets.is_empty()
    }
}

/// Every transactional id this process knows.
#[derive(Debug)]
pub struct Txns {
    by_id: HashMap<String, Txn>,
    /// Producer id to transactional id, for Produce (which names no id).
    ids: HashMap<i64, String>,
    /// The most bytes of records one transaction may hold.
    max_bytes: u64,
}

impl Txns {
    pub fn new(max_bytes: u64) -> Txns {
        Txns {
            by_id: HashMap::new(),
            ids: HashMap::new(),
            max_bytes,
        }
    }

    /// InitProducerId with a transactional id: a new producer id with epoch
    /// 0 for a new id; otherwise the next epoch, which fences the previous
    /// producer and aborts its open transaction. A client that names its
    /// current id and epoch (KIP-360) gets the next epoch too; one that names
    /// an older one is fenced.
    pub fn init(
        &mut self,
        id: &str,
        timeout: Duration,
        current: Option<(i64, i16)>,
        allocate: &dyn Fn() -> i64,
    ) -> Result<(i64, i16), TxnError> {
        if timeout.is_zero() || timeout > MAX_TIMEOUT {
            return Err(TxnError::InvalidTimeout {
                asked_ms: timeout.as_millis() as u64,
                max_ms: MAX_TIMEOUT.as_millis() as u64,
            });
        }
        let Some(txn) = self.by_id.get_mut(id) else {
            let producer_id = allocate();
            self.ids.insert(producer_id, id.to_string());
            self.by_id.insert(
                id.to_string(),
                Txn {
                    producer_id,
                    epoch: 0,
                    timeout,
                    phase: Phase::Empty,
                    doomed: None,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    held: Held::default(),
                },
            );
            return Ok((producer_id, 0));
        };
        if txn.phase == Phase::Committing {
            return Err(TxnError::Concurrent(id.to_string()));
        }
        if let Some((producer_id, epoch)) = current
            && (producer_id != txn.producer_id || epoch != txn.epoch)
        {
            return Err(fenced(id, txn, producer_id, epoch));
        }
        txn.timeout = timeout;
        txn.reset();
        bump(txn, &mut self.ids, id, allocate);
        Ok((txn.producer_id, txn.epoch))
    }

    /// Takes back `id`'s owner as saved before a restart and bumps its
    /// epoch, fencing that producer: whatever transaction it had open was
    /// held in the lost process's memory (see `ids.rs`).
    pub fn restore(&mut self, id: &str, owner: (i64, i16), allocate: &dyn Fn() -> i64) {
        let mut txn = Txn {
            producer_id: owner.0,
            epoch: owner.1,
            timeout: MAX_TIMEOUT,
            phase: Phase::Empty,
            doomed: None,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            held: Held::default(),
        };
        self.ids.insert(owner.0, id.to_string());
        bump(&mut txn, &mut self.ids, id, allocate);
        self.by_id.insert(id.to_string(), txn);
    }

    /// AddPartitionsToTxn: begins the transaction if none is open.
    pub fn add_partitions(
        &mut self,
        id: &str,
        producer: (i64, i16),
        partitions: &[(String, u32)],
        now: Instant,
    ) -> Result<(), TxnError> {
        let txn = self.current(id, producer)?;
        txn.begin(now);
        txn.partitions.extend(partitions.iter().cloned());
        Ok(())
    }

    /// AddOffsetsToTxn: begins the transaction if none is open.
    pub fn add_offsets(
        &mut self,
        id: &str,
        producer: (i64, i16),
        group: &str,
        now: Instant,
    ) -> Result<(), TxnError> {
        let txn = self.current(id, producer)?;
        txn.begin(now);
        txn.groups.insert(group.to_string());
        Ok(())
    }

    /// TxnOffsetCommit: holds `offsets` of `group` (added before) until the
    /// transaction ends.
    pub fn hold_offsets(
        &mut self,
        id: &str,
        producer: (i64, i16),
        group: &str,
        offsets: &[(String, u32, Committed)],
    ) -> Result<(), TxnError> {
        let txn = self.current(id, producer)?;
        if !matches!(txn.phase, Phase::Ongoing { .. }) || !txn.groups.contains(group) {
            return Err(TxnError::GroupNotAdded(group.to_string()));
        }
        for (topic, partition, committed) in offsets {
            txn.held
                .offsets
                .insert((group.to_string(), topic.clone(), *partition), *committed);
        }
        Ok(())
    }

    /// Checks that a transactional Produce batch of `producer` may go to
    /// (`topic`, `partition`): the epoch is current and the partition was
    /// added to the open transaction.
    pub fn check_produce(
        &mut self,
        producer: (i64, i16),
        topic: &str,
        partition: u32,
    ) -> Result<(), TxnError> {
        let id = self
            .ids
            .get(&producer.0)
            .cloned()
            .ok_or(TxnError::UnknownProducer(producer.0))?;
        let txn = self.current(&id, producer)?;
        if !matches!(txn.phase, Phase::Ongoing { .. })
            || !txn.partitions.contains(&(topic.to_string(), partition))
        {
            return Err(TxnError::PartitionNotAdded {
                topic: topic.to_string(),
                partition,
            });
        }
        Ok(())
    }

    /// Holds the records of a transactional batch (checked with
    /// [`Txns::check_produce`] under the same lock). Past the byte limit the
    /// records are refused and the transaction can then only abort.
    pub fn hold_records(
        &mut self,
        producer: (i64, i16),
        topic: &str,
        partition: u32,
        records: Vec<Record>,
        bytes: u64,
    ) -> Result<(), TxnError> {
        self.check_produce(producer, topic, partition)?;
        let max = self.max_bytes;
        let id = self.ids[&producer.0].clone();
        let txn = self.by_id.get_mut(&id).expect("mapped");
        if txn.held.bytes + bytes > max {
            let e = TxnError::TooLarge {
                id,
                bytes: txn.held.bytes + bytes,
                max,
            };
            txn.doomed = Some(e.to_string());
            return Err(e);
        }
        txn.held.bytes += bytes;
        txn.held
            .records
            .entry((topic.to_string(), partition))
            .or_default()
            .extend(records);
        Ok(())
    }

    /// A batch of `producer`'s open transaction was refused: it can only
    /// abort now, so a commit never lands part of what the client sent.
    pub fn doom(&mut self, producer: (i64, i16), why: String) {
        if let Some(id) = self.ids.get(&producer.0).cloned()
            && let Ok(txn) = self.current(&id, producer)
        {
            txn.doomed = Some(why);
        }
    }

    /// EndTxn(commit): takes the held records and offsets out and marks the
    /// id [`Phase::Committing`] until [`Txns::finish`]; `None` when there is
    /// nothing to write (no open transaction, or one that held nothing).
    pub fn prepare_commit(
        &mut self,
        id: &str,
        producer: (i64, i16),
    ) -> Result<Option<Held>, TxnError> {
        let txn = self.current(id, producer)?;
        if let Some(why) = txn.doomed.clone() {
            return Err(TxnError::Doomed(why));
        }
        if txn.phase == Phase::Empty {
            return Ok(None);
        }
        let held = std::mem::take(&mut txn.held);
        txn.reset();
        if held.is_empty() {
            return Ok(None);
        }
        txn.phase = Phase::Committing;
        Ok(Some(held))
    }

    /// The commit of `id` was written (or failed): the id is free again.
    pub fn finish(&mut self, id: &str) {
        if let Some(txn) = self.by_id.get_mut(id) {
            txn.reset();
        }
    }

    /// Resets `id` and bumps its epoch (a commit that failed to write): its
    /// producer must initialize again.
    pub fn fence(&mut self, id: &str, allocate: &dyn Fn() -> i64) {
        if let Some(txn) = self.by_id.get_mut(id) {
            txn.reset();
            bump(txn, &mut self.ids, id, allocate);
        }
    }

    /// EndTxn(abort): drops what the transaction held.
    pub fn abort(&mut self, id: &str, producer: (i64, i16)) -> Result<(), TxnError> {
        self.current(id, producer)?.reset();
        Ok(())
    }

    /// Aborts every transaction open longer than its timeout and bumps its
    /// epoch, so its producer is fenced. Returns the ids it aborted.
    pub fn expire(&mut self, now: Instant, allocate: &dyn Fn() -> i64) -> Vec<String> {
        let mut expired = Vec::new();
        for (id, txn) in &mut self.by_id {
            if let Phase::Ongoing { since } = txn.phase
                && now.saturating_duration_since(since) > txn.timeout
            {
                txn.reset();
                bump(txn, &mut self.ids, id, allocate);
                expired.push(id.clone());
            }
        }
        expired
    }

    /// The transaction of `id`, if `producer` is its current producer id and
    /// epoch and no commit is being written.
    fn current(&mut self, id: &str, producer: (i64, i16)) -> Result<&mut Txn, TxnError> {
        let txn = self
            .by_id
            .get_mut(id)
            .ok_or_else(|| TxnError::IdMapping(id.to_string(), producer.0))?;
        if txn.producer_id != producer.0 {
            return Err(TxnError::IdMapping(id.to_string(), producer.0));
        }
        if txn.epoch != producer.1 {
            return Err(fenced(id, txn, producer.0, producer.1));
        }
        if txn.phase == Phase::Committing {
            return Err(TxnError::Concurrent(id.to_string()));
        }
        Ok(txn)
    }

    /// The phase of `id`.
    #[cfg(test)]
    pub fn phase(&self, id: &str) -> Option<Phase> {
        self.by_id.get(id).map(|t| t.phase)
    }
}

impl Txn {
    fn begin(&mut self, now: Instant) {
        if self.phase == Phase::Empty {
            self.phase = Phase::Ongoing { since: now };
        }
    }

    /// Back to no transaction, holding nothing.
    fn reset(&mut self) {
        self.phase = Phase::Empty;
        self.doomed = None;
        self.partitions.clear();
        self.groups.clear();
        self.held = Held::default();
    }
}

/// The next epoch, or a new producer id once the epochs run out.
fn bump(txn: &mut Txn, ids: &mut HashMap<i64, String>, id: &str, allocate: &dyn Fn() -> i64) {
    match txn.epoch.checked_add(1) {
        Some(epoch) => txn.epoch = epoch,
        None => {
            ids.remove(&txn.producer_id);
            txn.producer_id = allocate();
            txn.epoch = 0;
            ids.insert(txn.producer_id, id.to_string());
        }
    }
}

fn fenced(id: &str, txn: &Txn, producer_id: i64, epoch: i16) -> TxnError {
    TxnError::Fenced {
        id: id.to_string(),
        producer_id,
        epoch,
        current: (txn.producer_id, txn.epoch),
    }
}

#[cfg(test)]
mod tests;
