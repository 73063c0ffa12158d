//! The HTTP routes and their handlers, listed once in [`ROUTES`] (which builds
//! the router and which `docs/api.md` is checked against). Bodies are JSON in
//! the shapes of [`crate::wire`]; produce and fetch also speak the binary
//! framing of [`crate::wire::frame`] (see `records.rs`). `docs/api.md` is the
//! reference for every endpoint.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::records::{fetch, produce};
use super::{ApiError, AppState};
use crate::broker::SeekTo;
use crate::wire::{CreateTopic, GroupLag, Seek, Seeked, TopicInfo, TopicSettings};

pub(super) type Shared = State<Arc<AppState>>;

routes! {
    ROUTES, routes;
    GET "/health" => health,
    GET "/ready" => ready,
    GET "/topics" => list_topics,
    POST "/topics" => create_topic,
    GET "/topics/{topic}" => describe_topic,
    PATCH "/topics/{topic}" => alter_topic,
    DELETE "/topics/{topic}" => delete_topic,
    POST "/topics/{topic}/records" => produce,
    GET "/topics/{topic}/partitions/{partition}/records" => fetch,
    GET "/groups" => list_groups,
    GET "/groups/{group}" => describe_group,
    POST "/groups/{group}/seek" => seek_group,
    GET "/metrics" => render_metrics,
    GET "/ui" => super::ui::page,
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// 503 until the recorded processors are restored (and those the
/// configuration declares started), then 200.
async fn ready(State(state): Shared) -> (StatusCode, Json<serde_json::Value>) {
    if state.supervisor.is_ready() {
        (StatusCode::OK, Json(serde_json::json!({"status": "ready"})))
    } else {
        let body = serde_json::json!({"status": "restoring"});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }
}

async fn list_topics(State(state): Shared) -> Result<Json<Vec<TopicInfo>>, ApiError> {
    Ok(Json(state.broker.topic_infos()?))
}

/// A JSON body of type `T`; a body that does not parse (a misspelt field
/// among them) is 400 with serde's message, which names the field.
fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

async fn create_topic(
    State(state): Shared,
    bytes: axum::body::Bytes,
) -> Result<(StatusCode, Json<TopicInfo>), ApiError> {
    let topic = state
        .broker
        .create_topic_with(&body::<CreateTopic>(&bytes)?)?;
    Ok((StatusCode::CREATED, Json(topic)))
}

/// Changes a topic's settings; what the body leaves out stays.
async fn alter_topic(
    State(state): Shared,
    Path(topic): Path<String>,
    bytes: axum::body::Bytes,
) -> Result<Json<TopicInfo>, ApiError> {
    let settings: TopicSettings = body(&bytes)?;
    Ok(Json(state.broker.alter_topic(&topic, &settings)?))
}

async fn describe_topic(
    State(state): Shared,
    Path(topic): Path<String>,
) -> Result<Json<TopicInfo>, ApiError> {
    Ok(Json(state.broker.topic_info(&topic)?))
}

/// Deletes the topic with its records and every group's committed offsets
/// on it; refused (409) while a deployed processor reads it.
async fn delete_topic(
    State(state): Shared,
    Path(topic): Path<String>,
) -> Result<StatusCode, ApiError> {
    // The supervisor holds its lock across the check and the deletion, so no
    // processor starts reading the topic in between.
    let broker = state.broker.clone();
    let name = topic.clone();
    let delete = move || broker.delete_topic(&name);
    state.supervisor.delete_topic(&topic, delete).await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_groups(State(state): Shared) -> Json<Vec<String>> {
    Json(state.broker.list_groups())
}

async fn describe_group(
    State(state): Shared,
    Path(group): Path<String>,
) -> Result<Json<GroupLag>, ApiError> {
    Ok(Json(state.broker.describe_group(&group)?))
}

/// A position as the API takes it (see [`crate::wire::parse_position`]); a
/// bad one is 400.
pub(super) fn position(value: &serde_json::Value) -> Result<SeekTo, ApiError> {
    crate::wire::parse_position(value).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))
}

async fn seek_group(
    State(state): Shared,
    Path(group): Path<String>,
    Json(body): Json<Seek>,
) -> Result<Json<Seeked>, ApiError> {
    let to = position(&body.to)?;
    let topics: Vec<String> = body.topic.into_iter().collect();
    let moved = state.broker.seek(&group, &topics, body.partition, to)?;
    Ok(Json(Seeked { moved }))
}

async fn render_metrics(State(state): Shared) -> String {
    state.metrics.render(&state.broker)
}
