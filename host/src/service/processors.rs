//! The processor routes: upload components, deploy, swap, rewind, pause,
//! resume, scale, delete and shadow processors run by the [`Supervisor`].
//!
//! | method and path | what |
//! |---|---|
//! | `POST /components` | upload a component (raw wasm, up to 64 MiB; 429 while two are being validated) |
//! | `GET /processors` | every processor's status |
//! | `GET /processors/{name}` | one processor's status |
//! | `PUT /processors/{name}` | deploy [`NewProcessor`]: `{component, …spec}` |
//! | `POST /processors/{name}/swap` | [`Swap`]: `{component, rewind_to?, …settings to change}` |
//! | `POST /processors/{name}/rewind` | `{to}`: a position, or `{"PARTITION": position, …}` |
//! | `POST /processors/{name}/pause`, `/resume` | stop or restart the members |
//! | `POST /processors/{name}/scale` | `{instances}` |
//! | `DELETE /processors/{name}` | stop and forget it |
//! | `POST /processors/{name}/shadow` | `{component, label?, from}` |
//! | `POST /processors/{name}/shadow/promote` | swap to the shadow's version |
//! | `DELETE /processors/{name}/shadow` | drop the shadow |
//! | `GET /processors/{name}/logs` | its guests' output (see [`super::logs`]) |
//! | `GET /history` | what was done to the processors (see [`super::logs`]) |

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::api::position;
use super::{ApiError, AppState};
use crate::supervisor::{Deployment, NewProcessor, RewindTo, Status, SupervisorError, Swap};

/// The largest component accepted by `POST /components`.
pub const MAX_COMPONENT_BYTES: usize = 64 << 20;

type Shared = State<Arc<AppState>>;
type Reply = Result<Json<Status>, ApiError>;

routes! {
    PROCESSOR_ROUTES, routes;
    POST "/components" => upload.layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
    GET "/processors" => list,
    GET "/processors/{name}" => status,
    PUT "/processors/{name}" => create,
    DELETE "/processors/{name}" => delete,
    POST "/processors/{name}/swap" => swap,
    POST "/processors/{name}/rewind" => rewind,
    POST "/processors/{name}/pause" => pause,
    POST "/processors/{name}/resume" => resume,
    POST "/processors/{name}/scale" => scale,
    POST "/processors/{name}/shadow" => shadow,
    DELETE "/processors/{name}/shadow" => drop_shadow,
    POST "/processors/{name}/shadow/promote" => promote,
    GET "/processors/{name}/state/{key}" => read_state,
    GET "/processors/{name}/logs" => super::logs::logs,
    GET "/history" => super::logs::history,
}

#[derive(Serialize)]
struct Uploaded {
    id: String,
    bytes: usize,
}

async fn upload(
    State(state): Shared,
    body: Bytes,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    if body.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "the body must be a wasm component",
        ));
    }
    let bytes = body.len();
    let id = state.supervisor.add_component(body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(Uploaded { id, bytes })))
}

async fn list(State(state): Shared) -> Json<Vec<Status>> {
    Json(state.supervisor.list().await)
}

/// A committed state entry of the processor, for debugging; 404 when no
/// input partition has the key.
async fn read_state(
    State(state): Shared,
    Path((name, key)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<crate::wire::StateQuery>,
) -> Result<Json<crate::wire::StateEntry>, ApiError> {
    match state.supervisor.state(&name, &key, q.partition).await? {
        Some(entry) => Ok(Json(entry)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("processor {name:?} has no state under {key:?}"),
        )),
    }
}

async fn status(State(state): Shared, Path(name): Path<String>) -> Reply {
    Ok(Json(state.supervisor.status(&name).await?))
}

