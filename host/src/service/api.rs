//! The HTTP routes and their handlers. Every body is JSON; record keys, values
//! and header values travel as UTF-8 strings (a fetch shows bytes that are not
//! UTF-8 lossily).
//!
//! | method and path | what |
//! |---|---|
//! | `GET /health` | liveness (no token needed) |
//! | `GET /topics` | topics with partitions and high watermarks |
//! | `POST /topics` | create `{name, partitions}` |
//! | `GET /topics/{topic}` | one topic |
//! | `POST /topics/{topic}/records` | produce `{records: [{key?, value, headers?, partition?}]}` |
//! | `GET /topics/{topic}/partitions/{p}/records?offset&max_records&max_bytes` | fetch |
//! | `GET /groups` | groups with committed offsets |
//! | `GET /groups/{group}` | lag per partition |
//! | `POST /groups/{group}/seek` | `{to: "earliest"|"latest"|OFFSET|"ts:MILLIS", topic?, partition?}` |
//! | `GET /metrics` | Prometheus text format |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::group::admin::{self, SeekTo};
use crate::log::{Record, TopicConfig};

type Shared = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/health",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/topics", get(list_topics).post(create_topic))
        .route("/topics/{topic}", get(describe_topic))
        .route("/topics/{topic}/records", post(produce))
        .route("/topics/{topic}/partitions/{partition}/records", get(fetch))
        .route("/groups", get(list_groups))
        .route("/groups/{group}", get(describe_group))
        .route("/groups/{group}/seek", post(seek_group))
        .route("/metrics", get(render_metrics))
}

#[derive(Serialize)]
struct TopicView {
    name: String,
    partitions: u32,
    high_watermarks: Vec<u64>,
}

fn topic_view(state: &AppState, name: &str) -> Result<TopicView, ApiError> {
    let partitions = state.log.partition_count(name)?;
    let high_watermarks = (0..partitions)
        .map(|p| state.log.high_watermark(name, p))
        .collect::<Result<_, _>>()?;
    Ok(TopicView {
        name: name.to_string(),
        partitions,
        high_watermarks,
    })
}

async fn list_topics(State(state): Shared) -> Result<Json<Vec<TopicView>>, ApiError> {
    let names: Vec<String> = state.log.topics().into_iter().map(|(n, _)| n).collect();
    let views = names
        .iter()
        .map(|n| topic_view(&state, n))
        .collect::<Result<_, _>>()?;
    Ok(Json(views))
}

#[derive(Deserialize)]
struct CreateTopic {
    name: String,
    #[serde(default = "one")]
    partitions: u32,
}

fn one() -> u32 {
    1
}

async fn create_topic(
    State(state): Shared,
    Json(body): Json<CreateTopic>,
) -> Result<(StatusCode, Json<TopicView>), ApiError> {
    if body.name.starts_with("__") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "names starting with __ are reserved",
        ));
    }
    state
        .log
        .create_topic(&body.name, TopicConfig::with_partitions(body.partitions))?;
    Ok((StatusCode::CREATED, Json(topic_view(&state, &body.name)?)))
}

async fn describe_topic(
    State(state): Shared,
    Path(topic): Path<String>,
) -> Result<Json<TopicView>, ApiError> {
    Ok(Json(topic_view(&state, &topic)?))
}

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

#[derive(Serialize)]
struct Produced {
    /// (partition, first offset) of each appended batch.
    batches: Vec<(u32, u64)>,
    count: usize,
}

async fn produce(
    State(state): Shared,
    Path(topic): Path<String>,
    Json(body): Json<Produce>,
) -> Result<Json<Produced>, ApiError> {
    let partitions = state.log.partition_count(&topic)?;
    let mut by_partition: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
    for r in body.records {
        let partition = match (r.partition, &r.key) {
            (Some(p), _) if p < partitions => p,
            (Some(p), _) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("topic {topic:?} has no partition {p}"),
                ));
            }
            (None, key) => state
                .log
                .partition_for(&topic, key.as_deref().map(str::as_bytes))?,
        };
        by_partition.entry(partition).or_default().push(Record {
            key: r.key.map(String::into_bytes),
            value: r.value.into_bytes(),
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect(),
            timestamp: None,
        });
    }
    let log = state.log.clone();
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
    Ok(Json(Produced { batches, count }))
}

#[derive(Deserialize)]
struct FetchQuery {
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

async fn fetch(
    State(state): Shared,
    Path((topic, partition)): Path<(String, u32)>,
    Query(q): Query<FetchQuery>,
) -> Result<Json<Vec<FetchedRecord>>, ApiError> {
    let max_records = q.max_records.clamp(1, 10_000);
    let max_bytes = q.max_bytes.clamp(1, super::MAX_BODY_BYTES as u64);
    let records = state
        .log
        .read(&topic, partition, q.offset, max_records, max_bytes)?;
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ok(Json(
        records
            .into_iter()
            .map(|r| FetchedRecord {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(text),
                value: text(r.value),
                headers: r.headers.into_iter().map(|(k, v)| (k, text(v))).collect(),
            })
            .collect(),
    ))
}

async fn list_groups(State(state): Shared) -> Json<Vec<String>> {
    Json(admin::list(&state.offsets, &state.groups))
}

#[derive(Serialize)]
struct GroupView {
    group: String,
    partitions: Vec<LagView>,
    total_lag: u64,
}

#[derive(Serialize)]
struct LagView {
    topic: String,
    partition: u32,
    committed: Option<u64>,
    log_start: u64,
    high_watermark: u64,
    lag: u64,
}

async fn describe_group(
    State(state): Shared,
    Path(group): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    let lags = admin::lag(&state.log, &state.offsets, &group, &[])?;
    if lags.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("group {group:?} has no committed offsets"),
        ));
    }
    let partitions: Vec<LagView> = lags
        .into_iter()
        .map(|l| LagView {
            topic: l.topic,
            partition: l.partition,
            committed: l.committed,
            log_start: l.log_start,
            high_watermark: l.high_watermark,
            lag: l.lag,
        })
        .collect();
    let total_lag = partitions.iter().map(|p| p.lag).sum();
    Ok(Json(GroupView {
        group,
        partitions,
        total_lag,
    }))
}

#[derive(Deserialize)]
struct Seek {
    to: serde_json::Value,
    topic: Option<String>,
    partition: Option<u32>,
}

async fn seek_group(
    State(state): Shared,
    Path(group): Path<String>,
    Json(body): Json<Seek>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let to: SeekTo = match &body.to {
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(SeekTo::Offset)
            .ok_or("bad offset".to_string()),
        serde_json::Value::String(s) => s.parse(),
        _ => Err("`to` must be earliest, latest, an offset or \"ts:MILLIS\"".to_string()),
    }
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    let topics: Vec<String> = body.topic.into_iter().collect();
    let moved = admin::seek(
        &state.log,
        &state.offsets,
        &state.groups,
        &group,
        &topics,
        body.partition,
        to,
    )?;
    let moved: Vec<_> = moved
        .into_iter()
        .map(|(topic, partition, old, new)| serde_json::json!({"topic": topic, "partition": partition, "from": old, "to": new}))
        .collect();
    Ok(Json(serde_json::json!({ "moved": moved })))
}

async fn render_metrics(State(state): Shared) -> String {
    state.metrics.render(&state.log, &state.offsets)
}
