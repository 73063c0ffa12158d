//! One partition: a directory of segments, its single writer, and the view
//! readers work from.
//!
//! Invariants:
//! - Offsets are dense and strictly increasing across segments; a segment's file
//!   name is the offset of its first record.
//! - One writer at a time (the `writer` lock); readers never take it. A reader
//!   copies the [`View`] (a few `Arc`s) under a short read lock and then reads
//!   the files without any lock, so it never waits for a write or an fsync.
//! - The view's high watermark moves only after a batch is wholly written and,
//!   under [`Durability::Always`], only after the fsync that covers it (see
//!   `partition/commit.rs`). A reader never sees a byte beyond it.
//! - After a failed write or fsync the partition is poisoned and refuses every
//!   append until it is reopened (recovery then decides what is on disk).
//!
//! Lock order: `cleaning` → `writer` → `commit` → `view`.

mod commit;
mod compactor;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::batch::StoredRecord;
use super::config::{Durability, TopicConfig};
use super::segment::{ActiveSegment, SealedSegment, SegmentReader};
use super::storage::Storage;
use super::{LogError, segment};
use commit::{CommitState, Mark};
use writer::Writer;

pub use writer::DeletedSegment;

/// What readers may see: the segments and how far into them.
#[derive(Debug, Clone)]
struct View {
    sealed: Arc<Vec<SealedSegment>>,
    active: Arc<SegmentReader>,
    /// Bytes of the active segment readers may read.
    active_limit: u64,
    high_watermark: u64,
}

impl View {
    fn log_start(&self) -> u64 {
        self.sealed
            .first()
            .map_or(self.active.base, SealedSegment::base)
    }
}

/// A partition's segments, its writer and its published view.
#[derive(Debug)]
pub struct Partition {
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    /// The topic's settings; [`super::Log::alter_topic`] replaces them.
    config: RwLock<TopicConfig>,
    writer: Mutex<Writer>,
    /// Group commit and poisoning; see `partition/commit.rs`.
    commit: Mutex<CommitState>,
    /// Woken whenever a group-commit fsync finishes.
    committed: Condvar,
    view: RwLock<View>,
    /// Held by compaction and by deletions of sealed segments, so neither
    /// changes the segments the other is working on.
    cleaning: Mutex<compactor::Cleaned>,
    /// Corruption found in sealed segments when the partition was opened:
    /// (file, byte position, what).
    damage: Vec<(PathBuf, u64, String)>,
}

