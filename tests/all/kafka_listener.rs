//! The Kafka listener at the protocol level, over a listener in this process
//! and raw connections: versions, Metadata with topic ids, produce and fetch
//! (inside a batch, byte limits, long polls, out of range), the idempotent
//! producer's retries; topic admin in `kafka_listener/topics.rs`. Bad input
//! and logging in are in `kafka_security.rs`.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire, request_frame};

mod topics;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A v2 batch of `values`, from an idempotent producer when `producer` is
/// (id, epoch, first sequence).
pub(crate) fn batch(
    values: &[&str],
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
) -> Bytes {
    let (id, epoch, seq) = producer.unwrap_or((-1, -1, -1));
    let records: Vec<KafkaRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: id,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if seq < 0 { -1 } else { seq + i as i32 },
            timestamp: 1_000 + i as i64,
            key: (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.to_string())),
            headers: IndexMap::from([(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"hv")),
            )]),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

/// (error code, base offset) of a one-partition produce.
pub(crate) fn produce(wire: &mut Wire, topic: &str, records: Bytes) -> (i16, i64) {
    let response = wire.call(9, &produce_request(topic, 0, records, -1));
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn fetch_request(topic: &str, offset: i64, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max_bytes),
                ]),
        ])
}

/// The (offset, value) of every record in a fetch answer's partition.
fn fetched(response: &FetchResponse) -> (i16, Vec<(i64, String)>) {
    let p = &response.responses[0].partitions[0];
    let mut records = p.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut records).unwrap() {
        for r in set.records {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    (p.error_code, out)
}

#[test]
fn api_versions_advertise_produce_from_zero_and_the_listener_answers_metadata_with_topic_ids() {
    let host = Host::new();
    host.topic("orders", 3);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let versions = wire.call(3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
    let produce = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce as i16)
        .expect("Produce is advertised");
    assert_eq!(produce.min_version, 0, "librdkafka < 2.11.1 needs 0");

    let metadata = wire.call(12, &MetadataRequest::default().with_topics(None));
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].port, listener.addr.port() as i32);
    let orders = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "orders"))
        .expect("orders is listed");
    assert_eq!(orders.partitions.len(), 3);
    let id = host.log.topic_id("orders").unwrap();
    assert_eq!(orders.topic_id, id);
    assert!(!id.is_nil());

    // By id, and an unknown name.
    let by_id = wire.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default()
                .with_name(None)
                .with_topic_id(id),
            MetadataRequestTopic::default().with_name(Some(name("nope"))),
        ])),
    );
    assert_eq!(by_id.topics[0].name.as_ref().unwrap().0.as_str(), "orders");
    assert_eq!(
        by_id.topics[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert!(
        !host.log.topics().iter().any(|(n, _)| n == "nope"),
        "Metadata never creates a topic"
    );

    // An unsupported ApiVersions version is answered (in v0) with the list.
    let mut raw = listener.connect();
    let mut too_new = request_frame(ApiKey::ApiVersions as i16, 99, 7);
    // A v2 (flexible) header, as a client sending v99 would use: no tagged fields.
    too_new.push(0);
    let len = (too_new.len() - 4) as i32;
    too_new[..4].copy_from_slice(&len.to_be_bytes());
    raw.raw(&too_new);
    let mut frame = raw.frame().expect("an answer");
    use kafka_protocol::protocol::Decodable;
    let header = ResponseHeader::decode(&mut frame, 0).unwrap();
    assert_eq!(header.correlation_id, 7);
    let answer = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
    assert_eq!(answer.error_code, ResponseError::UnsupportedVersion.code());
    assert!(!answer.api_keys.is_empty());
}

#[test]
fn produced_batches_of_every_codec_are_stored_and_fetched_from_inside_a_batch() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let mut next = 0;
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let (code, base) = produce(&mut wire, "t", batch(&["a", "b", "c"], None, compression));
        assert_eq!((code, base), (0, next), "{compression:?}");
        next += 3;
    }
    let stored = host.records("t", 0);
    assert_eq!(stored.len(), 15);
    assert_eq!(stored[0].key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(stored[1].key, None, "a null key stays null");
    assert_eq!(stored[1].timestamp, 1_001);
    assert_eq!(stored[2].headers, vec![("h".to_string(), b"hv".to_vec())]);

    // From inside the second batch: the answer starts at the asked offset.
    let (code, records) = fetched(&wire.call(12, &fetch_request("t", 4, 1 << 20)));
    assert_eq!(code, 0);
    assert_eq!(records.first(), Some(&(4, "b".to_string())));
    assert_eq!(records.last(), Some(&(14, "c".to_string())));

    // Out of range.
    let (code, _) = fetched(&wire.call(12, &fetch_request("t", 99, 1 << 20)));
    assert_eq!(code, ResponseError::OffsetOutOfRange.code());
}

