//! The outermost layer of every request: one tracing event with the method,
//! path, status and latency (debug for successes, info for client errors,
//! warn for server errors but the probes' 503), and errors shaped as JSON.
//! Handlers already answer errors as `{"error": ...}`; what axum answers by
//! itself (no such route, a method the route lacks, a body over the limit, a
//! query or path that does not parse) arrives as plain text or nothing, and
//! is rewrapped here so that a client sees one error shape everywhere.

use std::time::Instant;

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Error bodies longer than this are not read back (axum's own are short).
const MAX_ERROR_BODY: usize = 64 << 10;

pub async fn log_and_shape(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = shape(next.run(request).await).await;
    let status = response.status();
    let micros = started.elapsed().as_micros() as u64;
    // A probe's "not ready yet" is an answer, not a failure: polled often
    // while processors are restored, it would flood the log at warn.
    let probe = path == "/ready" || path == "/health";
    if status.is_server_error() && !probe {
        tracing::warn!(%method, path, status = status.as_u16(), micros, "request");
    } else if status.is_client_error() {
        tracing::info!(%method, path, status = status.as_u16(), micros, "request");
    } else {
        tracing::debug!(%method, path, status = status.as_u16(), micros, "request");
    }
    response
}

async fn shape(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = match axum::body::to_bytes(response.into_body(), MAX_ERROR_BODY).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_lowercase(),
    };
    ApiError::new(status, text).into_response()
}
