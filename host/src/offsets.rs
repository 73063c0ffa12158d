//! Committed offsets, kept as records of the internal topic `__consumer_offsets`
//! and mirrored in memory.
//!
//! Each commit appends one record: key `group/topic/partition` (names cannot
//! contain `/`), value the next offset to read (Kafka's convention) and the group
//! generation, as 8 + 4 little-endian bytes. A Kafka client's commit may carry
//! a [`CommitMeta`] (its metadata string and leader epoch): such a value goes
//! on with a format byte (1), the epoch (4 bytes, little-endian) and the
//! metadata's UTF-8 bytes. Commits without one keep the 12-byte value, so data
//! directories written before the metadata existed open unchanged (a weir
//! that predates it refuses a topic holding the longer values as malformed).
//! An empty value is a tombstone: the
//! key is forgotten (deleting a topic writes one per committed partition, so a
//! topic created again under the same name starts without offsets). Opening
//! replays the topic, the latest record per key winning, so committed offsets
//! survive any restart. A commit is visible in memory only after its record is
//! in the log.
//!
//! The topic also keeps each group's metadata, as Kafka's does: a record keyed
//! by the group name alone (no `/`), whose value is the coordinator's record of
//! the group (generation, settings, static members and their assignment; see
//! `group/record.rs`), opaque bytes here. The latest one per group wins and is
//! compacted like the offsets.
//!
//! The topic stays bounded by compaction into a snapshot: once the records
//! since the last snapshot outnumber the live keys several times over, the
//! active segment is sealed, every live key is appended again (the snapshot
//! starts a fresh segment), the snapshot is fsynced, and only then are the
//! segments before it deleted. A crash at any point leaves either the old
//! segments (plus part of a snapshot, whose values equal the latest anyway) or
//! the snapshot alone, and the latest value per key wins in both. Replay on
//! open therefore reads at most about `COMPACT_FACTOR + 1` records per key,
//! or `COMPACT_MIN_RECORDS` and a snapshot when there are few keys.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::log::{Log, LogError, Record, TopicConfig};

/// The internal topic holding every group's committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Compact once the records since the last snapshot exceed this many per live
/// key (and [`COMPACT_MIN_RECORDS`]).
pub const COMPACT_FACTOR: u64 = 4;
/// Never compact a topic with fewer records than this since the last snapshot;
/// small logs replay fast anyway (65,536 records of about 50 bytes: a few
/// MB, read in tens of milliseconds on open). A compaction seals the topic's
/// active segment, which fsyncs it and writes its index files under the
/// partition's lock, so every commit waits for it: at 1,024, as this was,
/// that was a pause of about 3 ms every 1,024 commits of a busy host
/// (`weir bench`'s swap control), now one every 65,536.
pub const COMPACT_MIN_RECORDS: u64 = 65_536;
/// Records per batch of a snapshot.
const SNAPSHOT_BATCH: usize = 1000;

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

/// What a Kafka client's OffsetCommit says beside the offset, returned by
/// OffsetFetch as it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMeta {
    /// The leader epoch the client saw (-1: none).
    pub leader_epoch: i32,
    /// The client's metadata string (at most [`MAX_METADATA_BYTES`]).
    pub metadata: String,
}

impl CommitMeta {
    /// No metadata and no epoch, what a commit without them means.
    pub fn none() -> CommitMeta {
        CommitMeta {
            leader_epoch: -1,
            metadata: String::new(),
        }
    }

    fn is_none(&self) -> bool {
        self.leader_epoch == -1 && self.metadata.is_empty()
    }
}

/// The longest metadata string a commit may carry (Kafka's
/// `offset.metadata.max.bytes`).
pub const MAX_METADATA_BYTES: usize = 4096;

/// The format byte of a value that carries a [`CommitMeta`].
const META_FORMAT: u8 = 1;

/// (group, topic, partition).
pub type OffsetKey = (String, String, u32);

/// The committed offsets of every group.
pub struct Offsets {
    log: Arc<Log>,
    /// The latest commit per key, and how the log stands. The lock also
    /// serializes commits (and compaction), so the in-memory order matches the
    /// log's.
    committed: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    latest: BTreeMap<OffsetKey, Committed>,
    /// The metadata of the latest commit per key, where it had any.
    meta: BTreeMap<OffsetKey, CommitMeta>,
    /// Each group's latest metadata record.
    groups: BTreeMap<String, Vec<u8>>,
    /// Records in the log since the last snapshot began (all of them, until
    /// the first compaction), to decide when to compact.
    since_snapshot: u64,
}

