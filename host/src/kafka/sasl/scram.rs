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

use super::constant_time_eq;

mod credentials;
#[cfg(test)]
mod tests;

pub use credentials::{Credentials, Hash, ITERATIONS};

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
