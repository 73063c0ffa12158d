//! TLS and SCRAM on a real `weir serve --kafka-listen` with real clients:
//! confluent-kafka and kafka-python over TLS (`SSL`, and `SASL_SSL` with
//! SCRAM) against a CA the test makes, byte for byte; SCRAM-SHA-256 and
//! SCRAM-SHA-512 with the right and a wrong password; a plaintext client
//! against a TLS listener fails and the listener keeps serving; bad
//! certificate or key files stop `weir serve` at start-up with a clear error.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

use weir_tests::kafka_clients::{
    Clients, KafkaServe, assert_same, clients, ok, records, refused_at_start,
};
use weir_tests::kafka_wire::request_frame;
use weir_tests::tls::TestCerts;

/// Produces `sent` with `client` under `config` to a new topic, reads it
/// back with each client, and checks every field.
fn round_trip(clients: &Clients, serve: &KafkaServe, topic: &str, config: &[(&str, Value)]) {
    let config_of = |client: &str| {
        config
            .iter()
            .find(|(c, _)| *c == client)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let sent = records(20);
    let producer = config[0].0;
    ok(clients.python(json!({
        "op": "create", "client": "confluent", "bootstrap": serve.kafka,
        "topic": topic, "partitions": 1, "config": config_of("confluent"),
    })));
    let answer = ok(clients.python(json!({
        "op": "produce", "client": producer, "bootstrap": serve.kafka,
        "topic": topic, "codec": "lz4", "records": sent, "config": config_of(producer),
    })));
    assert_eq!(answer["offsets"].as_array().unwrap().len(), sent.len());
    for (consumer, config) in config {
        let got = ok(clients.python(json!({
            "op": "consume", "client": consumer, "bootstrap": serve.kafka,
            "topic": topic, "partition": 0, "offset": 0, "count": sent.len(), "config": config,
        })));
        let got = got["records"].as_array().unwrap();
        assert_same(&sent, got, &format!("{producer} → {consumer}"));
    }
}

/// What a plaintext Kafka request gets from a TLS listener: the connection
/// closes without a Kafka answer (at most a TLS alert).
fn plaintext_request_is_refused(addr: &str) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(&request_frame(18, 0, 7)).unwrap();
    let mut answer = Vec::new();
    // Err only on a reset, which is a close too.
    let _ = stream.read_to_end(&mut answer);
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "no Kafka answer but a TLS alert: {answer:?}"
    );
}

#[test]
fn python_clients_speak_tls_byte_for_byte_and_a_plaintext_client_is_turned_away() {
    let Some(clients) = clients() else { return };
    let certs = TestCerts::new();
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(
        dir.path(),
        &[
            "--kafka-tls-cert",
            certs.cert.to_str().unwrap(),
            "--kafka-tls-key",
            certs.key.to_str().unwrap(),
        ],
    );
    let ca = certs.ca.to_str().unwrap();

    // Plaintext against TLS: refused, and the listener goes on.
    plaintext_request_is_refused(&serve.kafka);
    let answer = clients.python(json!({
        "op": "metadata", "client": "confluent", "bootstrap": serve.kafka, "topic": "t",
    }));
    assert!(answer.get("error").is_some(), "plaintext fails: {answer}");
    // A client that does not trust the certificate fails too.
    let answer = clients.python(json!({
        "op": "metadata", "client": "confluent", "bootstrap": serve.kafka, "topic": "t",
        "config": {"security.protocol": "SSL"},
    }));
    assert!(
        answer.get("error").is_some(),
        "an untrusted CA fails: {answer}"
    );

    let confluent = json!({"security.protocol": "SSL", "ssl.ca.location": ca});
    let kafka_python = json!({"security_protocol": "SSL", "ssl_cafile": ca});
    round_trip(
        clients,
        &serve,
        "over-tls",
        &[
            ("confluent", confluent.clone()),
            ("kafka-python", kafka_python.clone()),
        ],
    );
    round_trip(
        clients,
        &serve,
        "over-tls-too",
        &[("kafka-python", kafka_python), ("confluent", confluent)],
    );
}

