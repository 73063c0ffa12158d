//! [`Replay`]: one guest version run over records outside any processor, for
//! `weir diff`. Each record runs as its own batch, so every emit and failure
//! is attributed to the record that caused it; state starts empty and lives
//! in memory, one map per input partition, changed as a committed batch would
//! change it. Nothing is appended to any log and no offset is committed.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use crate::consumer::Polled;
use crate::log::StoredRecord;
use crate::runtime::{FailureKind, Guest, Handler, RuntimeError, StateView};
use crate::state::{DEFAULT_BUDGET_BYTES, KeyValue};

/// What one version did with one input record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The records it emitted, in order: (topic, key, value).
    pub emits: Vec<(String, Option<Vec<u8>>, Vec<u8>)>,
    /// How it failed, as `kind: message` (`dead-letter: …`, `trap: …`).
    pub failure: Option<String>,
}

/// A guest version and the state it built so far.
pub struct Replay {
    guest: Guest,
    state: HashMap<u32, Arc<MemoryState>>,
}

impl Replay {
    /// Runs `guest` from empty state.
    pub fn new(guest: Guest) -> Replay {
        Replay {
            guest,
            state: HashMap::new(),
        }
    }

    /// The version id of the guest (`label@hash`).
    pub fn version(&self) -> &str {
        self.guest.version()
    }

    /// Runs `record` of `topic`/`partition` as a batch of one. A failure's
    /// emits and state changes are dropped, as the processor drops them.
    pub fn run(&mut self, topic: &str, partition: u32, record: &StoredRecord) -> Outcome {
        let polled = Polled {
            topic: topic.to_string(),
            partition,
            high_watermark: record.offset + 1,
            records: vec![record.clone()],
        };
        let state = self.state.entry(partition).or_default();
        let view: Arc<dyn StateView> = state.clone();
        let output = self.guest.handle(&polled, view);
        let output = match output {
            Ok(output) => output,
            Err(e) => {
                return Outcome {
                    emits: Vec::new(),
                    failure: Some(describe_error(&e)),
                };
            }
        };
        if let Err(failure) = output.outcome {
            return Outcome {
                emits: Vec::new(),
                failure: Some(format!("{}: {}", kind_name(failure.kind), failure.message)),
            };
        }
        let map = &mut Arc::make_mut(state).0;
        for (key, value) in output.state {
            match value {
                Some(value) => map.insert(key, value),
                None => map.remove(&key),
            };
        }
        Outcome {
            emits: output
                .emits
                .into_iter()
                .map(|e| (e.topic, e.record.key, e.record.value))
                .collect(),
            failure: None,
        }
    }
}

fn describe_error(e: &RuntimeError) -> String {
    format!("trap: {}", crate::error::chain(e))
}

fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Retry => "retry",
        FailureKind::Skip => "skip",
        FailureKind::DeadLetter => "dead-letter",
        FailureKind::Fatal => "fatal",
    }
}

/// One partition's state in memory.
#[derive(Debug, Clone, Default)]
struct MemoryState(BTreeMap<Vec<u8>, Vec<u8>>);

impl StateView for MemoryState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, String> {
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix.to_vec()),
        };
        Ok(self
            .0
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn headroom(&self) -> u64 {
        let used: usize = self.0.iter().map(|(k, v)| k.len() + v.len()).sum();
        DEFAULT_BUDGET_BYTES.saturating_sub(used as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_state_scans_a_prefix_after_a_key() {
        let mut state = MemoryState::default();
        for k in ["a/1", "a/2", "a/3", "b/1"] {
            state.0.insert(k.as_bytes().to_vec(), b"v".to_vec());
        }
        let keys = |found: Vec<KeyValue>| -> Vec<String> {
            found
                .into_iter()
                .map(|(k, _)| String::from_utf8(k).unwrap())
                .collect()
        };
        assert_eq!(
            keys(state.scan(b"a/", None, 10).unwrap()),
            ["a/1", "a/2", "a/3"]
        );
        assert_eq!(keys(state.scan(b"a/", Some(b"a/1"), 1).unwrap()), ["a/2"]);
        assert_eq!(keys(state.scan(b"b/", None, 10).unwrap()), ["b/1"]);
    }
}
