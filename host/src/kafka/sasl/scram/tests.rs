//! The exchange against RFC 7677's test vector, both hashes, and every way
//! a client can get it wrong.

use super::*;

/// RFC 7677 §3.
const SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

fn rfc_credentials() -> Arc<Credentials> {
    Arc::new(Credentials::new(
        Hash::Sha256,
        b"pencil",
        BASE64.decode(SALT).unwrap(),
        ITERATIONS,
    ))
}

/// A client's side, to run exchanges the RFC gives no vector for.
fn client_final(hash: Hash, password: &[u8], client_first: &str, server_first: &str) -> String {
    let (gs2_header, client_first_bare) =
        client_first.split_at(client_first.match_indices(',').nth(1).unwrap().0 + 1);
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iterations = 0;
    for a in server_first.split(',') {
        if let Some(r) = a.strip_prefix("r=") {
            nonce = r;
        } else if let Some(s) = a.strip_prefix("s=") {
            salt = BASE64.decode(s).unwrap();
        } else if let Some(i) = a.strip_prefix("i=") {
            iterations = i.parse().unwrap();
        }
    }
    let salted = hash.salted_password(password, &salt, iterations);
    let client_key = hash.hmac(&salted, b"Client Key");
    let stored_key = hash.digest(&client_key);
    let without_proof = format!("c={},r={nonce}", BASE64.encode(gs2_header));
    let auth = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hash.hmac(&stored_key, auth.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect();
    format!("{without_proof},p={}", BASE64.encode(proof))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

#[test]
fn rfc_7677_test_vector_authenticates_and_signs() {
    let credentials = rfc_credentials();
    let mut exchange = Exchange::new(credentials.clone(), SERVER_NONCE.to_string());
    let server_first = text(exchange.step(CLIENT_FIRST.as_bytes()).unwrap());
    assert_eq!(
        server_first,
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    assert_eq!(exchange.user(), None);
    let server_final = text(exchange.step(CLIENT_FINAL.as_bytes()).unwrap());
    assert_eq!(
        server_final,
        "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
    assert_eq!(exchange.user(), Some("user"));
    // Finished: nothing more is accepted, not even the same message.
    assert_eq!(
        exchange.step(CLIENT_FINAL.as_bytes()),
        Err(ScramError::Over)
    );
}

#[test]
fn sha_512_exchanges_succeed_with_the_right_password_only() {
    let credentials = Arc::new(Credentials::new(
        Hash::Sha512,
        b"token",
        b"salt-512".to_vec(),
        4096,
    ));
    for (password, ok) in [(&b"token"[..], true), (&b"tokeN"[..], false)] {
        let mut exchange = Exchange::new(credentials.clone(), "srv".to_string());
        let server_first = text(exchange.step(b"n,,n=svc=2Cx,r=abc").unwrap());
        let last = client_final(Hash::Sha512, password, "n,,n=svc=2Cx,r=abc", &server_first);
        let answer = exchange.step(last.as_bytes());
        if ok {
            assert!(text(answer.unwrap()).starts_with("v="));
            assert_eq!(exchange.user(), Some("svc,x"));
        } else {
            assert_eq!(answer, Err(ScramError::WrongProof));
            assert_eq!(exchange.user(), None);
            assert_eq!(exchange.step(last.as_bytes()), Err(ScramError::Over));
        }
    }
}

#[test]
fn a_wrong_password_fails_with_sha_256() {
    let credentials = rfc_credentials();
    let mut exchange = Exchange::new(credentials.clone(), SERVER_NONCE.to_string());
    let server_first = text(exchange.step(CLIENT_FIRST.as_bytes()).unwrap());
    let last = client_final(Hash::Sha256, b"pencil!", CLIENT_FIRST, &server_first);
    assert_eq!(exchange.step(last.as_bytes()), Err(ScramError::WrongProof));
}

#[test]
fn a_client_final_replayed_into_another_exchange_fails_on_its_nonce() {
    let credentials = rfc_credentials();
    let mut other = Exchange::new(credentials.clone(), "another-server-nonce".to_string());
    other.step(CLIENT_FIRST.as_bytes()).unwrap();
    assert_eq!(
        other.step(CLIENT_FINAL.as_bytes()),
        Err(ScramError::WrongNonce)
    );
    assert_eq!(other.user(), None);
}

#[test]
fn garbled_messages_fail_and_end_the_exchange() {
    let credentials = rfc_credentials();
    let garbled_finals: [&[u8]; 6] = [
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!",
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        b"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        b"\xff\xfe",
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    ];
    for garbled in garbled_finals {
        let mut exchange = Exchange::new(credentials.clone(), SERVER_NONCE.to_string());
        exchange.step(CLIENT_FIRST.as_bytes()).unwrap();
        assert!(exchange.step(garbled).is_err(), "{garbled:?}");
        // The right message cannot rescue a failed exchange.
        assert_eq!(
            exchange.step(CLIENT_FINAL.as_bytes()),
            Err(ScramError::Over)
        );
    }
    let bad_firsts: [(&[u8], ScramError); 7] = [
        (b"", ScramError::Malformed("no GS2 header")),
        (b"p=tls-unique,,n=user,r=abc", ScramError::ChannelBinding),
        (b"n,,m=ext,n=user,r=abc", ScramError::MandatoryExtension),
        (b"n,a=admin,n=user,r=abc", ScramError::Authzid),
        (
            b"n,,n=us=er,r=abc",
            ScramError::Malformed("bad escape in a name"),
        ),
        (b"n,,n=user", ScramError::Malformed("no nonce")),
        (b"n,,n=user,r=a\x01b", ScramError::Malformed("bad nonce")),
    ];
    for (first, error) in bad_firsts {
        let mut exchange = Exchange::new(credentials.clone(), SERVER_NONCE.to_string());
        assert_eq!(exchange.step(first), Err(error), "{first:?}");
    }
}

#[test]
fn an_authzid_equal_to_the_user_is_bound_into_the_proof() {
    let credentials = rfc_credentials();
    let mut exchange = Exchange::new(credentials.clone(), "s".to_string());
    let first = "n,a=us=3Der,n=us=3Der,r=c";
    let server_first = text(exchange.step(first.as_bytes()).unwrap());
    let last = client_final(Hash::Sha256, b"pencil", first, &server_first);
    assert!(last.starts_with(&format!("c={}", BASE64.encode("n,a=us=3Der,"))));
    assert!(exchange.step(last.as_bytes()).is_ok());
    assert_eq!(exchange.user(), Some("us=er"));
}
