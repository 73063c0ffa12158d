//! SASL PLAIN (SaslHandshake v1, then SaslAuthenticate), checked against
//! `weir serve`'s token, as the HTTP API checks its bearer token: when a
//! token is set, a connection may send nothing but ApiVersions, SaslHandshake
//! and SaslAuthenticate until it has authenticated with the token as its
//! password (any user name). A failed authentication is answered with
//! SASL_AUTHENTICATION_FAILED and the connection is then closed.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaError, Session};

const PLAIN: &str = "PLAIN";

/// Whether `api` may be sent before authenticating.
pub fn allowed_before_auth(api: ApiKey) -> bool {
    matches!(
        api,
        ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
    )
}

pub fn handshake(session: &mut Session, request: SaslHandshakeRequest) -> SaslHandshakeResponse {
    let response =
        SaslHandshakeResponse::default().with_mechanisms(vec![StrBytes::from_static_str(PLAIN)]);
    if request.mechanism.as_str() == PLAIN {
        session.mechanism_chosen = true;
        response
    } else {
        response.with_error_code(ResponseError::UnsupportedSaslMechanism.code())
    }
}

/// Checks the PLAIN message `authzid NUL user NUL password`. The answer to a
/// failure goes back before the connection closes (see `connection.rs`).
pub fn authenticate(
    session: &mut Session,
    request: SaslAuthenticateRequest,
) -> Result<SaslAuthenticateResponse, KafkaError> {
    let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::new());
    if !session.mechanism_chosen {
        return Ok(response
            .with_error_code(ResponseError::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "send SaslHandshake with PLAIN first",
            ))));
    }
    let parts: Vec<&[u8]> = request.auth_bytes.split(|b| *b == 0).collect();
    let password = match parts.as_slice() {
        [_authzid, _user, password] => *password,
        _ => &[][..],
    };
    let expected = session
        .state
        .token
        .as_deref()
        .unwrap_or_default()
        .as_bytes();
    if session.state.token.is_some() && constant_time_eq(password, expected) {
        session.authenticated = true;
        return Ok(response);
    }
    session.failed_auth = true;
    Ok(response
        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
        .with_error_message(Some(StrBytes::from_static_str(
            "authentication failed: wrong user name or password (the password is weir's token)",
        ))))
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
}
