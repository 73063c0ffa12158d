//! How the supervisor brings a deployment's members to life and retires them:
//! loading and probing the component, starting the members, resetting the
//! group's offsets, recording a new processor, and noticing members that
//! stopped on an error.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::{Deployment, Managed, Result, Run, SHADOW, Status, Supervisor, SupervisorError};
use crate::broker::{ResetPolicy, SeekTo};
use crate::processor::Instances;
use crate::runtime::{Guest, Handler, RuntimeError};

impl Supervisor {
    /// Loads (compiles or finds in the cache) and probes a deployment's
    /// component, off the async threads.
    pub(super) async fn load(&self, deployment: &Deployment) -> Result<Arc<dyn Handler>> {
        let wasm = self.store.component(&deployment.component)?;
        let path = self.store.component_path(&deployment.component);
        let scratch = self.scratch_dir.join(&deployment.name);
        let spec = deployment.spec.guest_spec(&deployment.name, Some(scratch));
        let runtime = self.runtime.clone();
        let guest: Guest = tokio::task::spawn_blocking(move || {
            let guest = runtime.load(&wasm, &path, spec)?;
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
        if deployment.spec.reset != ResetPolicy::Latest {
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
            self.broker.clone(),
            guest,
            deployment.spec.instances,
        )?)
    }

    /// Resets a deployment's group (whose members are stopped) to `to`.
    pub(super) fn reset(&self, deployment: &Deployment, to: Option<SeekTo>) -> Result<()> {
        if let Some(to) = to {
            let group = deployment.group();
            self.broker
                .reset(&group, &deployment.spec.topics, None, to)?;
        }
        Ok(())
    }

    /// Records a new processor and returns its status; if the record cannot
    /// be written the processor is stopped again.
    pub(super) async fn record(
        &self,
        deployment: &Deployment,
        run: Run,
        processors: &mut BTreeMap<String, Managed>,
    ) -> Result<Status> {
        if let Err(e) = self.store.save(deployment) {
            retire(&deployment.name, run).await;
            return Err(e);
        }
        let managed = Managed {
            deployment: deployment.clone(),
            run,
        };
        let status = self.status_of(&managed);
        processors.insert(deployment.name.clone(), managed);
        Ok(status)
    }

    /// Watches for members that stopped on an error, every `period`, until
    /// the supervisor is dropped: such a processor is stopped and marked failed.
    pub fn watch_failures(self: &Arc<Self>, period: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(supervisor) = weak.upgrade() else {
                    return;
                };
                let mut processors = supervisor.processors.lock().await;
                for managed in processors.values_mut() {
                    notice_failure(managed).await;
                }
            }
        });
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

/// Marks a processor failed if one of its members stopped on an error.
pub(super) async fn notice_failure(managed: &mut Managed) {
    let failed = match &mut managed.run {
        Run::Running(instances) => instances.has_failed(),
        _ => false,
    };
    if failed && let Run::Running(instances) = std::mem::replace(&mut managed.run, Run::Paused) {
        let message = match instances.stop().await {
            Err(e) => crate::error::chain(&e),
            Ok(_) => "a member stopped".to_string(),
        };
        tracing::error!(processor = %managed.deployment.name, error = %message, "processor failed");
        managed.run = Run::Failed(message);
    }
}
