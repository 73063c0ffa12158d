//! CreateTopics, DeleteTopics and DescribeConfigs over the broker's topic
//! operations, with Kafka's topic settings mapped onto weir's:
//!
//! | Kafka                 | weir                  |
//! |-----------------------|-----------------------|
//! | `retention.ms`        | `retention_ms` (-1: none) |
//! | `retention.bytes`     | `retention_bytes` (-1: none) |
//! | `segment.bytes`       | `segment_bytes`       |
//! | `segment.ms`          | `segment_ms`          |
//! | `cleanup.policy`      | `cleanup_policy`      |
//! | `delete.retention.ms` | `delete_retention_ms` |
//! | `max.message.bytes`   | `max_batch_bytes`     |
//! | `weir.durability`     | `durability`          |
//! | `weir.max.batch.records` | `max_batch_records` |
//!
//! Any other setting is refused with INVALID_CONFIG, naming these. weir has
//! one replica: a replication factor other than -1 or 1 is
//! INVALID_REPLICATION_FACTOR, and manual replica assignments are refused.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaError, Session};
use crate::log::{CleanupPolicy, Durability, LogError, TopicConfig};
use crate::wire::{CreateTopic, TopicSettings};

/// The Kafka settings weir maps (see the module docs).
const SETTINGS: &[&str] = &[
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "cleanup.policy",
    "delete.retention.ms",
    "max.message.bytes",
    "weir.durability",
    "weir.max.batch.records",
];

/// DescribeConfigs' resource type of a topic.
pub(super) const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs' resource type of a broker.
const BROKER_RESOURCE: i8 = 4;

