//! Kafka transactions at the protocol level, over a listener in this
//! process and raw requests built with kafka-protocol: the transaction
//! coordinator look-up (key type 1), TxnOffsetCommit checked against the
//! group's member and generation (KIP-447), the fenced codes by request
//! version, and the offsets a commit writes.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;

use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire, join, s};

fn txn_offset_commit(
    wire: &mut Wire,
    producer: (i64, i16),
    member: &str,
    generation: i32,
    offset: i64,
) -> i16 {
    let answer = wire.call(
        3,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_group_id(GroupId(s("g")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_topics(vec![
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("in")))
                    .with_partitions(vec![
                        TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset),
                    ]),
            ]),
    );
    answer.topics[0].partitions[0].error_code
}

fn end_txn(wire: &mut Wire, version: i16, producer: (i64, i16), commit: bool) -> i16 {
    wire.call(
        version,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_committed(commit),
    )
    .error_code
}

fn init(wire: &mut Wire) -> (i64, i16) {
    let answer = wire.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("tx"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(answer.error_code, 0, "{answer:?}");
    (answer.producer_id.0, answer.producer_epoch)
}

/// AddOffsetsToTxn of group `g` to the transaction; its error code.
fn add_offsets(wire: &mut Wire, producer: (i64, i16)) -> i16 {
    wire.call(
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("tx")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_group_id(GroupId(s("g"))),
    )
    .error_code
}

/// AddPartitionsToTxn (v3) of partition 0 of each of `topics`; the error
/// code of each.
fn add_partitions(wire: &mut Wire, producer: (i64, i16), topics: &[&str]) -> Vec<i16> {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    let topics = topics.iter().map(|topic| {
        AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![0])
    });
    let added = wire.call(
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("tx")))
            .with_v3_and_below_producer_id(ProducerId(producer.0))
            .with_v3_and_below_producer_epoch(producer.1)
            .with_v3_and_below_topics(topics.collect()),
    );
    added
        .results_by_topic_v3_and_below
        .iter()
        .map(|t| t.results_by_partition[0].partition_error_code)
        .collect()
}

#[test]
fn txn_offset_commits_are_fenced_by_generation_and_land_only_at_commit() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["a", "b", "c", "d"]);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();

    let coordinator = wire.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(s("tx"))
            .with_key_type(1),
    );
    assert_eq!(coordinator.error_code, 0);
    assert_eq!(coordinator.port, i32::from(listener.addr.port()));

    // One member in generation 1.
    let joined = join(&mut wire, "g");
    let member = joined.member_id.to_string();
    let generation = joined.generation_id;
    let synced = wire.call(
        5,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(generation)
            .with_member_id(s(&member))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(Bytes::from_static(b"in: 0")),
            ]),
    );
    assert_eq!(synced.error_code, 0);

    let producer = init(&mut wire);
    // Offsets before AddOffsetsToTxn: not part of any transaction.
    assert_eq!(
        txn_offset_commit(&mut wire, producer, &member, generation, 3),
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(add_offsets(&mut wire, producer), 0);
    // A zombie of an older generation, or a member the group does not know.
    assert_eq!(
        txn_offset_commit(&mut wire, producer, &member, generation - 1, 3),
        ResponseError::IllegalGeneration.code()
    );
    assert_eq!(
        txn_offset_commit(&mut wire, producer, "someone-else", generation, 3),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        txn_offset_commit(&mut wire, producer, &member, generation, 3),
        0
    );
    // Held until EndTxn: nothing committed yet.
    assert_eq!(host.broker.offsets().get("g", "in", 0), None);
    assert_eq!(end_txn(&mut wire, 3, producer, true), 0);
    assert_eq!(host.broker.offsets().get("g", "in", 0).unwrap().offset, 3);

    // An aborted transaction's offsets never land.
    assert_eq!(add_offsets(&mut wire, producer), 0);
    assert_eq!(
        txn_offset_commit(&mut wire, producer, &member, generation, 4),
        0
    );
    assert_eq!(end_txn(&mut wire, 3, producer, false), 0);
    assert_eq!(host.broker.offsets().get("g", "in", 0).unwrap().offset, 3);

    // A new producer with the same transactional id fences the old epoch:
    // PRODUCER_FENCED from EndTxn v2, INVALID_PRODUCER_EPOCH before.
    let successor = init(&mut wire);
    assert_eq!(successor, (producer.0, producer.1 + 1));
    assert_eq!(
        end_txn(&mut wire, 3, producer, true),
        ResponseError::ProducerFenced.code()
    );
    assert_eq!(
        end_txn(&mut wire, 1, producer, true),
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(end_txn(&mut wire, 3, successor, true), 0);
}

/// A transactional v2 batch of `values` from `producer`, sequences from `seq`.
fn txn_batch(values: &[Vec<u8>], producer: (i64, i16), seq: i32) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: seq + i as i32,
            timestamp: 1_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.clone())),
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

/// (error code, base offset) of a transactional batch to `out`/0.
fn produce(wire: &mut Wire, records: Bytes) -> (i16, i64) {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    let response = wire.call(
        9,
        &ProduceRequest::default()
            .with_transactional_id(Some(TransactionalId(s("tx"))))
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(s("out")))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ]),
    );
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn transactional_batches_are_held_until_commit_and_checked_like_any_produce() {
    let host = Host::new();
    host.topic("out", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let producer = init(&mut wire);
    let value = |v: &str| v.as_bytes().to_vec();

    // Not added to the transaction yet.
    assert_eq!(
        produce(&mut wire, txn_batch(&[value("a")], producer, 0)).0,
        ResponseError::InvalidTxnState.code()
    );
    // One unknown topic: nothing is added, the rest is not attempted.
    assert_eq!(
        add_partitions(&mut wire, producer, &["out", "nowhere"]),
        [
            ResponseError::OperationNotAttempted.code(),
            ResponseError::UnknownTopicOrPartition.code()
        ]
    );
    assert_eq!(add_partitions(&mut wire, producer, &["out"]), [0]);

    let batch = txn_batch(&[value("a"), value("b")], producer, 0);
    assert_eq!(produce(&mut wire, batch.clone()), (0, -1));
    // A retry is held once.
    assert_eq!(produce(&mut wire, batch), (0, -1));
    assert_eq!(host.broker.log().high_watermark("out", 0).unwrap(), 0);
    assert_eq!(end_txn(&mut wire, 3, producer, true), 0);
    assert_eq!(host.values("out", 0), ["a", "b"]);

    // A record the topic could never take is refused at once, and its
    // transaction can then only abort: nothing of it lands.
    assert_eq!(add_partitions(&mut wire, producer, &["out"]), [0]);
    assert_eq!(
        produce(&mut wire, txn_batch(&[value("c")], producer, 2)),
        (0, -1)
    );
    let huge = vec![b'x'; 2 << 20];
    assert_eq!(
        produce(&mut wire, txn_batch(&[huge], producer, 3)).0,
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(
        end_txn(&mut wire, 3, producer, true),
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(end_txn(&mut wire, 3, producer, false), 0);
    assert_eq!(host.values("out", 0), ["a", "b"]);
}
