//! Produce: each partition's record batches are decoded (any codec) and
//! appended to that partition, one weir batch per Kafka batch, and answered
//! with the first offset. acks 1 and all answer once the topic's durability
//! policy holds (weir has one replica); acks 0 appends the same way and
//! sends nothing back. An idempotent producer's batches go through the
//! sequence checks of `producers.rs` (and carries the `weir.producer` tag
//! that rebuilds them after a restart); a transactional producer's batches
//! are held by `transactions.rs` until its transaction commits.
//!
//! Error codes: an unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION
//! (topics are not created by producing, as with weir's own API), an
//! internal topic (`__…`) TOPIC_AUTHORIZATION_FAILED, a record over the
//! topic's `max_batch_bytes` MESSAGE_TOO_LARGE (a Kafka batch over the
//! topic's limits is split into several weir batches), a batch that does not decode
//! CORRUPT_MESSAGE, a failed write KAFKA_STORAGE_ERROR. A batch with keyless
//! records for a `compact` topic is refused whole with INVALID_RECORD, each
//! keyless record named in the answer's record errors, as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;

use super::producers::Outcome;
use super::records::{self, ProducedBatch};
use super::{KafkaError, KafkaState, Session, producers::Producers};
use crate::log::{CleanupPolicy, Log, LogError, Record};

/// The versions Produce advertises but does not decode (message sets before
/// the v2 batch).
pub(super) const FIRST_DECODED_VERSION: i16 = 3;

