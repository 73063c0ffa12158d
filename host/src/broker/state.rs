//! Guest state in the embedded broker: the group stores, the commit unit
//! (emits, state changes and offset) written to the log, the recovery that
//! finishes a commit a crash cut short, and state that follows a rewind
//! (`state/rewind.rs`).
//!
//! Once a group has a changelog for a topic, every move of its position on a
//! partition writes a unit there first (a commit, an empty commit for a
//! forward seek, a reset for a rewind), so the changelog's last unit is the
//! truth about where the group stands: when a partition is assigned, the
//! committed offset is repaired to it if a crash came in between.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use super::Broker;
use crate::consumer::{Commit, CommitMode, ConsumerError};
use crate::group::TopicPartition;
use crate::log::{LogError, Placement, Record, StoredRecord, TopicConfig};
use crate::offsets::Committed;
use crate::state::changelog::{self, Marker, Unit};
use crate::state::{StateError, StateStore, changelog_topic};

mod rewind;

/// Records read per changelog read.
const READ_RECORDS: usize = 10_000;
const READ_BYTES: u64 = 16 << 20;

impl Broker {
    /// The local copy of `group`'s state, opened once per process.
    pub fn state_store(&self, group: &str) -> Result<Arc<StateStore>, StateError> {
        crate::name::validate("group", group).map_err(LogError::from)?;
        let mut stores = self.stores.lock().expect("state stores lock");
        if let Some(store) = stores.get(group) {
            return Ok(store.clone());
        }
        let path = self.state_path(group);
        let store = Arc::new(StateStore::open(&path)?);
        stores.insert(group.to_string(), store.clone());
        Ok(store)
    }

