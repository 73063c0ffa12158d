//! A partition's committed state as a batch reads it.

use std::sync::Arc;

use super::StateStore;
use crate::group::TopicPartition;
use crate::runtime::StateView;

/// The committed state of one input partition, with the processor's budget.
pub struct PartitionView {
    pub store: Arc<StateStore>,
    pub tp: TopicPartition,
    /// The processor's state budget in bytes (keys and values).
    pub budget: u64,
}

impl StateView for PartitionView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.store
            .get(&self.tp, key)
            .map_err(|e| crate::error::chain(&e))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        self.store
            .scan(&self.tp, prefix, after, limit)
            .map_err(|e| crate::error::chain(&e))
    }

    fn headroom(&self) -> u64 {
        self.budget.saturating_sub(self.store.total_bytes())
    }
}
