//! Compaction of a partition under the `compact` cleanup policy: its sealed
//! segments are rewritten to keep, for each key, only the latest record
//! (Kafka's log cleaner, without the dirty-ratio tuning).
//!
//! Rules:
//! - Only sealed segments are compacted, and a record is dropped only when a
//!   later record of the same key is in a sealed segment too: the active
//!   segment is never touched and never consulted.
//! - Offsets never change. A compacted segment keeps its base offset and its
//!   end (the next segment's base); the records removed leave gaps, which
//!   readers skip, and its batches carry the `COMPACTED` bit so recovery
//!   accepts the gaps (see `log/batch.rs`).
//! - A tombstone (a keyed record with a null value, as Kafka producers send
//!   it, or an empty one, as weir's own API and state changelog write it;
//!   rewriting keeps a null a null) is kept as the latest
//!   of its key until `delete_retention_ms` after its timestamp, so readers
//!   that catch up in that time see the delete; then it goes too.
//! - Records without a key are kept as they are.
//! - Neighbouring segments that shrank are merged, up to `segment_bytes`; a
//!   segment neither shrunk nor merged is left as it is. When nothing at all
//!   is left in the sealed segments, they are deleted and the log start
//!   moves to the active segment, as retention would move it.
//!
//! Crash safety: the output of a run of segments `[base, end)` is written to
//! `<base>.cleaned` and fsynced; renaming it to `<base>-<end>.swap` (and
//! fsyncing the directory) is the commit point. Then the old segments' files
//! go (the indexes of `<base>` first, which no longer match) and the swap
//! file is renamed over `<base>.log`. On open ([`recover`]), a `.cleaned`
//! file is an unfinished compaction and is deleted (the old segments are
//! whole); a `.swap` file is a committed one and is finished the same way.
//! A crash at any point leaves either the old segments or the new one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::LogError;
use super::super::batch::{self, BatchHeader, COMPACTED, Record, StoredRecord};
use super::super::index::SealRecord;
use super::super::segment::{
    self, Indexes, SealedSegment, SegmentReader, index_path, log_path, timeindex_path,
};
use super::super::storage::{CreateMode, Storage, StorageFile, write_whole};
use super::Partition;

/// What the last compaction of a partition saw, so a pass with nothing new
/// to do is skipped.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// The end of the sealed segments last compacted.
    through: u64,
    /// When the earliest tombstone kept last time may be dropped.
    tombstone_due: Option<i64>,
}

/// A run of sealed segments (by index) that compacts into one.
#[derive(Debug)]
struct Group {
    first: usize,
    last: usize,
    kept: u64,
    removed: u64,
    bytes: u64,
}

fn cleaned_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.cleaned"))
}

fn swap_path(dir: &Path, base: u64, end: u64) -> PathBuf {
    dir.join(format!("{base:020}-{end:020}.swap"))
}

#[cfg(test)]
thread_local! {
    /// Tests stop a compaction after this many file steps, as a crash would.
    pub static CRASH_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

/// Counts a file step; in tests, fails as a crash would once the step set in
/// [`CRASH_AFTER`] is passed.
fn step(_n: &mut u32) -> std::io::Result<()> {
    #[cfg(test)]
    {
        *_n += 1;
        if CRASH_AFTER
            .with(|c| c.get())
            .is_some_and(|limit| *_n > limit)
        {
            return Err(std::io::Error::other("simulated crash"));
        }
    }
    Ok(())
}

/// Finishes or discards compactions a crash interrupted (see the module doc).
/// Runs before the segments are listed.
pub fn recover(storage: &dyn Storage, dir: &Path) -> Result<(), LogError> {
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let path = entry.map_err(|e| LogError::io(dir, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        if name.ends_with(".cleaned") {
            storage.remove(&path).map_err(|e| LogError::io(&path, e))?;
        } else if let Some(range) = name.strip_suffix(".swap")
            && let Some((base, end)) = range.split_once('-')
            && let (Ok(base), Ok(end)) = (base.parse::<u64>(), end.parse::<u64>())
        {
            swaps.push((base, end, path));
        }
    }
    if swaps.is_empty() {
        return Ok(());
    }
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let name = entry.map_err(|e| LogError::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name
            .strip_suffix(".log")
            .and_then(|b| b.parse::<u64>().ok())
        {
            bases.push(base);
        }
    }
    for (base, end, swap) in swaps {
        tracing::warn!(partition = %dir.display(), base, end, "finishing a compaction cut short");
        let replaced: Vec<u64> = bases
            .iter()
            .copied()
            .filter(|b| *b > base && *b < end)
            .collect();
        finish(storage, dir, base, &replaced, &swap, &mut 0)?;
    }
    Ok(())
}

/// The steps after the commit point: the replaced segments' files go, then
/// the swap file becomes `<base>.log`.
fn finish(
    storage: &dyn Storage,
    dir: &Path,
    base: u64,
    replaced: &[u64],
    swap: &Path,
    steps: &mut u32,
) -> Result<(), LogError> {
    let mut doomed = vec![index_path(dir, base), timeindex_path(dir, base)];
    for &b in replaced {
        doomed.extend([log_path(dir, b), index_path(dir, b), timeindex_path(dir, b)]);
    }
    for path in doomed {
        step(steps).map_err(|e| LogError::io(&path, e))?;
        match storage.remove(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io(&path, e));
            }
            _ => {}
        }
    }
    let target = log_path(dir, base);
    step(steps).map_err(|e| LogError::io(&target, e))?;
    storage
        .rename(swap, &target)
        .map_err(|e| LogError::io(swap, e))?;
    // The new segment must stay in place after a crash, and the old ones gone.
    storage.sync_dir(dir).map_err(|e| LogError::io(dir, e))
}

