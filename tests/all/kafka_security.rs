//! The Kafka listener against bad input and strangers: frames that are too
//! large, garbage or cut short close their connection and nothing else; with
//! a token, only a SASL login with it opens the APIs, and a failed SCRAM
//! exchange closes the connection; beyond loopback `weir serve` wants a token.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire, request_frame};

#[test]
fn bad_frames_close_their_connection_and_the_server_keeps_serving() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let still_serving = || {
        let mut wire = listener.connect();
        let versions = wire.call(0, &ApiVersionsRequest::default());
        assert_eq!(versions.error_code, 0, "a fresh client is served");
    };

    // A huge size prefix: closed before anything is allocated.
    let mut huge = listener.connect();
    huge.raw(&i32::MAX.to_be_bytes());
    assert!(
        huge.closed_by_server(),
        "a huge frame closes the connection"
    );
    still_serving();

    // Garbage: an unknown API key.
    let mut garbage = listener.connect();
    garbage.raw(&request_frame(999, 0, 1));
    assert!(garbage.closed_by_server(), "an unknown API key closes it");
    still_serving();

    // A frame whose body is not the request it claims to be.
    let mut junk = listener.connect();
    let mut frame = request_frame(ApiKey::Metadata as i16, 9, 1);
    frame.extend_from_slice(&[0xff; 3]);
    let len = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    junk.raw(&frame);
    assert!(junk.closed_by_server(), "an undecodable request closes it");
    still_serving();

    // A negative size.
    let mut negative = listener.connect();
    negative.raw(&(-7i32).to_be_bytes());
    assert!(negative.closed_by_server());

    // A truncated frame, then the client goes away.
    let mut truncated = listener.connect();
    truncated.raw(&100i32.to_be_bytes());
    truncated.raw(b"only a little");
    drop(truncated);

    // Produce below v3 is advertised but refused.
    let mut old = listener.connect();
    old.raw(&request_frame(ApiKey::Produce as i16, 2, 1));
    assert!(old.closed_by_server());
    still_serving();
    assert!(host.records("t", 0).is_empty());
}

#[test]
fn with_a_token_only_a_sasl_plain_login_with_it_opens_the_other_apis() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::with_token(host.broker.clone(), Some("s3cret".to_string()));
    let metadata = MetadataRequest::default().with_topics(None);

    // Anything but ApiVersions and SASL before logging in closes the connection.
    let mut anonymous = listener.connect();
    assert_eq!(
        anonymous.call(3, &ApiVersionsRequest::default()).error_code,
        0
    );
    anonymous.send(12, &metadata);
    assert!(anonymous.closed_by_server());

    let login = |password: &str| {
        let mut wire = listener.connect();
        let handshake = wire.call(
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert_eq!(handshake.error_code, 0);
        let auth = wire.call(
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(format!("\0someone\0{password}"))),
        );
        (wire, auth.error_code)
    };
    let (mut wrong, code) = login("guess");
    assert_eq!(code, ResponseError::SaslAuthenticationFailed.code());
    assert!(
        wrong.closed_by_server(),
        "a failed login ends the connection"
    );

    let (mut right, code) = login("s3cret");
    assert_eq!(code, 0);
    let answer = right.call(12, &metadata);
    assert!(
        answer
            .topics
            .iter()
            .any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "t"))
    );

    let mut other = listener.connect();
    let gssapi = other.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
    );
    assert_eq!(
        gssapi.error_code,
        ResponseError::UnsupportedSaslMechanism.code()
    );
    let offered: Vec<&str> = gssapi.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(offered, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
}

/// SCRAM's first round trip on a fresh connection: the server-first message.
fn scram_first(listener: &Listener, mechanism: &'static str, client_first: &str) -> (Wire, String) {
    let mut wire = listener.connect();
    let handshake = wire.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism)),
    );
    assert_eq!(handshake.error_code, 0);
    let first = wire.call(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(client_first.to_string())),
    );
    assert_eq!(first.error_code, 0);
    (wire, String::from_utf8(first.auth_bytes.to_vec()).unwrap())
}

#[test]
fn a_scram_client_final_with_a_wrong_nonce_or_garbled_fails_and_closes_the_connection() {
    let host = Host::new();
    let listener = Listener::with_token(host.broker.clone(), Some("s3cret".to_string()));
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let (_, server_first) = scram_first(&listener, mechanism, "n,,n=app,r=client-nonce");
        let nonce = server_first
            .strip_prefix("r=")
            .and_then(|s| s.split(',').next())
            .unwrap();
        assert!(
            nonce.starts_with("client-nonce") && nonce.len() > "client-nonce".len(),
            "the server adds its own nonce: {server_first}"
        );
        assert!(server_first.ends_with(",i=4096"), "{server_first}");
        let proof = "p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        // A nonce from another exchange (a replay), a right nonce with a
        // wrong proof, and garbage.
        let finals = [
            format!("c=biws,r=client-nonceFROMELSEWHERE,{proof}"),
            format!("c=biws,r={nonce},{proof}"),
            "garbage".to_string(),
        ];
        for client_final in finals {
            let (mut wire, _) = scram_first(&listener, mechanism, "n,,n=app,r=client-nonce");
            let answer = wire.call(
                2,
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(client_final)),
            );
            assert_eq!(
                answer.error_code,
                ResponseError::SaslAuthenticationFailed.code()
            );
            assert!(wire.closed_by_server(), "{mechanism}: closed after failing");
        }
    }
    // The server keeps serving.
    let mut wire = listener.connect();
    assert_eq!(wire.call(3, &ApiVersionsRequest::default()).error_code, 0);
}

#[test]
fn weir_serve_refuses_a_kafka_listener_beyond_loopback_without_a_token() {
    let stderr = weir_tests::kafka_clients::refused_at_start("0.0.0.0:0", &[]);
    assert!(stderr.contains("needs a token for SASL PLAIN"), "{stderr}");
}
