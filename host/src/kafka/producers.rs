//! The idempotent producer: InitProducerId hands out producer ids, and each
//! (producer id, topic, partition) keeps the sequence numbers of its last
//! five batches, as Kafka does, so a retried batch is answered with the
//! offset it got the first time instead of being appended again, and a batch
//! that skips ahead is refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! This state lives in memory: after a restart, a producer's next batch is
//! taken whatever its sequence (a retry that straddles a restart may then be
//! appended twice). Producer ids start from the wall clock at start-up, so
//! ids handed out after a restart do not collide with those of producers
//! still running. InitProducerId with a transactional id is answered by
//! `transactions.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{KafkaError, Session};

/// How many batches per producer and partition are remembered for duplicates.
const REMEMBERED: usize = 5;

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

/// The producer ids and the sequences of every idempotent producer.
pub struct Producers {
    next_id: AtomicI64,
    sequences: Mutex<HashMap<(i64, String, u32), Sequences>>,
}

impl Default for Producers {
    fn default() -> Producers {
        Producers {
            next_id: AtomicI64::new(crate::log::now_ms().max(1)),
            sequences: Mutex::default(),
        }
    }
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
        let mut all = self.sequences.lock().expect("producer sequences lock");
        let seqs = all.entry((id, topic.to_string(), partition)).or_default();
        match check(seqs, epoch, first, last) {
            Check::Append => {}
            Check::Duplicate(base) => return Ok(Outcome::Duplicate(base)),
            Check::OutOfOrder => return Ok(Outcome::OutOfOrder),
            Check::StaleEpoch => return Ok(Outcome::StaleEpoch),
        }
        let base = append()?;
        if epoch != seqs.epoch {
            seqs.epoch = epoch;
            seqs.recent.clear();
        }
        if seqs.recent.len() == REMEMBERED {
            seqs.recent.pop_front();
        }
        seqs.recent.push_back((first, last, base));
        Ok(Outcome::Appended(base))
    }
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
