//! A processor's status as the API shows it: what it runs, its state, and its
//! group's position and lag on every input partition.

use serde::Serialize;

use super::{Managed, Result, Run, SHADOW, Supervisor};
use crate::group::TopicPartition;
use crate::processor::ProcessorError;
use crate::processor::ProcessorSpec;
use crate::runtime::version_id;

/// How a tripped breaker's error begins (see [`ProcessorError::Tripped`]).
const BREAKER_TRIPPED: &str = "circuit breaker tripped";

/// Whether a processor's members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    /// Running, but a member's batch keeps failing: it backs off and calls
    /// again (`attempts` and `last_error` say how often and why).
    Retrying,
    Paused,
    Failed,
}

/// One input partition, as the processor's group sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    pub topic: String,
    pub partition: u32,
    pub committed: Option<u64>,
    pub high_watermark: u64,
    pub lag: u64,
}

/// A processor's status: its state and position beside every setting of its
/// spec (flattened, with `group` always the group its members join).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub name: String,
    pub component: String,
    /// `label@hash` or `sha256:hash`, as in the `weir.version` header.
    pub version: String,
    pub state: State,
    /// Why it failed, or why its circuit breaker paused it.
    pub error: Option<String>,
    /// Whether it is paused or failed because its circuit breaker tripped.
    pub breaker_tripped: bool,
    /// While retrying: the failed attempts at the batch in flight (the most
    /// over the members).
    pub attempts: u32,
    /// While retrying: why that member's last attempt failed.
    pub last_error: Option<String>,
    pub shadow_of: Option<String>,
    /// The shadow's name, when one runs.
    pub shadow: Option<String>,
    /// Records left to process, over every input partition.
    pub lag: u64,
    /// Records processed since the host started (or the processor was
    /// deployed): it only grows, across pauses, scales and restarts of the
    /// members.
    pub processed: u64,
    pub partitions: Vec<PartitionStatus>,
    /// Partitions a member stopped fetching after a record kept failing.
    pub paused_partitions: Vec<TopicPartition>,
    #[serde(flatten)]
    pub spec: ProcessorSpec,
}

impl Supervisor {
    pub(super) fn status_of(&self, managed: &Managed) -> Status {
        let d = &managed.deployment;
        let group = d.group();
        let lag = match self.cluster_of(d) {
            Ok(Some(cluster)) => cluster.lag(&group, &d.spec.topics).ok(),
            Ok(None) => self.broker.lag(&group, &d.spec.topics).ok(),
            Err(_) => None,
        };
        let partitions: Vec<PartitionStatus> = lag
            .unwrap_or_default()
            .into_iter()
            .map(|l| PartitionStatus {
                topic: l.topic,
                partition: l.partition,
                committed: l.committed,
                high_watermark: l.high_watermark,
                lag: l.lag,
            })
            .collect();
        let mut paused = Vec::new();
        let (mut attempts, mut last_error) = (0, None);
        let (state, error, processed) = match &managed.run {
            Run::Running(instances) => {
                let stats = instances.stats();
                paused.extend(stats.iter().flat_map(|s| s.paused_partitions()));
                for (tries, error) in stats.iter().map(|s| s.retrying()) {
                    if tries > attempts {
                        (attempts, last_error) = (tries, error);
                    }
                }
                let state = match attempts {
                    0 => State::Running,
                    _ => State::Retrying,
                };
                (state, None, instances.processed().total())
            }
            Run::Paused => (State::Paused, d.paused_reason.clone(), 0),
            Run::Failed(e) => (State::Failed, Some(e.clone()), 0),
        };
        let breaker_tripped = error
            .as_deref()
            .is_some_and(|e| e.starts_with(BREAKER_TRIPPED));
        let shadow = format!("{}{SHADOW}", d.name);
        Status {
            name: d.name.clone(),
            component: d.component.clone(),
            version: version_id(&d.component, d.spec.label.as_deref()),
            state,
            error,
            breaker_tripped,
            attempts,
            last_error,
            shadow_of: d.shadow_of.clone(),
            shadow: self
                .store
                .exists(&shadow)
                .then_some(shadow)
                .filter(|_| d.shadow_of.is_none()),
            lag: partitions.iter().map(|p| p.lag).sum(),
            processed: managed.processed_before + processed,
            partitions,
            paused_partitions: paused,
            spec: ProcessorSpec {
                group: Some(group),
                ..d.spec.clone()
            },
        }
    }
}

/// Reading how processors are doing.
impl Supervisor {
    /// One processor's status.
    pub async fn status(&self, name: &str) -> Result<Status> {
        let mut managed = self.lock(name).await?;
        self.notice_failure(&mut managed).await;
        Ok(self.status_of(&managed))
    }

    /// The committed state entry under `key` of processor `name`, on
    /// `partition` or the first input partition that has it.
    pub async fn state(
        &self,
        name: &str,
        key: &str,
        partition: Option<u32>,
    ) -> Result<Option<crate::wire::StateEntry>> {
        let deployment = self.deployment(name).await?;
        let group = deployment.group();
        for topic in &deployment.spec.topics {
            let found = self
                .broker
                .state_get(&group, topic, partition, key.as_bytes())
                .map_err(ProcessorError::from)?;
            if let Some((p, value)) = found {
                return Ok(Some(crate::wire::StateEntry::new(topic, p, key, &value)));
            }
        }
        Ok(None)
    }

    /// Every processor's status, by name (one busy with an operation is
    /// waited for).
    pub async fn list(&self) -> Vec<Status> {
        let all: Vec<_> = {
            let processors = self.processors.lock().await;
            processors.values().map(|e| e.managed.clone()).collect()
        };
        let mut out = Vec::new();
        for managed in all {
            let mut managed = managed.lock().await;
            if managed.gone {
                continue;
            }
            self.notice_failure(&mut managed).await;
            out.push(self.status_of(&managed));
        }
        out
    }
}
