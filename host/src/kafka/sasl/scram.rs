//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server's side,
//! as a pure state machine: no I/O, and the randomness (salt, server nonce)
//! is handed in, so RFC 7677's test vector runs as a unit test.
//!
//! The exchange is two round trips:
//! client-first `n,,n=USER,r=CNONCE` → server-first `r=CNONCE+SNONCE,s=SALT,i=N`;
//! client-final `c=GS2HEADER,r=CNONCE+SNONCE,p=PROOF` → server-final `v=SIGNATURE`.
//!
//! Invariants: the server never learns or keeps the password itself after
//! [`Credentials::new`] (only the stored and server keys); a message out of
//! order, a malformed one, channel binding (`p=`), a mandatory extension
//! (`m=`), a client-final whose nonce is not this exchange's (a replay from
//! another exchange) or whose proof is wrong ends the exchange with an error,
//! and a failed or finished exchange refuses every further message. Proofs
//! are compared in constant time.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::constant_time_eq;

/// The iteration count weir asks clients for (Kafka's minimum, RFC 7677's
/// recommendation).
pub const ITERATIONS: u32 = 4096;

/// The hash of a SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha512,
}

impl Hash {
    /// Both, in the order SaslHandshake lists them.
    pub const ALL: [Hash; 2] = [Hash::Sha256, Hash::Sha512];

    /// The SASL mechanism name.
    pub fn mechanism(self) -> &'static str {
        match self {
            Hash::Sha256 => "SCRAM-SHA-256",
            Hash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length: `new_from_slice` cannot fail.
        match self {
            Hash::Sha256 => {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Hash::Sha512 => {
                let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(key).expect("any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Hash::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// What the server keeps of a password for one mechanism (RFC 5802 §3).
pub struct Credentials {
    hash: Hash,
    salt: Vec<u8>,
    iterations: u32,
    /// H(HMAC(SaltedPassword, "Client Key")): checks a client's proof.
    stored_key: Vec<u8>,
    /// HMAC(SaltedPassword, "Server Key"): signs the server-final message,
    /// which proves to the client that the server knew the password too.
    server_key: Vec<u8>,
}

impl Credentials {
    pub fn new(hash: Hash, password: &[u8], salt: Vec<u8>, iterations: u32) -> Credentials {
        let salted = hash.salted_password(password, &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        Credentials {
            hash,
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    pub fn hash(&self) -> Hash {
        self.hash
    }
}

/// Why an exchange failed (logged; the client only hears that it did).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("a mandatory extension (m=) is not supported")]
    MandatoryExtension,
    #[error("the authorization id differs from the user name")]
    Authzid,
    #[error("the client-final message names another exchange's nonce")]
    WrongNonce,
    #[error("the channel binding in the client-final message differs from the client-first's")]
    WrongBinding,
    #[error("wrong password (the client's proof does not match)")]
    WrongProof,
    #[error("the exchange is over")]
    Over,
}

/// One SCRAM exchange on one connection.
pub struct Exchange {
    credentials: Arc<Credentials>,
    /// This exchange's half of the nonce (random, from the caller).
    server_nonce: String,
    state: State,
}

enum State {
    /// Waiting for client-first.
    Start,
    /// server-first sent; waiting for client-final.
    Challenged {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        user: String,
    },
    /// Authenticated as this user.
    Done(String),
    Failed,
}

impl Exchange {
    /// `server_nonce` must be printable ASCII without `,` (base64 is).
    pub fn new(credentials: Arc<Credentials>, server_nonce: String) -> Exchange {
        Exchange {
            credentials,
            server_nonce,
            state: State::Start,
        }
    }

    /// The authenticated user, once the exchange succeeded.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Done(user) => Some(user),
            _ => None,
        }
    }

    /// Takes the client's next message and returns the server's answer.
    pub fn step(&mut self, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let state = std::mem::replace(&mut self.state, State::Failed);
        let (answer, next) = match state {
            State::Start => self.client_first(message)?,
            State::Challenged {
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
                user,
            } => {
                let signature = self.client_final(
                    message,
                    &gs2_header,
                    &client_first_bare,
                    &server_first,
                    &nonce,
                )?;
                (format!("v={signature}"), State::Done(user))
            }
            State::Done(_) | State::Failed => return Err(ScramError::Over),
        };
        self.state = next;
        Ok(answer.into_bytes())
    }

    fn client_first(&self, message: &[u8]) -> Result<(String, State), ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        // gs2-header: cbind-flag "," [authzid] ","
        let mut parts = message.splitn(3, ',');
        let (Some(flag), Some(authzid), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ScramError::Malformed("no GS2 header"));
        };
        match flag {
            "n" | "y" => {}
            f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad channel-binding flag")),
        }
        let gs2_header = format!("{flag},{authzid},");
        let authzid = match authzid {
            "" => None,
            a => Some(sasl_name(
                a.strip_prefix("a=")
                    .ok_or(ScramError::Malformed("bad authzid"))?,
            )?),
        };
        let mut attributes = bare.split(',');
        let user = match attributes.next() {
            Some(a) if a.starts_with("m=") => return Err(ScramError::MandatoryExtension),
            Some(a) => sasl_name(
                a.strip_prefix("n=")
                    .ok_or(ScramError::Malformed("no user"))?,
            )?,
            None => return Err(ScramError::Malformed("no user")),
        };
        let client_nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if client_nonce.is_empty() || !client_nonce.bytes().all(printable) {
            return Err(ScramError::Malformed("bad nonce"));
        }
        // Further attributes are extensions (Kafka's `tokenauth=true`, say):
        // optional, and weir has none.
        if authzid.as_ref().is_some_and(|a| *a != user) {
            return Err(ScramError::Authzid);
        }
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&self.credentials.salt),
            self.credentials.iterations
        );
        let state = State::Challenged {
            gs2_header,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
            user,
        };
        Ok((server_first, state))
    }

    /// Checks client-final; the server signature (base64) when it proves the
    /// password.
    fn client_final(
        &self,
        message: &[u8],
        gs2_header: &str,
        client_first_bare: &str,
        server_first: &str,
        nonce: &str,
    ) -> Result<String, ScramError> {
        let message =
            std::str::from_utf8(message).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = message
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut attributes = without_proof.split(',');
        let binding = attributes
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no channel binding"))?;
        let binding = BASE64
            .decode(binding)
            .map_err(|_| ScramError::Malformed("channel binding is not base64"))?;
        let client_nonce = attributes
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if client_nonce != nonce {
            return Err(ScramError::WrongNonce);
        }
        if binding != gs2_header.as_bytes() {
            return Err(ScramError::WrongBinding);
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let hash = self.credentials.hash;
        if proof.len() != hash.len() {
            return Err(ScramError::Malformed("proof of the wrong length"));
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = hash.hmac(&self.credentials.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        if !constant_time_eq(&hash.digest(&client_key), &self.credentials.stored_key) {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hash.hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok(BASE64.encode(server_signature))
    }
}

/// A `saslname`: `=2C` is `,`, `=3D` is `=`, any other `=` is malformed.
fn sasl_name(raw: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape in a name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("an empty name"));
    }
    Ok(out)
}

/// RFC 5802's `printable`: ASCII 0x21..=0x7E but `,`.
fn printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && b != b','
}

#[cfg(test)]
mod tests {
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
}