/// Every record of a sealed segment.
fn records_of(segment: &SealedSegment) -> Result<Vec<StoredRecord>, LogError> {
    let mut out = Vec::new();
    let reader = segment.reader();
    reader.read(
        segment.base(),
        segment.next_offset(),
        segment.size(),
        usize::MAX,
        u64::MAX,
        &mut out,
    )?;
    Ok(out)
}

impl Partition {
    /// Compacts the sealed segments if anything changed since the last pass
    /// (a new sealed segment, or a tombstone now due). See the module doc.
    pub fn compact(&self, now_ms: i64) -> Result<(), LogError> {
        let mut cleaned = self.cleaning.lock().expect("cleaning lock");
        let config = self.config();
        let sealed = self.view().sealed.clone();
        let Some(end) = sealed.last().map(SealedSegment::next_offset) else {
            return Ok(());
        };
        let tombstones_due = cleaned.tombstone_due.is_some_and(|t| now_ms >= t);
        if cleaned.through >= end && !tombstones_due {
            return Ok(());
        }
        // The latest offset of every key in the sealed segments.
        let mut latest: HashMap<Vec<u8>, u64> = HashMap::new();
        for segment in sealed.iter() {
            for r in records_of(segment)? {
                if let Some(key) = r.key {
                    latest.insert(key.to_vec(), r.offset);
                }
            }
        }
        let cutoff = now_ms.saturating_sub(config.delete_retention_ms.min(i64::MAX as u64) as i64);
        let mut tombstone_due: Option<i64> = None;
        let mut keep = |r: &StoredRecord| match &r.key {
            None => true,
            Some(key) if latest.get(&key[..]) != Some(&r.offset) => false,
            Some(_) if r.value.is_empty() && r.timestamp < cutoff => false,
            Some(_) => {
                if r.value.is_empty() {
                    let due = r
                        .timestamp
                        .saturating_add(config.delete_retention_ms as i64);
                    tombstone_due = Some(tombstone_due.map_or(due, |t| t.min(due)));
                }
                true
            }
        };
        // Plan: which runs of segments become one.
        let mut groups: Vec<Group> = Vec::new();
        for (i, segment) in sealed.iter().enumerate() {
            let records = records_of(segment)?;
            let all = records.len() as u64;
            let kept: Vec<Record> = records.iter().filter(|r| keep(r)).map(to_record).collect();
            let bytes = batch::encoded_len(&kept);
            let (kept, removed) = (kept.len() as u64, all - kept.len() as u64);
            match groups.last_mut() {
                Some(g) if !(g.kept > 0 && kept > 0 && g.bytes + bytes > config.segment_bytes) => {
                    g.last = i;
                    g.kept += kept;
                    g.removed += removed;
                    g.bytes += bytes;
                }
                _ => groups.push(Group {
                    first: i,
                    last: i,
                    kept,
                    removed,
                    bytes,
                }),
            }
        }
        if groups.len() == 1 && groups[0].kept == 0 {
            // Nothing is left before the active segment.
            drop(cleaned);
            self.delete_before(end)?;
            self.cleaning.lock().expect("cleaning lock").through = 0;
            return Ok(());
        }
        let mut steps = 0u32;
        let mut replaced = Vec::new();
        for group in groups.iter().filter(|g| g.last > g.first || g.removed > 0) {
            let segment = self.rewrite(&sealed, group, &mut keep, &mut steps)?;
            replaced.push((group.first, group.last, segment));
        }
        if !replaced.is_empty() {
            self.swap_in(&sealed, &replaced)?;
            let removed: u64 = groups.iter().map(|g| g.removed).sum();
            tracing::info!(partition = %self.dir.display(), removed, groups = replaced.len(), "compacted");
        }
        cleaned.through = end;
        cleaned.tombstone_due = tombstone_due;
        Ok(())
    }

