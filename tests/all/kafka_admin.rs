//! Kafka's admin APIs and commit metadata at the protocol level, over a
//! listener in this process and raw requests built with kafka-protocol:
//! OffsetCommit's metadata string and leader epoch kept with the offset and
//! returned by OffsetFetch across a restart (and a metadata string over
//! 4096 bytes refused); CreatePartitions growing a topic durably (and
//! validate_only, shrinking, unknown topics); IncrementalAlterConfigs and
//! AlterConfigs changing what DescribeConfigs shows, unknown settings
//! refused by name; keyless records refused by index on a compacted topic;
//! DescribeCluster.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use weir::log::{CleanupPolicy, Record};
use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

/// A commit outside any group membership (generation -1), as
/// `rd_kafka_commit` of a consumer that never subscribed sends it: one
/// partition of `t` per (partition, offset, leader epoch, metadata).
fn commit(wire: &mut Wire, group: &str, partitions: &[(i32, i64, i32, &str)]) -> Vec<i16> {
    let partitions = partitions
        .iter()
        .map(|&(p, offset, epoch, metadata)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(epoch)
                .with_committed_metadata(Some(s(metadata)))
        })
        .collect();
    let response = wire.call(
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(partitions),
            ]),
    );
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// OffsetFetch v7 (one group) and v8 (groups) of partitions 0 and 1 of `t`:
/// (offset, leader epoch, metadata) per partition, both versions agreeing.
fn fetch(wire: &mut Wire, group: &str) -> Vec<(i64, i32, String)> {
    let v7 = wire.call(
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(topic("t"))
                    .with_partition_indexes(vec![0, 1]),
            ])),
    );
    assert_eq!(v7.error_code, 0);
    let old: Vec<_> = v7.topics[0]
        .partitions
        .iter()
        .map(|p| {
            assert_eq!(p.error_code, 0);
            let metadata = p.metadata.as_ref().map_or("", |m| m.as_str()).to_string();
            (p.committed_offset, p.committed_leader_epoch, metadata)
        })
        .collect();
    let v8 = wire.call(
        8,
        &OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(group)))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(topic("t"))
                        .with_partition_indexes(vec![0, 1]),
                ])),
        ]),
    );
    let new: Vec<_> = v8.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| {
            let metadata = p.metadata.as_ref().map_or("", |m| m.as_str()).to_string();
            (p.committed_offset, p.committed_leader_epoch, metadata)
        })
        .collect();
    assert_eq!(old, new, "v7 and v8 answer alike");
    new
}

#[test]
fn commit_metadata_and_leader_epoch_come_back_from_offset_fetch_after_a_restart() {
    let host = Host::new();
    host.topic("t", 2);
    {
        let listener = Listener::start(host.broker.clone());
        let mut wire = listener.connect();
        let too_large = "x".repeat(4097);
        let codes = commit(
            &mut wire,
            "g",
            &[(0, 42, 3, "Hello world!"), (1, 7, -1, &too_large)],
        );
        assert_eq!(
            codes,
            [0, ResponseError::OffsetMetadataTooLarge.code()],
            "the metadata over offset.metadata.max.bytes is refused, the other kept"
        );
        assert_eq!(
            fetch(&mut wire, "g"),
            [(42, 3, "Hello world!".to_string()), (-1, -1, String::new())]
        );
        // The largest metadata allowed, and a later commit without any.
        let largest = "y".repeat(4096);
        assert_eq!(commit(&mut wire, "h", &[(1, 9, 1, &largest)]), [0]);
        assert_eq!(commit(&mut wire, "g", &[(1, 8, -1, "")]), [0]);
        assert_eq!(fetch(&mut wire, "h")[1], (9, 1, largest));
    }
    let host = host.reopen();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    assert_eq!(
        fetch(&mut wire, "g"),
        [(42, 3, "Hello world!".to_string()), (8, -1, String::new())],
        "the metadata is in __consumer_offsets"
    );
    assert_eq!(fetch(&mut wire, "h")[1].2.len(), 4096);
    assert_eq!(host.committed("g", "t", 0), 42);
    // What `weir group describe` and `GET /groups/g` show.
    let described = host.broker.describe_group("g").unwrap();
    let metadata: Vec<_> = described
        .partitions
        .iter()
        .map(|p| (p.partition, p.metadata.as_deref()))
        .collect();
    assert_eq!(metadata, [(0, Some("Hello world!")), (1, None)]);
}

