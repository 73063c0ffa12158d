//! The processors a long-running host (`weir serve`) runs and manages: deploy,
//! swap (optionally rewinding), rewind, pause, resume, scale, delete, and shadow
//! replays. Every change is recorded in the data directory (see [`store`]) and
//! [`Supervisor::restore`] brings the recorded processors back after a restart,
//! paused ones paused.
//!
//! Operations are serialized by one lock; each is all or nothing: a new version
//! is loaded and probed (instantiated and `init`-ed) before anything changes,
//! so a broken component leaves the running version, the offsets and the record
//! untouched.
//!
//! A shadow `<name>.shadow` runs a candidate version as its own group
//! (`<group>.shadow`) from a chosen point, with its emits redirected to
//! `<topic>.shadow` topics, so its output can be compared with the live one.
//! Promoting it swaps the live processor to the candidate at the live group's
//! own position (no replay: the shadow already showed what history looks like)
//! and removes the shadow.

mod members;
mod shadow;
mod status;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::Mutex;

pub use status::{PartitionStatus, State, Status};
pub use store::{Deployment, Reset, Store};

use members::{notice_failure, retire};

use crate::group::admin::SeekTo;
use crate::group::{GroupError, Groups};
use crate::log::{Log, LogError};
use crate::offsets::Offsets;
use crate::processor::{Instances, ProcessorError, error_chain};
use crate::runtime::{GuestSpec, Runtime, RuntimeError};

/// The most members one processor may run.
pub const MAX_INSTANCES: usize = 64;
/// The suffix of a shadow's name, group and output topics.
pub const SHADOW: &str = ".shadow";

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
    #[error("loading a component")]
    Task(#[source] tokio::task::JoinError),
}

impl SupervisorError {
    fn io(path: &Path, source: std::io::Error) -> SupervisorError {
        SupervisorError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// A processor and how it is doing.
struct Managed {
    deployment: Deployment,
    run: Run,
}

enum Run {
    Running(Box<Instances>),
    Paused,
    /// A member stopped with this error (or the processor could not start);
    /// a swap or a resume starts it again.
    Failed(String),
}

/// Runs and manages the deployed processors.
pub struct Supervisor {
    log: Arc<Log>,
    offsets: Arc<Offsets>,
    groups: Arc<Groups>,
    runtime: Arc<Runtime>,
    store: Store,
    /// Where processors with a scratch directory get theirs.
    scratch_dir: PathBuf,
    processors: Mutex<BTreeMap<String, Managed>>,
}

type Result<T, E = SupervisorError> = std::result::Result<T, E>;

impl Supervisor {
    /// A supervisor keeping its records under `data_dir`; nothing runs until
    /// [`Supervisor::restore`] or a deploy.
    pub fn new(
        data_dir: &Path,
        log: Arc<Log>,
        offsets: Arc<Offsets>,
        groups: Arc<Groups>,
        runtime: Arc<Runtime>,
    ) -> Result<Supervisor> {
        Ok(Supervisor {
            store: Store::open(data_dir)?,
            scratch_dir: data_dir.join("scratch"),
            log,
            offsets,
            groups,
            runtime,
            processors: Mutex::new(BTreeMap::new()),
        })
    }

    /// Starts every recorded processor. One that cannot start (its topic was
    /// deleted, say) is kept as failed, with the reason in its status, rather
    /// than stopping the host; the names of those are returned.
    pub async fn restore(&self) -> Result<Vec<String>> {
        let mut failed = Vec::new();
        let mut processors = self.processors.lock().await;
        for deployment in self.store.load_all()? {
            let run = match self.launch(&deployment).await {
                Ok(run) => run,
                Err(e) => {
                    let message = error_chain(&e);
                    tracing::error!(processor = %deployment.name, error = %message, "could not restore processor");
                    failed.push(deployment.name.clone());
                    Run::Failed(message)
                }
            };
            processors.insert(deployment.name.clone(), Managed { deployment, run });
        }
        Ok(failed)
    }

    /// Validates and stores an uploaded component; returns its id (SHA-256).
    pub async fn add_component(&self, wasm: Vec<u8>) -> Result<String> {
        let runtime = self.runtime.clone();
        let wasm = Arc::new(wasm);
        let bytes = wasm.clone();
        tokio::task::spawn_blocking(move || {
            runtime.load(
                &bytes,
                Path::new("uploaded component"),
                GuestSpec::default(),
            )
        })
        .await
        .map_err(SupervisorError::Task)??;
        self.store.put_component(&wasm)
    }

    /// Deploys a new processor.
    pub async fn create(&self, deployment: Deployment) -> Result<Status> {
        self.check(&deployment)?;
        let mut processors = self.processors.lock().await;
        if processors.contains_key(&deployment.name) {
            return Err(SupervisorError::Exists(deployment.name));
        }
        let run = self.launch(&deployment).await?;
        self.record(&deployment, run, &mut processors).await
    }

    /// Deploys a new version of `name`. Without `rewind`, members pick it up
    /// at their next batch boundary; with it, they pause at a batch boundary,
    /// the group's offsets are reset, the version is swapped and they resume.
    /// A paused processor stays paused (with the new version recorded); a
    /// failed one starts again.
    pub async fn swap(
        &self,
        name: &str,
        component: &str,
        label: Option<String>,
        rewind: Option<SeekTo>,
    ) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let managed = processors
            .get_mut(name)
            .ok_or_else(|| SupervisorError::UnknownProcessor(name.to_string()))?;
        let mut deployment = managed.deployment.clone();
        deployment.component = component.to_string();
        deployment.label = label;
        let guest = self.load(&deployment).await?;
        match &mut managed.run {
            Run::Running(instances) => instances.deploy(guest, rewind).await?,
            Run::Paused => self.reset(&deployment, rewind)?,
            Run::Failed(_) => {
                self.reset(&deployment, rewind)?;
                managed.run = Run::Running(Box::new(self.start(&deployment, guest)?));
            }
        }
        self.store.save(&deployment)?;
        managed.deployment = deployment;
        Ok(self.status_of(managed))
    }

    /// Moves `name`'s group to `to` and replays from there with the running
    /// version.
    pub async fn rewind(&self, name: &str, to: SeekTo) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        match &mut managed.run {
            Run::Running(instances) => {
                let current = instances.slot().current();
                instances.deploy(current, Some(to)).await?;
            }
            Run::Paused | Run::Failed(_) => self.reset(&managed.deployment, Some(to))?,
        }
        Ok(self.status_of(managed))
    }

