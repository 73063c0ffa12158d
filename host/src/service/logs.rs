//! The routes a person watches a processor through: its guests' output
//! (`GET /processors/{name}/logs`, a page of its [`Logbook`] with a long poll
//! under `follow`) and the history of what was done to the processors
//! (`GET /history`).
//!
//! [`Logbook`]: crate::runtime::Logbook

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::{ApiError, AppState};
use crate::runtime::logbook::LogFilter;
use crate::supervisor::Event;
use crate::wire::{LogPage, LogQuery, SeekTo};

/// How long a `follow` request waits for a line before answering empty.
pub const FOLLOW_WAIT: Duration = Duration::from_secs(25);

pub(super) async fn logs(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<LogPage>, ApiError> {
    // An unknown processor is a 404, not an empty page.
    state.supervisor.deployment(&name).await?;
    let since_ms = match query.since.as_deref().map(SeekTo::from_str) {
        None => None,
        Some(Ok(SeekTo::Timestamp(ms))) => Some(ms),
        Some(Ok(_)) => {
            let message = "since is a time: RFC 3339, ts:MILLIS or a duration back (-5m)";
            return Err(ApiError::new(StatusCode::BAD_REQUEST, message));
        }
        Some(Err(e)) => return Err(ApiError::new(StatusCode::BAD_REQUEST, e)),
    };
    let filter = LogFilter {
        from: query.from,
        since_ms,
        version: query.version,
        partition: query.partition,
        limit: query.limit,
    };
    let book = state.supervisor.logbook(&name);
    let page = if query.follow {
        book.follow(&filter, FOLLOW_WAIT).await
    } else {
        book.read(&filter)
    };
    Ok(Json(page))
}

pub(super) async fn history(State(state): State<Arc<AppState>>) -> Json<Vec<Event>> {
    Json(state.supervisor.history())
}
