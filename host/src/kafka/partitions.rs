//! CreatePartitions: grows a topic's partition count through
//! [`crate::broker::Broker::add_partitions`] (the log's crash-safe growth,
//! with every processor's state changelog of the topic). Kafka clients see
//! the new partitions at their next Metadata request; a consumer group's
//! leader then assigns them at the rebalance it starts. A count that does
//! not grow the topic is INVALID_PARTITIONS, manual replica assignments are
//! INVALID_REPLICA_ASSIGNMENT (weir places partitions itself), and
//! `validate_only` checks without changing anything.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use super::topics::code_of;
use super::{KafkaError, Session};
use crate::broker::Broker;
use crate::log::MAX_PARTITIONS;

pub async fn create(
    session: &Session,
    _version: i16,
    request: CreatePartitionsRequest,
) -> Result<CreatePartitionsResponse, KafkaError> {
    let broker = session.broker().clone();
    let validate_only = request.validate_only;
    let results = tokio::task::spawn_blocking(move || {
        request
            .topics
            .iter()
            .map(|topic| {
                let answer = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
                match grow(&broker, topic, validate_only) {
                    Ok(()) => answer,
                    Err((code, message)) => answer
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(message))),
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(CreatePartitionsResponse::default().with_results(results))
}

/// Grows one topic to the asked count (or only checks that it could).
fn grow(
    broker: &Broker,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let name = topic.name.as_str();
    if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err((
            ResponseError::InvalidReplicaAssignment,
            "weir places partitions itself".into(),
        ));
    }
    let current = broker
        .log()
        .partition_count(name)
        .map_err(|e| (code_of(&e), e.to_string()))?;
    let count = u32::try_from(topic.count).unwrap_or(0);
    if count <= current || count > MAX_PARTITIONS {
        return Err((
            ResponseError::InvalidPartitions,
            format!(
                "topic {name:?} has {current} partition(s): it can grow to at most {MAX_PARTITIONS}, never shrink (asked for {})",
                topic.count
            ),
        ));
    }
    if validate_only {
        return Ok(());
    }
    broker
        .add_partitions(name, count)
        .map(drop)
        .map_err(|e| (code_of(&e), crate::error::chain(&e)))
}
