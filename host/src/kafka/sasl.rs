//! SASL on the Kafka listener (SaslHandshake v1, then SaslAuthenticate), with
//! PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, checked against `weir serve`'s
//! token as the HTTP API checks its bearer token: when a token is set, a
//! connection may send nothing but ApiVersions, SaslHandshake and
//! SaslAuthenticate until it has authenticated with the token as its
//! password. The user name is free (any non-empty name): weir has one
//! credential, the token, and the name only labels the connection in the
//! logs. A failed authentication is answered with SASL_AUTHENTICATION_FAILED
//! and the connection is then closed.
//!
//! SCRAM keeps no password on the server side beyond start-up: the listener
//! derives each mechanism's stored and server keys from the token once, with
//! a random salt per start and [`scram::ITERATIONS`] rounds.

pub mod scram;

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaError, Session};

/// A SASL mechanism weir speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(scram::Hash),
}

impl Mechanism {
    /// Every mechanism, in the order SaslHandshake lists them.
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::Scram(scram::Hash::Sha256),
        Mechanism::Scram(scram::Hash::Sha512),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(hash) => hash.mechanism(),
        }
    }
}

/// What a listener with a token checks logins against.
pub struct Credentials {
    token: String,
    /// SCRAM's keys of the token, one per hash, in [`scram::Hash::ALL`]'s order.
    scram: [Arc<scram::Credentials>; 2],
}

impl Credentials {
    /// Derives SCRAM's keys from `token` (a fresh random salt each).
    pub fn new(token: String) -> Result<Credentials, KafkaError> {
        let derive = |hash| -> Result<_, KafkaError> {
            let mut salt = vec![0; 16];
            getrandom::fill(&mut salt).map_err(KafkaError::Random)?;
            Ok(Arc::new(scram::Credentials::new(
                hash,
                token.as_bytes(),
                salt,
                scram::ITERATIONS,
            )))
        };
        Ok(Credentials {
            scram: [derive(scram::Hash::Sha256)?, derive(scram::Hash::Sha512)?],
            token,
        })
    }

    fn scram(&self, hash: scram::Hash) -> Arc<scram::Credentials> {
        self.scram
            .iter()
            .find(|c| c.hash() == hash)
            .expect("one per hash")
            .clone()
    }
}

/// Where a connection's login stands.
#[derive(Default)]
pub struct Login {
    /// What SaslHandshake chose.
    mechanism: Option<Mechanism>,
    /// The SCRAM exchange under way.
    scram: Option<scram::Exchange>,
}

/// Whether `api` may be sent before authenticating.
pub fn allowed_before_auth(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    )
}

pub fn handshake(session: &mut Session, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let names = Mechanism::ALL
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(names);
    match Mechanism::ALL
        .into_iter()
        .find(|m| m.name() == request.mechanism.as_str())
    {
        Some(mechanism) => {
            session.login = Login {
                mechanism: Some(mechanism),
                scram: None,
            };
            response
        }
        None => response.with_error_code(ResponseError::UnsupportedSaslMechanism.code()),
    }
}

/// Takes one SaslAuthenticate message of the chosen mechanism: PLAIN's
/// `authzid NUL user NUL password`, or SCRAM's client-first or client-final.
/// The answer to a failure goes back before the connection closes (see
/// `connection.rs`).
pub fn authenticate(
    session: &mut Session,
    request: SaslAuthenticateRequest,
) -> Result<SaslAuthenticateResponse, KafkaError> {
    let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::new());
    let Some(mechanism) = session.login.mechanism else {
        return Ok(response
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "send SaslHandshake with a mechanism first",
            ))));
    };
    let state = session.state.clone();
    let outcome = match (&state.credentials, mechanism) {
        (None, _) => Err("this listener has no token to log in with".to_string()),
        (Some(credentials), Mechanism::Plain) => plain(credentials, &request.auth_bytes),
        (Some(credentials), Mechanism::Scram(hash)) => {
            scram_step(&mut session.login, credentials, hash, &request.auth_bytes)
        }
    };
    match outcome {
        Ok(Step::Done { user, answer }) => {
            tracing::debug!(peer = %session.peer, %user, mechanism = mechanism.name(), "Kafka client authenticated");
            session.authenticated = true;
            Ok(response.with_auth_bytes(answer))
        }
        Ok(Step::Continue(answer)) => Ok(response.with_auth_bytes(answer)),
        Err(reason) => {
            tracing::warn!(peer = %session.peer, mechanism = mechanism.name(), %reason, "Kafka SASL authentication failed");
            session.failed_auth = true;
            Ok(response
                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "authentication failed: wrong user name or password (the password is weir's token)",
                ))))
        }
    }
}

/// What one SaslAuthenticate message led to.
enum Step {
    /// The exchange goes on: this answer, then another message.
    Continue(Bytes),
    /// Authenticated as `user`, with a last answer.
    Done { user: String, answer: Bytes },
}

fn plain(credentials: &Credentials, message: &[u8]) -> Result<Step, String> {
    let parts: Vec<&[u8]> = message.split(|b| *b == 0).collect();
    let [_authzid, user, password] = parts.as_slice() else {
        return Err("a PLAIN message is not `authzid NUL user NUL password`".to_string());
    };
    if user.is_empty() {
        return Err("an empty user name".to_string());
    }
    if !constant_time_eq(password, credentials.token.as_bytes()) {
        return Err("wrong password".to_string());
    }
    Ok(Step::Done {
        user: String::from_utf8_lossy(user).into_owned(),
        answer: Bytes::new(),
    })
}

fn scram_step(
    login: &mut Login,
    credentials: &Credentials,
    hash: scram::Hash,
    message: &[u8],
) -> Result<Step, String> {
    if login.scram.is_none() {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| format!("no random nonce: {e}"))?;
        let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
        login.scram = Some(scram::Exchange::new(credentials.scram(hash), nonce));
    }
    let exchange = login.scram.as_mut().expect("set above");
    let answer = Bytes::from(exchange.step(message).map_err(|e| e.to_string())?);
    Ok(match exchange.user() {
        Some(user) => Step::Done {
            user: user.to_string(),
            answer,
        },
        None => Step::Continue(answer),
    })
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_when_every_byte_is() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn plain_wants_the_token_and_some_user_name() {
        let credentials = Credentials::new("s3cret".to_string()).unwrap();
        assert!(plain(&credentials, b"\0alice\0s3cret").is_ok());
        assert!(plain(&credentials, b"\0\0s3cret").is_err());
        assert!(plain(&credentials, b"\0alice\0guess").is_err());
        assert!(plain(&credentials, b"alice\0s3cret").is_err());
    }
}
