//! Produce and fetch over HTTP, in JSON (the default) or in the binary framing
//! of [`crate::wire::frame`]: a produce body with `Content-Type:
//! application/octet-stream` is binary, and a fetch with `Accept:
//! application/octet-stream` answers in binary. The JSON shapes are
//! [`crate::wire`]'s; records are placed by the log's one rule
//! ([`crate::log::Placement`]) whichever form they arrive in.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::api::Shared;
use crate::log::{LogError, Record};
use crate::wire::{FetchQuery, FetchedRecord, OCTET_STREAM, Produce, ProduceQuery, frame};

fn is_binary(value: Option<&header::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(OCTET_STREAM))
}

/// Records with their partition (or `None`: by the placement rule), from
/// either body form.
fn parse_produce(
    headers: &HeaderMap,
    query: &ProduceQuery,
    body: &[u8],
) -> Result<Vec<(Option<u32>, Record)>, ApiError> {
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
    if is_binary(headers.get(header::CONTENT_TYPE)) {
        let records = frame::decode_records(body).map_err(|e| bad(e.to_string()))?;
        return Ok(records.into_iter().map(|r| (query.partition, r)).collect());
    }
    let body: Produce =
        serde_json::from_slice(body).map_err(|e| bad(format!("bad JSON body: {e}")))?;
    Ok(body
        .records
        .into_iter()
        .map(|r| {
            let (partition, record) = r.into_record();
            (partition.or(query.partition), record)
        })
        .collect())
}

pub(super) async fn produce(
    State(state): Shared,
    Path(topic): Path<String>,
    Query(query): Query<ProduceQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let records = parse_produce(&headers, &query, &body)?;
    let broker = state.broker.clone();
    let topic_for_task = topic.clone();
    let produced = tokio::task::spawn_blocking(move || broker.produce(&topic_for_task, records))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| match e {
            // The request named it: a bad request rather than a missing resource.
            LogError::UnknownPartition { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, e.to_string())
            }
            e => e.into(),
        })?;
    metrics::counter!("weir_appended_records_total", "topic" => topic)
        .increment(produced.count as u64);
    Ok(axum::Json(produced).into_response())
}

pub(super) async fn fetch(
    State(state): Shared,
    Path((topic, partition)): Path<(String, u32)>,
    Query(q): Query<FetchQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let max_records = q.max_records.clamp(1, 10_000);
    let max_bytes = q.max_bytes.clamp(1, super::MAX_BODY_BYTES as u64);
    let records = state
        .broker
        .log()
        .read(&topic, partition, q.offset, max_records, max_bytes)?;
    if is_binary(headers.get(header::ACCEPT)) {
        let body = frame::encode_stored(&records);
        return Ok(([(header::CONTENT_TYPE, OCTET_STREAM)], body).into_response());
    }
    let records: Vec<FetchedRecord> = records.iter().map(FetchedRecord::from).collect();
    Ok(axum::Json(records).into_response())
}
