//! `weir serve`: the host as an HTTP service (axum): topics, produce and fetch
//! (JSON or binary), group lag and seek, processors run by the [`Supervisor`]
//! (deploy, swap, rewind, pause, resume, scale, delete, shadow), Prometheus
//! metrics, health and readiness. `docs/api.md` documents every endpoint; [`ROUTES`] and
//! [`PROCESSOR_ROUTES`] are the lists it is checked against.
//!
//! Rules every handler keeps: names are validated by the log before anything
//! touches the disk; bodies are size-limited; every error is a JSON
//! `{"error": ...}` with a 4xx or 5xx status, never a panic; and when the
//! service listens beyond loopback it refuses to start without a bearer token,
//! which every request must then carry but the probes (`/health`, `/ready`)
//! and, when the metrics are public, `/metrics`.

/// Declares a module's routes once: `$list` names them as (method, path),
/// for `docs/api.md`'s check, and `$builder` builds the router from the same
/// lines, so the two cannot drift.
macro_rules! routes {
    ($list:ident, $builder:ident; $($method:ident $path:literal => $handler:expr,)*) => {
        /// Every (method, path) this module serves, paths in axum's `{param}`
        /// form.
        pub const $list: &[(&str, &str)] = &[$((stringify!($method), $path),)*];

        pub fn $builder() -> axum::Router<std::sync::Arc<super::AppState>> {
            axum::Router::new()$(
                .route($path, axum::routing::on(axum::routing::MethodFilter::$method, $handler))
            )*
        }
    };
}

mod access;
mod api;
mod logs;
mod metrics;
mod processors;
mod records;
mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

pub use self::api::ROUTES;
pub use self::metrics::Metrics;
pub use self::processors::MAX_COMPONENT_BYTES;
pub use self::processors::PROCESSOR_ROUTES;

use crate::broker::Broker;
use crate::supervisor::Supervisor;

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("listening on {addr} (not loopback) needs a bearer token: set --token or WEIR_TOKEN")]
    TokenRequired { addr: SocketAddr },
    #[error("HTTP server")]
    Io(#[from] std::io::Error),
}

/// What the handlers share.
pub struct AppState {
    pub broker: Arc<Broker>,
    pub supervisor: Arc<Supervisor>,
    pub metrics: Metrics,
    /// When set, every request needs `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// Serves the API on `listener` until `shutdown` completes, then finishes the
/// requests in flight, stops the processors after their batches in flight
/// (committing them; within the supervisor's shutdown grace, after which the
/// guests still running are interrupted and their batches left for the next
/// start), and flushes the log.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && state.token.is_none() {
        return Err(ServiceError::TokenRequired { addr });
    }
    tracing::info!(%addr, "serving the weir API");
    let (log, supervisor) = (state.broker.log().clone(), state.supervisor.clone());
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    supervisor.stop_all().await;
    if let Err(e) = log.sync_all() {
        tracing::error!(error = %e, "flushing the log on shutdown");
    }
    Ok(served?)
}

/// The API's routes, behind the token check and the body limit, with every
/// request logged and every error shaped as JSON.
pub fn router(state: Arc<AppState>) -> Router {
    api::routes()
        .merge(processors::routes())
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(access::log_and_shape))
        .with_state(state)
}

async fn authorize(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let expected = format!("Bearer {token}");
        let given = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let path = request.uri().path();
        // `/ui` is a static page with no data: it asks for the token itself.
        let open = matches!(path, "/health" | "/ready" | "/ui")
            || (path == "/metrics" && state.metrics.is_public());
        if given != Some(expected.as_str()) && !open {
            return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(request).await
}

/// An error as the API returns it: a status and a JSON message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

impl From<crate::log::LogError> for ApiError {
    fn from(e: crate::log::LogError) -> ApiError {
        use crate::log::LogError as E;
        let status = match &e {
            E::UnknownTopic(_) | E::UnknownPartition { .. } | E::Deleted { .. } => {
                StatusCode::NOT_FOUND
            }
            E::TopicExists(_) => StatusCode::CONFLICT,
            E::Name(_)
            | E::Internal(_)
            | E::Reserved(_)
            | E::BadPartitionCount { .. }
            | E::OffsetOutOfRange { .. }
            | E::BadConfig { .. }
            | E::PartitionCountFixed { .. } => StatusCode::BAD_REQUEST,
            E::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, crate::error::chain(&e))
    }
}

impl From<crate::group::GroupError> for ApiError {
    fn from(e: crate::group::GroupError) -> ApiError {
        use crate::group::GroupError as E;
        match e {
            E::Log(e) => e.into(),
            E::Offsets(e) => e.into(),
            E::Active { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            E::UnknownGroup(_) | E::NoCommits(_) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, crate::error::chain(&e)),
        }
    }
}

impl From<crate::consumer::ConsumerError> for ApiError {
    fn from(e: crate::consumer::ConsumerError) -> ApiError {
        use crate::consumer::ConsumerError as E;
        match e {
            E::Group(e) => e.into(),
            E::Log(e) => e.into(),
            E::Offsets(e) => e.into(),
            E::NotAssigned { .. } => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            E::State(e) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, crate::error::chain(&e))
            }
            E::Cluster(e) => e.into(),
        }
    }
}

impl From<crate::cluster::ClusterError> for ApiError {
    fn from(e: crate::cluster::ClusterError) -> ApiError {
        use crate::cluster::ClusterError as E;
        let status = match e {
            E::Position(e) => return e.into(),
            E::Settings(_) | E::Client(_) | E::Unsupported(_) => StatusCode::BAD_REQUEST,
            E::UnknownTopic { .. } => StatusCode::NOT_FOUND,
            E::Fenced { .. } => StatusCode::CONFLICT,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError::new(status, crate::error::chain(&e))
    }
}

impl From<crate::offsets::OffsetsError> for ApiError {
    fn from(e: crate::offsets::OffsetsError) -> ApiError {
        match e {
            crate::offsets::OffsetsError::Log(e) => e.into(),
            e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, crate::error::chain(&e)),
        }
    }
}
