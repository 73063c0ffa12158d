//! [`SupervisorError`]: why a supervisor operation was refused or failed.

use std::path::{Path, PathBuf};

use crate::group::GroupError;
use crate::log::LogError;
use crate::processor::ProcessorError;
use crate::runtime::RuntimeError;

/// Why a supervisor operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("no processor named {0:?}")]
    UnknownProcessor(String),
    #[error("processor {0:?} already exists: swap in a new version instead")]
    Exists(String),
    #[error("no component {0:?} has been uploaded")]
    UnknownComponent(String),
    #[error("processor {0:?} has no shadow")]
    NoShadow(String),
    #[error("processor {0:?} already has a shadow: promote or drop it first")]
    ShadowExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Busy(String),
    #[error("topic {topic:?} is read by processor {processor:?}: delete the processor first")]
    TopicInUse { topic: String, processor: String },
    #[error("deployment record {path}: {reason}")]
    Record { path: PathBuf, reason: String },
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error(transparent)]
    Group(#[from] GroupError),
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("loading a component")]
    Task(#[source] tokio::task::JoinError),
}

impl SupervisorError {
    pub(super) fn io(path: &Path, source: std::io::Error) -> SupervisorError {
        SupervisorError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
