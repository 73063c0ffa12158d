//! ConsumerGroupHeartbeat in kafka-protocol's types: the request decoded
//! into what [`super::KafkaGroups::beat`] needs, the answer encoded with
//! topic ids, and the server assignors by name.

use std::collections::BTreeMap;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as Owned;
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::Client;
use crate::group::{AssignorKind, TopicPartition};
use crate::kafka::Session;
use crate::kafka::groups::{GroupsError, KafkaGroups};
use crate::log::Log;

/// What a ConsumerGroupHeartbeat asks, decoded.
pub(in crate::kafka::groups) struct Ask {
    pub group: String,
    pub member_id: String,
    pub epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub names: Option<Vec<String>>,
    /// `Some(None)`: the regex was cleared (an empty string).
    pub regex: Option<Option<String>>,
    pub assignor: Option<String>,
    pub owned: Option<Vec<TopicPartition>>,
}

impl Ask {
    pub(in crate::kafka::groups) fn new(request: &ConsumerGroupHeartbeatRequest, log: &Log) -> Ask {
        Ask {
            group: request.group_id.to_string(),
            member_id: request.member_id.to_string(),
            epoch: request.member_epoch,
            instance_id: request.instance_id.as_ref().map(|i| i.to_string()),
            rack_id: request.rack_id.as_ref().map(|r| r.to_string()),
            rebalance_timeout_ms: request.rebalance_timeout_ms,
            names: request
                .subscribed_topic_names
                .as_ref()
                .map(|names| names.iter().map(|n| n.to_string()).collect()),
            regex: request
                .subscribed_topic_regex
                .as_ref()
                .map(|r| Some(r.to_string()).filter(|r| !r.is_empty())),
            assignor: request.server_assignor.as_ref().map(|a| a.to_string()),
            owned: request.topic_partitions.as_ref().map(|tps| owned(log, tps)),
        }
    }
}

/// The weir assignor behind a KIP-848 server assignor name: Kafka's
/// `uniform` (balanced and sticky) is weir's cooperative-sticky, `range`
/// is weir's range.
pub fn assignor(name: &str) -> Result<AssignorKind, GroupsError> {
    match name {
        "uniform" => Ok(AssignorKind::CooperativeSticky),
        "range" => Ok(AssignorKind::Range),
        other => Err(GroupsError::UnsupportedAssignor(other.to_string())),
    }
}

/// The partitions a member reports owning, by topic name (topics that no
/// longer exist are left out).
pub(super) fn owned(log: &Log, owned: &[Owned]) -> Vec<TopicPartition> {
    let mut out = Vec::new();
    for topic in owned {
        let Some(name) = log.topic_by_id(topic.topic_id) else {
            continue;
        };
        for &p in &topic.partitions {
            if let Ok(p) = u32::try_from(p) {
                out.push(TopicPartition::new(name.clone(), p));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// An assignment by topic id, as the response carries it.
pub(super) fn assignment(log: &Log, partitions: &[TopicPartition]) -> Assignment {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        by_topic
            .entry(tp.topic.as_str())
            .or_default()
            .push(tp.partition as i32);
    }
    let topic_partitions = by_topic
        .into_iter()
        .filter_map(|(topic, partitions)| {
            let id = log.topic_id(topic).ok()?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_partitions(partitions),
            )
        })
        .collect();
    Assignment::default().with_topic_partitions(topic_partitions)
}

impl KafkaGroups {
    /// ConsumerGroupHeartbeat: an error answers with its code and message
    /// only, as Kafka does.
    pub fn consumer_group_heartbeat(
        &self,
        request: ConsumerGroupHeartbeatRequest,
        version: i16,
        client: Client,
    ) -> ConsumerGroupHeartbeatResponse {
        let log = self.broker.log();
        let ask = Ask::new(&request, log);
        let group = ask.group.clone();
        match self.beat(ask, version, client) {
            Ok(beat) => ConsumerGroupHeartbeatResponse::default()
                .with_member_id(Some(StrBytes::from_string(beat.member_id)))
                .with_member_epoch(beat.epoch)
                .with_heartbeat_interval_ms(self.timeouts.heartbeat_interval.as_millis() as i32)
                .with_assignment(beat.assignment.map(|a| assignment(log, &a))),
            Err(e) => {
                tracing::debug!(%group, error = %crate::error::chain(&e), "ConsumerGroupHeartbeat refused");
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string())))
            }
        }
    }
}

/// ConsumerGroupHeartbeat on a connection: the member is shown with the
/// connection's client id and address.
pub fn heartbeat(
    session: &Session,
    version: i16,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let client_id = session.client_id.clone().unwrap_or_default();
    let host = format!("/{}", session.peer.ip());
    let client = Client {
        id: &client_id,
        host: &host,
    };
    session
        .state
        .groups
        .consumer_group_heartbeat(request, version, client)
}