impl Offsets {
    /// Creates `__consumer_offsets` if needed and replays it into memory.
    pub fn open(log: Arc<Log>) -> Result<Offsets, OffsetsError> {
        log.ensure_topic(OFFSETS_TOPIC, TopicConfig::with_partitions(1))?;
        let mut committed = BTreeMap::new();
        let mut meta = BTreeMap::new();
        let mut groups = BTreeMap::new();
        let end = log.high_watermark(OFFSETS_TOPIC, 0)?;
        let mut next = log.log_start(OFFSETS_TOPIC, 0)?;
        while next < end {
            let records = log.read(OFFSETS_TOPIC, 0, next, 10_000, 4 << 20)?;
            for record in &records {
                let malformed = OffsetsError::Malformed {
                    offset: record.offset,
                };
                match decode(record.key.as_deref(), &record.value).ok_or(malformed)? {
                    Entry::Offset(key, Some((value, m))) => {
                        match m {
                            Some(m) => meta.insert(key.clone(), m),
                            None => meta.remove(&key),
                        };
                        committed.insert(key, value);
                    }
                    Entry::Offset(key, None) => {
                        meta.remove(&key);
                        committed.remove(&key);
                    }
                    Entry::Group(group, Some(value)) => {
                        groups.insert(group, value);
                    }
                    Entry::Group(group, None) => {
                        groups.remove(&group);
                    }
                }
            }
            next = records.last().map_or(end, |r| r.offset + 1);
        }
        let start = log.log_start(OFFSETS_TOPIC, 0)?;
        let offsets = Offsets {
            log,
            committed: Mutex::new(State {
                latest: committed,
                meta,
                groups,
                since_snapshot: end - start,
            }),
        };
        let mut state = offsets.committed.lock().expect("offsets lock");
        offsets.maybe_compact(&mut state)?;
        drop(state);
        Ok(offsets)
    }

    /// Rewrites the live keys into a snapshot and deletes the records it
    /// replaces, whatever the thresholds say.
    pub fn compact(&self) -> Result<(), OffsetsError> {
        let mut state = self.committed.lock().expect("offsets lock");
        self.compact_locked(&mut state)
    }

    fn maybe_compact(&self, state: &mut State) -> Result<(), OffsetsError> {
        let keys = (state.latest.len() + state.groups.len()) as u64;
        let limit = COMPACT_MIN_RECORDS.max(COMPACT_FACTOR * keys);
        if state.since_snapshot > limit {
            self.compact_locked(state)?;
        }
        Ok(())
    }

    fn compact_locked(&self, state: &mut State) -> Result<(), OffsetsError> {
        // The snapshot must start a segment of its own, so that deleting every
        // segment before it deletes exactly what it replaces.
        self.log.roll(OFFSETS_TOPIC, 0)?;
        let start = self.log.high_watermark(OFFSETS_TOPIC, 0)?;
        let records: Vec<Record> = state
            .latest
            .iter()
            .map(|(key, committed)| encode(key, committed, state.meta.get(key)))
            .chain(
                state
                    .groups
                    .iter()
                    .map(|(group, value)| Record::keyed(group.clone(), value.clone())),
            )
            .collect();
        for chunk in records.chunks(SNAPSHOT_BATCH) {
            self.log.append(OFFSETS_TOPIC, 0, chunk)?;
        }
        // Nothing may be deleted before the snapshot that replaces it is durable.
        self.log.sync(OFFSETS_TOPIC, 0)?;
        let deleted = self.log.delete_before(OFFSETS_TOPIC, 0, start)?;
        tracing::debug!(
            keys = records.len(),
            segments = deleted.len(),
            "compacted {OFFSETS_TOPIC}"
        );
        state.since_snapshot = records.len() as u64;
        Ok(())
    }

