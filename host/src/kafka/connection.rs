//! One client connection: frames in, requests decoded, handled one at a time
//! and answered in order, frames out. Any error here (I/O, a bad frame, an
//! unknown API key, an unsupported version, an undecodable request) is logged
//! with the peer and ends this connection only.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{KafkaError, Session, dispatch, frame};

/// Serves `stream` until the client hangs up or sends something that ends
/// the connection.
pub async fn run<S>(stream: S, mut session: Session)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let peer = session.peer;
    tracing::debug!(%peer, "Kafka client connected");
    loop {
        let request = match frame::read(&mut reader, frame::MAX_FRAME_BYTES).await {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %crate::error::chain(&e), "closing a Kafka connection");
                break;
            }
        };
        let answered = match handle(&mut session, request).await {
            Ok(Some(response)) => frame::write(&mut writer, &response).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match answered {
            Ok(()) => {}
            // The client went away while its answer was on the way (a
            // consumer closing during a long poll): nothing wrong here.
            Err(KafkaError::Io(e)) if gone(&e) => break,
            Err(e) => {
                tracing::warn!(%peer, error = %crate::error::chain(&e), "closing a Kafka connection");
                break;
            }
        }
        if session.failed_auth {
            let e = KafkaError::AuthenticationFailed;
            tracing::warn!(%peer, error = %e, "closing a Kafka connection");
            break;
        }
    }
    tracing::debug!(%peer, "Kafka client gone");
}

fn gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted)
}

/// Decodes one request, runs its handler and encodes the response (none for
/// a Produce with acks 0).
async fn handle(session: &mut Session, mut frame: Bytes) -> Result<Option<Vec<u8>>, KafkaError> {
    let raw_key = (&frame[0..2]).get_i16();
    let version = (&frame[2..4]).get_i16();
    let api = ApiKey::try_from(raw_key).map_err(|()| KafkaError::UnknownApiKey(raw_key))?;
    let header =
        RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(|e| {
            KafkaError::Decode {
                api,
                version,
                source: e.into(),
            }
        })?;
    session.client_id = header.client_id.as_ref().map(|s| s.to_string());
    let correlation_id = header.correlation_id;
    let Some((min, max)) = dispatch::supported(api) else {
        return Err(KafkaError::UnknownApiKey(raw_key));
    };
    if version < min || version > max {
        if api == ApiKey::ApiVersions {
            // Kafka's rule: answer in v0 with the versions it speaks, so the
            // client can retry with one of them.
            let response = super::versions::unsupported();
            return encode(api, 0, correlation_id, &ResponseKind::ApiVersions(response)).map(Some);
        }
        return Err(KafkaError::UnsupportedVersion {
            api,
            version,
            min,
            max,
        });
    }
    if !session.authenticated && !super::sasl::allowed_before_auth(api) {
        return Err(KafkaError::Unauthenticated(api));
    }
    if api == ApiKey::Produce && version < super::produce::FIRST_DECODED_VERSION {
        // Advertised (see `dispatch::SUPPORTED`) but refused, as Kafka 4.0
        // does: message sets before v2 batches are not spoken.
        return Err(KafkaError::UnsupportedVersion {
            api,
            version,
            min: super::produce::FIRST_DECODED_VERSION,
            max,
        });
    }
    let request =
        RequestKind::decode(api, &mut frame, version).map_err(|e| KafkaError::Decode {
            api,
            version,
            source: e.into(),
        })?;
    match dispatch::dispatch(session, api, version, request).await? {
        Some(response) => encode(api, version, correlation_id, &response).map(Some),
        None => Ok(None),
    }
}

/// A response frame's body: the response header, then the message.
fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Vec<u8>, KafkaError> {
    let mut buf = BytesMut::new();
    // ApiVersions answers with a v0 header whatever its version, so a client
    // can read the answer before it knows which versions the broker speaks.
    let header_version = match response {
        ResponseKind::ApiVersions(_) => 0,
        _ => api.response_header_version(version),
    };
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .and_then(|()| response.encode(&mut buf, version))
        .map_err(|e| KafkaError::Encode {
            api,
            version,
            source: e.into(),
        })?;
    Ok(buf.to_vec())
}
