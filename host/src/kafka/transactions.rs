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

mod ids;
mod journal;
mod state;

use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::producers::{Outcome, Producers};
use super::{KafkaError, Session};
use crate::broker::Broker;
use crate::log::{Log, LogError, Record, encoded_len};
use crate::offsets::{Committed, OffsetsError};

pub use journal::TOPIC;
use state::Txns;

/// The most bytes of records one transaction may hold until it commits.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 20;

/// What a transactional request can be refused for.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(
        "producer {producer_id} epoch {epoch} of transactional id {id:?} is fenced by producer {} epoch {}",
        current.0, current.1
    )]
    Fenced {
        id: String,
        producer_id: i64,
        epoch: i16,
        current: (i64, i16),
    },
    #[error("producer id {1} is not the one of transactional id {0:?}")]
    IdMapping(String, i64),
    #[error("producer id {0} has no transactional id (initialize the producer again)")]
    UnknownProducer(i64),
    #[error("transactional id {0:?} has a commit under way")]
    Concurrent(String),
    #[error("partition {topic}/{partition} was not added to the transaction (AddPartitionsToTxn)")]
    PartitionNotAdded { topic: String, partition: u32 },
    #[error("group {0:?} was not added to the transaction (AddOffsetsToTxn)")]
    GroupNotAdded(String),
    #[error("transaction {id:?} would hold {bytes} bytes of records, over the limit of {max}")]
    TooLarge { id: String, bytes: u64, max: u64 },
    #[error("the transaction can only abort: {0}")]
    Doomed(String),
    #[error("transaction timeout of {asked_ms} ms is outside 1..={max_ms} ms")]
    InvalidTimeout { asked_ms: u64, max_ms: u64 },
    #[error("malformed record at offset {0} of {TOPIC}: {1}")]
    Malformed(u64, String),
    #[error("malformed record at offset {0} of __transaction_ids: {1}")]
    MalformedOwner(u64, String),
    #[error("transaction journal")]
    Log(#[from] LogError),
    #[error("transaction offsets")]
    Offsets(#[from] OffsetsError),
}

impl TxnError {
    /// The Kafka error code; `fenced` is the code a stale epoch gets at the
    /// request's version (PRODUCER_FENCED replaced INVALID_PRODUCER_EPOCH).
    fn code(&self, fenced: ResponseError) -> i16 {
        let error = match self {
            TxnError::Fenced { .. } => fenced,
            TxnError::IdMapping(..) | TxnError::UnknownProducer(_) => {
                ResponseError::InvalidProducerIdMapping
            }
            TxnError::Concurrent(_) => ResponseError::ConcurrentTransactions,
            TxnError::PartitionNotAdded { .. }
            | TxnError::GroupNotAdded(_)
            | TxnError::Doomed(_) => ResponseError::InvalidTxnState,
            TxnError::TooLarge { .. } => ResponseError::MessageTooLarge,
            TxnError::InvalidTimeout { .. } => ResponseError::InvalidTransactionTimeout,
            TxnError::Malformed(..)
            | TxnError::MalformedOwner(..)
            | TxnError::Log(_)
            | TxnError::Offsets(_) => {
                tracing::error!(error = %crate::error::chain(self), "a Kafka transaction failed");
                ResponseError::KafkaStorageError
            }
        };
        error.code()
    }
}

/// The fenced code of a request at `version`: PRODUCER_FENCED from
/// `since`, INVALID_PRODUCER_EPOCH before.
fn fenced(version: i16, since: i16) -> ResponseError {
    if version >= since {
        ResponseError::ProducerFenced
    } else {
        ResponseError::InvalidProducerEpoch
    }
}

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

/// InitProducerId with a transactional id.
pub fn init(
    session: &Session,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let state = &session.state;
    let id = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.to_string())
        .unwrap_or_default();
    let timeout = Duration::from_millis(request.transaction_timeout_ms.max(0) as u64);
    let current = (request.producer_id.0 >= 0 && request.producer_epoch >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    // The owner is saved under the coordinator's lock, so the newest saved
    // is the newest handed out (`transactions/ids.rs`).
    let mut txns = state.transactions.lock(&state.producers);
    let result = txns
        .init(&id, timeout, current, &|| state.producers.allocate())
        .and_then(|(producer_id, epoch)| {
            let owner = ids::Owner { producer_id, epoch };
            ids::save(state.broker.log(), &id, owner)?;
            Ok((producer_id, epoch))
        });
    drop(txns);
    let response = InitProducerIdResponse::default();
    match result {
        Ok((producer_id, epoch)) => response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::debug!(%id, error = %e, "InitProducerId refused");
            response
                .with_error_code(e.code(fenced(version, 4)))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// AddPartitionsToTxn (v0-3): every partition must exist; if one does not,
/// the others get OPERATION_NOT_ATTEMPTED, as in Kafka.
pub fn add_partitions(
    session: &Session,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let state = &session.state;
    let log = state.broker.log();
    let id = request.v3_and_below_transactional_id.0.to_string();
    let producer = (
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
    );
    let mut asked = Vec::new();
    let mut bad = false;
    for topic in &request.v3_and_below_topics {
        let count = log.partition_count(&topic.name).ok();
        for &p in &topic.partitions {
            let code = if topic.name.starts_with("__") {
                ResponseError::TopicAuthorizationFailed.code()
            } else if count.is_some_and(|n| p >= 0 && (p as u32) < n) {
                0
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            };
            bad |= code != 0;
            asked.push((topic.name.clone(), p, code));
        }
    }
    let verdict = if bad {
        ResponseError::OperationNotAttempted.code()
    } else {
        let partitions: Vec<(String, u32)> = asked
            .iter()
            .map(|(t, p, _)| (t.to_string(), *p as u32))
            .collect();
        match state.transactions.lock(&state.producers).add_partitions(
            &id,
            producer,
            &partitions,
            Instant::now(),
        ) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(%id, error = %e, "AddPartitionsToTxn refused");
                e.code(fenced(version, 2))
            }
        }
    };
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (name, p, code) in asked {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(p)
            .with_partition_error_code(if code == 0 { verdict } else { code });
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.results_by_partition.push(result),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(name)
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

/// AddOffsetsToTxn: the group's offsets may follow (TxnOffsetCommit).
pub fn add_offsets(
    session: &Session,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let state = &session.state;
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let code = if crate::name::validate("group", &group).is_err() {
        ResponseError::InvalidGroupId.code()
    } else {
        match state.transactions.lock(&state.producers).add_offsets(
            &id,
            (request.producer_id.0, request.producer_epoch),
            &group,
            Instant::now(),
        ) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(%id, error = %e, "AddOffsetsToTxn refused");
                e.code(fenced(version, 2))
            }
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

/// TxnOffsetCommit: holds the offsets until the transaction ends. From v3
/// a request that names its member and generation (KIP-447) is checked
/// against the group like an OffsetCommit, so a zombie is refused.
pub fn txn_offset_commit(
    session: &Session,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let state = &session.state;
    let log = state.broker.log();
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let generation = request.generation_id;
    let member = request.member_id.to_string();
    let mut verdicts = Vec::new();
    let mut offsets = Vec::new();
    for topic in &request.topics {
        let count = log.partition_count(&topic.name).ok();
        for p in &topic.partitions {
            let known =
                count.is_some_and(|n| p.partition_index >= 0 && (p.partition_index as u32) < n);
            let code = if !known {
                ResponseError::UnknownTopicOrPartition.code()
            } else if p.committed_offset < 0 {
                ResponseError::OffsetOutOfRange.code()
            } else {
                offsets.push((
                    topic.name.to_string(),
                    p.partition_index as u32,
                    Committed {
                        offset: p.committed_offset as u64,
                        generation: generation.max(0) as u32,
                    },
                ));
                0
            };
            verdicts.push((topic.name.clone(), p.partition_index, code));
        }
    }
    let checked = if version >= 3 && !(generation < 0 && member.is_empty()) {
        state.groups.check_txn_commit(
            &group,
            &member,
            request.group_instance_id.as_deref(),
            generation,
        )
    } else {
        Ok(())
    };
    let refused = match checked {
        Err(code) => code,
        Ok(()) => match state.transactions.lock(&state.producers).hold_offsets(
            &id,
            (request.producer_id.0, request.producer_epoch),
            &group,
            &offsets,
        ) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(%id, error = %e, "TxnOffsetCommit refused");
                e.code(fenced(version, 3))
            }
        },
    };
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = Vec::new();
    for (name, p, code) in verdicts {
        let answer = TxnOffsetCommitResponsePartition::default()
            .with_partition_index(p)
            .with_error_code(if code == 0 { refused } else { code });
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partitions.push(answer),
            None => topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(vec![answer]),
            ),
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// EndTxn: an abort drops what the transaction held; a commit writes it as
/// one durable unit and answers once all of it is in the log. A commit that
/// fails to write fences its producer (its epoch is bumped), so a retry
/// cannot pass for a success.
pub async fn end(
    session: &Session,
    version: i16,
    request: EndTxnRequest,
) -> Result<EndTxnResponse, KafkaError> {
    let state = session.state.clone();
    let id = request.transactional_id.0.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let fenced = fenced(version, 2);
    let response = EndTxnResponse::default();
    let prepared = {
        let mut txns = state.transactions.lock(&state.producers);
        if request.committed {
            txns.prepare_commit(&id, producer)
        } else {
            txns.abort(&id, producer).map(|()| None)
        }
    };
    let held = match prepared {
        Ok(Some(held)) => held,
        Ok(None) => return Ok(response),
        Err(e) => {
            tracing::debug!(%id, error = %e, "EndTxn refused");
            return Ok(response.with_error_code(e.code(fenced)));
        }
    };
    let code = tokio::task::spawn_blocking(move || {
        let one = state.transactions.committing.lock().expect("commit lock");
        let written = journal::commit(state.broker.log(), state.broker.offsets(), &id, held);
        drop(one);
        let mut txns = state.transactions.lock(&state.producers);
        txns.finish(&id);
        match written {
            Ok(()) => 0,
            Err(e) => {
                txns.fence(&id, &|| state.producers.allocate());
                e.code(fenced)
            }
        }
    })
    .await?;
    Ok(response.with_error_code(code))
}
