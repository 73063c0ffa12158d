//! The processors a long-running host (`weir serve`) runs and manages: deploy,
//! swap (optionally rewinding), rewind, pause, resume, scale, delete, and shadow
//! replays. Every change is recorded in the data directory (see [`store`]) and
//! [`Supervisor::restore`] brings the recorded processors back after a restart,
//! paused ones paused.
//!
//! Operations on one processor are serialized by that processor's lock, so a
//! call that waits for a batch in flight (pause, delete, scale, rewind) holds
//! up only calls on the same processor. The map of processors has its own lock,
//! held only briefly and never while members stop (lock order: a processor's
//! lock, then the map's); checks across processors (a group in use, a topic
//! being read) run under it on what each entry keeps beside its lock. Each
//! operation is all or nothing: a new version is loaded and probed
//! (instantiated and `init`-ed), and a rewind's every target resolved, before
//! anything changes, so a broken component or a bad position leaves the running
//! members, the offsets and the record untouched.
//!
//! A member whose circuit breaker trips pauses the processor (recorded with
//! the reason) or fails it, as its `when_tripped` setting says. Shutdown stops
//! every processor within a grace, then interrupts the guests still running
//! (their batches are redelivered on the next start).
//!
//! A shadow `<name>.shadow` runs a candidate version as its own group
//! (`<group>.shadow`) from a chosen point, with its emits redirected to
//! `<topic>.shadow` topics, so its output can be compared with the live one.
//! Promoting it swaps the live processor to the candidate at the live group's
//! own position (no replay: the shadow already showed what history looks like)
//! and removes the shadow.

mod cleanup;
mod cluster;
mod error;
mod history;
mod logbooks;
mod members;
mod registry;
mod request;
mod rewind;
mod shadow;
mod shutdown;
mod status;
mod store;
mod swap;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard, Semaphore};

pub use error::SupervisorError;
pub use history::{Event, HISTORY_EVENTS};
pub use request::{NewProcessor, Swap};
pub use rewind::{PartitionTarget, RewindTo};
pub use status::{PartitionStatus, State, Status};
pub use store::{Deployment, Store};

use members::retire;
use registry::{Entry, check_group, check_group_name};

use crate::broker::Broker;
use crate::error::chain as error_chain;
use crate::processor::spec::check_instances;
use crate::processor::{Instances, ProcessorError, SpecChanges};
use crate::runtime::{GuestSpec, Logbook, Runtime};
/// The suffix of a shadow's name, group and output topics.
pub const SHADOW: &str = ".shadow";

/// How long a shutdown waits for the batches in flight by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How long a shutdown waits, once its grace is over and the guests still
/// running are interrupted, for their members to stop.
pub const INTERRUPT_BOUND: Duration = Duration::from_secs(2);
/// Uploaded components validated (compiled) at once; more are refused as busy.
pub const MAX_CONCURRENT_UPLOADS: usize = 2;

/// A processor and how it is doing, behind its own lock.
struct Managed {
    deployment: Deployment,
    run: Run,
    /// Records processed by members that no longer run, so `processed` only
    /// grows while the host runs (across a pause, a scale, a restart).
    processed_before: u64,
    /// Set when the processor is deleted: a call that waited for its lock
    /// finds it gone.
    gone: bool,
}

