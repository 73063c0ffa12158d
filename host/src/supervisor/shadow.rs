//! Shadow replays: a candidate version run as its own group from a chosen
//! point, with its emits in `<topic>.shadow`, then promoted or dropped.

use super::members::retire;
use super::{Deployment, Result, Run, SHADOW, Status, Supervisor, SupervisorError};
use crate::group::admin::SeekTo;

impl Supervisor {
    /// Starts a shadow of `name` running `component` from `from`.
    pub async fn shadow(
        &self,
        name: &str,
        component: &str,
        label: Option<String>,
        from: SeekTo,
    ) -> Result<Status> {
        let mut processors = self.processors.lock().await;
        let main = &self.get(&mut processors, name)?.deployment;
        if main.shadow_of.is_some() {
            return Err(SupervisorError::Invalid(format!(
                "{name:?} is itself a shadow"
            )));
        }
        let shadow = Deployment {
            name: format!("{name}{SHADOW}"),
            group: Some(format!("{}{SHADOW}", main.group())),
            component: component.to_string(),
            label,
            paused: false,
            shadow_of: Some(name.to_string()),
            ..main.clone()
        };
        if processors.contains_key(&shadow.name) {
            return Err(SupervisorError::ShadowExists(name.to_string()));
        }
        let guest = self.load(&shadow).await?;
        self.reset(&shadow, Some(from))?;
        let run = Run::Running(Box::new(self.start(&shadow, guest)?));
        self.record(&shadow, run, &mut processors).await
    }

    /// Swaps `name` to its shadow's version and removes the shadow.
    pub async fn promote(&self, name: &str) -> Result<Status> {
        let shadow = format!("{name}{SHADOW}");
        let candidate = {
            let processors = self.processors.lock().await;
            let managed = processors
                .get(&shadow)
                .ok_or_else(|| SupervisorError::NoShadow(name.to_string()))?;
            managed.deployment.clone()
        };
        let status = self
            .swap(name, &candidate.component, candidate.label, None)
            .await?;
        self.drop_shadow(name).await?;
        Ok(status)
    }

    /// Stops and forgets `name`'s shadow (its `.shadow` topics stay).
    pub async fn drop_shadow(&self, name: &str) -> Result<()> {
        let shadow = format!("{name}{SHADOW}");
        let mut processors = self.processors.lock().await;
        let managed = processors
            .remove(&shadow)
            .ok_or_else(|| SupervisorError::NoShadow(name.to_string()))?;
        self.store.remove(&shadow)?;
        retire(&shadow, managed.run).await;
        Ok(())
    }
}
