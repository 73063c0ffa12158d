//! What stops a processor, and why an attempt at a batch failed.

use crate::consumer::ConsumerError;
use crate::runtime::RuntimeError;

/// Everything that stops a processor.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("consumer")]
    Consumer(#[from] ConsumerError),
    #[error("invalid processor name")]
    Name(#[source] crate::log::LogError),
    #[error("invalid processor settings: {0}")]
    Spec(String),
    #[error("invalid processor settings")]
    Settings(#[source] serde_json::Error),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{key}`")]
    Field {
        key: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("guest reported a fatal failure at {topic}/{partition} offset {offset}: {message}")]
    Fatal {
        topic: String,
        partition: u32,
        offset: u64,
        message: String,
    },
    #[error("gave up on {topic}/{partition} offset {offset} after {attempts} attempts")]
    Exhausted {
        topic: String,
        partition: u32,
        offset: u64,
        attempts: u32,
        #[source]
        last: Box<Attempt>,
    },
    #[error("circuit breaker tripped: {reason}")]
    Tripped { reason: String },
    /// The host interrupted the batch in flight (a shutdown past its grace):
    /// nothing of it was committed, and it is redelivered on the next start.
    #[error("the batch in flight was interrupted by the shutdown")]
    Interrupted,
    #[error("guest failed at index {index}, but the batch has {len} records")]
    BadFailureIndex { index: u32, len: usize },
    #[error("guest")]
    Guest(#[source] RuntimeError),
    #[error("processor task")]
    Task(#[source] tokio::task::JoinError),
}

/// Why the last attempt at a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum Attempt {
    #[error("guest asked to retry: {0}")]
    Retry(String),
    #[error(transparent)]
    Fault(RuntimeError),
}