#[test]
fn fetch_by_topic_id_respects_the_byte_limit_and_long_polls_until_records_come() {
    let host = Host::new();
    host.topic("t", 1);
    for i in 0..20 {
        host.append_values("t", 0, &[format!("{i:0>100}")]);
    }
    let id = host.log.topic_id("t").unwrap();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let by_id = |offset: i64, max: i32, wait: i32, min: i32| {
        FetchRequest::default()
            .with_max_wait_ms(wait)
            .with_min_bytes(min)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(id)
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max),
                    ]),
            ])
    };
    let small = wire.call(13, &by_id(0, 300, 0, 0));
    assert_eq!(small.responses[0].topic_id, id);
    let (_, records) = fetched(&small);
    assert!(
        !records.is_empty() && records.len() < 20,
        "a few records within about 300 bytes, got {}",
        records.len()
    );
    let (_, all) = fetched(&wire.call(13, &by_id(0, 1 << 20, 0, 0)));
    assert_eq!(all.len(), 20);

    // A long poll at the end answers when a record comes, not at max_wait.
    let log = host.log.clone();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        log.append("t", 0, &[weir::log::Record::value("late")])
            .unwrap();
    });
    let started = Instant::now();
    let (_, late) = fetched(&wire.call(13, &by_id(20, 1 << 20, 20_000, 1)));
    writer.join().unwrap();
    assert_eq!(late, vec![(20, "late".to_string())]);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the long poll ended with the append"
    );

    // An unknown id.
    let unknown = wire.call(
        13,
        &FetchRequest::default().with_topics(vec![
            FetchTopic::default()
                .with_topic_id(uuid_of(7))
                .with_partitions(vec![FetchPartition::default()]),
        ]),
    );
    assert_eq!(
        unknown.responses[0].partitions[0].error_code,
        ResponseError::UnknownTopicId.code()
    );
}

fn uuid_of(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

#[test]
fn unknown_topics_too_large_records_and_internal_topics_get_their_error_codes() {
    let host = Host::new();
    host.topic("small", 1);
    host.broker
        .alter_topic(
            "small",
            &weir::wire::TopicSettings {
                max_batch_bytes: Some(200),
                ..Default::default()
            },
        )
        .unwrap();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let (code, _) = produce(&mut wire, "nope", batch(&["a"], None, Compression::None));
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());
    assert!(!host.log.topics().iter().any(|(n, _)| n == "nope"));
    let big = "x".repeat(1000);
    let (code, _) = produce(&mut wire, "small", batch(&[&big], None, Compression::None));
    assert_eq!(code, ResponseError::MessageTooLarge.code());
    let (code, _) = produce(
        &mut wire,
        "__consumer_offsets",
        batch(&["a"], None, Compression::None),
    );
    assert_eq!(code, ResponseError::TopicAuthorizationFailed.code());
    let response = wire.call(
        9,
        &produce_request("small", 5, batch(&["a"], None, Compression::None), 1),
    );
    assert_eq!(
        response.responses[0].partition_responses[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert!(host.records("small", 0).is_empty(), "nothing was stored");
}

#[test]
fn a_retried_idempotent_batch_is_answered_with_its_first_offset_and_stored_once() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let init = wire.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1),
    );
    assert_eq!(init.error_code, 0);
    let producer = |seq| Some((init.producer_id.0, init.producer_epoch, seq));
    assert_eq!(
        produce(
            &mut wire,
            "t",
            batch(&["a", "b"], producer(0), Compression::Zstd)
        ),
        (0, 0)
    );
    assert_eq!(
        produce(
            &mut wire,
            "t",
            batch(&["c"], producer(2), Compression::None)
        ),
        (0, 2)
    );
    // The first batch again (a retry after a lost answer), on a new connection.
    let mut again = listener.connect();
    assert_eq!(
        produce(
            &mut again,
            "t",
            batch(&["a", "b"], producer(0), Compression::Zstd)
        ),
        (0, 0)
    );
    // A gap in the sequence.
    let (code, _) = produce(
        &mut again,
        "t",
        batch(&["z"], producer(9), Compression::None),
    );
    assert_eq!(code, ResponseError::OutOfOrderSequenceNumber.code());
    assert_eq!(host.values("t", 0), vec!["a", "b", "c"]);

    let txn = wire.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx")))),
    );
    assert_ne!(txn.error_code, 0, "transactions are not offered");
}

#[test]
fn acks_zero_appends_without_an_answer_and_list_offsets_finds_by_time() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    wire.send(
        9,
        &produce_request("t", 0, batch(&["a", "b", "c"], None, Compression::Lz4), 0),
    );
    // The next request's answer is the first to come back.
    let lookup = |ts| {
        ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(ts),
                ]),
        ])
    };
    let offsets = |wire: &mut Wire, ts| {
        let r = wire.call(7, &lookup(ts));
        let p = &r.topics[0].partitions[0];
        (p.error_code, p.offset, p.timestamp)
    };
    assert_eq!(offsets(&mut wire, -1), (0, 3, -1), "latest");
    assert_eq!(offsets(&mut wire, -2), (0, 0, -1), "earliest");
    assert_eq!(offsets(&mut wire, 1_001), (0, 1, 1_001));
    assert_eq!(offsets(&mut wire, 1_000_000), (0, -1, -1), "after the last");
}
