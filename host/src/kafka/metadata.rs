//! Metadata: one broker (weir, node 0, at the advertised address) leading
//! every partition of every topic, each topic with its id. Topics are named
//! by name, or by id (v10+); one that does not exist is answered with
//! UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID by id), unless the listener
//! was started with `--kafka-auto-create-partitions N` and the request's
//! `allow_auto_topic_creation` holds: then the topic is created (N
//! partitions, default settings), as Kafka's `auto.create.topics.enable`
//! does. Internal topics (`__…`) are flagged as internal.
//!
//! DescribeCluster answers the same cluster: id [`CLUSTER_ID`], node 0 at the
//! advertised address, which is its own controller (so it answers the
//! brokers' and the controllers' endpoint types alike).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaError, NODE_ID, Session};

/// The cluster id every Metadata answer carries.
pub const CLUSTER_ID: &str = "weir";

pub async fn handle(
    session: &Session,
    version: i16,
    request: MetadataRequest,
) -> Result<MetadataResponse, KafkaError> {
    let log = session.broker().log();
    let wanted: Vec<(Option<String>, uuid::Uuid)> = match request.topics {
        // v0 says "all" with an empty list, later versions with null.
        None => all(session),
        Some(topics) if topics.is_empty() && version == 0 => all(session),
        Some(topics) => topics
            .into_iter()
            // A name, or (v10+) an id with a null (or empty) name.
            .map(|t| {
                let name = t.name.map(|n| n.0.to_string()).filter(|n| !n.is_empty());
                (name, t.topic_id)
            })
            .collect(),
    };
    let auto_create = session
        .state
        .auto_create_partitions
        .filter(|_| request.allow_auto_topic_creation);
    let mut topics = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = match name {
            Some(name) => {
                if let Some(partitions) = auto_create {
                    create_if_unknown(session, &name, partitions).await?;
                }
                Some(name)
            }
            None => log.topic_by_id(id),
        };
        topics.push(match name {
            Some(name) => describe(session, &name)?,
            None => MetadataResponseTopic::default()
                .with_error_code(ResponseError::UnknownTopicId.code())
                .with_topic_id(id),
        });
    }
    let (host, port) = session.advertised();
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(host))
        .with_port(i32::from(port));
    Ok(MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(BrokerId(NODE_ID))
        .with_topics(topics))
}

/// DescribeCluster: weir's one node.
pub fn describe_cluster(
    session: &Session,
    _version: i16,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let (host, port) = session.advertised();
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(NODE_ID))
        .with_host(StrBytes::from_string(host))
        .with_port(i32::from(port));
    DescribeClusterResponse::default()
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_id(StrBytes::from_static_str(CLUSTER_ID))
        .with_controller_id(BrokerId(NODE_ID))
        .with_brokers(vec![broker])
}

/// Creates `name` with `partitions` partitions when it does not exist and is
/// a valid topic name; a topic created meanwhile by someone else is fine.
async fn create_if_unknown(
    session: &Session,
    name: &str,
    partitions: u32,
) -> Result<(), KafkaError> {
    let log = session.broker().log();
    if log.partition_count(name).is_ok()
        || name.starts_with("__")
        || crate::name::validate("topic", name).is_err()
    {
        return Ok(());
    }
    let broker = session.broker().clone();
    let topic = crate::wire::CreateTopic::new(name, partitions);
    let created = tokio::task::spawn_blocking(move || broker.create_topic_with(&topic)).await?;
    match created {
        Ok(_) | Err(crate::log::LogError::TopicExists(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Every topic weir has, with its id.
fn all(session: &Session) -> Vec<(Option<String>, uuid::Uuid)> {
    let log = session.broker().log();
    log.topics()
        .into_iter()
        .map(|(name, _)| (Some(name), uuid::Uuid::nil()))
        .collect()
}

/// One topic's entry; an unknown one is an error code, not a failure.
fn describe(session: &Session, name: &str) -> Result<MetadataResponseTopic, KafkaError> {
    let log = session.broker().log();
    let topic = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))));
    let (count, id) = match (log.partition_count(name), log.topic_id(name)) {
        (Ok(count), Ok(id)) => (count, id),
        (Err(crate::log::LogError::UnknownTopic(_)), _)
        | (_, Err(crate::log::LogError::UnknownTopic(_))) => {
            let code = if crate::name::validate("topic", name).is_err() {
                ResponseError::InvalidTopicException
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            return Ok(topic.with_error_code(code.code()));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
    };
    let partitions = (0..count as i32)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(NODE_ID))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(NODE_ID)])
                .with_isr_nodes(vec![BrokerId(NODE_ID)])
        })
        .collect();
    Ok(topic
        .with_topic_id(id)
        .with_is_internal(name.starts_with("__"))
        .with_partitions(partitions))
}
