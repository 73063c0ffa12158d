//! What Kafka records carry beyond a key and a value, and what a producer's
//! state must survive: null values and null header values kept apart from
//! empty ones, repeated header names in order (through confluent-kafka and
//! kafka-python against `weir serve`), and, across a SIGKILL of `weir
//! serve`, an idempotent producer's retry answered as a duplicate and a
//! transactional id's epoch bumped so its old producer is fenced.

use std::net::SocketAddr;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use serde_json::{Value, json};

use weir_tests::Host;
use weir_tests::kafka_clients::{KafkaServe, clients};
use weir_tests::kafka_wire::Wire;

use crate::kafka_listener::{batch, produce};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wire(serve: &KafkaServe) -> Wire {
    Wire::connect(serve.kafka.parse::<SocketAddr>().expect("HOST:PORT"))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

#[test]
fn null_values_null_header_values_and_repeated_header_names_reach_kafka_clients_as_sent() {
    let Some(clients) = clients() else { return };
    let host = Host::new();
    host.topic("nulls", 1);
    let Host { dir, .. } = host;
    let serve = KafkaServe::start(dir.path(), &[]);
    let headers = json!([["a", hex(b"1")], ["a", null], ["b", ""], ["a", hex(b"3")]]);
    let sent = json!([
        {"partition": 0, "key": hex(b"gone"), "value": null, "headers": headers},
        {"partition": 0, "key": null, "value": "", "headers": []},
        {"partition": 0, "key": hex(b"k"), "value": hex(b"v"), "headers": [["x", null]]},
    ]);
    let produced = clients.python(json!({
        "op": "produce", "client": "confluent", "bootstrap": serve.kafka,
        "topic": "nulls", "records": sent,
    }));
    assert!(produced.get("error").is_none(), "{produced}");
    for client in ["confluent", "kafka-python"] {
        let answer = clients.python(json!({
            "op": "consume", "client": client, "bootstrap": serve.kafka,
            "topic": "nulls", "partition": 0, "offset": 0, "count": 3,
        }));
        let got = answer["records"].as_array().expect("records").clone();
        let seen: Vec<(Value, Value, Value)> = got
            .iter()
            .map(|r| (r["key"].clone(), r["value"].clone(), r["headers"].clone()))
            .collect();
        let want: Vec<(Value, Value, Value)> = sent
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["key"].clone(), r["value"].clone(), r["headers"].clone()))
            .collect();
        assert_eq!(
            seen, want,
            "{client}: nulls, empties and header order as sent"
        );
    }
    drop(serve);
    // In weir's own log: a null is empty bytes marked null, so weir's API,
    // CLI and guests (which have no null) read it as empty.
    let host = Host::new_in(dir);
    let stored = host.records("nulls", 0);
    assert!(stored[0].nulls.value && stored[0].value.is_empty());
    assert_eq!(stored[0].nulls.headers, [1]);
    assert!(
        !stored[1].nulls.value,
        "an empty value stays empty, not null"
    );
}

/// The batch of `values` an idempotent producer sends first.
fn idempotent(values: &[&str], producer: (i64, i16), first: i32) -> bytes::Bytes {
    batch(
        values,
        Some((producer.0, producer.1, first)),
        Compression::None,
    )
}

