//! A processor's status as the API shows it: what it runs, its state, and its
//! group's position and lag on every input partition.

use serde::Serialize;

use super::members::notice_failure;
use super::{Managed, Result, Run, SHADOW, Supervisor};
use crate::group::TopicPartition;
use crate::processor::ProcessorError;
use crate::processor::ProcessorSpec;
use crate::runtime::version_id;

/// Whether a processor's members run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
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
    /// Why it failed, when it did.
    pub error: Option<String>,
    pub shadow_of: Option<String>,
    /// The shadow's name, when one runs.
    pub shadow: Option<String>,
    /// Records left to process, over every input partition.
    pub lag: u64,
    /// Records processed by the members running now.
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
        let partitions: Vec<PartitionStatus> = self
            .broker
            .lag(&group, &d.spec.topics)
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
        let (state, error, processed) = match &managed.run {
            Run::Running(instances) => {
                let stats = instances.stats();
                let processed = stats.iter().map(|s| s.records()).sum();
                paused.extend(stats.iter().flat_map(|s| s.paused_partitions()));
                (State::Running, None, processed)
            }
            Run::Paused => (State::Paused, None, 0),
            Run::Failed(e) => (State::Failed, Some(e.clone()), 0),
        };
        let shadow = format!("{}{SHADOW}", d.name);
        Status {
            name: d.name.clone(),
            component: d.component.clone(),
            version: version_id(&d.component, d.spec.label.as_deref()),
            state,
            error,
            shadow_of: d.shadow_of.clone(),
            shadow: self
                .store
                .exists(&shadow)
                .then_some(shadow)
                .filter(|_| d.shadow_of.is_none()),
            lag: partitions.iter().map(|p| p.lag).sum(),
            processed,
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
        let mut processors = self.processors.lock().await;
        let managed = self.get(&mut processors, name)?;
        notice_failure(managed).await;
        Ok(self.status_of(managed))
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

    /// Every processor's status, by name.
    pub async fn list(&self) -> Vec<Status> {
        let mut processors = self.processors.lock().await;
        let mut out = Vec::new();
        for managed in processors.values_mut() {
            notice_failure(managed).await;
            out.push(self.status_of(managed));
        }
        out
    }

    /// The processor reading `topic`, or dead-lettering to it, if any (a topic
    /// in use is not deleted).
    pub async fn reader_of(&self, topic: &str) -> Option<String> {
        let processors = self.processors.lock().await;
        processors
            .values()
            .find(|m| {
                m.deployment.spec.topics.iter().any(|t| t == topic)
                    || format!("{}.dlq", m.deployment.name) == topic
            })
            .map(|m| m.deployment.name.clone())
    }
}
