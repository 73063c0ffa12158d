//! How the supervisor brings a deployment's members to life and retires them:
//! loading and probing the component, starting the members, resetting the
//! group's offsets, recording a new processor, stopping members with their
//! counts kept, and noticing members that stopped on an error (or tripped
//! their circuit breaker).

use std::sync::Arc;
use std::time::Duration;

use super::{Deployment, Managed, Result, Run, SHADOW, Supervisor, SupervisorError};
use crate::broker::{ResetPolicy, SeekTo};
use crate::error::chain as error_chain;
use crate::processor::{Instances, Processor, ProcessorError, WhenTripped};
use crate::runtime::{Guest, Handler, RuntimeError};

impl Supervisor {
    /// Loads (compiles or finds in the cache) and probes a deployment's
    /// component, off the async threads.
    pub(super) async fn load(&self, deployment: &Deployment) -> Result<Arc<dyn Handler>> {
        let wasm = self.store.component(&deployment.component)?;
        let path = self.store.component_path(&deployment.component);
        let scratch = self.scratch_dir.join(&deployment.name);
        let mut spec = deployment.spec.guest_spec(&deployment.name, Some(scratch));
        spec.logbook = Some(self.logbook(&deployment.name));
        let runtime = self.runtime.clone();
        let cluster = self.cluster_of(deployment)?;
        let guest: Guest = tokio::task::spawn_blocking(move || {
            let mut guest = runtime.load(&wasm, &path, spec)?;
            if let Some(cluster) = cluster {
                guest = guest.emitting_to(cluster);
            }
            guest.probe()?;
            Ok::<_, RuntimeError>(guest)
        })
        .await
        .map_err(SupervisorError::Task)??;
        Ok(Arc::new(guest))
    }

    /// With `reset: latest`, commits the end of every input partition the
    /// group has no offset for yet, so "latest" means "from the deploy on":
    /// records produced while the processor is paused or restarting before
    /// its first commit are not skipped (what Kafka's auto-commit of the
    /// reset position achieves).
    pub(super) fn commit_latest(&self, deployment: &Deployment) -> Result<()> {
        // A cluster's consumers apply the reset policy themselves.
        if deployment.spec.reset != ResetPolicy::Latest || deployment.spec.cluster.is_some() {
            return Ok(());
        }
        let group = deployment.group();
        let committed = self.broker.offsets().of_group(&group);
        for topic in &deployment.spec.topics {
            for partition in 0..self.broker.log().partition_count(topic)? {
                let known = committed
                    .iter()
                    .any(|(t, p, _)| t == topic && *p == partition);
                if !known {
                    let topics = std::slice::from_ref(topic);
                    self.broker
                        .reset(&group, topics, Some(partition), SeekTo::Latest)?;
                }
            }
        }
        Ok(())
    }

    /// Loads and starts a deployment, or leaves it paused.
    pub(super) async fn launch(&self, deployment: &Deployment) -> Result<Run> {
        if deployment.paused {
            // Still check that what would resume exists.
            self.store.component(&deployment.component)?;
            return Ok(Run::Paused);
        }
        let guest = self.load(deployment).await?;
        Ok(Run::Running(Box::new(self.start(deployment, guest)?)))
    }

    pub(super) fn start(
        &self,
        deployment: &Deployment,
        guest: Arc<dyn Handler>,
    ) -> Result<Instances> {
        let mut config = deployment.spec.processor_config(&deployment.name);
        config.group = Some(deployment.group());
        if deployment.shadow_of.is_some() {
            config.emit_suffix = Some(SHADOW.to_string());
        }
        crate::processor::Stats::register(&deployment.name, guest.version());
        Ok(Instances::start(
            config,
            self.backend_of(deployment)?,
            guest,
            deployment.spec.instances,
        )?)
    }