fn create_partitions(
    wire: &mut Wire,
    name: &str,
    count: i32,
    validate_only: bool,
) -> (i16, String) {
    let response = wire.call(
        3,
        &CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(topic(name))
                    .with_count(count),
            ])
            .with_timeout_ms(5000)
            .with_validate_only(validate_only),
    );
    let result = &response.results[0];
    assert_eq!(result.name.as_str(), name);
    let message = result.error_message.as_ref().map_or("", |m| m.as_str());
    (result.error_code, message.to_string())
}

fn partition_count(wire: &mut Wire, name: &str) -> usize {
    let metadata = wire.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            metadata_request::MetadataRequestTopic::default().with_name(Some(topic(name))),
        ])),
    );
    assert_eq!(metadata.topics[0].error_code, 0);
    metadata.topics[0].partitions.len()
}

#[test]
fn create_partitions_grows_a_topic_durably_and_refuses_to_shrink_it() {
    let host = Host::new();
    host.topic("t", 2);
    host.append_values("t", 1, &["before"]);
    {
        let listener = Listener::start(host.broker.clone());
        let mut wire = listener.connect();
        assert_eq!(create_partitions(&mut wire, "t", 4, true).0, 0);
        assert_eq!(
            partition_count(&mut wire, "t"),
            2,
            "validate_only changes nothing"
        );
        assert_eq!(create_partitions(&mut wire, "t", 4, false).0, 0);
        assert_eq!(partition_count(&mut wire, "t"), 4);
        host.log.append("t", 3, &[Record::value("after")]).unwrap();
        let (code, message) = create_partitions(&mut wire, "t", 3, false);
        assert_eq!(code, ResponseError::InvalidPartitions.code());
        assert!(message.contains("never shrink"), "{message}");
        let (code, _) = create_partitions(&mut wire, "t", 4, false);
        assert_eq!(code, ResponseError::InvalidPartitions.code(), "no growth");
        let (code, _) = create_partitions(&mut wire, "missing", 4, false);
        assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
        let (code, _) = create_partitions(&mut wire, "__consumer_offsets", 4, false);
        assert_ne!(code, 0, "internal topics stay as weir made them");
    }
    // A growth that crashed after making partition 4's directory but before
    // topic.json counted it: the directory is not a partition, and the next
    // growth replaces it.
    let host = host.reopen();
    assert_eq!(host.log.partition_count("t").unwrap(), 4);
    assert_eq!(host.values("t", 1), ["before"]);
    assert_eq!(host.values("t", 3), ["after"]);
    let leftover = host.dir.path().join("topics/t/4");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("junk"), b"never a partition").unwrap();
    let host = host.reopen();
    assert_eq!(host.log.partition_count("t").unwrap(), 4);
    host.broker.add_partitions("t", 5).unwrap();
    assert_eq!(host.log.high_watermark("t", 4).unwrap(), 0);
    assert!(!leftover.join("junk").exists());
    host.log.append("t", 4, &[Record::value("new")]).unwrap();
    let host = host.reopen();
    assert_eq!(host.values("t", 4), ["new"]);

    // A processor group's state changelog of the topic is partitioned like
    // it, and grows with it.
    let changelog = weir::state::changelog_topic("p", "t");
    host.log
        .create_topic(&changelog, weir::log::TopicConfig::with_partitions(5))
        .unwrap();
    let committed = weir::offsets::Committed {
        offset: 0,
        generation: 1,
    };
    host.broker
        .offsets()
        .commit("p", "t", 0, committed)
        .unwrap();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    assert_eq!(create_partitions(&mut wire, "t", 6, false).0, 0);
    assert_eq!(host.log.partition_count(&changelog).unwrap(), 6);
}

/// One topic resource of `t` with `configs` as (name, operation, value).
fn incremental(
    wire: &mut Wire,
    configs: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, String) {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let configs = configs
        .iter()
        .map(|&(name, op, value)| {
            AlterableConfig::default()
                .with_name(s(name))
                .with_config_operation(op)
                .with_value(value.map(s))
        })
        .collect();
    let response = wire.call(
        1,
        &IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("t"))
                    .with_configs(configs),
            ])
            .with_validate_only(validate_only),
    );
    let r = &response.responses[0];
    let message = r.error_message.as_ref().map_or("", |m| m.as_str());
    (r.error_code, message.to_string())
}

/// DescribeConfigs' value of `name` on topic `t`.
fn described(wire: &mut Wire, name: &str) -> String {
    let response = wire.call(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configuration_keys(Some(vec![s(name)])),
        ]),
    );
    let result = &response.results[0];
    assert_eq!(result.error_code, 0);
    result.configs[0].value.as_ref().unwrap().to_string()
}

