//! A batch's state changes over the partition's committed state: reads see
//! the batch's own writes, and the writes become the batch's [`Change`]s,
//! kept only if the batch commits. Every write is checked at once (key and
//! value sizes, the processor's budget), so the guest gets an error it can act
//! on rather than a failure at commit time.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::StateView;
use crate::state::{Change, MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// The batch's writes on top of a committed view.
pub struct StateOverlay {
    base: Arc<dyn StateView>,
    /// Key -> new value (`None`: deleted), the latest write per key.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Bytes the writes may add before the budget is spent.
    headroom: u64,
    /// Bytes of keys and values written (an upper bound on growth).
    written: u64,
}

impl StateOverlay {
    pub fn new(base: Arc<dyn StateView>) -> StateOverlay {
        let headroom = base.headroom();
        StateOverlay {
            base,
            writes: BTreeMap::new(),
            headroom,
            written: 0,
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(written) => written.clone(),
            None => self.base.get(key).unwrap_or_else(|e| {
                tracing::error!(error = %e, "reading state");
                None
            }),
        }
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        if key.len() > MAX_KEY_BYTES {
            return Err(format!(
                "state key of {} bytes exceeds the {MAX_KEY_BYTES}-byte limit",
                key.len()
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "state value of {} bytes exceeds the {MAX_VALUE_BYTES}-byte limit",
                value.len()
            ));
        }
        let size = (key.len() + value.len()) as u64;
        if self.written + size > self.headroom {
            return Err(format!(
                "the processor's state budget is spent ({} bytes left)",
                self.headroom.saturating_sub(self.written)
            ));
        }
        self.written += size;
        self.writes.insert(key, Some(value));
        Ok(())
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        // The committed entries may be shadowed by this batch's deletes, so
        // read enough of them to still fill `limit` after the merge.
        let extra = self.writes.len();
        let committed = self
            .base
            .scan(prefix, after, limit.saturating_add(extra))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "scanning state");
                Vec::new()
            });
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = committed.into_iter().collect();
        for (key, value) in &self.writes {
            if !key.starts_with(prefix) || after.is_some_and(|a| key.as_slice() <= a) {
                continue;
            }
            match value {
                Some(v) => merged.insert(key.clone(), v.clone()),
                None => merged.remove(key),
            };
        }
        merged.into_iter().take(limit).collect()
    }

    /// The batch's changes, one per key, in key order.
    pub fn take(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.writes).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Committed(Vec<(&'static str, &'static str)>);

    impl StateView for Committed {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
            Ok(self
                .0
                .iter()
                .find(|(k, _)| k.as_bytes() == key)
                .map(|(_, v)| v.as_bytes().to_vec()))
        }
        fn scan(
            &self,
            prefix: &[u8],
            after: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
            Ok(self
                .0
                .iter()
                .filter(|(k, _)| {
                    k.as_bytes().starts_with(prefix) && after.is_none_or(|a| k.as_bytes() > a)
                })
                .take(limit)
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect())
        }
        fn headroom(&self) -> u64 {
            10
        }
    }

    fn overlay() -> StateOverlay {
        StateOverlay::new(Arc::new(Committed(vec![
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
        ])))
    }

    #[test]
    fn reads_see_the_batchs_own_writes_and_deletes() {
        let mut o = overlay();
        o.put(b"a".to_vec(), b"9".to_vec()).unwrap();
        o.delete(b"b".to_vec());
        assert_eq!(o.get(b"a").as_deref(), Some(&b"9"[..]));
        assert_eq!(o.get(b"b"), None);
        assert_eq!(o.get(b"c").as_deref(), Some(&b"3"[..]));
        let keys: Vec<Vec<u8>> = o.scan(b"", None, 10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".to_vec(), b"c".to_vec()]);
        assert_eq!(
            o.take(),
            vec![(b"a".to_vec(), Some(b"9".to_vec())), (b"b".to_vec(), None)]
        );
    }

    #[test]
    fn oversized_writes_and_a_spent_budget_are_refused_and_change_nothing() {
        let mut o = overlay();
        assert!(
            o.put(vec![0; MAX_KEY_BYTES + 1], Vec::new())
                .unwrap_err()
                .contains("key")
        );
        o.put(b"k".to_vec(), b"12345678".to_vec()).unwrap();
        let err = o.put(b"j".to_vec(), b"12".to_vec()).unwrap_err();
        assert!(err.contains("budget"), "{err}");
        assert_eq!(o.get(b"j"), None);
    }
}
