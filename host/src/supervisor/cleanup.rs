//! What a removed processor leaves behind, removed with it: its group's
//! committed offsets and coordinator record (so the group leaves `group list`
//! and its lag leaves `/metrics`), its guest state (changelog topics and local
//! store, so a new processor of the same name starts with none), its
//! dead-letter topic `<name>.dlq` (unless kept), and, for a shadow, the
//! `<topic>.shadow` side topics its emits went to.
//!
//! Nothing another processor still uses is removed: a topic a remaining
//! processor reads stays, and side topics stay while another shadow runs
//! (shadows of processors with a common output share a side topic).
//!
//! The same goes for a processor that `weir.toml` declared and no longer
//! does ([`Supervisor::remove_undeclared`]); one deployed through the API is
//! never touched by the file.

use super::{Deployment, Result, SHADOW, Supervisor, SupervisorError};

/// The groups and topics to remove after some deployments were removed.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Leftovers {
    groups: Vec<String>,
    /// Groups whose guest state goes, with the input topics it was kept for.
    states: Vec<(String, Vec<String>)>,
    topics: Vec<String>,
}

impl Supervisor {
    /// Before [`Supervisor::restore_with`]: removes every recorded processor
    /// that came from the configuration file and is not in `declared` any
    /// more, with its shadow and leftovers (as a delete does, dead-letter
    /// topic included). Returns their names.
    pub async fn remove_undeclared(&self, declared: &[String]) -> Result<Vec<String>> {
        let processors = self.processors.lock().await;
        let recorded = self.store.load_all()?;
        let undeclared =
            |d: &Deployment| d.from_config && d.shadow_of.is_none() && !declared.contains(&d.name);
        let doomed: Vec<String> = recorded
            .iter()
            .filter(|d| undeclared(d) && !processors.contains_key(&d.name))
            .map(|d| d.name.clone())
            .collect();
        let (removed, remain): (Vec<Deployment>, Vec<Deployment>) =
            recorded.into_iter().partition(|d| {
                doomed.contains(&d.name) || d.shadow_of.as_ref().is_some_and(|m| doomed.contains(m))
            });
        for deployment in &removed {
            self.store.remove(&deployment.name)?;
            tracing::info!(processor = %deployment.name, "removed: no longer in the configuration");
        }
        let leftovers = self.leftovers(&removed, remain.iter(), false);
        self.clear(leftovers).await?;
        Ok(doomed)
    }

    /// Removes what `removed` (already out of the records) leave behind, given
    /// the processors still recorded.
    pub(super) async fn clear_after(&self, removed: &[Deployment], keep_dlq: bool) -> Result<()> {
        let remain = self.store.load_all()?;
        let leftovers = self.leftovers(removed, remain.iter(), keep_dlq);
        self.clear(leftovers).await
    }

    /// What `removed` leave behind, given the deployments that `remain`;
    /// `keep_dlq` keeps their dead-letter topics.
    pub(super) fn leftovers<'a>(
        &self,
        removed: &[Deployment],
        remain: impl Iterator<Item = &'a Deployment> + Clone,
        keep_dlq: bool,
    ) -> Leftovers {
        let existing: Vec<String> = self
            .broker
            .log()
            .topics()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let mut leftovers = Leftovers::default();
        // A processor on a Kafka cluster left nothing in the embedded log;
        // its group and dead-letter topic in the cluster are the cluster
        // owner's to remove.
        for deployment in removed.iter().filter(|d| d.spec.cluster.is_none()) {
            leftovers.groups.push(deployment.group());
            let topics = deployment.spec.topics.clone();
            leftovers.states.push((deployment.group(), topics));
            if !keep_dlq {
                leftovers.topics.push(format!("{}.dlq", deployment.name));
            }
        }
        let shadows_remain = remain.clone().any(|d| d.shadow_of.is_some());
        if removed.iter().any(|d| d.shadow_of.is_some()) {
            if shadows_remain {
                tracing::info!("side topics kept: another shadow still runs");
            } else {
                let sides = existing.iter().filter(|t| t.ends_with(SHADOW));
                leftovers.topics.extend(sides.cloned());
            }
        }
        let read = |topic: &String| remain.clone().any(|d| d.spec.topics.contains(topic));
        leftovers
            .topics
            .retain(|t| existing.contains(t) && !read(t));
        leftovers
    }

    /// Removes `leftovers`; every removal is tried, the first failure is
    /// returned.
    pub(super) async fn clear(&self, leftovers: Leftovers) -> Result<()> {
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || {
            let mut first = None;
            for group in &leftovers.groups {
                if let Err(e) = broker.delete_group(group) {
                    tracing::error!(group, error = %crate::error::chain(&e), "could not forget a removed group's offsets");
                    first.get_or_insert(SupervisorError::from(e));
                }
            }
            for (group, topics) in &leftovers.states {
                if let Err(e) = broker.delete_state(group, topics) {
                    tracing::error!(group, error = %crate::error::chain(&e), "could not remove a removed group's state");
                    first.get_or_insert(SupervisorError::from(e));
                }
            }
            for topic in &leftovers.topics {
                match broker.delete_topic(topic) {
                    Ok(()) => tracing::info!(topic, "removed with its processor"),
                    Err(e) => {
                        tracing::error!(topic, error = %crate::error::chain(&e), "could not remove a removed processor's topic");
                        first.get_or_insert(SupervisorError::from(e));
                    }
                }
            }
            first.map_or(Ok(()), Err)
        })
        .await
        .map_err(SupervisorError::Task)?
    }
}