pub async fn handle(
    session: &Session,
    version: i16,
    request: ProduceRequest,
) -> Result<Option<ProduceResponse>, KafkaError> {
    debug_assert!(version >= FIRST_DECODED_VERSION);
    let acks = request.acks;
    let state = session.state.clone();
    let responses = tokio::task::spawn_blocking(move || {
        let log = state.broker.log();
        request
            .topic_data
            .into_iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let partitions = topic
                    .partition_data
                    .into_iter()
                    .map(|data| {
                        let keyless = keyless_on_compacted(log, &name, data.records.as_ref());
                        let (code, base, message) = if !keyless.is_empty() {
                            let e = ResponseError::InvalidRecord;
                            (e.code(), -1, Some(KEYLESS.to_string()))
                        } else {
                            match partition(&state, &name, data.index, data.records) {
                                Ok(base) => (0, base, None),
                                Err((code, message)) => (code.code(), -1, message),
                            }
                        };
                        let record_errors = keyless
                            .into_iter()
                            .map(|i| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(i)
                                    .with_batch_index_error_message(Some(
                                        StrBytes::from_static_str(KEYLESS),
                                    ))
                            })
                            .collect();
                        PartitionProduceResponse::default()
                            .with_index(data.index)
                            .with_error_code(code)
                            .with_base_offset(base)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(
                                log.log_start(&name, data.index as u32)
                                    .map_or(-1, |s| s as i64),
                            )
                            .with_error_message(message.map(StrBytes::from_string))
                            .with_record_errors(record_errors)
                    })
                    .collect();
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_partition_responses(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    if acks == 0 {
        return Ok(None);
    }
    Ok(Some(ProduceResponse::default().with_responses(responses)))
}

type Refusal = (ResponseError, Option<String>);

const KEYLESS: &str = "a compacted topic's records need keys";

/// The indexes of keyless records in `records` when `topic` is compacted
/// (none otherwise, or when the batches do not decode: `partition` answers
/// those).
fn keyless_on_compacted(log: &Log, topic: &str, records: Option<&bytes::Bytes>) -> Vec<i32> {
    let compacted = log
        .topic_config(topic)
        .is_ok_and(|c| c.cleanup_policy == CleanupPolicy::Compact);
    let Some(records) = records.filter(|_| compacted) else {
        return Vec::new();
    };
    let batches = records::decode(records.clone()).unwrap_or_default();
    batches
        .iter()
        .flat_map(|b| &b.records)
        .enumerate()
        .filter(|(_, r)| r.key.is_none())
        .map(|(i, _)| i as i32)
        .collect()
}

/// Appends one partition's batches; the base offset of the first (-1 for
/// a transaction's, which get their offsets at commit).
fn partition(
    state: &KafkaState,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
) -> Result<i64, Refusal> {
    let log = state.broker.log();
    if topic.starts_with("__") {
        let e = LogError::Reserved(topic.to_string());
        return Err((ResponseError::TopicAuthorizationFailed, Some(e.to_string())));
    }
    let partition =
        u32::try_from(index).map_err(|_| (ResponseError::UnknownTopicOrPartition, None))?;
    if partition >= log.partition_count(topic).map_err(refusal)? {
        return Err((ResponseError::UnknownTopicOrPartition, None));
    }
    let batches = records::decode(records.unwrap_or_default())
        .map_err(|e| (ResponseError::CorruptMessage, Some(e.to_string())))?;
    let mut first = None;
    for batch in batches {
        let base = if batch.transactional && batch.producer_id >= 0 {
            let producer = (batch.producer_id, batch.producer_epoch);
            state.transactions.hold(
                log,
                &state.producers,
                producer,
                (topic, partition),
                batch.base_sequence,
                batch.records,
            )?;
            -1
        } else {
            append(log, &state.producers, topic, partition, batch)? as i64
        };
        first.get_or_insert(base);
    }
    first.ok_or((
        ResponseError::CorruptMessage,
        Some("no records".to_string()),
    ))
}

fn append(
    log: &Log,
    producers: &Producers,
    topic: &str,
    partition: u32,
    batch: ProducedBatch,
) -> Result<u64, Refusal> {
    let ProducedBatch {
        mut records,
        producer_id,
        producer_epoch,
        base_sequence,
        ..
    } = batch;
    if producer_id < 0 {
        return append_all(log, topic, partition, &records).map_err(refusal);
    }
    let count = records.len() as u32;
    producers.recover(log, topic, partition).map_err(refusal)?;
    // Tagged on the last record: once it is in the log, the whole batch is.
    let tag = super::producers::tag((producer_id, producer_epoch), base_sequence, count);
    if let Some(last) = records.last_mut() {
        last.headers.push(tag);
    }
    let append = || append_all(log, topic, partition, &records);
    let appended = producers
        .append(
            (producer_id, producer_epoch),
            topic,
            partition,
            base_sequence,
            count,
            append,
        )
        .map_err(refusal)?;
    match appended {
        Outcome::Appended(base) | Outcome::Duplicate(base) => Ok(base),
        Outcome::OutOfOrder => Err((ResponseError::OutOfOrderSequenceNumber, None)),
        Outcome::StaleEpoch => Err((ResponseError::InvalidProducerEpoch, None)),
    }
}

/// A Kafka batch over the topic's batch limits (weir's encoding of small
/// records is larger than Kafka's) is appended in as many weir batches as it
/// needs; only a single record over `max_batch_bytes` is too large. Returns
/// the first base offset.
fn append_all(log: &Log, topic: &str, partition: u32, records: &[Record]) -> Result<u64, LogError> {
    let bases = log.append_chunked(topic, partition, records)?;
    Ok(bases.first().copied().unwrap_or(0))
}

/// The Kafka error code of a log error, with weir's message.
pub(super) fn refusal(e: LogError) -> Refusal {
    let code = match &e {
        LogError::UnknownTopic(_)
        | LogError::UnknownPartition { .. }
        | LogError::Deleted { .. } => ResponseError::UnknownTopicOrPartition,
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::Reserved(_) | LogError::Internal(_) => ResponseError::TopicAuthorizationFailed,
        LogError::Name(_) => ResponseError::InvalidTopicException,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Io { .. } | LogError::Poisoned { .. } | LogError::Corrupt { .. } => {
            tracing::error!(error = %crate::error::chain(&e), "Kafka produce or fetch failed");
            ResponseError::KafkaStorageError
        }
        _ => ResponseError::UnknownServerError,
    };
    (code, Some(crate::error::chain(&e)))
}