#[test]
fn clients_log_in_with_scram_sha_256_and_512_and_a_wrong_password_is_refused() {
    let Some(clients) = clients() else { return };
    let dir = tempfile::tempdir().unwrap();
    let serve = KafkaServe::start(dir.path(), &["--token", "scram-t0ken"]);
    let confluent = |mechanism: &str, password: &str| {
        json!({
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism,
            "sasl.username": "orders-app",
            "sasl.password": password,
        })
    };
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let answer = clients.python(json!({
            "op": "metadata", "client": "confluent", "bootstrap": serve.kafka,
            "topic": "t", "config": confluent(mechanism, "scram-t0keN"),
        }));
        assert!(
            answer.get("error").is_some() && answer.get("partitions").is_none(),
            "{mechanism} with a wrong password is refused: {answer}"
        );
        let kafka_python = json!({
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "orders-app",
            "sasl_plain_password": "scram-t0ken",
        });
        let topic = format!("scram-{}", &mechanism[9..]);
        round_trip(
            clients,
            &serve,
            &topic,
            &[
                ("confluent", confluent(mechanism, "scram-t0ken")),
                ("kafka-python", kafka_python),
            ],
        );
    }
}

#[test]
fn scram_over_tls_with_a_token_beyond_loopback_and_without_one_refused() {
    let Some(clients) = clients() else { return };
    let certs = TestCerts::new();
    let dir = tempfile::tempdir().unwrap();
    let tls = [
        "--kafka-tls-cert",
        certs.cert.to_str().unwrap(),
        "--kafka-tls-key",
        certs.key.to_str().unwrap(),
    ];
    // Beyond loopback TLS alone is not enough: a token is still required.
    let stderr = refused_at_start("0.0.0.0:0", &tls);
    assert!(
        stderr.contains("needs a token for SASL PLAIN and SCRAM"),
        "{stderr}"
    );

    let mut args = vec!["--token", "tls-and-scram"];
    args.extend(tls);
    let serve = KafkaServe::start(dir.path(), &args);
    let ca = certs.ca.to_str().unwrap();
    let confluent = json!({
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": ca,
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": "tls-and-scram",
    });
    let kafka_python = json!({
        "security_protocol": "SASL_SSL",
        "ssl_cafile": ca,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "tls-and-scram",
    });
    round_trip(
        clients,
        &serve,
        "sasl-ssl",
        &[("confluent", confluent), ("kafka-python", kafka_python)],
    );
}

#[test]
fn bad_certificate_or_key_files_stop_weir_serve_at_start_with_a_clear_error() {
    let certs = TestCerts::new();
    let (cert, key) = (certs.cert.to_str().unwrap(), certs.key.to_str().unwrap());
    let stray = certs.stray_key.to_str().unwrap();

    // A key given as the certificate: no certificate in it.
    let stderr = refused_at_start(
        "127.0.0.1:0",
        &["--kafka-tls-cert", key, "--kafka-tls-key", key],
    );
    assert!(
        stderr.contains("is not a PEM certificate chain"),
        "{stderr}"
    );
    assert!(stderr.contains("server.key"), "the file is named: {stderr}");

    // A missing key file.
    let missing = certs.key.with_file_name("missing.key");
    let stderr = refused_at_start(
        "127.0.0.1:0",
        &[
            "--kafka-tls-cert",
            cert,
            "--kafka-tls-key",
            missing.to_str().unwrap(),
        ],
    );
    assert!(
        stderr.contains("missing.key") && stderr.contains("is not a PEM private key"),
        "{stderr}"
    );

    // A key of another certificate.
    let stderr = refused_at_start(
        "127.0.0.1:0",
        &["--kafka-tls-cert", cert, "--kafka-tls-key", stray],
    );
    assert!(
        stderr.contains("do not make a server configuration"),
        "{stderr}"
    );

    // A certificate without its key.
    let stderr = refused_at_start("127.0.0.1:0", &["--kafka-tls-cert", cert]);
    assert!(stderr.contains("--kafka-tls-key"), "{stderr}");

    // The same files named by weir.toml, relative to it; one without the other is refused.
    let config = certs.cert.with_file_name("weir.toml");
    std::fs::write(&config, "kafka_tls_cert = \"server.pem\"\n").unwrap();
    let stderr = refused_at_start("127.0.0.1:0", &["--config", config.to_str().unwrap()]);
    assert!(
        stderr.contains("kafka_tls_cert and kafka_tls_key go together"),
        "{stderr}"
    );
    std::fs::write(
        &config,
        "kafka_tls_cert = \"server.pem\"\nkafka_tls_key = \"stray.key\"\n",
    )
    .unwrap();
    let stderr = refused_at_start("127.0.0.1:0", &["--config", config.to_str().unwrap()]);
    assert!(
        stderr.contains("do not make a server configuration"),
        "{stderr}"
    );
}