    /// Stops `name`'s members after their batches in flight; it stays paused,
    /// across restarts too, until resumed.
    pub async fn pause(&self, name: &str) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        let mut deployment = managed.deployment.clone();
        deployment.paused = true;
        self.store.save(&deployment)?;
        managed.deployment = deployment;
        if let Run::Running(instances) = std::mem::replace(&mut managed.run, Run::Paused)
            && let Err(e) = instances.stop().await
        {
            managed.run = Run::Failed(error_chain(&e));
        }
        Ok(self.status_of(managed))
    }

    /// Starts a paused (or failed) processor again.
    pub async fn resume(&self, name: &str) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        if !matches!(managed.run, Run::Running(_)) {
            let mut deployment = managed.deployment.clone();
            deployment.paused = false;
            let run = self.launch(&deployment).await?;
            self.store.save(&deployment)?;
            managed.deployment = deployment;
            managed.run = run;
        }
        Ok(self.status_of(managed))
    }

    /// Runs `count` members of `name`; the group rebalances.
    pub async fn scale(&self, name: &str, count: usize) -> Result<Status> {
        check_instances(count)?;
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        let mut deployment = managed.deployment.clone();
        deployment.instances = count;
        if let Run::Running(instances) = &mut managed.run {
            instances.scale(count).await?;
        }
        self.store.save(&deployment)?;
        managed.deployment = deployment;
        Ok(self.status_of(managed))
    }

    /// Stops `name` (and its shadow), its members leaving the group, and
    /// forgets it. Its committed offsets stay, as Kafka keeps a group's.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let mut processors = self.processors.lock().await;
        self.get(&mut processors, name)?;
        let shadow = format!("{name}{SHADOW}");
        for victim in [shadow.as_str(), name] {
            if let Some(managed) = processors.remove(victim) {
                self.store.remove(victim)?;
                retire(victim, managed.run).await;
            }
        }
        Ok(())
    }

    /// One processor's status.
    pub async fn status(&self, name: &str) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        notice_failure(managed).await;
        Ok(self.status_of(managed))
    }

    /// Every processor's status, by name.
    pub async fn list(&self) -> Vec<Status> {
        let mut processors = self.processors.lock().await;
        let mut out = Vec::new();
        for managed in processors.values_mut() {
            notice_failure(managed).await;
            out.push(self.status_of(managed));
        }
        out
    }

    /// The processor reading `topic`, if any (a topic in use is not deleted).
    pub async fn reader_of(&self, topic: &str) -> Option<String> {
        let processors = self.processors.lock().await;
        processors
            .values()
            .find(|m| m.deployment.topics.iter().any(|t| t == topic))
            .map(|m| m.deployment.name.clone())
    }

    /// Stops every processor after its batches in flight (graceful shutdown).
    /// Their records stay, so the next start runs them again.
    pub async fn stop_all(&self) {
        let mut processors = self.processors.lock().await;
        for (name, managed) in processors.iter_mut() {
            if let Run::Running(instances) = std::mem::replace(&mut managed.run, Run::Paused) {
                match instances.stop().await {
                    Ok(_) => tracing::info!(processor = %name, "stopped"),
                    Err(e) => {
                        tracing::error!(processor = %name, error = %error_chain(&e), "stopped with an error")
                    }
                }
            }
        }
    }

    fn get<'a>(
        &self,
        processors: &'a mut BTreeMap<String, Managed>,
        name: &str,
    ) -> Result<&'a mut Managed> {
        processors
            .get_mut(name)
            .ok_or_else(|| SupervisorError::UnknownProcessor(name.to_string()))
    }

    /// Checks a new deployment's names, topics and sizes.
    fn check(&self, deployment: &Deployment) -> Result<()> {
        crate::name::validate("processor", &deployment.name).map_err(LogError::from)?;
        if deployment.name.ends_with(SHADOW) || deployment.name.starts_with("__") {
            return Err(SupervisorError::Invalid(format!(
                "processor names starting with __ or ending in {SHADOW} are reserved"
            )));
        }
        if let Some(group) = &deployment.group {
            crate::name::validate("group", group).map_err(LogError::from)?;
        }
        if deployment.topics.is_empty() {
            return Err(SupervisorError::Invalid(
                "a processor needs at least one topic".into(),
            ));
        }
        for topic in &deployment.topics {
            self.log.partition_count(topic)?;
        }
        check_instances(deployment.instances)
    }
}

fn check_instances(count: usize) -> Result<()> {
    if (1..=MAX_INSTANCES).contains(&count) {
        Ok(())
    } else {
        Err(SupervisorError::Invalid(format!(
            "instances must be between 1 and {MAX_INSTANCES}, got {count}"
        )))
    }
}
