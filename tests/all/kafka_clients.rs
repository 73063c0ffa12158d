//! Real Kafka clients against a real `weir serve --kafka-listen`: kcat
//! (librdkafka 2.0.2), confluent-kafka (a current librdkafka) and
//! kafka-python produce under every codec and read back byte for byte
//! (assigning partitions, no group); a weir processor transforms what a
//! client produced for a client to read; ListOffsets by time; the
//! idempotent producer. Skipped loudly outside CI when a client is missing
//! (see `weir_tests::kafka_clients`).

use serde_json::{Value, json};

use weir_tests::kafka_clients::{Clients, KafkaServe, assert_same, clients, hex, ok, records};
use weir_tests::{Host, guests};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

fn consume(
    clients: &Clients,
    client: &str,
    serve: &KafkaServe,
    topic: &str,
    count: usize,
) -> Vec<Value> {
    let answer = ok(clients.python(json!({
        "op": "consume", "client": client, "bootstrap": serve.kafka,
        "topic": topic, "partition": 0, "offset": 0, "count": count,
    })));
    answer["records"].as_array().unwrap().clone()
}

/// Creates a topic over the Kafka protocol (CreateTopics).
fn create_over_kafka(serve: &KafkaServe, topic: &str, partitions: u32) {
    use kafka_protocol::messages::CreateTopicsRequest;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    let mut wire = weir_tests::kafka_wire::Wire::connect(serve.kafka.parse().unwrap());
    let answer = wire.call(
        5,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(kafka_protocol::messages::TopicName(
                    kafka_protocol::protocol::StrBytes::from_string(topic.to_string()),
                ))
                .with_num_partitions(partitions as i32)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(answer.topics[0].error_code, 0, "creating {topic}");
}

#[test]
fn python_clients_produce_under_every_codec_and_both_read_back_byte_for_byte() {
    let Some(clients) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    let sent = records(30);
    for producer in ["confluent", "kafka-python"] {
        for codec in CODECS {
            let topic = format!("{producer}-{codec}");
            create_over_kafka(&serve, &topic, 1);
            let answer = ok(clients.python(json!({
                "op": "produce", "client": producer, "bootstrap": serve.kafka,
                "topic": topic, "codec": codec, "records": sent,
            })));
            let offsets = answer["offsets"].as_array().unwrap();
            assert_eq!(
                offsets.len(),
                sent.len(),
                "{topic}: every record acknowledged"
            );
            for consumer in ["confluent", "kafka-python"] {
                let got = consume(clients, consumer, &serve, &topic, sent.len());
                assert_same(
                    &sent,
                    &got,
                    &format!("{producer} → {consumer} under {codec}"),
                );
            }
        }
    }
}

#[test]
fn kcat_produces_under_every_codec_and_reads_back_as_confluent_does() {
    let Some(clients) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    for codec in CODECS {
        let topic = format!("kcat-{codec}");
        create_over_kafka(&serve, &topic, 1);
        let base = [
            "-b",
            &serve.kafka,
            "-t",
            &topic,
            "-p",
            "0",
            "-X",
            "broker.address.family=v4",
        ];
        let keyed: Vec<&str> = [
            &base[..],
            &["-P", "-z", codec, "-K", ":", "-H", "origin=kcat"],
        ]
        .concat();
        let (ok_, _, err) = clients.kcat(&keyed, b"k1:first\nk2:second\n:empty key\n");
        assert!(ok_, "kcat -P under {codec}: {err}");
        let unkeyed: Vec<&str> = [&base[..], &["-P", "-z", codec]].concat();
        let (ok_, _, err) = clients.kcat(&unkeyed, b"no key\n");
        assert!(ok_, "kcat -P under {codec}: {err}");

        let read: Vec<&str> =
            [&base[..], &["-C", "-o", "beginning", "-c", "4", "-e", "-J"]].concat();
        let (ok_, out, err) = clients.kcat(&read, b"");
        assert!(ok_, "kcat -C: {err}");
        let got: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let seen: Vec<(Value, Value, Value)> = got
            .iter()
            .map(|m| (m["key"].clone(), m["payload"].clone(), m["headers"].clone()))
            .collect();
        let header = json!(["origin", "kcat"]);
        assert_eq!(
            seen,
            vec![
                (json!("k1"), json!("first"), header.clone()),
                (json!("k2"), json!("second"), header.clone()),
                (json!(""), json!("empty key"), header.clone()),
                (Value::Null, json!("no key"), Value::Null),
            ],
            "kcat under {codec}"
        );
        // The same records through confluent-kafka, timestamps included.
        let confluent = consume(clients, "confluent", &serve, &topic, 4);
        for (k, c) in got.iter().zip(&confluent) {
            assert_eq!(c["timestamp"], k["ts"], "the same timestamp under {codec}");
            assert_eq!(c["offset"], k["offset"]);
        }
        assert_eq!(confluent[3]["key"], Value::Null);
        assert_eq!(confluent[0]["value"], json!(hex(b"first")));
    }
}

#[test]
fn a_weir_processor_transforms_what_a_kafka_client_produced_for_a_kafka_client() {
    let Some(clients) = clients() else { return };
    let host = Host::new();
    host.topic("orders", 1);
    host.topic("orders-usd", 1);
    let Host { dir, .. } = host;
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[[processors]]\nname = \"usd\"\nwasm = {:?}\ntopics = [\"orders\"]\n",
            guests::CURRENCY_V2
        ),
    )
    .unwrap();
    let serve = KafkaServe::start(dir.path(), &["--config", config.to_str().unwrap()]);
    let orders: Vec<Value> = (0..50)
        .map(|i| {
            let order = json!({"id": i, "customer": format!("c{i}"), "amount_cents": 1000 + i, "currency": "EUR", "country": "FR"});
            json!({"partition": 0, "key": hex(format!("{i}").as_bytes()), "value": hex(order.to_string().as_bytes()), "headers": [], "timestamp": 1_700_000_000_000i64 + i})
        })
        .collect();
    ok(clients.python(json!({
        "op": "produce", "client": "kafka-python", "bootstrap": serve.kafka,
        "topic": "orders", "codec": "zstd", "records": orders,
    })));
    let got = consume(clients, "confluent", &serve, "orders-usd", orders.len());
    assert_eq!(got.len(), orders.len());
    for (i, record) in got.iter().enumerate() {
        let value = record["value"].as_str().unwrap();
        let bytes: Vec<u8> = (0..value.len())
            .step_by(2)
            .map(|j| u8::from_str_radix(&value[j..j + 2], 16).unwrap())
            .collect();
        let converted: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(converted["order_id"], json!(i));
        assert_eq!(
            converted["usd_cents"],
            json!((1000 + i as i64) * 1080 / 1000)
        );
    }
}

