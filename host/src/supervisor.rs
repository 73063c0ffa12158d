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
mod request;
mod shadow;
mod status;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

pub use request::{NewProcessor, Swap};
pub use status::{PartitionStatus, State, Status};
pub use store::{Deployment, Store};

use members::{notice_failure, retire};

use crate::broker::{Broker, SeekTo};
use crate::error::chain as error_chain;
use crate::group::GroupError;
use crate::log::LogError;
use crate::processor::spec::check_instances;
use crate::processor::{Instances, ProcessorError, SpecChanges};
use crate::runtime::{GuestSpec, Handler, Runtime, RuntimeError};
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
    #[error("{0}")]
    Conflict(String),
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
    broker: Arc<Broker>,
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
    pub fn new(data_dir: &Path, broker: Arc<Broker>, runtime: Arc<Runtime>) -> Result<Supervisor> {
        Ok(Supervisor {
            store: Store::open(data_dir)?,
            scratch_dir: data_dir.join("scratch"),
            broker,
            runtime,
            processors: Mutex::new(BTreeMap::new()),
        })
    }

    /// Starts every recorded processor. One that cannot start (its topic was
    /// deleted, say) is kept as failed, with the reason in its status, rather
    /// than stopping the host; the names of those are returned.
    pub async fn restore(&self) -> Result<Vec<String>> {
        self.restore_with(&BTreeMap::new()).await
    }

    /// Like [`Supervisor::restore`], but a recorded processor named in
    /// `declared` (by a configuration file) first gets that component and
    /// those changes to its settings, recorded, so it never runs with the
    /// settings they replace. Invalid changes are an error, and nothing starts.
    pub async fn restore_with(
        &self,
        declared: &BTreeMap<String, (String, SpecChanges)>,
    ) -> Result<Vec<String>> {
        let mut recorded = self.store.load_all()?;
        for deployment in &mut recorded {
            if let Some((component, changes)) = declared.get(&deployment.name) {
                let next = deployment.changed(component, changes)?;
                if next != *deployment {
                    self.check_settings(&next)?;
                    if next.group() != deployment.group() {
                        check_group_name(&next)?;
                    }
                    self.store.save(&next)?;
                    *deployment = next;
                }
            }
        }
        let mut failed = Vec::new();
        let mut processors = self.processors.lock().await;
        for deployment in recorded {
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
        self.check_new(&deployment)?;
        // Compiling can take seconds: it happens before the lock is taken.
        let guest = self.load(&deployment).await?;
        let mut processors = self.processors.lock().await;
        if processors.contains_key(&deployment.name) {
            return Err(SupervisorError::Exists(deployment.name));
        }
        check_group(&deployment, &processors)?;
        self.commit_latest(&deployment)?;
        let run = Run::Running(Box::new(self.start(&deployment, guest)?));
        self.record(&deployment, run, &mut processors).await
    }

    /// Deploys a new version of `name` with `changes` to its settings (see
    /// [`Deployment::changed`]). When only the version and what travels with
    /// it change (label, config, limits, scratch), members pick it up at
    /// their next batch boundary; with `rewind`, they pause at a batch
    /// boundary, the group's offsets are reset, the version is swapped and
    /// they resume. Any other setting restarts the members with it (their
    /// group rebalances). A paused processor stays paused (with the new
    /// version and settings recorded); a failed one starts again with them.
    pub async fn swap(
        &self,
        name: &str,
        component: &str,
        changes: &SpecChanges,
        rewind: Option<SeekTo>,
    ) -> Result<Status> {
        let current = self.deployment(name).await?;
        let next = current.changed(component, changes)?;
        self.check_settings(&next)?;
        if next.group() != current.group() {
            check_group_name(&next)?;
        }
        let guest = self.load(&next).await?;
        let mut processors = self.processors.lock().await;
        check_group(&next, &processors)?;
        self.apply_swap(&mut processors, &current, next, guest, rewind)
            .await
    }

    /// A copy of `name`'s record.
    pub async fn deployment(&self, name: &str) -> Result<Deployment> {
        let mut processors = self.processors.lock().await;
        Ok(self.get(&mut processors, name)?.deployment.clone())
    }

    /// Swaps in `next` (already loaded as `guest`) if `name` is still as
    /// `current` says. The record is written first and put back if applying
    /// fails, so it never names a version other than the one that runs.
    async fn apply_swap(
        &self,
        processors: &mut BTreeMap<String, Managed>,
        current: &Deployment,
        next: Deployment,
        guest: Arc<dyn Handler>,
        rewind: Option<SeekTo>,
    ) -> Result<Status> {
        let managed = self.get(processors, &current.name)?;
        if managed.deployment != *current {
            return Err(SupervisorError::Conflict(format!(
                "processor {:?} changed while the new version loaded; try again",
                current.name
            )));
        }
        // A member that failed on the old version must not stand in the way
        // of the fix: the processor counts as failed, and starts afresh.
        notice_failure(managed).await;
        self.store.save(&next)?;
        let restart = !current.spec.same_members(&next.spec);
        if restart && let Run::Running(_) = managed.run {
            // The members finish their batches in flight and leave the group,
            // which the new ones join with the new settings (below, as a
            // failed processor's do).
            let Run::Running(old) = std::mem::replace(
                &mut managed.run,
                Run::Failed("restarting with new settings".into()),
            ) else {
                unreachable!("matched above")
            };
            if let Err(e) = old.retire().await {
                tracing::warn!(processor = %current.name, error = %error_chain(&e), "a member had failed");
            }
        }
        let applied = match &mut managed.run {
            Run::Running(instances) => instances
                .deploy(guest, rewind)
                .await
                .map_err(SupervisorError::from),
            Run::Paused => self.reset(&next, rewind),
            Run::Failed(_) => self
                .reset(&next, rewind)
                .and_then(|()| self.commit_latest(&next))
                .and_then(|()| self.start(&next, guest))
                .map(|instances| managed.run = Run::Running(Box::new(instances))),
        };
        if let Err(e) = applied {
            if restart {
                managed.run = Run::Failed(error_chain(&e));
            }
            if let Err(undo) = self.store.save(current) {
                tracing::error!(processor = %current.name, error = %error_chain(&undo), "could not restore the record");
            }
            return Err(e);
        }
        managed.deployment = next;
        Ok(self.status_of(managed))
    }

    /// Moves `name`'s group to `to` and replays from there with the running
    /// version.
    pub async fn rewind(&self, name: &str, to: SeekTo) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        notice_failure(managed).await;
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
        match std::mem::replace(&mut managed.run, Run::Paused) {
            Run::Running(instances) => {
                if let Err(e) = instances.stop().await {
                    managed.run = Run::Failed(error_chain(&e));
                }
            }
            failed @ Run::Failed(_) => managed.run = failed,
            Run::Paused => {}
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
        notice_failure(managed).await;
        let mut deployment = managed.deployment.clone();
        deployment.spec.instances = count;
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
            if processors.contains_key(victim) {
                self.store.remove(victim)?;
                let managed = processors.remove(victim).expect("checked above");
                retire(victim, managed.run).await;
            }
        }
        Ok(())
    }

    /// Stops every processor after its batches in flight (graceful shutdown),
    /// all at once, waiting at most `grace`: a batch still running then is
    /// not committed, and is redelivered on the next start. The records stay,
    /// so the next start runs every processor again.
    pub async fn stop_all(&self, grace: Duration) {
        let mut processors = self.processors.lock().await;
        let mut stopping = tokio::task::JoinSet::new();
        for (name, managed) in processors.iter_mut() {
            if let Run::Running(instances) = std::mem::replace(&mut managed.run, Run::Paused) {
                let name = name.clone();
                stopping.spawn(async move { (name, instances.stop().await) });
            }
        }
        let all = async {
            while let Some(stopped) = stopping.join_next().await {
                match stopped {
                    Ok((name, Ok(_))) => tracing::info!(processor = %name, "stopped"),
                    Ok((name, Err(e))) => {
                        tracing::error!(processor = %name, error = %error_chain(&e), "stopped with an error")
                    }
                    Err(e) => tracing::error!(error = %e, "stopping a processor"),
                }
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                ?grace,
                "some batches were still running; they will be redelivered"
            );
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

    /// Checks a new deployment's names and settings.
    fn check_new(&self, deployment: &Deployment) -> Result<()> {
        crate::name::validate("processor", &deployment.name).map_err(LogError::from)?;
        if deployment.name.ends_with(SHADOW) || deployment.name.starts_with("__") {
            return Err(SupervisorError::Invalid(format!(
                "processor names starting with __ or ending in {SHADOW} are reserved"
            )));
        }
        check_group_name(deployment)?;
        self.check_settings(deployment)
    }

    /// Checks a deployment's settings, and that its topics exist (its
    /// inputs and the output its configuration names).
    fn check_settings(&self, deployment: &Deployment) -> Result<()> {
        deployment.spec.validate()?;
        for topic in &deployment.spec.topics {
            self.broker.log().partition_count(topic)?;
        }
        deployment.spec.check_topics(self.broker.log())?;
        Ok(())
    }
}

/// Refuses an invalid or reserved group name.
fn check_group_name(deployment: &Deployment) -> Result<()> {
    if let Some(group) = &deployment.spec.group {
        crate::name::validate("group", group).map_err(LogError::from)?;
        if group.starts_with("__") || group.ends_with(SHADOW) {
            return Err(SupervisorError::Invalid(format!(
                "group names starting with __ or ending in {SHADOW} are reserved"
            )));
        }
    }
    Ok(())
}

/// Refuses a group another processor's members already join: two
/// processors in one group would split its partitions between two versions,
/// and one's rewind would move the other's offsets.
fn check_group(deployment: &Deployment, processors: &BTreeMap<String, Managed>) -> Result<()> {
    let group = deployment.group();
    let other = processors
        .values()
        .find(|m| m.deployment.name != deployment.name && m.deployment.group() == group);
    match other {
        Some(other) => Err(SupervisorError::Conflict(format!(
            "group {group:?} is used by processor {:?}",
            other.deployment.name
        ))),
        None => Ok(()),
    }
}
