//! Deployments whose spec names a Kafka cluster: one connection per cluster
//! setting, opened at the first deploy that needs it and shared after; where
//! a rewind or a shadow's start moves a group, on the deployment's backend
//! (the embedded broker or the cluster, see `cluster/seek.rs`); what the
//! cluster backend cannot do is refused before anything stops.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Deployment, Result, RewindTo, Supervisor};
use crate::broker::{Moved, SeekTo};
use crate::cluster::ClusterBackend;
use crate::consumer::{Backend, ConsumerError};
use crate::group::TopicPartition;
use crate::log::LogError;

impl Supervisor {
    /// The cluster `deployment` runs against, connected once; `None` for the
    /// embedded log.
    pub(super) fn cluster_of(
        &self,
        deployment: &Deployment,
    ) -> Result<Option<Arc<ClusterBackend>>> {
        let Some(spec) = &deployment.spec.cluster else {
            return Ok(None);
        };
        let key = serde_json::to_string(spec).expect("a cluster spec serializes");
        let mut clusters = self.clusters.lock().expect("clusters lock");
        if let Some(cluster) = clusters.get(&key) {
            return Ok(Some(cluster.clone()));
        }
        let cluster = ClusterBackend::connect(spec, &self.data_dir)?;
        clusters.insert(key, cluster.clone());
        Ok(Some(cluster))
    }

    /// Where `deployment`'s members read and write.
    pub(super) fn backend_of(&self, deployment: &Deployment) -> Result<Arc<dyn Backend>> {
        Ok(match self.cluster_of(deployment)? {
            Some(cluster) => cluster,
            None => self.broker.clone(),
        })
    }

    /// Every partition `to` moves on `deployment`'s group, each resolved
    /// (writing nothing), so a bad target is refused before any member
    /// stops; on a cluster, a stateful group is refused too.
    pub(super) fn rewind_targets(
        &self,
        deployment: &Deployment,
        to: &RewindTo,
    ) -> Result<Vec<(TopicPartition, SeekTo)>> {
        let topics = &deployment.spec.topics;
        let group = deployment.group();
        let Some(cluster) = self.cluster_of(deployment)? else {
            let log = self.broker.log();
            let targets = to.targets(topics, |topic| log.partition_count(topic))?;
            self.broker.resolve_each(&group, &targets)?;
            return Ok(targets);
        };
        let mut counts = HashMap::new();
        for topic in topics {
            counts.insert(topic.clone(), cluster.count_of(topic)?);
        }
        let count = |topic: &str| {
            counts
                .get(topic)
                .copied()
                .ok_or_else(|| LogError::UnknownTopic(topic.to_string()))
        };
        let targets = to.targets(topics, count)?;
        cluster.refuse_stateful(&group, topics)?;
        cluster.resolve(&targets)?;
        Ok(targets)
    }

    /// Moves `group` (its members stopped) to `targets`, all or none, on
    /// `cluster` or else the embedded broker.
    pub(super) fn move_group(
        &self,
        cluster: Option<&ClusterBackend>,
        group: &str,
        targets: &[(TopicPartition, SeekTo)],
    ) -> std::result::Result<Vec<Moved>, ConsumerError> {
        match cluster {
            Some(cluster) => Ok(cluster.reset_each(group, targets)?),
            None => Ok(self.broker.reset_each(group, targets)?),
        }
    }

    /// Starts a shadow's group on a cluster at `from` (the live group's
    /// guest must keep no state: a shadow starts from the live state).
    pub(super) fn seed_on_cluster(
        cluster: &ClusterBackend,
        live: &Deployment,
        shadow: &Deployment,
        from: SeekTo,
    ) -> Result<()> {
        let topics = &live.spec.topics;
        cluster.refuse_stateful(&live.group(), topics)?;
        let targets = cluster.every_partition(topics, from)?;
        cluster.reset_each(&shadow.group(), &targets)?;
        Ok(())
    }
}
