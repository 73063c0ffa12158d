//! AlterConfigs and IncrementalAlterConfigs onto a topic's settings, under
//! the Kafka names `topics.rs` maps (DescribeConfigs then shows the new
//! values). AlterConfigs replaces the topic's whole set: a setting it does
//! not name goes back to its default. IncrementalAlterConfigs SETs a
//! setting, DELETEs it (back to its default), or APPENDs to and SUBTRACTs
//! from the one list setting, `cleanup.policy` (weir's `compact` keeps
//! retention too, so a list holding `compact` is `compact`, else `delete`).
//! An unknown setting is INVALID_CONFIG naming it; resources other than
//! topics are refused (weir's broker settings are its command line's);
//! `validate_only` checks without changing anything. The partition count
//! never changes here (CreatePartitions grows it).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, alter_configs_response, incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::topics::{TOPIC_RESOURCE, apply, code_of, describe};
use super::{KafkaError, Session};
use crate::broker::Broker;
use crate::log::TopicConfig;
use crate::wire::TopicSettings;

/// One requested change: (operation, setting, value).
type Change = (Op, String, Option<String>);

/// IncrementalAlterConfigs' operations (AlterConfigs only sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Set,
    Delete,
    Append,
    Subtract,
}

impl Op {
    fn from_code(code: i8) -> Option<Op> {
        [Op::Set, Op::Delete, Op::Append, Op::Subtract]
            .get(usize::try_from(code).ok()?)
            .copied()
    }
}