pub async fn create(
    session: &Session,
    _version: i16,
    request: CreateTopicsRequest,
) -> Result<CreateTopicsResponse, KafkaError> {
    let broker = session.broker().clone();
    let topics = tokio::task::spawn_blocking(move || {
        request
            .topics
            .into_iter()
            .map(|topic| {
                let answer = CreatableTopicResult::default().with_name(topic.name.clone());
                let settings = || -> Result<CreateTopic, (ResponseError, String)> {
                    if topic.replication_factor != -1 && topic.replication_factor != 1 {
                        return Err((
                            ResponseError::InvalidReplicationFactor,
                            "weir keeps one replica of each partition".into(),
                        ));
                    }
                    if !topic.assignments.is_empty() {
                        return Err((
                            ResponseError::InvalidReplicaAssignment,
                            "weir places partitions itself".into(),
                        ));
                    }
                    let mut settings = TopicSettings::default();
                    for c in &topic.configs {
                        let value = c.value.as_ref().map(|v| v.as_str()).unwrap_or("");
                        apply(&mut settings, c.name.as_str(), value)
                            .map_err(|e| (ResponseError::InvalidConfig, e))?;
                    }
                    let partitions = if topic.num_partitions == -1 {
                        1
                    } else {
                        u32::try_from(topic.num_partitions).map_err(|_| {
                            (
                                ResponseError::InvalidPartitions,
                                "a topic needs at least one partition".into(),
                            )
                        })?
                    };
                    settings.partitions = Some(partitions);
                    Ok(CreateTopic {
                        name: topic.name.0.to_string(),
                        settings,
                    })
                };
                let created = settings().and_then(|create| {
                    let config = create.settings.new_config();
                    if request.validate_only {
                        crate::name::validate("topic", &create.name)
                            .map_err(|e| (ResponseError::InvalidTopicException, e.to_string()))?;
                        config
                            .validate()
                            .map_err(|e| (code_of(&e), e.to_string()))?;
                        return Ok((config, uuid::Uuid::nil()));
                    }
                    broker
                        .create_topic_with(&create)
                        .map_err(|e| (code_of(&e), crate::error::chain(&e)))?;
                    let id = broker.log().topic_id(&create.name).unwrap_or_default();
                    Ok((config, id))
                });
                match created {
                    Ok((config, id)) => answer
                        .with_topic_id(id)
                        .with_num_partitions(config.partitions as i32)
                        .with_replication_factor(1),
                    Err((code, message)) => answer
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1),
                }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(CreateTopicsResponse::default().with_topics(topics))
}

pub async fn delete(
    session: &Session,
    version: i16,
    request: DeleteTopicsRequest,
) -> Result<DeleteTopicsResponse, KafkaError> {
    let broker = session.broker().clone();
    // v6 names topics in `topics` (by name or id), earlier versions in
    // `topic_names`.
    let asked: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(asked.len());
    for (name, id) in asked {
        let name = name.or_else(|| broker.log().topic_by_id(id));
        let answer = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| super::fetch::topic_name(&n)))
            .with_topic_id(id);
        let Some(name) = name else {
            responses.push(answer.with_error_code(ResponseError::UnknownTopicId.code()));
            continue;
        };
        let id = broker.log().topic_id(&name).unwrap_or(id);
        let deleted = delete_one(session, &name).await;
        responses.push(match deleted {
            Ok(()) => answer.with_topic_id(id),
            Err((code, message)) => answer
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    Ok(DeleteTopicsResponse::default().with_responses(responses))
}

/// Deletes a topic with every group's offsets on it; refused while a
/// processor of `weir serve` reads it, as the HTTP API refuses.
async fn delete_one(session: &Session, name: &str) -> Result<(), (ResponseError, String)> {
    let broker = session.broker().clone();
    let topic = name.to_string();
    let delete = move || broker.delete_topic(&topic);
    let deleted = match &session.state.supervisor {
        Some(supervisor) => match supervisor.delete_topic(name, delete).await {
            Ok(deleted) => deleted,
            Err(e) => return Err((ResponseError::PolicyViolation, crate::error::chain(&e))),
        },
        None => tokio::task::spawn_blocking(delete)
            .await
            .map_err(|e| (ResponseError::UnknownServerError, e.to_string()))?,
    };
    deleted.map_err(|e| {
        let code = match &e {
            crate::group::GroupError::Log(e) => code_of(e),
            crate::group::GroupError::Offsets(crate::offsets::OffsetsError::Log(e)) => code_of(e),
            _ => ResponseError::UnknownServerError,
        };
        (code, crate::error::chain(&e))
    })
}

pub fn describe_configs(
    session: &Session,
    _version: i16,
    request: DescribeConfigsRequest,
) -> Result<DescribeConfigsResponse, KafkaError> {
    let log = session.broker().log();
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let answer = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entries = match resource.resource_type {
                TOPIC_RESOURCE => match log.topic_config(resource.resource_name.as_str()) {
                    Ok(config) => describe(&config),
                    Err(e) => {
                        return answer
                            .with_error_code(code_of(&e).code())
                            .with_error_message(Some(StrBytes::from_string(e.to_string())));
                    }
                },
                BROKER_RESOURCE => Vec::new(),
                _ => {
                    return answer
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_static_str(
                            "weir describes topics and its broker only",
                        )));
                }
            };
            // Null (or, leniently, an empty list) asks for every setting.
            let keys = resource.configuration_keys.filter(|k| !k.is_empty());
            let configs = entries
                .into_iter()
                .filter(|(name, _)| {
                    keys.as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k.as_str() == *name))
                })
                .map(|(name, value)| {
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str(name))
                        .with_value(value.map(StrBytes::from_string))
                        .with_read_only(false)
                        // 1: a topic's own setting.
                        .with_config_source(1)
                })
                .collect();
            answer.with_configs(configs)
        })
        .collect();
    Ok(DescribeConfigsResponse::default().with_results(results))
}

/// A topic's settings under their Kafka names.
pub(super) fn describe(config: &TopicConfig) -> Vec<(&'static str, Option<String>)> {
    let or_none = |v: Option<u64>| Some(v.map_or("-1".to_string(), |v| v.to_string()));
    vec![
        ("retention.ms", or_none(config.retention_ms)),
        ("retention.bytes", or_none(config.retention_bytes)),
        ("segment.bytes", Some(config.segment_bytes.to_string())),
        (
            "segment.ms",
            Some(
                config
                    .segment_ms
                    .map_or(i64::MAX.to_string(), |v| v.to_string()),
            ),
        ),
        (
            "cleanup.policy",
            Some(config.cleanup_policy.name().to_string()),
        ),
        (
            "delete.retention.ms",
            Some(config.delete_retention_ms.to_string()),
        ),
        (
            "max.message.bytes",
            Some(config.max_batch_bytes.to_string()),
        ),
        ("weir.durability", Some(config.durability.to_string())),
        (
            "weir.max.batch.records",
            Some(config.max_batch_records.to_string()),
        ),
    ]
}