    /// Writes the records `keep` keeps of a group's segments to a new
    /// segment and commits it in place of them (see the module doc).
    fn rewrite(
        &self,
        sealed: &[SealedSegment],
        group: &Group,
        keep: &mut impl FnMut(&StoredRecord) -> bool,
        steps: &mut u32,
    ) -> Result<SealedSegment, LogError> {
        let storage = self.storage.as_ref();
        let config = self.config();
        let base = sealed[group.first].base();
        let end = sealed[group.last].next_offset();
        let cleaned = cleaned_path(&self.dir, base);
        let io = |e| LogError::io(&cleaned, e);
        step(steps).map_err(io)?;
        let file = storage.create(&cleaned, CreateMode::Replace).map_err(io)?;
        let mut indexes = Indexes::new();
        let mut size = 0u64;
        for segment in &sealed[group.first..=group.last] {
            let records = records_of(segment)?;
            // Runs of consecutive offsets, each one batch within the limits.
            let mut run: Vec<Record> = Vec::new();
            let mut run_base = 0;
            let mut flush = |run: &mut Vec<Record>, run_base: u64| -> Result<(), LogError> {
                let mut first = run_base;
                for chunk in batch::chunks(run, config.max_batch_records, config.max_batch_bytes) {
                    let bytes = batch::encode_with(first, chunk, 0, COMPACTED);
                    first += chunk.len() as u64;
                    let header = BatchHeader::parse(&bytes).expect("an encoded batch parses");
                    file.write_all_at(&bytes, size).map_err(io)?;
                    indexes.observe(base, &header, size);
                    size += bytes.len() as u64;
                }
                run.clear();
                Ok(())
            };
            for r in records.iter().filter(|r| keep(r)) {
                if !run.is_empty() && run_base + run.len() as u64 != r.offset {
                    flush(&mut run, run_base)?;
                }
                if run.is_empty() {
                    run_base = r.offset;
                }
                run.push(to_record(r));
            }
            if !run.is_empty() {
                flush(&mut run, run_base)?;
            }
        }
        file.sync_data().map_err(io)?;
        // The commit point.
        let swap = swap_path(&self.dir, base, end);
        step(steps).map_err(io)?;
        storage.rename(&cleaned, &swap).map_err(io)?;
        storage
            .sync_dir(&self.dir)
            .map_err(|e| LogError::io(&self.dir, e))?;
        let replaced: Vec<u64> = sealed[group.first + 1..=group.last]
            .iter()
            .map(SealedSegment::base)
            .collect();
        finish(storage, &self.dir, base, &replaced, &swap, steps)?;
        let seal = SealRecord {
            size,
            next_offset: end,
            max_timestamp: indexes.max_timestamp,
        };
        // Derived data: if this is lost, the next open rebuilds it.
        let written = write_whole(
            storage,
            &index_path(&self.dir, base),
            &indexes.offsets.encode(&seal),
        )
        .and_then(|()| {
            write_whole(
                storage,
                &timeindex_path(&self.dir, base),
                &indexes.times.encode(),
            )
        });
        if let Err(e) = written {
            tracing::warn!(partition = %self.dir.display(), base, error = %e, "could not write a compacted segment's index");
        }
        let path = segment::log_path(&self.dir, base);
        let file: Arc<dyn StorageFile> = file;
        let reader = Arc::new(SegmentReader::new(base, path, file, indexes));
        Ok(SealedSegment::new(reader, seal))
    }

    /// Puts the compacted segments in the view in place of the runs they
    /// replace. Retention waits on the cleaning lock, so the sealed segments
    /// compacted are still the oldest; rolls since only added newer ones.
    fn swap_in(
        &self,
        sealed: &[SealedSegment],
        replaced: &[(usize, usize, SealedSegment)],
    ) -> Result<(), LogError> {
        let writer = self.writer.lock().expect("writer lock");
        let mut view = self.view.write().expect("view lock");
        let current = view.sealed.clone();
        debug_assert!(current.len() >= sealed.len());
        let mut next = Vec::with_capacity(current.len());
        let mut i = 0;
        for (first, last, segment) in replaced {
            next.extend_from_slice(&current[i..*first]);
            next.push(segment.clone());
            i = last + 1;
        }
        next.extend_from_slice(&current[i..]);
        view.sealed = Arc::new(next);
        drop(view);
        drop(writer);
        Ok(())
    }
}

fn to_record(r: &StoredRecord) -> Record {
    Record {
        key: r.key.as_deref().map(<[u8]>::to_vec),
        value: r.value.to_vec(),
        headers: r.headers.clone(),
        timestamp: Some(r.timestamp),
        nulls: r.nulls.clone(),
    }
}

#[cfg(test)]
mod tests;