#[test]
fn alter_configs_change_the_settings_describe_configs_shows() {
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    let host = Host::new();
    host.topic("t", 2);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();

    let (code, _) = incremental(&mut wire, &[("retention.ms", SET, Some("60000"))], true);
    assert_eq!(code, 0);
    assert_eq!(described(&mut wire, "retention.ms"), "-1", "validate_only");
    let changes = [
        ("retention.ms", SET, Some("60000")),
        ("cleanup.policy", APPEND, Some("compact")),
        ("max.message.bytes", SET, Some("100000")),
    ];
    assert_eq!(incremental(&mut wire, &changes, false).0, 0);
    assert_eq!(described(&mut wire, "retention.ms"), "60000");
    assert_eq!(described(&mut wire, "cleanup.policy"), "compact");
    let config = host.log.topic_config("t").unwrap();
    assert_eq!(config.retention_ms, Some(60000));
    assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(config.max_batch_bytes, 100_000);
    assert_eq!(config.partitions, 2);

    let changes = [
        ("cleanup.policy", SUBTRACT, Some("compact")),
        ("retention.ms", DELETE, None),
    ];
    assert_eq!(incremental(&mut wire, &changes, false).0, 0);
    assert_eq!(described(&mut wire, "cleanup.policy"), "delete");
    assert_eq!(described(&mut wire, "retention.ms"), "-1");
    assert_eq!(described(&mut wire, "max.message.bytes"), "100000");

    let (code, message) = incremental(&mut wire, &[("min.insync.replicas", SET, Some("2"))], false);
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.contains("min.insync.replicas"), "{message}");
    let (code, _) = incremental(&mut wire, &[("segment.bytes", SET, Some("lots"))], false);
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert_eq!(
        described(&mut wire, "max.message.bytes"),
        "100000",
        "unchanged"
    );

    // AlterConfigs replaces the whole set: what it leaves out is back to
    // its default.
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let response = wire.call(
        2,
        &AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(s("segment.bytes"))
                        .with_value(Some(s("2048"))),
                ]),
            AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("0"))
                .with_configs(vec![]),
        ]),
    );
    assert_eq!(response.responses[0].error_code, 0);
    assert_ne!(
        response.responses[1].error_code, 0,
        "broker settings are refused"
    );
    let config = host.log.topic_config("t").unwrap();
    assert_eq!(config.segment_bytes, 2048);
    assert_eq!(config.max_batch_bytes, weir::log::DEFAULT_MAX_BATCH_BYTES);
    let host = host.reopen();
    assert_eq!(host.log.topic_config("t").unwrap().segment_bytes, 2048);
}

/// A v2 batch of `(key, value)` records.
fn batch(records: &[(Option<&str>, &str)]) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<KafkaRecord> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_000 + i as i64,
            key: key.map(|k| bytes::Bytes::from(k.to_string())),
            value: Some(bytes::Bytes::from(value.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// (error code, indexes of the record errors) of producing `records` to `t`/0.
fn produce(wire: &mut Wire, records: bytes::Bytes) -> (i16, Vec<i32>) {
    use produce_request::{PartitionProduceData, TopicProduceData};
    let response = wire.call(
        9,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic("t"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ]),
    );
    let p = &response.responses[0].partition_responses[0];
    let indexes = p.record_errors.iter().map(|e| e.batch_index).collect();
    (p.error_code, indexes)
}

#[test]
fn keyless_records_for_a_compacted_topic_are_refused_by_index() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let mixed = [(Some("a"), "1"), (None, "2"), (Some("c"), "3"), (None, "4")];
    assert_eq!(
        produce(&mut wire, batch(&mixed)),
        (0, vec![]),
        "delete topics take any"
    );
    let append = [("cleanup.policy", 2, Some("compact"))];
    assert_eq!(incremental(&mut wire, &append, false).0, 0);
    assert_eq!(
        produce(&mut wire, batch(&mixed)),
        (ResponseError::InvalidRecord.code(), vec![1, 3])
    );
    assert_eq!(
        host.log.high_watermark("t", 0).unwrap(),
        4,
        "nothing of it stored"
    );
    assert_eq!(produce(&mut wire, batch(&[(Some("k"), "v")])), (0, vec![]));
    assert_eq!(host.log.high_watermark("t", 0).unwrap(), 5);
}

#[test]
fn describe_cluster_answers_weirs_one_node_at_the_listeners_address() {
    let host = Host::new();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    for version in [0, 2] {
        let response = wire.call(
            version,
            &DescribeClusterRequest::default().with_endpoint_type(1),
        );
        assert_eq!(response.error_code, 0);
        assert_eq!(response.cluster_id.as_str(), "weir");
        assert_eq!(response.controller_id, BrokerId(0));
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.brokers[0].broker_id, BrokerId(0));
        assert_eq!(response.brokers[0].port, i32::from(listener.addr.port()));
    }
}
