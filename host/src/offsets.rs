//! Committed offsets, kept as records of the internal topic `__consumer_offsets`
//! and mirrored in memory.
//!
//! Each commit appends one record: key `group/topic/partition` (names cannot
//! contain `/`), value the next offset to read (Kafka's convention) and the group
//! generation, as 8 + 4 little-endian bytes. Opening replays the topic, the latest
//! record per key winning, so committed offsets survive any restart. A commit is
//! visible in memory only after its record is in the log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::log::{Log, LogError, Record, TopicConfig};

/// The internal topic holding every group's committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Everything that can go wrong with committed offsets.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsError {
    #[error("offset log")]
    Log(#[from] LogError),
    #[error("malformed record at offset {offset} of {OFFSETS_TOPIC}")]
    Malformed { offset: u64 },
}

/// Where a group stands on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The next offset the group will read.
    pub offset: u64,
    /// The group generation that made the commit.
    pub generation: u32,
}

/// (group, topic, partition).
pub type OffsetKey = (String, String, u32);

/// The committed offsets of every group.
pub struct Offsets {
    log: Arc<Log>,
    /// The latest commit per key. The lock also serializes commits, so the
    /// in-memory order matches the log's.
    committed: Mutex<BTreeMap<OffsetKey, Committed>>,
}

impl Offsets {
    /// Creates `__consumer_offsets` if needed and replays it into memory.
    pub fn open(log: Arc<Log>) -> Result<Offsets, OffsetsError> {
        log.ensure_topic(OFFSETS_TOPIC, TopicConfig::with_partitions(1))?;
        let mut committed = BTreeMap::new();
        let end = log.high_watermark(OFFSETS_TOPIC, 0)?;
        let mut next = log.log_start(OFFSETS_TOPIC, 0)?;
        while next < end {
            let records = log.read(OFFSETS_TOPIC, 0, next, 10_000, 4 << 20)?;
            for record in &records {
                let (key, value) = decode(record.key.as_deref(), &record.value).ok_or(
                    OffsetsError::Malformed {
                        offset: record.offset,
                    },
                )?;
                committed.insert(key, value);
            }
            next = records.last().map_or(end, |r| r.offset + 1);
        }
        Ok(Offsets {
            log,
            committed: Mutex::new(committed),
        })
    }

    /// Records that `group` will next read `offset` of `topic`/`partition`.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        committed: Committed,
    ) -> Result<(), OffsetsError> {
        let mut map = self.committed.lock().expect("offsets lock");
        let key = format!("{group}/{topic}/{partition}");
        let mut value = committed.offset.to_le_bytes().to_vec();
        value.extend_from_slice(&committed.generation.to_le_bytes());
        self.log
            .append(OFFSETS_TOPIC, 0, &[Record::keyed(key, value)])?;
        map.insert((group.to_string(), topic.to_string(), partition), committed);
        Ok(())
    }

    /// The group's committed position on one partition, if it ever committed.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<Committed> {
        let map = self.committed.lock().expect("offsets lock");
        map.get(&(group.to_string(), topic.to_string(), partition))
            .copied()
    }

    /// Every group that has committed an offset.
    pub fn groups(&self) -> Vec<String> {
        let map = self.committed.lock().expect("offsets lock");
        let mut groups: Vec<String> = map.keys().map(|k| k.0.clone()).collect();
        groups.dedup();
        groups
    }

    /// Every committed position of `group`, by (topic, partition).
    pub fn of_group(&self, group: &str) -> Vec<(String, u32, Committed)> {
        let map = self.committed.lock().expect("offsets lock");
        map.iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, v)| (k.1.clone(), k.2, *v))
            .collect()
    }
}

fn decode(key: Option<&[u8]>, value: &[u8]) -> Option<(OffsetKey, Committed)> {
    let key = std::str::from_utf8(key?).ok()?;
    let mut parts = key.splitn(3, '/');
    let (group, topic) = (parts.next()?, parts.next()?);
    let partition = parts.next()?.parse().ok()?;
    if value.len() != 12 {
        return None;
    }
    let committed = Committed {
        offset: u64::from_le_bytes(value[0..8].try_into().ok()?),
        generation: u32::from_le_bytes(value[8..12].try_into().ok()?),
    };
    Some(((group.to_string(), topic.to_string(), partition), committed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_rebuilt_from_the_log_with_the_latest_value_winning() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = Arc::new(Log::open(dir.path()).unwrap());
            let offsets = Offsets::open(log).unwrap();
            let c = |offset| Committed {
                offset,
                generation: 1,
            };
            offsets.commit("g1", "orders", 0, c(10)).unwrap();
            offsets.commit("g1", "orders", 0, c(25)).unwrap();
            offsets.commit("g2", "orders", 0, c(3)).unwrap();
            offsets.commit("g1", "orders", 2, c(7)).unwrap();
        }
        let log = Arc::new(Log::open(dir.path()).unwrap());
        let offsets = Offsets::open(log).unwrap();
        assert_eq!(offsets.get("g1", "orders", 0).map(|c| c.offset), Some(25));
        assert_eq!(offsets.get("g2", "orders", 0).map(|c| c.offset), Some(3));
        assert_eq!(offsets.get("g1", "orders", 2).map(|c| c.offset), Some(7));
        assert_eq!(offsets.get("g1", "orders", 1), None);
        assert_eq!(offsets.groups(), vec!["g1".to_string(), "g2".to_string()]);
        assert_eq!(offsets.of_group("g1").len(), 2);
    }

    #[test]
    fn a_malformed_offset_record_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::open(dir.path()).unwrap());
        log.ensure_topic(OFFSETS_TOPIC, TopicConfig::with_partitions(1))
            .unwrap();
        log.append(OFFSETS_TOPIC, 0, &[Record::keyed("g/t/0", "short")])
            .unwrap();
        let err = Offsets::open(log).err().expect("malformed record");
        assert!(
            matches!(err, OffsetsError::Malformed { offset: 0 }),
            "{err}"
        );
    }
}