/// Sets one Kafka setting on `settings`.
pub(super) fn apply(settings: &mut TopicSettings, name: &str, value: &str) -> Result<(), String> {
    let number = |v: &str| -> Result<u64, String> {
        v.parse()
            .map_err(|_| format!("{name}: {v:?} is not a non-negative number"))
    };
    let optional = |v: &str| -> Result<Option<u64>, String> {
        if v == "-1" {
            Ok(None)
        } else {
            number(v).map(Some)
        }
    };
    match name {
        "retention.ms" => settings.retention_ms = Some(optional(value)?),
        "retention.bytes" => settings.retention_bytes = Some(optional(value)?),
        "segment.bytes" => settings.segment_bytes = Some(number(value)?),
        // Kafka's "never" is i64::MAX (what DescribeConfigs shows).
        "segment.ms" if value == i64::MAX.to_string() => settings.segment_ms = Some(None),
        "segment.ms" => settings.segment_ms = Some(optional(value)?),
        "delete.retention.ms" => settings.delete_retention_ms = Some(number(value)?),
        "max.message.bytes" => settings.max_batch_bytes = Some(number(value)?),
        "weir.max.batch.records" => {
            let n = number(value)?;
            settings.max_batch_records =
                Some(u32::try_from(n).map_err(|_| format!("{name}: {n} is too large"))?);
        }
        // A list in Kafka; weir's compact keeps retention too, so a list
        // holding compact is compact.
        "cleanup.policy" => {
            let mut policy = CleanupPolicy::Delete;
            for item in value.split(',').map(str::trim) {
                policy = match CleanupPolicy::parse(item) {
                    Some(CleanupPolicy::Compact) => CleanupPolicy::Compact,
                    Some(CleanupPolicy::Delete) => policy,
                    None if item.is_empty() && !value.contains(',') => policy,
                    None => {
                        return Err(format!(
                            "cleanup.policy: {value:?} is not delete, compact or both"
                        ));
                    }
                };
            }
            settings.cleanup_policy = Some(policy);
        }
        "weir.durability" => {
            settings.durability = Some(
                value
                    .parse::<Durability>()
                    .map_err(|e| format!("weir.durability: {e}"))?,
            )
        }
        _ => {
            return Err(format!(
                "weir does not know the topic setting {name:?}; it knows {}",
                SETTINGS.join(", ")
            ));
        }
    }
    Ok(())
}

/// The Kafka error code of a failed topic operation.
pub(super) fn code_of(e: &LogError) -> ResponseError {
    match e {
        LogError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        LogError::Name(_) | LogError::Reserved(_) => ResponseError::InvalidTopicException,
        LogError::BadPartitionCount { .. } => ResponseError::InvalidPartitions,
        LogError::BadConfig { .. } => ResponseError::InvalidConfig,
        LogError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        LogError::Internal(_) => ResponseError::TopicAuthorizationFailed,
        _ => ResponseError::UnknownServerError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_settings_map_onto_weirs_and_unknown_ones_are_refused() {
        let mut s = TopicSettings::default();
        apply(&mut s, "retention.ms", "-1").unwrap();
        apply(&mut s, "retention.bytes", "1000").unwrap();
        apply(&mut s, "cleanup.policy", "delete,compact").unwrap();
        apply(&mut s, "weir.durability", "always").unwrap();
        assert_eq!(s.retention_ms, Some(None));
        assert_eq!(s.retention_bytes, Some(Some(1000)));
        assert_eq!(s.cleanup_policy, Some(CleanupPolicy::Compact));
        assert_eq!(s.durability, Some(Durability::Always));
        let err = apply(&mut s, "min.insync.replicas", "2").unwrap_err();
        assert!(err.contains("retention.ms"), "{err}");
        assert!(apply(&mut s, "segment.bytes", "lots").is_err());
    }

    #[test]
    fn described_settings_read_back_into_the_same_config() {
        let config = TopicConfig::with_partitions(3);
        let mut s = TopicSettings::default();
        for (name, value) in describe(&config) {
            apply(&mut s, name, value.as_deref().unwrap()).unwrap();
        }
        s.partitions = Some(3);
        assert_eq!(s.new_config(), config);
    }
}