#[test]
fn an_idempotent_retry_after_weir_serve_is_killed_is_not_written_twice() {
    let host = Host::new();
    host.topic("idem", 1);
    host.append_values("idem", 0, &["before"]);
    let Host { dir, .. } = host;
    let serve = KafkaServe::start(dir.path(), &[]);
    let mut w = wire(&serve);
    let init = w.call(
        4,
        &InitProducerIdRequest::default()
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    );
    assert_eq!(init.error_code, 0);
    let producer = (init.producer_id.0, init.producer_epoch);
    assert_eq!(
        produce(&mut w, "idem", idempotent(&["a", "b", "c"], producer, 0)),
        (0, 1)
    );
    assert_eq!(
        produce(&mut w, "idem", idempotent(&["d", "e"], producer, 3)),
        (0, 4)
    );
    let mut serve = serve;
    serve.child.kill().unwrap(); // SIGKILL: the producer never heard back
    serve.child.wait().unwrap();
    drop(serve);

    let serve = KafkaServe::start(dir.path(), &[]);
    let mut w = wire(&serve);
    // The retries of both batches: answered with their first offsets.
    assert_eq!(
        produce(&mut w, "idem", idempotent(&["d", "e"], producer, 3)),
        (0, 4)
    );
    assert_eq!(
        produce(&mut w, "idem", idempotent(&["a", "b", "c"], producer, 0)),
        (0, 1)
    );
    let (code, _) = produce(&mut w, "idem", idempotent(&["z"], producer, 9));
    assert_eq!(
        code,
        ResponseError::OutOfOrderSequenceNumber.code(),
        "a gap is still refused"
    );
    assert_eq!(
        produce(&mut w, "idem", idempotent(&["f"], producer, 5)),
        (0, 6)
    );
    drop(serve);
    let host = Host::new_in(dir);
    assert_eq!(
        host.values("idem", 0),
        ["before", "a", "b", "c", "d", "e", "f"]
    );
}

fn init_txn(w: &mut Wire, current: (i64, i16)) -> InitProducerIdResponse {
    w.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("tx"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(current.0))
            .with_producer_epoch(current.1),
    )
}

fn add_partition(w: &mut Wire, producer: (i64, i16)) -> i16 {
    use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
    let answer = w.call(
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("tx")))
            .with_v3_and_below_producer_id(ProducerId(producer.0))
            .with_v3_and_below_producer_epoch(producer.1)
            .with_v3_and_below_topics(vec![
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s("txn")))
                    .with_partitions(vec![0]),
            ]),
    );
    answer.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

#[test]
fn a_transactional_id_after_weir_serve_is_killed_fences_its_old_producer_and_bumps_the_epoch() {
    let host = Host::new();
    host.topic("txn", 1);
    let Host { dir, .. } = host;
    let serve = KafkaServe::start(dir.path(), &[]);
    let mut w = wire(&serve);
    let first = init_txn(&mut w, (-1, -1));
    assert_eq!(first.error_code, 0, "{first:?}");
    let old = (first.producer_id.0, first.producer_epoch);
    // A transaction under way when the server dies.
    assert_eq!(add_partition(&mut w, old), 0);
    let mut serve = serve;
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    drop(serve);

    let serve = KafkaServe::start(dir.path(), &[]);
    let mut w = wire(&serve);
    // The old producer's lost transaction cannot go on: it is fenced.
    let code = add_partition(&mut w, old);
    assert_eq!(
        code,
        ResponseError::ProducerFenced.code(),
        "fenced after the restart"
    );
    // A new instance initializing gets the same producer id, a later epoch.
    let again = init_txn(&mut w, (-1, -1));
    assert_eq!(again.error_code, 0, "{again:?}");
    assert_eq!(again.producer_id.0, old.0, "the same producer id");
    assert!(again.producer_epoch > old.1, "{again:?} after {old:?}");
    let new = (again.producer_id.0, again.producer_epoch);
    assert_eq!(add_partition(&mut w, new), 0);
    assert_eq!(
        add_partition(&mut w, old),
        ResponseError::ProducerFenced.code(),
        "and the old one stays fenced"
    );
    // KIP-360: the old instance naming its stale epoch is fenced too.
    let stale = init_txn(&mut w, old);
    assert_ne!(stale.error_code, 0, "{stale:?}");
    // One more restart: the newest owner is what was saved.
    drop(serve);
    let serve = KafkaServe::start(dir.path(), &[]);
    let mut w = wire(&serve);
    let third = init_txn(&mut w, (-1, -1));
    assert_eq!((third.producer_id.0, third.error_code), (old.0, 0));
    assert!(third.producer_epoch > new.1, "{third:?} after {new:?}");
}