#[test]
fn clients_seek_by_timestamp_and_the_idempotent_producer_writes_no_duplicates() {
    let Some(clients) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    create_over_kafka(&serve, "timed", 1);
    let sent = records(10);
    ok(clients.python(json!({
        "op": "produce", "client": "confluent", "bootstrap": serve.kafka,
        "topic": "timed", "codec": "none", "records": sent,
    })));
    for client in ["confluent", "kafka-python"] {
        let answer = ok(clients.python(json!({
            "op": "offsets_for_time", "client": client, "bootstrap": serve.kafka,
            "topic": "timed", "partition": 0, "timestamp": 1_700_000_000_004i64,
        })));
        assert_eq!(answer["offset"], json!(4), "{client}");
    }

    create_over_kafka(&serve, "exactly", 1);
    let many = records(2000);
    for client in ["confluent", "kafka-python"] {
        let answer = ok(clients.python(json!({
            "op": "produce", "client": client, "bootstrap": serve.kafka,
            "topic": "exactly", "codec": "lz4", "records": many, "idempotent": true,
        })));
        assert_eq!(answer["offsets"].as_array().unwrap().len(), many.len());
    }
    let got = consume(clients, "confluent", &serve, "exactly", 2 * many.len());
    assert_eq!(got.len(), 2 * many.len(), "each record once");
    assert_same(&many, &got[..many.len()], "idempotent confluent");
}

#[test]
fn an_unknown_topic_is_reported_to_a_client_and_not_created() {
    let Some(clients) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &[]);
    let answer = clients.python(json!({
        "op": "metadata", "client": "confluent", "bootstrap": serve.kafka, "topic": "missing",
    }));
    assert_eq!(answer["error"], json!("UNKNOWN_TOPIC_OR_PART"), "{answer}");
}

#[test]
fn confluent_kafka_logs_in_with_sasl_plain_and_the_token() {
    let Some(clients) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &["--token", "kafka-s3cret"]);
    let sasl = |password: &str| {
        json!({
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "app",
            "sasl.password": password,
        })
    };
    let answer = clients.python(json!({
        "op": "metadata", "client": "confluent", "bootstrap": serve.kafka,
        "topic": "guarded", "config": sasl("wrong"),
    }));
    assert!(
        answer.get("error").is_some(),
        "a wrong password is refused: {answer}"
    );
    assert!(
        answer.get("partitions").is_none(),
        "nothing is told to a client that failed to log in: {answer}"
    );

    let mut wire = weir_tests::kafka_wire::Wire::connect(serve.kafka.parse().unwrap());
    wire.send(5, &kafka_protocol::messages::CreateTopicsRequest::default());
    assert!(
        wire.closed_by_server(),
        "no admin request before logging in"
    );

    let login = sasl("kafka-s3cret");
    ok(clients.python(json!({
        "op": "create", "client": "confluent", "bootstrap": serve.kafka,
        "topic": "guarded", "partitions": 2, "config": login,
    })));
    let sent = records(5);
    ok(clients.python(json!({
        "op": "produce", "client": "confluent", "bootstrap": serve.kafka,
        "topic": "guarded", "codec": "gzip", "records": sent, "config": login,
    })));
    let got = ok(clients.python(json!({
        "op": "consume", "client": "confluent", "bootstrap": serve.kafka,
        "topic": "guarded", "partition": 0, "offset": 0, "count": sent.len(), "config": login,
    })));
    assert_same(&sent, got["records"].as_array().unwrap(), "over SASL PLAIN");
}