    /// Records that `group` will next read `offset` of `topic`/`partition`.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        committed: Committed,
    ) -> Result<(), OffsetsError> {
        let mut state = self.committed.lock().expect("offsets lock");
        let key = (group.to_string(), topic.to_string(), partition);
        self.log
            .append(OFFSETS_TOPIC, 0, &[encode(&key, &committed, None)])?;
        state.meta.remove(&key);
        state.latest.insert(key, committed);
        state.since_snapshot += 1;
        // The commit is durable in the log already; a failed compaction leaves
        // the old segments in place and is retried at the next commit.
        if let Err(e) = self.maybe_compact(&mut state) {
            tracing::warn!(error = %e, "could not compact {OFFSETS_TOPIC}");
        }
        Ok(())
    }

    /// Commits several positions of `group` as one appended batch: all of them
    /// or (on a failed write) none.
    pub fn commit_many(
        &self,
        group: &str,
        commits: &[(String, u32, Committed)],
    ) -> Result<(), OffsetsError> {
        let with: Vec<_> = commits
            .iter()
            .map(|(topic, partition, c)| (topic.clone(), *partition, *c, CommitMeta::none()))
            .collect();
        self.commit_many_with_meta(group, &with)
    }

    /// [`Offsets::commit_many`] with each commit's [`CommitMeta`] (a Kafka
    /// client's OffsetCommit), kept until the next commit of its partition.
    pub fn commit_many_with_meta(
        &self,
        group: &str,
        commits: &[(String, u32, Committed, CommitMeta)],
    ) -> Result<(), OffsetsError> {
        let mut state = self.committed.lock().expect("offsets lock");
        let keyed: Vec<_> = commits
            .iter()
            .map(|(topic, partition, c, m)| {
                let meta = (!m.is_none()).then(|| m.clone());
                ((group.to_string(), topic.clone(), *partition), *c, meta)
            })
            .collect();
        let records: Vec<_> = keyed
            .iter()
            .map(|(key, c, m)| encode(key, c, m.as_ref()))
            .collect();
        self.log.append(OFFSETS_TOPIC, 0, &records)?;
        state.since_snapshot += keyed.len() as u64;
        for (key, c, m) in keyed {
            match m {
                Some(m) => state.meta.insert(key.clone(), m),
                None => state.meta.remove(&key),
            };
            state.latest.insert(key, c);
        }
        if let Err(e) = self.maybe_compact(&mut state) {
            tracing::warn!(error = %e, "could not compact {OFFSETS_TOPIC}");
        }
        Ok(())
    }

    /// Deletes `topic` from the log, then forgets every group's committed
    /// offsets on it (one tombstone per committed partition, appended as one
    /// batch), so a topic created again under the same name inherits none.
    pub fn delete_topic(&self, topic: &str) -> Result<(), OffsetsError> {
        let mut state = self.committed.lock().expect("offsets lock");
        self.log.delete_topic(topic)?;
        self.forget_where(&mut state, |k| k.1 == topic)
    }

    /// Forgets every committed offset of `group` (one tombstone per
    /// partition, as one batch): the group is gone from listings and lag,
    /// and a group joined again under the name starts by its reset policy.
    pub fn delete_group(&self, group: &str) -> Result<(), OffsetsError> {
        let mut state = self.committed.lock().expect("offsets lock");
        if state.groups.contains_key(group) {
            // The coordinator's record of the group goes too.
            let tombstone = Record::keyed(group.to_string(), Vec::new());
            self.log.append(OFFSETS_TOPIC, 0, &[tombstone])?;
            state.groups.remove(group);
            state.since_snapshot += 1;
        }
        self.forget_where(&mut state, |k| k.0 == group)
    }

    fn forget_where(
        &self,
        state: &mut State,
        doomed: impl Fn(&OffsetKey) -> bool,
    ) -> Result<(), OffsetsError> {
        let doomed: Vec<OffsetKey> = state.latest.keys().filter(|k| doomed(k)).cloned().collect();
        if doomed.is_empty() {
            return Ok(());
        }
        let tombstones: Vec<Record> = doomed
            .iter()
            .map(|key| Record::keyed(record_key(key), Vec::new()))
            .collect();
        self.log.append(OFFSETS_TOPIC, 0, &tombstones)?;
        state.since_snapshot += tombstones.len() as u64;
        for key in &doomed {
            state.latest.remove(key);
            state.meta.remove(key);
        }
        if let Err(e) = self.maybe_compact(state) {
            tracing::warn!(error = %e, "could not compact {OFFSETS_TOPIC}");
        }
        Ok(())
    }

    /// Records `group`'s metadata (the coordinator's opaque record of it),
    /// replacing the previous one.
    pub fn record_group(&self, group: &str, metadata: &[u8]) -> Result<(), OffsetsError> {
        let mut state = self.committed.lock().expect("offsets lock");
        let record = Record::keyed(group.to_string(), metadata.to_vec());
        self.log.append(OFFSETS_TOPIC, 0, &[record])?;
        state.groups.insert(group.to_string(), metadata.to_vec());
        state.since_snapshot += 1;
        if let Err(e) = self.maybe_compact(&mut state) {
            tracing::warn!(error = %e, "could not compact {OFFSETS_TOPIC}");
        }
        Ok(())
    }

    /// Every group's latest metadata record.
    pub fn group_records(&self) -> Vec<(String, Vec<u8>)> {
        let state = self.committed.lock().expect("offsets lock");
        state
            .groups
            .iter()
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect()
    }

    /// The group's committed position on one partition, if it ever committed.
    pub fn get(&self, group: &str, topic: &str, partition: u32) -> Option<Committed> {
        let state = self.committed.lock().expect("offsets lock");
        state
            .latest
            .get(&(group.to_string(), topic.to_string(), partition))
            .copied()
    }

    /// The metadata of the group's latest commit on one partition (none when
    /// that commit carried none, or there is no commit).
    pub fn meta(&self, group: &str, topic: &str, partition: u32) -> CommitMeta {
        let state = self.committed.lock().expect("offsets lock");
        state
            .meta
            .get(&(group.to_string(), topic.to_string(), partition))
            .cloned()
            .unwrap_or_else(CommitMeta::none)
    }

    /// Every group that has committed an offset.
    pub fn groups(&self) -> Vec<String> {
        let state = self.committed.lock().expect("offsets lock");
        let mut groups: Vec<String> = state.latest.keys().map(|k| k.0.clone()).collect();
        groups.dedup();
        groups
    }

    /// Every committed position of `group`, by (topic, partition).
    pub fn of_group(&self, group: &str) -> Vec<(String, u32, Committed)> {
        let state = self.committed.lock().expect("offsets lock");
        state
            .latest
            .iter()
            .filter(|(k, _)| k.0 == group)
            .map(|(k, v)| (k.1.clone(), k.2, *v))
            .collect()
    }
}

