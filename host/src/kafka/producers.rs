//! The idempotent producer: InitProducerId hands out producer ids, and each
//! (producer id, topic, partition) keeps the sequence numbers of its last
//! five batches, as Kafka does, so a retried batch is answered with the
//! offset it got the first time instead of being appended again, and a batch
//! that skips ahead is refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! The state lives in memory and is rebuilt after a restart from the log
//! itself, as Kafka rebuilds it from its batch headers: the last record of
//! each idempotent batch carries the header [`HEADER`] (producer id, epoch,
//! first sequence, record count), written in the same append as the batch,
//! so a batch in the log always has its tag and a torn one has neither.
//! The first idempotent batch to a partition after start-up reads the
//! partition's last [`TAIL_RECORDS`] records for tags ([`Producers::recover`])
//! before it is checked, so a retry that straddles a restart is answered
//! as a duplicate. The cost: 37 bytes in the log per idempotent batch, and
//! that one read per partition. Producer ids start from the wall clock at
//! start-up, so ids handed out after a restart do not collide with those of
//! producers still running. InitProducerId with a transactional id is
//! answered by `transactions.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{KafkaError, Session};
use crate::log::{Log, LogError, StoredRecord};

/// The header on the last record of an idempotent producer's batch in
/// weir's log: producer id, epoch, first sequence and record count, so the
/// sequences can be rebuilt after a restart. Kafka fetches leave it out.
pub const HEADER: &str = "weir.producer";

/// How many batches per producer and partition are remembered for duplicates.
const REMEMBERED: usize = 5;

/// How many of a partition's last records [`Producers::recover`] reads.
pub const TAIL_RECORDS: u64 = 100_000;
const READ_RECORDS: usize = 10_000;
const READ_BYTES: u64 = 16 << 20;

/// What became of a batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New and in order: appended at this base offset.
    Appended(u64),
    /// Seen before: not appended again; this is the base offset it got then.
    Duplicate(u64),
    /// A gap or a sequence from the past that is not a remembered batch.
    OutOfOrder,
    /// From an older epoch of the producer (a zombie).
    StaleEpoch,
}

/// What the sequence check says about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// New and in order: append it.
    Append,
    /// Seen before: answer with the base offset it got then.
    Duplicate(u64),
    /// A gap or a sequence from the past that is not a remembered batch.
    OutOfOrder,
    /// From an older epoch of the producer (a zombie).
    StaleEpoch,
}

/// One producer's batches on one partition.
#[derive(Debug, Default)]
struct Sequences {
    epoch: i16,
    /// (first sequence, last sequence, base offset), oldest first.
    recent: VecDeque<(i32, i32, u64)>,
}

/// The sequences of every idempotent producer, and the partitions whose
/// tags were read back since start-up.
#[derive(Debug, Default)]
struct Known {
    sequences: HashMap<(i64, String, u32), Sequences>,
    recovered: HashSet<(String, u32)>,
}

/// The producer ids and the sequences of every idempotent producer.
pub struct Producers {
    next_id: AtomicI64,
    known: Mutex<Known>,
}

impl Default for Producers {
    fn default() -> Producers {
        Producers {
            next_id: AtomicI64::new(crate::log::now_ms().max(1)),
            known: Mutex::default(),
        }
    }
}

/// The [`HEADER`] of a batch of `count` records from `producer` starting at
/// sequence `first`.
pub fn tag(producer: (i64, i16), first: i32, count: u32) -> (String, Vec<u8>) {
    let mut value = Vec::with_capacity(18);
    value.extend_from_slice(&producer.0.to_be_bytes());
    value.extend_from_slice(&producer.1.to_be_bytes());
    value.extend_from_slice(&first.to_be_bytes());
    value.extend_from_slice(&count.to_be_bytes());
    (HEADER.to_string(), value)
}

/// The producer, first sequence and base offset of the batch whose last
/// record is `record`, if it carries a tag.
fn untag(record: &StoredRecord) -> Option<((i64, i16), i32, u32, u64)> {
    let (_, v) = record.headers.iter().rev().find(|(n, _)| n == HEADER)?;
    let v: &[u8; 18] = v.as_slice().try_into().ok()?;
    let id = i64::from_be_bytes(v[0..8].try_into().ok()?);
    let epoch = i16::from_be_bytes(v[8..10].try_into().ok()?);
    let first = i32::from_be_bytes(v[10..14].try_into().ok()?);
    let count = u32::from_be_bytes(v[14..18].try_into().ok()?);
    let base = (record.offset + 1).checked_sub(u64::from(count.max(1)))?;
    Some(((id, epoch), first, count, base))
}