    /// Forgets `group`'s guest state on `topics` (a deleted processor's): its
    /// changelog topics and its local store, so a new processor of the same
    /// name starts with none.
    pub fn delete_state(&self, group: &str, topics: &[String]) -> Result<(), StateError> {
        for topic in topics {
            let changelog = changelog_topic(group, topic);
            match self.log.delete_internal_topic(&changelog) {
                Ok(()) | Err(LogError::UnknownTopic(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.stores.lock().expect("state stores lock").remove(group);
        let path = self.state_path(group);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StateError::Log(LogError::io(&path, e)))
            }
            _ => Ok(()),
        }
    }

    fn state_path(&self, group: &str) -> std::path::PathBuf {
        self.log
            .data_dir()
            .join("state")
            .join(format!("{group}.redb"))
    }

    /// The state stores opened so far, by group.
    pub fn state_stores(&self) -> Vec<(String, Arc<StateStore>)> {
        let stores = self.stores.lock().expect("state stores lock");
        stores.iter().map(|(g, s)| (g.clone(), s.clone())).collect()
    }

    /// Whether `group` keeps a changelog for `topic`.
    fn has_changelog(&self, group: &str, topic: &str) -> bool {
        self.log
            .partition_count(&changelog_topic(group, topic))
            .is_ok()
    }

    fn read_changelog(
        &self,
        changelog: &str,
        partition: u32,
        from: u64,
    ) -> Result<Vec<StoredRecord>, LogError> {
        if from >= self.log.high_watermark(changelog, partition)? {
            return Ok(Vec::new());
        }
        self.log
            .read(changelog, partition, from, READ_RECORDS, READ_BYTES)
    }

    /// Writes one commit: its emits, its state changes and its next offset,
    /// in the order its mode needs (see [`CommitMode`]). Runs under the
    /// group's fence.
    pub(super) fn write_commit(
        &self,
        group: &str,
        commit: Commit,
        generation: u32,
        store: &StateStore,
    ) -> Result<(), ConsumerError> {
        let log = &self.log;
        for (topic, like) in &commit.create_like {
            let partitions = log.partition_count(like)?;
            log.ensure_topic(topic, TopicConfig::with_partitions(partitions))?;
        }
        let tp = &commit.source;
        // Emits go where the log's one placement rule puts them (by key,
        // unkeyed ones round robin per record; see `log::Placement`).
        let mut placements: HashMap<String, Placement> = HashMap::new();
        let mut placed = Vec::with_capacity(commit.emits.len());
        for emit in commit.emits {
            // Looked up before inserting, so a batch emitting to one topic
            // copies its name once, not once per record.
            if !placements.contains_key(&emit.topic) {
                placements.insert(emit.topic.clone(), log.placement(&emit.topic)?);
            }
            let placement = placements.get_mut(&emit.topic).expect("inserted above");
            let partition = placement.place(None, emit.record.key.as_deref())?;
            placed.push((emit.topic, partition, emit.record));
        }
        let changelog = changelog_topic(group, &tp.topic);
        let exactly = commit.mode == CommitMode::ExactlyOnce && !placed.is_empty();
        let logged = exactly || !commit.state.is_empty() || self.has_changelog(group, &tp.topic);
        let committed = Committed {
            offset: commit.next,
            generation,
        };
        if !logged {
            append_placed(log, placed, None)?;
            self.offsets
                .commit(group, &tp.topic, tp.partition, committed)?;
            return Ok(());
        }
        log.ensure_topic(
            &changelog,
            TopicConfig::with_partitions(log.partition_count(&tp.topic)?),
        )?;
        let mut records: Vec<Record> = commit.state.iter().map(changelog::change_record).collect();
        let mut dests = Vec::new();
        if exactly {
            let targets: BTreeSet<(&str, u32)> =
                placed.iter().map(|(t, p, _)| (t.as_str(), *p)).collect();
            for (topic, partition) in targets {
                dests.push((
                    topic.to_string(),
                    partition,
                    log.high_watermark(topic, partition)?,
                ));
            }
            records.extend(
                placed
                    .iter()
                    .map(|(t, p, r)| changelog::emit_record(t, *p, r)),
            );
        } else if commit.mode == CommitMode::AtLeastOnce {
            // At-least-once: the emits go first, so a crash repeats them
            // rather than losing them.
            append_placed(log, std::mem::take(&mut placed), None)?;
        }
        let marker = Marker::Commit {
            position: commit.next,
            dests,
        };
        records.push(changelog::marker_record(&marker));
        // The commit point: one batch of the changelog.
        let base = log.append(&changelog, tp.partition, &records)?;
        let marker_offset = base + records.len() as u64 - 1;
        if exactly {
            let txn = format!("{changelog}/{}/{marker_offset}", tp.partition);
            append_placed(log, placed, Some(&txn))?;
        } else if !placed.is_empty() {
            // At-most-once: the emits follow the commit point, so a crash
            // loses them rather than showing a batch whose state change is
            // lost (the next batch would then repeat its totals).
            append_placed(log, placed, None)?;
        }
        self.offsets
            .commit(group, &tp.topic, tp.partition, committed)?;
        let unit = Unit {
            changes: commit.state,
            emits: Vec::new(),
            marker,
            marker_offset,
        };
        store.apply(tp, &unit, marker_offset + 1)?;
        Ok(())
    }

    /// Brings `group`'s copy of `tp` up to date with the changelog and, when
    /// a crash cut the last commit short, finishes it (its missing
    /// exactly-once emits, its offset). Returns the position to start from
    /// when the changelog decides it.
    pub(super) fn recover(
        &self,
        group: &str,
        tp: &TopicPartition,
        store: &StateStore,
    ) -> Result<Option<u64>, ConsumerError> {
        if !self.has_changelog(group, &tp.topic) {
            return Ok(None);
        }
        let changelog = changelog_topic(group, &tp.topic);
        let started = Instant::now();
        let last = store.catch_up(tp, &changelog, |from| {
            Ok(self.read_changelog(&changelog, tp.partition, from)?)
        })?;
        metrics::histogram!("weir_state_restore_seconds", "group" => group.to_string())
            .record(started.elapsed().as_secs_f64());
        let Some(position) = store.meta(tp)?.position else {
            return Ok(None);
        };
        let committed = self
            .offsets
            .get(group, &tp.topic, tp.partition)
            .map(|c| c.offset);
        if committed == Some(position) {
            return Ok(Some(position));
        }
        if let Some(unit) = last.filter(|u| u.marker.position() == position)
            && let Marker::Commit { dests, .. } = &unit.marker
            && committed.is_none_or(|c| c < position)
        {
            self.reapply(&changelog, tp.partition, &unit, dests)?;
        }
        tracing::warn!(%group, topic = %tp.topic, partition = tp.partition, ?committed, position, "finishing a commit a crash cut short");
        let repaired = Committed {
            offset: position,
            generation: 0,
        };
        self.offsets
            .commit(group, &tp.topic, tp.partition, repaired)?;
        Ok(Some(position))
    }

    /// Appends the emits of an exactly-once `unit` to each destination
    /// partition that does not have them yet.
    fn reapply(
        &self,
        changelog: &str,
        partition: u32,
        unit: &Unit,
        dests: &[(String, u32, u64)],
    ) -> Result<(), LogError> {
        let txn = format!("{changelog}/{partition}/{}", unit.marker_offset);
        for (topic, dest, hw) in dests {
            // The emits may span batches (the topic's batch limits), so a
            // crash can leave some of them: count those there, in order.
            let mut from = *hw;
            let mut present = 0;
            while from < self.log.high_watermark(topic, *dest)? {
                let records = self
                    .log
                    .read(topic, *dest, from, READ_RECORDS, READ_BYTES)?;
                let Some(tail) = records.last() else { break };
                from = tail.offset + 1;
                present += records
                    .iter()
                    .filter(|r| {
                        r.headers
                            .iter()
                            .any(|(n, v)| n == changelog::TXN && v.as_slice() == txn.as_bytes())
                    })
                    .count();
            }
            let missing: Vec<(String, u32, Record)> = unit
                .emits
                .iter()
                .filter(|(t, p, _)| t == topic && p == dest)
                .skip(present)
                .cloned()
                .collect();
            if !missing.is_empty() {
                tracing::warn!(%topic, partition = dest, records = missing.len(), "re-appending the emits of a cut-short exactly-once commit");
                append_placed(&self.log, missing, Some(&txn))?;
            }
        }
        Ok(())
    }

    /// The committed value of `key` in `group`'s state for `topic`, on one
    /// partition or, when `partition` is `None`, on the first that has it.
    /// It reads the local copy after catching it up with the changelog (which
    /// a running member may do at the same time: applying a unit twice is
    /// harmless), and finishes no commit: that is the members' job.
    pub fn state_get(
        &self,
        group: &str,
        topic: &str,
        partition: Option<u32>,
        key: &[u8],
    ) -> Result<Option<(u32, Vec<u8>)>, ConsumerError> {
        let store = self.state_store(group)?;
        let partitions: Vec<u32> = match partition {
            Some(p) => vec![p],
            None => (0..self.log.partition_count(topic)?).collect(),
        };
        for p in partitions {
            let tp = TopicPartition::new(topic, p);
            if self.has_changelog(group, topic) {
                let changelog = changelog_topic(group, topic);
                store.catch_up(&tp, &changelog, |from| {
                    Ok(self.read_changelog(&changelog, p, from)?)
                })?;
            }
            if let Some(value) = store.get(&tp, key)? {
                return Ok(Some((p, value)));
            }
        }
        Ok(None)
    }
}

/// Appends records grouped by (topic, partition), each with the `txn` header
/// when given, in batches within each topic's batch limits.
fn append_placed(
    log: &crate::log::Log,
    placed: Vec<(String, u32, Record)>,
    txn: Option<&str>,
) -> Result<(), LogError> {
    let mut by_partition: BTreeMap<(String, u32), Vec<Record>> = BTreeMap::new();
    for (topic, partition, mut record) in placed {
        if let Some(txn) = txn {
            record
                .headers
                .push((changelog::TXN.to_string(), txn.as_bytes().to_vec()));
        }
        by_partition
            .entry((topic, partition))
            .or_default()
            .push(record);
    }
    for ((topic, partition), records) in by_partition {
        log.append_chunked(&topic, partition, &records)?;
    }
    Ok(())
}
