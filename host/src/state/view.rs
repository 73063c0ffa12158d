//! A partition's committed state as a batch reads it.

use std::sync::Arc;

use super::store::Reader;
use super::{StateError, StateStore};
use crate::group::TopicPartition;
use crate::runtime::StateView;

/// The committed state of one input partition, with the processor's budget,
/// read through one snapshot taken when the view is made (a batch's reads
/// all see the same committed state, and pay for one read transaction).
pub struct PartitionView {
    store: Arc<StateStore>,
    reader: Reader,
    tp: TopicPartition,
    /// The processor's state budget in bytes (keys and values).
    budget: u64,
}

impl PartitionView {
    /// A view of `tp` in `store`, as committed now.
    pub fn new(
        store: Arc<StateStore>,
        tp: TopicPartition,
        budget: u64,
    ) -> Result<PartitionView, StateError> {
        Ok(PartitionView {
            reader: store.reader()?,
            store,
            tp,
            budget,
        })
    }
}

impl StateView for PartitionView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.reader
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