impl Partition {
    /// Opens (or creates) the partition in `dir`: sealed segments are checked
    /// and their indexes loaded or rebuilt; the last segment is recovered.
    pub fn open(
        dir: &Path,
        config: TopicConfig,
        storage: Arc<dyn Storage>,
        now_ms: i64,
    ) -> Result<Partition, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        compactor::recover(storage.as_ref(), dir)?;
        let bases = list_segments(storage.as_ref(), dir)?;
        let mut sealed = Vec::with_capacity(bases.len());
        let mut damage = Vec::new();
        let active = match bases.split_last() {
            None => {
                let path = segment::log_path(dir, 0);
                let active = ActiveSegment::create(storage.as_ref(), dir, 0)
                    .map_err(|e| LogError::io(&path, e))?;
                // The first segment's directory entry must survive a crash.
                storage.sync_dir(dir).map_err(|e| LogError::io(dir, e))?;
                active
            }
            Some((&last, older)) => {
                for (i, &base) in older.iter().enumerate() {
                    let next_base = bases[i + 1];
                    let (segment, found) =
                        SealedSegment::open(storage.as_ref(), dir, base, next_base)?;
                    if let Some(found) = found {
                        tracing::error!(error = %found, "corrupt sealed segment");
                        if let LogError::Corrupt {
                            path,
                            position,
                            what,
                        } = found
                        {
                            damage.push((path, position, what));
                        }
                    }
                    sealed.push(segment);
                }
                ActiveSegment::recover(storage.as_ref(), dir, last, now_ms)?.0
            }
        };
        let view = View {
            sealed: Arc::new(sealed),
            active: active.reader().clone(),
            active_limit: active.size(),
            high_watermark: active.next_offset(),
        };
        let commit = CommitState::new(Mark::of(&active));
        Ok(Partition {
            dir: dir.to_path_buf(),
            storage,
            config: RwLock::new(config),
            writer: Mutex::new(Writer::new(active)),
            commit: Mutex::new(commit),
            committed: Condvar::new(),
            view: RwLock::new(view),
            cleaning: Mutex::default(),
            damage,
        })
    }

    fn view(&self) -> View {
        self.view.read().expect("view lock").clone()
    }

    /// The offset after the last record readers may see.
    pub fn high_watermark(&self) -> u64 {
        self.view.read().expect("view lock").high_watermark
    }

    /// The first offset still in the log.
    pub fn log_start(&self) -> u64 {
        self.view.read().expect("view lock").log_start()
    }

    /// How many segments the partition has.
    pub fn segment_count(&self) -> usize {
        self.view.read().expect("view lock").sealed.len() + 1
    }

    /// Corruption found in sealed segments on open.
    pub fn damage(&self) -> &[(PathBuf, u64, String)] {
        &self.damage
    }

    pub fn durability(&self) -> Durability {
        self.config().durability
    }

    /// The topic's settings as they are now.
    pub fn config(&self) -> TopicConfig {
        *self.config.read().expect("config lock")
    }

    /// Takes new settings; the next append, roll or maintenance pass follows
    /// them.
    pub fn set_config(&self, config: TopicConfig) {
        *self.config.write().expect("config lock") = config;
    }

    /// Reads records from `from` up to `max_records` or about `max_bytes` (at
    /// least one whole batch), never past the high watermark.
    pub fn read(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let view = self.view();
        let (start, end) = (view.log_start(), view.high_watermark);
        if from < start || from > end {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                start,
                end,
            });
        }
        let mut out = Vec::new();
        let mut budget = max_bytes;
        let sealed = view
            .sealed
            .iter()
            .filter(|s| s.next_offset() > from)
            .map(|s| (s.reader(), s.size()));
        let segments = sealed.chain(std::iter::once((&view.active, view.active_limit)));
        for (reader, limit) in segments {
            let reached = out.last().map_or(from, |r: &StoredRecord| r.offset + 1);
            if reached >= end || out.len() >= max_records || budget == 0 {
                break;
            }
            let read = reader.read(from, end, limit, max_records, budget, &mut out)?;
            budget = budget.saturating_sub(read);
        }
        Ok(out)
    }

    /// The earliest offset whose record has a timestamp `>= ts`, or `None` if
    /// every visible record is older (Kafka's ListOffsets by timestamp).
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<u64>, LogError> {
        let view = self.view();
        for segment in view.sealed.iter() {
            if segment.max_timestamp() < ts && !segment.is_damaged() {
                continue;
            }
            let found =
                segment
                    .reader()
                    .offset_for_timestamp(ts, view.high_watermark, segment.size())?;
            if found.is_some() {
                return Ok(found);
            }
        }
        view.active
            .offset_for_timestamp(ts, view.high_watermark, view.active_limit)
    }

    /// Total bytes of the partition's segments.
    pub fn size_bytes(&self) -> u64 {
        let view = self.view();
        view.sealed.iter().map(SealedSegment::size).sum::<u64>() + view.active_limit
    }
}

/// The base offsets of the `.log` files in `dir`, ascending. Index files whose
/// segment is gone (retention deletes the `.log` first) are removed.
fn list_segments(storage: &dyn Storage, dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut bases = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))? {
        let name = entry.map_err(|e| LogError::io(dir, e))?.file_name();
        let name = name.to_string_lossy();
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(base) = stem.parse::<u64>() else {
            continue;
        };
        match ext {
            "log" => bases.push(base),
            "index" | "timeindex" => indexes.push((base, dir.join(&*name))),
            _ => {}
        }
    }
    bases.sort_unstable();
    for (base, path) in indexes {
        if bases.binary_search(&base).is_err() {
            storage.remove(&path).map_err(|e| LogError::io(&path, e))?;
        }
    }
    Ok(bases)
}

/// The `.log` path of the segment starting at `base`, for tests and tools.
pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    segment::log_path(dir, base)
}