fn encode(key: &OffsetKey, committed: &Committed, meta: Option<&CommitMeta>) -> Record {
    let mut value = committed.offset.to_le_bytes().to_vec();
    value.extend_from_slice(&committed.generation.to_le_bytes());
    if let Some(meta) = meta.filter(|m| !m.is_none()) {
        value.push(META_FORMAT);
        value.extend_from_slice(&meta.leader_epoch.to_le_bytes());
        value.extend_from_slice(meta.metadata.as_bytes());
    }
    Record::keyed(record_key(key), value)
}

fn record_key((group, topic, partition): &OffsetKey) -> String {
    format!("{group}/{topic}/{partition}")
}

/// What one record of the topic says; `None` is a tombstone.
enum Entry {
    Offset(OffsetKey, Option<(Committed, Option<CommitMeta>)>),
    Group(String, Option<Vec<u8>>),
}

/// A record's meaning, or `None` if it is malformed.
fn decode(key: Option<&[u8]>, value: &[u8]) -> Option<Entry> {
    let key = std::str::from_utf8(key?).ok()?;
    if !key.contains('/') {
        let value = (!value.is_empty()).then(|| value.to_vec());
        return Some(Entry::Group(key.to_string(), value));
    }
    let mut parts = key.splitn(3, '/');
    let (group, topic) = (parts.next()?, parts.next()?);
    let partition = parts.next()?.parse().ok()?;
    let key = (group.to_string(), topic.to_string(), partition);
    if value.is_empty() {
        return Some(Entry::Offset(key, None));
    }
    if value.len() < 12 {
        return None;
    }
    let committed = Committed {
        offset: u64::from_le_bytes(value[0..8].try_into().ok()?),
        generation: u32::from_le_bytes(value[8..12].try_into().ok()?),
    };
    let meta = match &value[12..] {
        [] => None,
        [META_FORMAT, rest @ ..] if rest.len() >= 4 => Some(CommitMeta {
            leader_epoch: i32::from_le_bytes(rest[0..4].try_into().ok()?),
            metadata: String::from_utf8(rest[4..].to_vec()).ok()?,
        }),
        _ => return None,
    };
    Some(Entry::Offset(key, Some((committed, meta))))
}

#[cfg(test)]
mod tests;