    /// Resets a deployment's group (whose members are stopped) to `to`.
    pub(super) fn reset(&self, deployment: &Deployment, to: Option<SeekTo>) -> Result<()> {
        if let Some(to) = to {
            let group = deployment.group();
            match self.cluster_of(deployment)? {
                Some(cluster) => {
                    let targets = cluster.every_partition(&deployment.spec.topics, to)?;
                    cluster.reset_each(&group, &targets)?;
                }
                None => {
                    self.broker
                        .reset(&group, &deployment.spec.topics, None, to)?;
                }
            }
        }
        Ok(())
    }

    /// Records a new processor and starts its members; if they cannot
    /// start, the record goes again.
    pub(super) fn start_new(
        &self,
        deployment: Deployment,
        guest: Arc<dyn Handler>,
    ) -> Result<Managed> {
        self.store.save(&deployment)?;
        match self.start(&deployment, guest) {
            Ok(instances) => Ok(Managed::new(deployment, Run::Running(Box::new(instances)))),
            Err(e) => {
                if let Err(undo) = self.store.remove(&deployment.name) {
                    tracing::error!(processor = %deployment.name, error = %error_chain(&undo), "could not remove the record");
                }
                Err(e)
            }
        }
    }

    /// Marks a processor failed if one of its members stopped on an error.
    /// A tripped circuit breaker pauses it instead (recorded, with the
    /// reason) when its `when_tripped` says so.
    pub(super) async fn notice_failure(&self, managed: &mut Managed) {
        let failed = match &mut managed.run {
            Run::Running(instances) => instances.has_failed(),
            _ => false,
        };
        if !failed {
            return;
        }
        let (message, tripped) = match managed.stop(Run::Paused).await {
            Some(Err(e)) => (error_chain(&e), matches!(e, ProcessorError::Tripped { .. })),
            _ => ("a member stopped".to_string(), false),
        };
        let name = managed.deployment.name.clone();
        if tripped && managed.deployment.spec.when_tripped == WhenTripped::Pause {
            let paused = Deployment {
                paused: true,
                paused_reason: Some(message.clone()),
                ..managed.deployment.clone()
            };
            match self.store.save(&paused) {
                Ok(()) => {
                    tracing::error!(processor = %name, reason = %message, "processor paused by its circuit breaker");
                    managed.deployment = paused;
                    managed.run = Run::Paused;
                    return;
                }
                Err(e) => {
                    tracing::error!(processor = %name, error = %error_chain(&e), "could not record the pause")
                }
            }
        }
        tracing::error!(processor = %name, error = %message, "processor failed");
        managed.run = Run::Failed(message);
    }

    /// Watches for members that stopped on an error, every `period`, until
    /// the supervisor is dropped: such a processor is stopped and marked
    /// failed (or paused by its breaker). A processor busy with an operation
    /// is looked at next time.
    pub fn watch_failures(self: &Arc<Self>, period: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(supervisor) = weak.upgrade() else {
                    return;
                };
                let all: Vec<_> = {
                    let processors = supervisor.processors.lock().await;
                    processors.values().map(|e| e.managed.clone()).collect()
                };
                for managed in all {
                    if let Ok(mut managed) = managed.try_lock() {
                        supervisor.notice_failure(&mut managed).await;
                    }
                }
            }
        });
    }
}

impl Managed {
    /// Takes the running members out, leaving `then` in their place, and
    /// stops them after their batches in flight; what they processed stays
    /// counted. `None` (and `run` as it was) when none ran.
    pub(super) async fn stop(
        &mut self,
        then: Run,
    ) -> Option<std::result::Result<Vec<Processor>, ProcessorError>> {
        match std::mem::replace(&mut self.run, then) {
            Run::Running(instances) => {
                let processed = instances.processed();
                let stopped = instances.stop().await;
                self.processed_before += processed.total();
                Some(stopped)
            }
            other => {
                self.run = other;
                None
            }
        }
    }
}

/// Stops a removed processor's members for good; a member that had failed
/// is logged, not an error (the processor is going away).
pub(super) async fn retire(name: &str, run: Run) {
    if let Run::Running(instances) = run
        && let Err(e) = instances.retire().await
    {
        tracing::warn!(processor = name, error = %crate::error::chain(&e), "a member had failed");
    }
}
