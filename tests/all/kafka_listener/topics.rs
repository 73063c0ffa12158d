//! Topic admin over the Kafka listener: CreateTopics with settings,
//! DescribeConfigs, DeleteTopics by id, and Metadata's auto-creation.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire};

use super::name;

#[test]
fn topics_are_created_described_and_deleted_and_a_new_topic_gets_a_new_id() {
    let host = Host::new();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let create = |name_: &str, partitions: i32, configs: Vec<(&str, &str)>| {
        CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name(name_))
                .with_num_partitions(partitions)
                .with_replication_factor(1)
                .with_configs(
                    configs
                        .into_iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ])
    };
    let made = wire.call(7, &create("events", 4, vec![("retention.ms", "60000")]));
    assert_eq!(
        made.topics[0].error_code, 0,
        "{:?}",
        made.topics[0].error_message
    );
    let first_id = made.topics[0].topic_id;
    assert_eq!(host.log.partition_count("events").unwrap(), 4);
    assert_eq!(
        host.log.topic_config("events").unwrap().retention_ms,
        Some(60_000)
    );

    let again = wire.call(7, &create("events", 4, vec![]));
    assert_eq!(
        again.topics[0].error_code,
        ResponseError::TopicAlreadyExists.code()
    );
    let bad = wire.call(7, &create("other", 1, vec![("min.insync.replicas", "2")]));
    assert_eq!(
        bad.topics[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    assert!(
        bad.topics[0]
            .error_message
            .as_ref()
            .unwrap()
            .contains("retention.ms")
    );
    let bad_name = wire.call(7, &create("no/slashes", 1, vec![]));
    assert_eq!(
        bad_name.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );

    let described = wire.call(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            kafka_protocol::messages::describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("events"))
                .with_configuration_keys(None),
        ]),
    );
    let retention = described.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == "retention.ms")
        .expect("retention.ms is described");
    assert_eq!(retention.value.as_ref().unwrap().as_str(), "60000");

    let deleted = wire.call(
        6,
        &DeleteTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                .with_topic_id(first_id),
        ]),
    );
    assert_eq!(deleted.responses[0].error_code, 0);
    assert!(host.log.partition_count("events").is_err(), "deleted");
    let remade = wire.call(7, &create("events", 1, vec![]));
    assert_ne!(remade.topics[0].topic_id, first_id, "a new topic, a new id");
}

#[test]
fn metadata_creates_unknown_topics_only_when_the_listener_and_the_request_allow_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = weir_tests::kafka_clients::KafkaServe::start(
        dir.path(),
        &["--kafka-auto-create-partitions", "3"],
    );
    let mut wire = Wire::connect(serve.kafka.parse().expect("HOST:PORT"));
    let ask = |topic: &str, allow: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(topic))),
            ]))
            .with_allow_auto_topic_creation(allow)
    };
    let refused = wire.call(12, &ask("not-asked", false));
    assert_eq!(
        refused.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let created = wire.call(12, &ask("made-on-demand", true));
    assert_eq!(created.topics[0].error_code, 0);
    assert_eq!(created.topics[0].partitions.len(), 3);
    assert!(!created.topics[0].topic_id.is_nil());
    // Asked again, the same topic; an invalid or internal name is not made.
    let again = wire.call(12, &ask("made-on-demand", true));
    assert_eq!(again.topics[0].topic_id, created.topics[0].topic_id);
    let invalid = wire.call(12, &ask("no spaces/allowed", true));
    assert_eq!(
        invalid.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
    let internal = wire.call(12, &ask("__internal", true));
    assert_ne!(internal.topics[0].error_code, 0);
    // The HTTP API sees the new topic, the refused one does not exist.
    let status = |path| weir_tests::server::http_status(&serve.http, path);
    assert_eq!(status("/topics/made-on-demand"), Some(200));
    assert_eq!(status("/topics/not-asked"), Some(404));
}
