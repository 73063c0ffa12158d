//! Deploying a new version of a running processor (`swap`): the checks made
//! before anything stops, and applying it to running, paused or failed members.

use std::sync::Arc;

use super::{Deployment, Managed, Result, Run, Status, Supervisor, SupervisorError};
use super::{RewindTo, check_group_name};
use crate::broker::SeekTo;
use crate::error::chain as error_chain;
use crate::processor::SpecChanges;
use crate::runtime::Handler;

impl Supervisor {
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
        if let Some(to) = rewind {
            // A bad target is refused before any member stops.
            self.rewind_targets(&next, &RewindTo::All(to))?;
        }
        let guest = self.load(&next).await?;
        let mut managed = self.lock(name).await?;
        self.claim(&next).await?;
        let swapped = self
            .apply_swap(&mut managed, &current, next, guest, rewind)
            .await;
        if swapped.is_err() {
            self.follow(&managed.deployment).await;
        }
        let rewound = rewind.map(|to| format!("rewind to {}", crate::wire::position(to)));
        swapped.map(|status| self.noted("swap", rewound, status))
    }

    /// A copy of `name`'s record.
    pub async fn deployment(&self, name: &str) -> Result<Deployment> {
        Ok(self.lock(name).await?.deployment.clone())
    }

    /// Swaps in `next` (already loaded as `guest`) if `managed` is still as
    /// `current` says. The record is written first and put back if applying
    /// fails, so it never names a version other than the one that runs.
    pub(super) async fn apply_swap(
        &self,
        managed: &mut Managed,
        current: &Deployment,
        next: Deployment,
        guest: Arc<dyn Handler>,
        rewind: Option<SeekTo>,
    ) -> Result<Status> {
        if managed.deployment != *current {
            return Err(SupervisorError::Conflict(format!(
                "processor {:?} changed while the new version loaded; try again",
                current.name
            )));
        }
        // A member that failed on the old version must not stand in the way
        // of the fix: the processor counts as failed, and starts afresh.
        self.notice_failure(managed).await;
        // A breaker's pause is lifted by a new version, as a failure is.
        let next = Deployment {
            paused: next.paused && next.paused_reason.is_none(),
            paused_reason: None,
            ..next
        };
        self.store.save(&next)?;
        let version = guest.version().to_string();
        if !next.paused && managed.deployment.paused {
            managed.run = Run::Failed("paused by the circuit breaker".into());
        }
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
            let processed = old.processed();
            if let Err(e) = old.retire().await {
                tracing::warn!(processor = %current.name, error = %error_chain(&e), "a member had failed");
            }
            managed.processed_before += processed.total();
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
        crate::processor::Stats::register(&next.name, &version);
        managed.deployment = next;
        Ok(self.status_of(managed))
    }
}