impl Managed {
    fn new(deployment: Deployment, run: Run) -> Managed {
        Managed {
            deployment,
            run,
            processed_before: 0,
            gone: false,
        }
    }
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
    /// Every processor by name; see the module's lock order.
    processors: Mutex<BTreeMap<String, Entry>>,
    /// Uploads being validated; one more is refused as busy.
    uploads: Semaphore,
    /// How long [`Supervisor::stop_all`] waits for batches in flight.
    shutdown_grace: Duration,
    /// Set once the recorded processors were restored (`/ready`).
    ready: AtomicBool,
    /// The data directory (a cluster deployment's local files live there).
    data_dir: PathBuf,
    /// The Kafka clusters deployments run against, by their settings.
    clusters:
        std::sync::Mutex<std::collections::HashMap<String, Arc<crate::cluster::ClusterBackend>>>,
    /// Each processor's recent guest output (`weir logs`), by name.
    logbooks: std::sync::Mutex<BTreeMap<String, Arc<Logbook>>>,
    /// What was done to the processors while this host runs.
    history: history::History,
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
            ready: AtomicBool::new(false),
            uploads: Semaphore::new(MAX_CONCURRENT_UPLOADS),
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            data_dir: data_dir.to_path_buf(),
            clusters: Default::default(),
            logbooks: std::sync::Mutex::new(BTreeMap::new()),
            history: history::History::default(),
        })
    }

    /// This supervisor, with `grace` as its shutdown grace (default
    /// [`DEFAULT_SHUTDOWN_GRACE`]).
    pub fn with_shutdown_grace(mut self, grace: Duration) -> Supervisor {
        self.shutdown_grace = grace;
        self
    }

    /// How long a shutdown waits for the batches in flight before it
    /// interrupts them.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// Starts every recorded processor. One that cannot start (its topic was
    /// deleted, say) is kept as failed, with the reason in its status, rather
    /// than stopping the host; the names of those are returned.
    pub async fn restore(&self) -> Result<Vec<String>> {
        let failed = self.restore_with(&BTreeMap::new()).await?;
        self.mark_ready();
        Ok(failed)
    }

    /// Says the host is ready: the recorded processors were restored (a
    /// host that restores with [`Supervisor::restore_with`] calls this once
    /// it has also started what its configuration declares).
    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Whether [`Supervisor::mark_ready`] was called.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Like [`Supervisor::restore`], but a recorded processor named in
    /// `declared` (by a configuration file) first gets that component and
    /// those changes to its settings, recorded, so it never runs with the
    /// settings they replace (and counts as declared by the file from then
    /// on). Invalid changes are an error, and nothing starts.
    pub async fn restore_with(
        &self,
        declared: &BTreeMap<String, (String, SpecChanges)>,
    ) -> Result<Vec<String>> {
        let mut recorded = self.store.load_all()?;
        for deployment in &mut recorded {
            if let Some((component, changes)) = declared.get(&deployment.name) {
                let mut next = deployment.changed(component, changes)?;
                next.from_config = true;
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
            let name = deployment.name.clone();
            let entry = Entry::new(Managed::new(deployment, run));
            self.processors.lock().await.insert(name, entry);
        }
        Ok(failed)
    }

    /// Validates and stores an uploaded component; returns its id (SHA-256).
    /// At most [`MAX_CONCURRENT_UPLOADS`] are validated at once: one more is
    /// refused as [`SupervisorError::Busy`].
    pub async fn add_component(&self, wasm: Vec<u8>) -> Result<String> {
        let _permit = self.uploads.try_acquire().map_err(|_| {
            SupervisorError::Busy(format!(
                "{MAX_CONCURRENT_UPLOADS} uploads are being validated already; try again shortly"
            ))
        })?;
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
        // Under the map's lock, so a topic deleted meanwhile is noticed.
        self.check_settings(&deployment)?;
        self.commit_latest(&deployment)?;
        let managed = self.start_new(deployment, guest)?;
        let status = self.noted("deploy", None, self.status_of(&managed));
        processors.insert(managed.deployment.name.clone(), Entry::new(managed));
        Ok(status)
    }

    /// Moves `name`'s group to `to` (one position for every input partition,
    /// or one per partition named, the others staying) and replays from
    /// there with the running version. Every target is resolved first: a
    /// bad one is refused before any member stops or any offset moves.
    pub async fn rewind(&self, name: &str, to: &RewindTo) -> Result<Status> {
        let mut managed = self.lock(name).await?;
        self.notice_failure(&mut managed).await;
        let deployment = managed.deployment.clone();
        let group = deployment.group();
        let targets = self.rewind_targets(&deployment, to)?;
        let cluster = self.cluster_of(&deployment)?;
        let reset = || {
            self.move_group(cluster.as_deref(), &group, &targets)
                .map_err(ProcessorError::Consumer)
        };
        match &mut managed.run {
            Run::Running(instances) => {
                instances.pause_while(reset).await?;
            }
            Run::Paused | Run::Failed(_) => {
                reset()?;
            }
        }
        let to = Some(to.to_json().to_string());
        Ok(self.noted("rewind", to, self.status_of(&managed)))
    }

    /// Stops `name`'s members after their batches in flight; it stays paused,
    /// across restarts too, until resumed.
    pub async fn pause(&self, name: &str) -> Result<Status> {
        let mut managed = self.lock(name).await?;
        let mut deployment = managed.deployment.clone();
        deployment.paused = true;
        self.store.save(&deployment)?;
        managed.deployment = deployment;
        if let Some(Err(e)) = managed.stop(Run::Paused).await {
            managed.run = Run::Failed(error_chain(&e));
        }
        Ok(self.noted("pause", None, self.status_of(&managed)))
    }

    /// Starts a paused (or failed) processor again.
    pub async fn resume(&self, name: &str) -> Result<Status> {
        let mut managed = self.lock(name).await?;
        if !matches!(managed.run, Run::Running(_)) {
            let mut deployment = managed.deployment.clone();
            deployment.paused = false;
            deployment.paused_reason = None;
            let run = self.launch(&deployment).await?;
            self.store.save(&deployment)?;
            managed.deployment = deployment;
            managed.run = run;
        }
        Ok(self.noted("resume", None, self.status_of(&managed)))
    }

    /// Runs `count` members of `name`; the group rebalances. A scale-down
    /// goes all the way even past a member that had failed (it is stopping
    /// anyway; its error is logged).
    pub async fn scale(&self, name: &str, count: usize) -> Result<Status> {
        check_instances(count)?;
        let mut managed = self.lock(name).await?;
        self.notice_failure(&mut managed).await;
        let mut deployment = managed.deployment.clone();
        deployment.spec.instances = count;
        if let Run::Running(instances) = &mut managed.run {
            instances.scale(count).await?;
        }
        self.store.save(&deployment)?;
        managed.deployment = deployment;
        Ok(self.noted("scale", Some(count.to_string()), self.status_of(&managed)))
    }

    /// Stops `name` (and its shadow), its members leaving the group, and
    /// forgets it with its scratch directory and what it leaves behind (see
    /// [`cleanup`]): its group's offsets, its dead-letter topic unless
    /// `keep_dlq`, its shadow's.
    pub async fn delete(&self, name: &str, keep_dlq: bool) -> Result<()> {
        drop(self.lock(name).await?);
        let shadow = format!("{name}{SHADOW}");
        let mut removed = Vec::new();
        for victim in [shadow.as_str(), name] {
            match self.lock(victim).await {
                Ok(managed) => removed.push(self.remove(victim, managed).await?),
                Err(SupervisorError::UnknownProcessor(_)) => {}
                Err(e) => return Err(e),
            }
        }
        self.clear_after(&removed, keep_dlq).await?;
        self.forget_logbooks(&[name, &shadow]);
        self.note(name, "delete", None, None);
        Ok(())
    }

    /// Forgets processor `name`, whose lock is `managed`: its record, its
    /// members (after their batches in flight), its scratch directory, and
    /// its place in the map. Returns its deployment.
    async fn remove(
        &self,
        name: &str,
        mut managed: OwnedMutexGuard<Managed>,
    ) -> Result<Deployment> {
        self.store.remove(name)?;
        managed.gone = true;
        let run = std::mem::replace(&mut managed.run, Run::Paused);
        retire(name, run).await;
        let scratch = self.scratch_dir.join(name);
        match std::fs::remove_dir_all(&scratch) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(processor = name, path = %scratch.display(), error = %e, "could not remove the scratch directory")
            }
            _ => {}
        }
        self.processors.lock().await.remove(name);
        Ok(managed.deployment.clone())
    }
}