pub async fn alter(
    session: &Session,
    _version: i16,
    request: AlterConfigsRequest,
) -> Result<AlterConfigsResponse, KafkaError> {
    let broker = session.broker().clone();
    let responses = tokio::task::spawn_blocking(move || {
        request
            .resources
            .into_iter()
            .map(|r| {
                let changes = r
                    .configs
                    .iter()
                    .map(|c| {
                        let value = c.value.as_ref().map(|v| v.to_string());
                        (Op::Set, c.name.to_string(), value)
                    })
                    .collect::<Vec<_>>();
                let name = r.resource_name.as_str();
                let done = change(
                    &broker,
                    r.resource_type,
                    name,
                    true,
                    &changes,
                    request.validate_only,
                );
                let (code, message) = outcome(done);
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(AlterConfigsResponse::default().with_responses(responses))
}

pub async fn incremental_alter(
    session: &Session,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> Result<IncrementalAlterConfigsResponse, KafkaError> {
    let broker = session.broker().clone();
    let responses = tokio::task::spawn_blocking(move || {
        request
            .resources
            .into_iter()
            .map(|r| {
                let changes = r
                    .configs
                    .iter()
                    .map(|c| {
                        let op = Op::from_code(c.config_operation).ok_or_else(|| {
                            format!(
                                "{}: unknown operation {}",
                                c.name.as_str(),
                                c.config_operation
                            )
                        })?;
                        let value = c.value.as_ref().map(|v| v.to_string());
                        Ok((op, c.name.to_string(), value))
                    })
                    .collect::<Result<Vec<_>, String>>();
                let name = r.resource_name.as_str();
                let done = changes
                    .map_err(|e| (ResponseError::InvalidRequest, e))
                    .and_then(|changes| {
                        change(
                            &broker,
                            r.resource_type,
                            name,
                            false,
                            &changes,
                            request.validate_only,
                        )
                    });
                let (code, message) = outcome(done);
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(IncrementalAlterConfigsResponse::default().with_responses(responses))
}

fn outcome(done: Result<(), (ResponseError, String)>) -> (i16, Option<StrBytes>) {
    match done {
        Ok(()) => (0, None),
        Err((code, message)) => (code.code(), Some(StrBytes::from_string(message))),
    }
}

/// Applies `changes` to topic `name` (over its defaults when `replace`),
/// or only checks them under `validate_only`.
fn change(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    replace: bool,
    changes: &[Change],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    if resource_type != TOPIC_RESOURCE {
        return Err((
            ResponseError::InvalidRequest,
            "weir changes topic settings only; its broker's come from its command line".into(),
        ));
    }
    let current = broker
        .log()
        .topic_config(name)
        .map_err(|e| (code_of(&e), e.to_string()))?;
    let base = if replace {
        TopicConfig::with_partitions(current.partitions)
    } else {
        current
    };
    let new = changed(base, changes).map_err(|e| (ResponseError::InvalidConfig, e))?;
    new.validate()
        .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let settings = TopicSettings {
        partitions: None,
        ..settings_of(&new)
    };
    broker
        .alter_topic(name, &settings)
        .map(drop)
        .map_err(|e| (code_of(&e), crate::error::chain(&e)))
}

/// `base` with `changes` applied in order.
fn changed(base: TopicConfig, changes: &[Change]) -> Result<TopicConfig, String> {
    let defaults = describe(&TopicConfig::with_partitions(base.partitions));
    let mut config = base;
    for (op, key, value) in changes {
        let now = describe(&config);
        let current = now
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.clone());
        let value = match op {
            Op::Set => value.clone().unwrap_or_default(),
            Op::Delete => defaults
                .iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| v.clone())
                .unwrap_or_default(),
            Op::Append | Op::Subtract if key == "cleanup.policy" => {
                let mut list: Vec<String> = current
                    .unwrap_or_default()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                for item in value.as_deref().unwrap_or("").split(',') {
                    let item = item.trim();
                    if *op == Op::Append && !list.iter().any(|i| i == item) {
                        list.push(item.to_string());
                    } else if *op == Op::Subtract {
                        list.retain(|i| i != item);
                    }
                }
                list.join(",")
            }
            Op::Append | Op::Subtract => {
                return Err(format!(
                    "{key} is not a list setting: only SET and DELETE apply to it"
                ));
            }
        };
        let mut settings = TopicSettings::default();
        apply(&mut settings, key, &value)?;
        config = settings.apply(config);
    }
    Ok(config)
}

/// Every setting of `config` as a [`TopicSettings`].
fn settings_of(config: &TopicConfig) -> TopicSettings {
    TopicSettings {
        partitions: Some(config.partitions),
        retention_ms: Some(config.retention_ms),
        retention_bytes: Some(config.retention_bytes),
        segment_bytes: Some(config.segment_bytes),
        segment_ms: Some(config.segment_ms),
        durability: Some(config.durability),
        cleanup_policy: Some(config.cleanup_policy),
        delete_retention_ms: Some(config.delete_retention_ms),
        max_batch_bytes: Some(config.max_batch_bytes),
        max_batch_records: Some(config.max_batch_records),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::CleanupPolicy;

    fn set(op: Op, key: &str, value: &str) -> Change {
        (op, key.to_string(), Some(value.to_string()))
    }

    #[test]
    fn incremental_changes_set_delete_and_edit_the_cleanup_policy_list() {
        let base = TopicConfig::with_partitions(2);
        let config = changed(
            base,
            &[
                set(Op::Set, "retention.ms", "60000"),
                set(Op::Append, "cleanup.policy", "compact"),
            ],
        )
        .unwrap();
        assert_eq!(config.retention_ms, Some(60000));
        assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
        assert_eq!(config.partitions, 2);
        let config = changed(
            config,
            &[
                set(Op::Subtract, "cleanup.policy", "compact"),
                (Op::Delete, "retention.ms".to_string(), None),
            ],
        )
        .unwrap();
        assert_eq!(config, base);
        let err = changed(base, &[set(Op::Append, "retention.ms", "1")]).unwrap_err();
        assert!(err.contains("not a list"), "{err}");
        let err = changed(base, &[set(Op::Set, "min.insync.replicas", "2")]).unwrap_err();
        assert!(err.contains("min.insync.replicas"), "{err}");
    }
}