impl Producers {
    /// A fresh producer id.
    pub fn allocate(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Checks a batch of `count` records from `producer` (id, epoch) starting
    /// at sequence `first` and, when it is new, runs `append` (which returns
    /// the base offset) under the same lock, so two copies of one batch
    /// racing on two connections cannot both be appended.
    pub fn append<E>(
        &self,
        producer: (i64, i16),
        topic: &str,
        partition: u32,
        first: i32,
        count: u32,
        append: impl FnOnce() -> Result<u64, E>,
    ) -> Result<Outcome, E> {
        let (id, epoch) = producer;
        let last = first.wrapping_add(count as i32 - 1);
        let mut known = self.known.lock().expect("producer sequences lock");
        let seqs = known
            .sequences
            .entry((id, topic.to_string(), partition))
            .or_default();
        match check(seqs, epoch, first, last) {
            Check::Append => {}
            Check::Duplicate(base) => return Ok(Outcome::Duplicate(base)),
            Check::OutOfOrder => return Ok(Outcome::OutOfOrder),
            Check::StaleEpoch => return Ok(Outcome::StaleEpoch),
        }
        let base = append()?;
        remember(seqs, epoch, (first, last, base));
        Ok(Outcome::Appended(base))
    }

    /// Rebuilds the sequences of `topic`/`partition` from the tags in its
    /// last [`TAIL_RECORDS`] records, once per partition after start-up;
    /// later calls return at once. Holds the lock while it reads, so no
    /// batch to any partition is checked before the tags are in.
    pub fn recover(&self, log: &Log, topic: &str, partition: u32) -> Result<(), LogError> {
        let mut known = self.known.lock().expect("producer sequences lock");
        let key = (topic.to_string(), partition);
        if known.recovered.contains(&key) {
            return Ok(());
        }
        let hw = log.high_watermark(topic, partition)?;
        let mut from = log
            .log_start(topic, partition)?
            .max(hw.saturating_sub(TAIL_RECORDS));
        let mut found = 0usize;
        while from < hw {
            let records = log.read(topic, partition, from, READ_RECORDS, READ_BYTES)?;
            let Some(end) = records.last().map(|r| r.offset + 1) else {
                break;
            };
            from = end;
            for ((id, epoch), first, count, base) in records.iter().filter_map(untag) {
                let last = first.wrapping_add(count as i32 - 1);
                let seqs = known
                    .sequences
                    .entry((id, topic.to_string(), partition))
                    .or_default();
                if seqs.recent.is_empty() || epoch >= seqs.epoch {
                    remember(seqs, epoch, (first, last, base));
                    found += 1;
                }
            }
        }
        if found > 0 {
            tracing::info!(
                topic,
                partition,
                batches = found,
                "idempotent producers' sequences read back"
            );
        }
        known.recovered.insert(key);
        Ok(())
    }
}

/// Notes an appended batch, forgetting the oldest past [`REMEMBERED`] and
/// everything of an older epoch.
fn remember(seqs: &mut Sequences, epoch: i16, batch: (i32, i32, u64)) {
    if epoch != seqs.epoch {
        seqs.epoch = epoch;
        seqs.recent.clear();
    }
    if seqs.recent.len() == REMEMBERED {
        seqs.recent.pop_front();
    }
    seqs.recent.push_back(batch);
}

fn check(seqs: &Sequences, epoch: i16, first: i32, last: i32) -> Check {
    if seqs.recent.is_empty() || epoch > seqs.epoch {
        return Check::Append;
    }
    if epoch < seqs.epoch {
        return Check::StaleEpoch;
    }
    if let Some(&(_, _, base)) = seqs
        .recent
        .iter()
        .find(|&&(f, l, _)| f == first && l == last)
    {
        return Check::Duplicate(base);
    }
    let (_, newest, _) = *seqs.recent.back().expect("not empty");
    if first == newest.wrapping_add(1) && first >= 0 {
        Check::Append
    } else {
        Check::OutOfOrder
    }
}

/// InitProducerId without a transactional id: a new producer id with epoch
/// 0, or, when the client names its current id and epoch, the next epoch.
pub fn init(
    session: &Session,
    version: i16,
    request: InitProducerIdRequest,
) -> Result<InitProducerIdResponse, KafkaError> {
    let response = InitProducerIdResponse::default();
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.0.is_empty())
    {
        return Ok(super::transactions::init(session, version, request));
    }
    let producers = &session.state.producers;
    let (id, epoch) = if request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        match request.producer_epoch.checked_add(1) {
            Some(epoch) => (request.producer_id.0, epoch),
            None => (producers.allocate(), 0),
        }
    } else {
        (producers.allocate(), 0)
    };
    Ok(response
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &Producers, epoch: i16, first: i32, count: u32, next: &mut u64) -> Outcome {
        p.append((7, epoch), "t", 0, first, count, || {
            let base = *next;
            *next += count as u64;
            Ok::<_, ()>(base)
        })
        .unwrap()
    }

    #[test]
    fn retries_get_their_first_offset_and_gaps_are_refused() {
        let p = Producers::default();
        let mut next = 100;
        assert_eq!(run(&p, 0, 0, 3, &mut next), Outcome::Appended(100));
        assert_eq!(run(&p, 0, 3, 2, &mut next), Outcome::Appended(103));
        // A retry of the first batch: not appended again.
        assert_eq!(run(&p, 0, 0, 3, &mut next), Outcome::Duplicate(100));
        assert_eq!(next, 105);
        // A gap.
        assert_eq!(run(&p, 0, 9, 1, &mut next), Outcome::OutOfOrder);
        assert_eq!(run(&p, 0, 5, 1, &mut next), Outcome::Appended(105));
    }

    #[test]
    fn a_new_epoch_starts_over_and_the_old_one_is_fenced() {
        let p = Producers::default();
        let mut next = 0;
        assert_eq!(run(&p, 0, 0, 1, &mut next), Outcome::Appended(0));
        assert_eq!(run(&p, 1, 0, 1, &mut next), Outcome::Appended(1));
        assert_eq!(run(&p, 0, 1, 1, &mut next), Outcome::StaleEpoch);
    }

    #[test]
    fn tags_in_the_log_rebuild_the_sequences_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", crate::log::TopicConfig::with_partitions(1))
            .unwrap();
        let before = Producers::default();
        let batch = |first: i32, epoch: i16| {
            let mut records = vec![crate::log::Record::value("a"); 3];
            records[2].headers.push(tag((7, epoch), first, 3));
            records
        };
        log.append("t", 0, &[crate::log::Record::value("plain")])
            .unwrap();
        for first in [0, 3] {
            let outcome = before
                .append((7, 0), "t", 0, first, 3, || {
                    log.append("t", 0, &batch(first, 0))
                })
                .unwrap();
            assert_eq!(outcome, Outcome::Appended(1 + first as u64));
        }
        drop(log);
        // A new process: nothing in memory, the log read back.
        let log = Log::open(dir.path()).unwrap();
        let after = Producers::default();
        after.recover(&log, "t", 0).unwrap();
        let retry = after
            .append((7, 0), "t", 0, 3, 3, || -> Result<u64, LogError> {
                panic!("a retry must not be appended")
            })
            .unwrap();
        assert_eq!(retry, Outcome::Duplicate(4));
        assert_eq!(
            after
                .append((7, 0), "t", 0, 9, 1, || Ok::<_, LogError>(0))
                .unwrap(),
            Outcome::OutOfOrder,
            "a gap is still a gap"
        );
        let stale = after.append((7, -1), "t", 0, 6, 1, || Ok::<_, LogError>(0));
        assert_eq!(stale.unwrap(), Outcome::StaleEpoch);
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let p = Producers::default();
        let mut next = 0;
        for i in 0..6 {
            assert_eq!(run(&p, 0, i, 1, &mut next), Outcome::Appended(i as u64));
        }
        assert_eq!(run(&p, 0, 0, 1, &mut next), Outcome::OutOfOrder);
        assert_eq!(run(&p, 0, 1, 1, &mut next), Outcome::Duplicate(1));
    }
}
