//! Why a Kafka transaction request was refused, and the Kafka error code
//! the request handlers answer each refusal with; a failure to read or
//! write the log (the journal, the offsets, the saved ids) is logged where
//! it becomes KAFKA_STORAGE_ERROR.

use kafka_protocol::error::ResponseError;

use super::TOPIC;
use crate::log::LogError;
use crate::offsets::OffsetsError;

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
    pub(super) fn code(&self, fenced: ResponseError) -> i16 {
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
