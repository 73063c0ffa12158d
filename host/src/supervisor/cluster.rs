//! Deployments whose spec names a Kafka cluster: one connection per cluster
//! setting, opened at the first deploy that needs it and shared after; what
//! the cluster backend cannot do (rewinds, shadows) is refused before
//! anything stops.

use std::sync::Arc;

use super::{Deployment, Result, Supervisor, SupervisorError};
use crate::cluster::{ClusterBackend, ClusterError};
use crate::consumer::Backend;

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

    /// Refuses `what` for a deployment on a cluster.
    pub(super) fn refuse_on_cluster(deployment: &Deployment, what: &str) -> Result<()> {
        match deployment.spec.cluster {
            Some(_) => Err(SupervisorError::Cluster(ClusterError::Unsupported(
                what.into(),
            ))),
            None => Ok(()),
        }
    }
}