async fn create(
    State(state): Shared,
    Path(name): Path<String>,
    Json(body): Json<NewProcessor>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    let deployment = Deployment {
        name,
        component: body.component,
        spec: body.spec,
        paused: false,
        paused_reason: None,
        shadow_of: None,
        from_config: false,
    };
    let status = state.supervisor.create(deployment).await?;
    Ok((StatusCode::CREATED, Json(status)))
}

async fn swap(State(state): Shared, Path(name): Path<String>, Json(body): Json<Swap>) -> Reply {
    let rewind = body.rewind_to.as_ref().map(position).transpose()?;
    let status = state
        .supervisor
        .swap(&name, &body.component, &body.changes, rewind)
        .await?;
    Ok(Json(status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rewind {
    to: serde_json::Value,
}

/// `{"to": position}` moves every input partition; `{"to": {"0": 100,
/// "orders/1": "latest"}}` each partition named (see [`RewindTo`]).
async fn rewind(State(state): Shared, Path(name): Path<String>, Json(body): Json<Rewind>) -> Reply {
    let to =
        RewindTo::from_json(&body.to).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    Ok(Json(state.supervisor.rewind(&name, &to).await?))
}

async fn pause(State(state): Shared, Path(name): Path<String>) -> Reply {
    Ok(Json(state.supervisor.pause(&name).await?))
}

async fn resume(State(state): Shared, Path(name): Path<String>) -> Reply {
    Ok(Json(state.supervisor.resume(&name).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    instances: usize,
}

async fn scale(State(state): Shared, Path(name): Path<String>, Json(body): Json<Scale>) -> Reply {
    Ok(Json(state.supervisor.scale(&name, body.instances).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Delete {
    /// Keep the processor's dead-letter topic (it is deleted by default).
    #[serde(default)]
    keep_dlq: bool,
}

async fn delete(
    State(state): Shared,
    Path(name): Path<String>,
    Query(query): Query<Delete>,
) -> Result<StatusCode, ApiError> {
    state.supervisor.delete(&name, query.keep_dlq).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Shadow {
    component: String,
    label: Option<String>,
    from: serde_json::Value,
}

async fn shadow(
    State(state): Shared,
    Path(name): Path<String>,
    Json(body): Json<Shadow>,
) -> Result<(StatusCode, Json<Status>), ApiError> {
    let from = position(&body.from)?;
    let status = state
        .supervisor
        .shadow(&name, &body.component, body.label, from)
        .await?;
    Ok((StatusCode::CREATED, Json(status)))
}

async fn promote(State(state): Shared, Path(name): Path<String>) -> Reply {
    Ok(Json(state.supervisor.promote(&name).await?))
}

async fn drop_shadow(
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.supervisor.drop_shadow(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> ApiError {
        use crate::processor::ProcessorError as P;
        use crate::runtime::RuntimeError as R;
        use SupervisorError as E;
        let status = match e {
            E::Log(e) => return e.into(),
            E::Group(e) => return e.into(),
            E::Processor(P::Consumer(e)) => return e.into(),
            E::Cluster(e) => return e.into(),
            E::UnknownProcessor(_) | E::UnknownComponent(_) | E::NoShadow(_) => {
                StatusCode::NOT_FOUND
            }
            E::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            E::Exists(_)
            | E::ShadowExists(_)
            | E::TopicInUse { .. }
            | E::Conflict(_)
            | E::Processor(P::Fatal { .. } | P::Exhausted { .. } | P::Tripped { .. }) => {
                StatusCode::CONFLICT
            }
            E::Invalid(_)
            | E::Runtime(R::Limits(_))
            | E::Processor(P::Spec(_) | P::Settings(_) | P::Name(_)) => StatusCode::BAD_REQUEST,
            E::Runtime(
                R::Compile { .. }
                | R::Incompatible { .. }
                | R::Init(_)
                | R::Failed(_)
                | R::Trap { .. }
                | R::Deadline(_)
                | R::OutOfFuel(_)
                | R::StackOverflow(_)
                | R::Memory { .. },
            ) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, crate::error::chain(&e))
    }
}
