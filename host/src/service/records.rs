//! Produce and fetch over HTTP, in JSON (the default) or in the binary framing
//! of [`super::frame`]: a produce body with `Content-Type:
//! application/octet-stream` is binary, and a fetch with `Accept:
//! application/octet-stream` answers in binary. In JSON, keys, values and
//! header values travel as UTF-8 strings (a JSON fetch shows bytes that are
//! not UTF-8 lossily; the binary framing carries them as they are).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::api::Shared;
use super::{ApiError, frame};
use crate::log::Record;

/// The media type of the binary framing.
pub const OCTET_STREAM: &str = "application/octet-stream";

#[derive(Deserialize)]
struct ProduceRecord {
    key: Option<String>,
    value: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    partition: Option<u32>,
}

#[derive(Deserialize)]
struct Produce {
    records: Vec<ProduceRecord>,
}

#[derive(Deserialize)]
pub(super) struct ProduceQuery {
    /// For a binary body: the partition of every record (by key otherwise).
    partition: Option<u32>,
}

#[derive(Serialize)]
struct Produced {
    /// (partition, first offset) of each appended batch.
    batches: Vec<(u32, u64)>,
    count: usize,
}

fn is_binary(value: Option<&header::HeaderValue>) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(OCTET_STREAM))
}

/// Records with their partition (or `None`: by key), from either body form.
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
            let record = Record {
                key: r.key.map(String::into_bytes),
                value: r.value.into_bytes(),
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect(),
                timestamp: None,
            };
            (r.partition.or(query.partition), record)
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
    let partitions = state.broker.log().partition_count(&topic)?;
    if topic.starts_with("__") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("{topic:?} is internal: only weir writes to it"),
        ));
    }
    let mut by_partition: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for (partition, record) in parse_produce(&headers, &query, &body)? {
        let partition = match partition {
            Some(p) if p < partitions => p,
            Some(p) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("topic {topic:?} has no partition {p}"),
                ));
            }
            None => state
                .broker
                .log()
                .partition_for(&topic, record.key.as_deref())?,
        };
        by_partition.entry(partition).or_default().push(record);
    }
    let log = state.broker.log().clone();
    let topic_for_task = topic.clone();
    let (batches, count) = tokio::task::spawn_blocking(move || {
        let mut batches = Vec::new();
        let mut count = 0;
        for (p, records) in by_partition {
            batches.push((p, log.append(&topic_for_task, p, &records)?));
            count += records.len();
        }
        Ok::<_, crate::log::LogError>((batches, count))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    metrics::counter!("weir_appended_records_total", "topic" => topic).increment(count as u64);
    Ok(axum::Json(Produced { batches, count }).into_response())
}

#[derive(Deserialize)]
pub(super) struct FetchQuery {
    #[serde(default)]
    offset: u64,
    #[serde(default = "default_max_records")]
    max_records: usize,
    #[serde(default = "default_max_bytes")]
    max_bytes: u64,
}

fn default_max_records() -> usize {
    100
}

fn default_max_bytes() -> u64 {
    1 << 20
}

#[derive(Serialize)]
struct FetchedRecord {
    offset: u64,
    timestamp: i64,
    key: Option<String>,
    value: String,
    headers: BTreeMap<String, String>,
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
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let records: Vec<FetchedRecord> = records
        .into_iter()
        .map(|r| FetchedRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.map(text),
            value: text(r.value),
            headers: r.headers.into_iter().map(|(k, v)| (k, text(v))).collect(),
        })
        .collect();
    Ok(axum::Json(records).into_response())
}
