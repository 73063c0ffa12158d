//! Shadow replays: a candidate version run as its own group from a chosen
//! point, with its emits in `<topic>.shadow`, then promoted or dropped.
//! Either way the shadow's group offsets, its dead-letter topic and its
//! side topics go with it (see [`super::cleanup`]).

use super::{Deployment, Entry, Result, SHADOW, Status, Supervisor, SupervisorError};
use crate::broker::SeekTo;
use crate::processor::ProcessorSpec;

impl Supervisor {
    /// Starts a shadow of `name` running `component` from `from`.
    pub async fn shadow(
        &self,
        name: &str,
        component: &str,
        label: Option<String>,
        from: SeekTo,
    ) -> Result<Status> {
        let main = self.deployment(name).await?;
        if main.shadow_of.is_some() {
            return Err(SupervisorError::Invalid(format!(
                "{name:?} is itself a shadow"
            )));
        }
        let shadow = Deployment {
            name: format!("{name}{SHADOW}"),
            component: component.to_string(),
            spec: ProcessorSpec {
                group: Some(format!("{}{SHADOW}", main.group())),
                label,
                ..main.spec.clone()
            },
            paused: false,
            paused_reason: None,
            shadow_of: Some(name.to_string()),
            from_config: false,
        };
        let guest = self.load(&shadow).await?;
        let mut processors = self.processors.lock().await;
        if processors.contains_key(&shadow.name) {
            return Err(SupervisorError::ShadowExists(name.to_string()));
        }
        if !processors.contains_key(name) {
            return Err(SupervisorError::UnknownProcessor(name.to_string()));
        }
        self.check_settings(&shadow)?;
        // The shadow starts from the live group's state at `from`, and keeps
        // its own from there.
        match self.cluster_of(&main)? {
            Some(cluster) => Supervisor::seed_on_cluster(&cluster, &main, &shadow, from)?,
            None => {
                self.broker.seed_state(
                    &main.group(),
                    &shadow.group(),
                    &shadow.spec.topics,
                    from,
                )?;
            }
        }
        let managed = self.start_new(shadow, guest)?;
        let status = self.noted("shadow", None, self.status_of(&managed));
        processors.insert(managed.deployment.name.clone(), Entry::new(managed));
        Ok(status)
    }

    /// Swaps `name` to its shadow's version and removes the shadow, as one
    /// operation: if either changed meanwhile, nothing happens (409).
    pub async fn promote(&self, name: &str) -> Result<Status> {
        let shadow = format!("{name}{SHADOW}");
        let candidate = self
            .deployment(&shadow)
            .await
            .map_err(|_| SupervisorError::NoShadow(name.to_string()))?;
        let current = self.deployment(name).await?;
        let next = Deployment {
            component: candidate.component.clone(),
            spec: ProcessorSpec {
                label: candidate.spec.label.clone(),
                ..current.spec.clone()
            },
            ..current.clone()
        };
        let guest = self.load(&next).await?;
        // The live processor's lock, then its shadow's (never the other way).
        let mut live = self.lock(name).await?;
        let changed = || {
            SupervisorError::Conflict(format!(
                "the shadow of {name:?} changed during the promotion; try again"
            ))
        };
        let candidate_now = self.lock(&shadow).await.map_err(|_| changed())?;
        if candidate_now.deployment != candidate {
            return Err(changed());
        }
        let status = self
            .apply_swap(&mut live, &current, next, guest, None)
            .await?;
        let removed = self.remove(&shadow, candidate_now).await?;
        self.clear_after(&[removed], false).await?;
        self.forget_logbooks(&[&shadow]);
        Ok(self.noted("promote", None, status))
    }

    /// Stops and forgets `name`'s shadow, with its group, dead-letter and
    /// side topics.
    pub async fn drop_shadow(&self, name: &str) -> Result<()> {
        let shadow = format!("{name}{SHADOW}");
        let managed = self
            .lock(&shadow)
            .await
            .map_err(|_| SupervisorError::NoShadow(name.to_string()))?;
        let removed = self.remove(&shadow, managed).await?;
        self.clear_after(&[removed], false).await?;
        self.forget_logbooks(&[&shadow]);
        Ok(())
    }
}
