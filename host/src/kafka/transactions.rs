//! Kafka transactions on the listener: InitProducerId with a transactional
//! id, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, and the
//! transactional batches of Produce.
//!
//! weir's design: a transaction's records and offsets are held in memory
//! (`transactions/state.rs`, at most [`DEFAULT_MAX_BYTES`] of records per
//! transaction, Kafka's `transaction.max.bytes` in spirit) and reach the log
//! only when EndTxn commits, as one durable unit (`transactions/journal.rs`);
//! an abort, a timeout or a fenced producer drops them. So no reader, with
//! `read_committed` or `read_uncommitted`, ever sees a record of an open or
//! aborted transaction, and the last stable offset is the high watermark.
//!
//! Differences from Kafka: records of an open transaction are invisible to
//! `read_uncommitted` readers too; a transactional Produce is answered with
//! base offset -1 (the offsets are given at commit); records land at commit
//! time, after records produced meanwhile without a transaction, and carry a
//! `weir.txn` header in weir's log (Kafka fetches leave it out); open
//! transactions live in memory, so a restart aborts them, while every commit
//! that was answered stays, and one cut short is finished on open; each
//! transactional id's producer id and epoch are saved
//! (`transactions/ids.rs`), so after a restart the producer of a lost
//! transaction is fenced and one that initializes again gets the next
//! epoch; timeouts are checked whenever a transactional request or batch
//! arrives.

mod error;
mod ids;
mod journal;
mod requests;
mod state;

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use kafka_protocol::error::ResponseError;

use super::producers::{Outcome, Producers};
use crate::broker::Broker;
use crate::log::{Log, LogError, Record, encoded_len};

pub use error::TxnError;
pub use journal::TOPIC;
pub use requests::{add_offsets, add_partitions, end, init, txn_offset_commit};
use state::Txns;

/// The most bytes of records one transaction may hold until it commits.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;

/// The listener's transaction coordinator.
pub struct Transactions {
    txns: Mutex<Txns>,
    /// Held over each commit, so the journal's last unit is the only one
    /// that can be unfinished.
    committing: Mutex<()>,
}

impl Transactions {
    pub fn new(max_bytes: u64) -> Transactions {
        Transactions {
            txns: Mutex::new(Txns::new(max_bytes)),
            committing: Mutex::new(()),
        }
    }

    /// The coordinator's state, with expired transactions aborted first.
    fn lock(&self, producers: &Producers) -> MutexGuard<'_, Txns> {
        let mut txns = self.txns.lock().expect("transactions lock");
        for id in txns.expire(Instant::now(), &|| producers.allocate()) {
            tracing::info!(%id, "aborted a Kafka transaction past its timeout");
        }
        txns
    }

    /// Holds a transactional Produce batch of `producer` for
    /// `topic`/`partition` until its transaction ends, through the same
    /// sequence checks as any idempotent batch (a retry is held once).
    pub fn hold(
        &self,
        log: &Log,
        producers: &Producers,
        producer: (i64, i16),
        (topic, partition): (&str, u32),
        base_sequence: i32,
        records: Vec<Record>,
    ) -> Result<(), (ResponseError, Option<String>)> {
        let refusal = |e: TxnError| {
            let code = match &e {
                TxnError::Fenced { .. } => ResponseError::InvalidProducerEpoch,
                TxnError::TooLarge { .. } => ResponseError::MessageTooLarge,
                TxnError::UnknownProducer(_) | TxnError::IdMapping(..) => {
                    ResponseError::InvalidProducerIdMapping
                }
                TxnError::Concurrent(_) => ResponseError::ConcurrentTransactions,
                _ => ResponseError::InvalidTxnState,
            };
            (code, Some(e.to_string()))
        };
        self.lock(producers)
            .check_produce(producer, topic, partition)
            .map_err(refusal)?;
        if let Err(e) = fits(log, topic, &records) {
            let refused = super::produce::refusal(e);
            let why = refused.1.clone().unwrap_or_default();
            self.lock(producers).doom(producer, why);
            return Err(refused);
        }
        let bytes = records.iter().map(held_bytes).sum();
        let count = records.len() as u32;
        let outcome = producers
            .append(producer, topic, partition, base_sequence, count, || {
                self.lock(producers)
                    .hold_records(producer, topic, partition, records, bytes)
                    .map(|()| 0)
            })
            .map_err(refusal)?;
        match outcome {
            Outcome::Appended(_) | Outcome::Duplicate(_) => Ok(()),
            Outcome::OutOfOrder => Err((ResponseError::OutOfOrderSequenceNumber, None)),
            Outcome::StaleEpoch => Err((ResponseError::InvalidProducerEpoch, None)),
        }
    }
}

/// Room kept in each record for the `weir.txn` header its commit adds.
const TAG_BYTES: u64 = 64;

/// Refuses a record that could not be appended to `topic` at commit (over
/// its `max_batch_bytes` alone), as a Produce outside a transaction would be.
fn fits(log: &Log, topic: &str, records: &[Record]) -> Result<(), LogError> {
    let Some((_, config)) = log.topics().into_iter().find(|(name, _)| name == topic) else {
        return Err(LogError::UnknownTopic(topic.to_string()));
    };
    for record in records {
        let bytes = encoded_len(std::slice::from_ref(record)) + TAG_BYTES;
        if bytes > config.max_batch_bytes {
            return Err(LogError::BatchTooLarge {
                topic: topic.to_string(),
                records: 1,
                bytes,
                max_records: config.max_batch_records,
                max_bytes: config.max_batch_bytes,
            });
        }
    }
    Ok(())
}

/// About what a record takes in a batch (for the byte limit).
fn held_bytes(record: &Record) -> u64 {
    let headers: usize = record.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    (record.key.as_ref().map_or(0, Vec::len) + record.value.len() + headers + 16) as u64
}

/// Finishes a transaction commit a crash cut short (see
/// `transactions/journal.rs`); `weir serve` runs it before it serves.
/// Returns the transactional id it finished, if any.
pub fn recover(broker: &Broker) -> Result<Option<String>, TxnError> {
    journal::recover(broker.log(), broker.offsets())
}

/// Takes back the transactional ids' owners saved before a restart, each
/// with its epoch bumped (see `transactions/ids.rs`); how many. `weir serve`
/// runs it before it serves.
pub fn restore(state: &super::KafkaState) -> Result<usize, TxnError> {
    let owners = ids::load(state.broker.log())?;
    let mut txns = state.transactions.txns.lock().expect("transactions lock");
    for (id, owner) in &owners {
        txns.restore(id, (owner.producer_id, owner.epoch), &|| {
            state.producers.allocate()
        });
    }
    Ok(owners.len())
}
