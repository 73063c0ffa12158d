//! How a member follows the rebalances librdkafka runs during a poll: the
//! context that records them, and applying them to the member's partitions
//! (a partition gained has its state restored and a pending rewind applied).

use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};

use super::{ClusterConsumer, name};
use crate::cluster::seek::{clear_pending, pending_target};
use crate::cluster::{ClusterError, partitions_of};
use crate::group::TopicPartition;

/// Follows the rebalances librdkafka runs during a poll.
#[derive(Default)]
pub(in crate::cluster) struct Rebalances {
    /// Partitions revoked since the member last looked.
    revoked: Mutex<Vec<(String, u32)>>,
    /// Partitions assigned since the member last looked.
    assigned: Mutex<Vec<(String, u32)>>,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => self
                .revoked
                .lock()
                .expect("rebalance lock")
                .extend(partitions_of(tpl)),
            Rebalance::Assign(tpl) => self
                .assigned
                .lock()
                .expect("rebalance lock")
                .extend(partitions_of(tpl)),
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance failed"),
        }
    }
}

impl ClusterConsumer {
    /// Applies the revocations and assignments librdkafka reported: a newly
    /// assigned partition's state is restored first, and a pending rewind of
    /// a partition gained is applied.
    pub(super) fn follow(&mut self) -> Result<(), ClusterError> {
        let context = self.consumer.context();
        let revoked = std::mem::take(&mut *context.revoked.lock().expect("rebalance lock"));
        let assigned = std::mem::take(&mut *context.assigned.lock().expect("rebalance lock"));
        if revoked.is_empty() && assigned.is_empty() {
            return Ok(());
        }
        for (topic, partition) in &revoked {
            self.partitions
                .remove(&TopicPartition::new(topic.clone(), *partition));
        }
        for (topic, partition) in assigned {
            let tp = TopicPartition::new(topic, partition);
            if !self.partitions.contains_key(&tp) {
                self.txn.restore(&tp)?;
            }
            self.partitions.entry(tp.clone()).or_default();
            if let Some(target) = pending_target(&self.pending, &self.group, &tp) {
                // Committed through this member (fenced), then read from.
                self.commit_offset(&tp, target)?;
                if let Some(partition) = self.partitions.get_mut(&tp) {
                    partition.seek = Some(target);
                    partition.position = Some(target);
                    partition.buffered.clear();
                }
                clear_pending(&self.pending, &self.group, &tp);
                tracing::info!(group = %self.group, partition = %name(&tp), offset = target, "rewound");
            }
        }
        let now: Vec<String> = self.partitions.keys().map(name).collect();
        tracing::info!(group = %self.group, member = %self.member, partitions = ?now, revoked = revoked.len(), "assignment changed");
        self.cursor = 0;
        Ok(())
    }
}
