//! The HTTP routes and their handlers, listed once in [`ROUTES`] (which builds
//! the router and which `docs/api.md` is checked against). Bodies are JSON;
//! produce and fetch also speak the binary framing of [`super::frame`] (see
//! `records.rs`). `docs/api.md` is the reference for every endpoint.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::records::{fetch, produce};
use super::{ApiError, AppState};
use crate::broker::{GroupLag, SeekTo};
use crate::log::TopicConfig;

pub(super) type Shared = State<Arc<AppState>>;

routes! {
    ROUTES, routes;
    GET "/health" => health,
    GET "/topics" => list_topics,
    POST "/topics" => create_topic,
    GET "/topics/{topic}" => describe_topic,
    DELETE "/topics/{topic}" => delete_topic,
    POST "/topics/{topic}/records" => produce,
    GET "/topics/{topic}/partitions/{partition}/records" => fetch,
    GET "/groups" => list_groups,
    GET "/groups/{group}" => describe_group,
    POST "/groups/{group}/seek" => seek_group,
    GET "/metrics" => render_metrics,
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

#[derive(Serialize)]
struct TopicView {
    name: String,
    partitions: u32,
    high_watermarks: Vec<u64>,
}

fn topic_view(state: &AppState, name: &str) -> Result<TopicView, ApiError> {
    let partitions = state.broker.log().partition_count(name)?;
    let high_watermarks = (0..partitions)
        .map(|p| state.broker.log().high_watermark(name, p))
        .collect::<Result<_, _>>()?;
    Ok(TopicView {
        name: name.to_string(),
        partitions,
        high_watermarks,
    })
}

async fn list_topics(State(state): Shared) -> Result<Json<Vec<TopicView>>, ApiError> {
    let names: Vec<String> = state
        .broker
        .log()
        .topics()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
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
        .broker
        .log()
        .create_topic(&body.name, TopicConfig::with_partitions(body.partitions))?;
    Ok((StatusCode::CREATED, Json(topic_view(&state, &body.name)?)))
}

async fn describe_topic(
    State(state): Shared,
    Path(topic): Path<String>,
) -> Result<Json<TopicView>, ApiError> {
    Ok(Json(topic_view(&state, &topic)?))
}

/// Deletes the topic with its records and every group's committed offsets
/// on it; refused (409) while a deployed processor reads it.
async fn delete_topic(
    State(state): Shared,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    if let Some(processor) = state.supervisor.reader_of(&topic).await {
        return Err(crate::supervisor::SupervisorError::TopicInUse { topic, processor }.into());
    }
    let broker = state.broker.clone();
    tokio::task::spawn_blocking(move || broker.delete_topic(&topic))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(State(state): Shared) -> Json<Vec<String>> {
    Json(state.broker.list_groups())
}

async fn describe_group(
    State(state): Shared,
    Path(group): Path<String>,
) -> Result<Json<GroupLag>, ApiError> {
    let lags = state.broker.lag(&group, &[])?;
    if lags.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("group {group:?} has no committed offsets"),
        ));
    }
    Ok(Json(GroupLag::new(&group, lags)))
}

#[derive(Deserialize)]
struct Seek {
    to: serde_json::Value,
    topic: Option<String>,
    partition: Option<u32>,
}

/// A position as the API takes it: `"earliest"`, `"latest"`, an offset (a
/// JSON number, or a string of digits) or `"ts:MILLIS"`.
pub(super) fn position(value: &serde_json::Value) -> Result<SeekTo, ApiError> {
    match value {
        serde_json::Value::Number(n) => n
            .as_u64()
            .map(SeekTo::Offset)
            .ok_or_else(|| format!("bad offset {n}")),
        serde_json::Value::String(s) => s.parse(),
        _ => Err("a position is earliest, latest, an offset or \"ts:MILLIS\"".to_string()),
    }
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

async fn seek_group(
    State(state): Shared,
    Path(group): Path<String>,
    Json(body): Json<Seek>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let to = position(&body.to)?;
    let topics: Vec<String> = body.topic.into_iter().collect();
    let moved = state.broker.seek(&group, &topics, body.partition, to)?;
    Ok(Json(serde_json::json!({ "moved": moved })))
}

async fn render_metrics(State(state): Shared) -> String {
    state.metrics.render(&state.broker)
}
