//! The map of processors and its locks: each processor sits behind its own
//! lock, and the map keeps beside it what checks across processors read (its
//! group, the topics it reads or dead-letters to), so those checks run under
//! the map's lock alone and never wait for a busy processor. The map's lock
//! is held only briefly, never while members stop; the lock order is a
//! processor's lock, then the map's. The checks of a deployment's names,
//! group and settings live here too.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{Deployment, Managed, Result, SHADOW, Supervisor, SupervisorError};
use crate::log::LogError;

/// A processor as the map keeps it: its lock, and beside it what checks
/// across processors read (its group and the topics it reads or writes its
/// dead letters to), kept in step with its deployment, so those checks never
/// wait for a busy processor.
pub(super) struct Entry {
    pub(super) group: String,
    pub(super) topics: Vec<String>,
    pub(super) managed: Arc<Mutex<Managed>>,
}

impl Entry {
    pub(super) fn new(managed: Managed) -> Entry {
        let (group, topics) = claims(&managed.deployment);
        Entry {
            group,
            topics,
            managed: Arc::new(Mutex::new(managed)),
        }
    }
}

/// The group and the topics a deployment holds on to.
fn claims(deployment: &Deployment) -> (String, Vec<String>) {
    let mut topics = deployment.spec.topics.clone();
    topics.push(format!("{}.dlq", deployment.name));
    (deployment.group(), topics)
}

impl Supervisor {
    /// Processor `name`, its lock held: every operation on one processor
    /// goes through here, so operations on others never wait for it.
    pub(super) async fn lock(&self, name: &str) -> Result<OwnedMutexGuard<Managed>> {
        let unknown = || SupervisorError::UnknownProcessor(name.to_string());
        let managed = {
            let processors = self.processors.lock().await;
            processors.get(name).ok_or_else(unknown)?.managed.clone()
        };
        let managed = managed.lock_owned().await;
        if managed.gone {
            return Err(unknown());
        }
        Ok(managed)
    }

    /// Checks that `deployment`'s group is free and its topics exist, and
    /// records them as its claims (under the map's lock, so two changes
    /// cannot take one group, nor a topic be deleted under a new reader).
    pub(super) async fn claim(&self, deployment: &Deployment) -> Result<()> {
        let mut processors = self.processors.lock().await;
        check_group(deployment, &processors)?;
        self.check_settings(deployment)?;
        if let Some(entry) = processors.get_mut(&deployment.name) {
            (entry.group, entry.topics) = claims(deployment);
        }
        Ok(())
    }

    /// Puts `deployment`'s claims back as they are (after a failed change).
    pub(super) async fn follow(&self, deployment: &Deployment) {
        if let Some(entry) = self.processors.lock().await.get_mut(&deployment.name) {
            (entry.group, entry.topics) = claims(deployment);
        }
    }

    /// Deletes `topic` with `delete` unless a processor reads it or
    /// dead-letters to it, holding the map's lock across the check and the
    /// deletion, so no processor starts reading it in between.
    pub async fn delete_topic<F, E>(&self, topic: &str, delete: F) -> Result<Result<(), E>>
    where
        F: FnOnce() -> Result<(), E> + Send + 'static,
        E: Send + 'static,
    {
        let processors = self.processors.lock().await;
        let reader = processors
            .iter()
            .find(|(_, e)| e.topics.iter().any(|t| t == topic));
        if let Some((processor, _)) = reader {
            return Err(SupervisorError::TopicInUse {
                topic: topic.to_string(),
                processor: processor.clone(),
            });
        }
        let deleted = tokio::task::spawn_blocking(delete)
            .await
            .map_err(SupervisorError::Task)?;
        drop(processors);
        Ok(deleted)
    }
}

impl Supervisor {
    /// Checks a new deployment's names and settings.
    pub(super) fn check_new(&self, deployment: &Deployment) -> Result<()> {
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
    pub(super) fn check_settings(&self, deployment: &Deployment) -> Result<()> {
        deployment.spec.validate()?;
        if let Some(cluster) = self.cluster_of(deployment)? {
            return Ok(cluster.check_topics(&deployment.spec)?);
        }
        for topic in &deployment.spec.topics {
            self.broker.log().partition_count(topic)?;
        }
        deployment.spec.check_topics(self.broker.log())?;
        Ok(())
    }
}

/// Refuses an invalid or reserved group name.
pub(super) fn check_group_name(deployment: &Deployment) -> Result<()> {
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
pub(super) fn check_group(
    deployment: &Deployment,
    processors: &BTreeMap<String, Entry>,
) -> Result<()> {
    let group = deployment.group();
    let other = processors
        .iter()
        .find(|(name, e)| **name != deployment.name && e.group == group);
    match other {
        Some((other, _)) => Err(SupervisorError::Conflict(format!(
            "group {group:?} is used by processor {other:?}"
        ))),
        None => Ok(()),
    }
}
