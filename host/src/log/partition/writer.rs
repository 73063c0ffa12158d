//! The write side of a partition: append, roll and retention, all under the
//! partition's single writer lock.
//!
//! Invariants: a batch is written wholly before anything about it is recorded;
//! any failed write, fsync or segment creation poisons the partition (so an
//! unacknowledged, possibly half-written batch is never followed by another);
//! a roll seals (fsyncs) the old segment before the new one exists and fsyncs
//! the directory after; retention deletes only whole sealed segments, oldest
//! first, so the log start only moves forward and never past the active
//! segment; once the topic is deleted ([`Partition::retire`]) the writer
//! touches nothing on disk again.

use std::sync::Arc;

use super::super::LogError;
use super::super::batch::{self, BatchHeader, Record};
use super::super::config::{CleanupPolicy, Durability};
use super::super::segment::{self, ActiveSegment, SealedSegment};
use super::Partition;
use super::commit::Mark;

/// The single writer's state.
#[derive(Debug)]
pub struct Writer {
    pub(super) active: ActiveSegment,
    /// Set when the topic is deleted: a caller still holding the partition
    /// must not write into (or roll a segment inside) a directory that is
    /// going away, or that a recreated topic of the same name now owns.
    retired: bool,
}

impl Writer {
    pub fn new(active: ActiveSegment) -> Writer {
        Writer {
            active,
            retired: false,
        }
    }

    fn check_retired(&self, partition: &Partition) -> Result<(), LogError> {
        if self.retired {
            return Err(LogError::Deleted {
                path: partition.dir.clone(),
            });
        }
        Ok(())
    }
}

/// A segment deleted by retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedSegment {
    pub base_offset: u64,
    /// The offset after its last record: the partition's log start, if this was
    /// the newest segment deleted.
    pub next_offset: u64,
    pub bytes: u64,
    /// Its newest record's timestamp (`i64::MIN` if it held none).
    pub max_timestamp: i64,
}

impl Partition {
    /// Appends `records` as one batch and returns the offset of the first,
    /// once the topic's durability policy holds for it.
    pub fn append(&self, records: &[Record], now_ms: i64) -> Result<u64, LogError> {
        let mut writer = self.writer.lock().expect("writer lock");
        writer.check_retired(self)?;
        self.check_poison()?;
        let base = writer.active.next_offset();
        if records.is_empty() {
            return Ok(base);
        }
        let config = self.config();
        let bytes = batch::encode(base, records, now_ms);
        let header = BatchHeader::parse(&bytes).expect("an encoded batch has a valid header");
        let active = &writer.active;
        let full = active.size() + bytes.len() as u64 > config.segment_bytes;
        let old = config
            .segment_ms
            .is_some_and(|ms| active.age_ms(now_ms) >= ms);
        if active.size() > 0 && (full || old) {
            self.roll_locked(&mut writer)?;
        }
        if let Err(e) = writer.active.append(&bytes, &header, now_ms) {
            return Err(self.poison("write", e));
        }
        let always = config.durability == Durability::Always;
        self.record_written(Mark::of(&writer.active), !always);
        drop(writer);
        if always {
            self.wait_durable(header.next_offset())?;
        }
        Ok(base)
    }

    /// Stops every later append, roll and deletion (they fail with
    /// [`LogError::Deleted`]); waits for the one in progress, if any.
    pub fn retire(&self) {
        self.writer.lock().expect("writer lock").retired = true;
    }

    /// Seals the active segment and starts a new one, unless it is empty.
    /// Returns whether a roll happened.
    pub fn roll(&self) -> Result<bool, LogError> {
        let mut writer = self.writer.lock().expect("writer lock");
        writer.check_retired(self)?;
        self.check_poison()?;
        if writer.active.size() == 0 {
            return Ok(false);
        }
        self.roll_locked(&mut writer)?;
        Ok(true)
    }

    fn roll_locked(&self, writer: &mut Writer) -> Result<(), LogError> {
        let storage = self.storage.as_ref();
        let sealed = writer
            .active
            .seal(storage, &self.dir)
            .map_err(|e| self.poison("segment seal", e))?;
        let next = ActiveSegment::create(storage, &self.dir, writer.active.next_offset())
            .map_err(|e| self.poison("segment create", e))?;
        // The new segment's directory entry must survive a crash, or recovery
        // would find the old segment active and the new one's batches lost.
        storage
            .sync_dir(&self.dir)
            .map_err(|e| self.poison("directory fsync", e))?;
        self.record_rolled(Mark::of(&next), sealed);
        writer.active = next;
        Ok(())
    }

    /// One maintenance pass (see `log/flusher.rs`): rolls the active segment
    /// if it is due, applies retention and, under the `compact` policy,
    /// compacts the sealed segments. A partition of a deleted topic is left
    /// alone. Returns what retention deleted.
    pub fn maintain(&self, now_ms: i64) -> Result<Vec<DeletedSegment>, LogError> {
        let result = self.roll_if_due(now_ms).and_then(|_| {
            let deleted = self.enforce_retention(now_ms)?;
            if self.config().cleanup_policy == CleanupPolicy::Compact {
                self.compact(now_ms)?;
            }
            Ok(deleted)
        });
        match result {
            Err(LogError::Deleted { .. }) => Ok(Vec::new()),
            other => other,
        }
    }

    /// Seals a non-empty active segment that is older than `segment_ms`, or
    /// whose records are all past `retention_ms` (so retention can delete
    /// them although no append comes to roll it). Returns whether it rolled.
    pub fn roll_if_due(&self, now_ms: i64) -> Result<bool, LogError> {
        let config = self.config();
        let mut writer = self.writer.lock().expect("writer lock");
        writer.check_retired(self)?;
        if writer.active.size() == 0 || self.is_poisoned() {
            return Ok(false);
        }
        let active = &writer.active;
        let aged = config
            .segment_ms
            .is_some_and(|ms| active.age_ms(now_ms) >= ms);
        let expired = config.retention_ms.is_some_and(|ms| {
            active.reader().indexes().max_timestamp
                < now_ms.saturating_sub(ms.min(i64::MAX as u64) as i64)
        });
        if !(aged || expired) {
            return Ok(false);
        }
        self.roll_locked(&mut writer)?;
        Ok(true)
    }

    /// Deletes the oldest sealed segments that are past the topic's retention by
    /// time (their newest record is older than `retention_ms`) or by size (the
    /// partition is larger than `retention_bytes`). The active segment is never
    /// deleted. Returns what was deleted, oldest first.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<Vec<DeletedSegment>, LogError> {
        let config = self.config();
        let (max_age, max_bytes) = (config.retention_ms, config.retention_bytes);
        if max_age.is_none() && max_bytes.is_none() {
            return Ok(Vec::new());
        }
        let cutoff = max_age.map(|ms| now_ms.saturating_sub(ms.min(i64::MAX as u64) as i64));
        self.delete_oldest(|segment, total| {
            cutoff.is_some_and(|c| segment.max_timestamp() < c)
                || max_bytes.is_some_and(|b| total > b)
        })
    }

    /// Deletes the sealed segments that hold only offsets below `offset`
    /// (whole segments: the log start becomes the base of the first segment
    /// kept, at most `offset`). Returns what was deleted, oldest first.
    pub fn delete_before(&self, offset: u64) -> Result<Vec<DeletedSegment>, LogError> {
        self.delete_oldest(|segment, _| segment.next_offset() <= offset)
    }

    /// Deletes sealed segments from the oldest for as long as `doomed(segment,
    /// bytes of the partition before deleting it)` says so.
    fn delete_oldest(
        &self,
        doomed: impl Fn(&SealedSegment, u64) -> bool,
    ) -> Result<Vec<DeletedSegment>, LogError> {
        let _cleaning = self.cleaning.lock().expect("cleaning lock");
        let writer = self.writer.lock().expect("writer lock");
        writer.check_retired(self)?;
        let sealed = self.view.read().expect("view lock").sealed.clone();
        let mut total = sealed.iter().map(|s| s.size()).sum::<u64>() + writer.active.size();
        let mut count = 0;
        for segment in sealed.iter() {
            if !doomed(segment, total) {
                break;
            }
            total -= segment.size();
            count += 1;
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        // Readers stop seeing the segments first (a reader that already holds
        // one keeps reading its open file), then the files go, `.log` first:
        // an orphaned index is removed on open, an orphaned `.log` would not be.
        self.view.write().expect("view lock").sealed = Arc::new(sealed[count..].to_vec());
        drop(writer);
        let mut deleted = Vec::with_capacity(count);
        for segment in &sealed[..count] {
            let base = segment.base();
            for path in [
                segment::log_path(&self.dir, base),
                segment::index_path(&self.dir, base),
                segment::timeindex_path(&self.dir, base),
            ] {
                match self.storage.remove(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(LogError::io(&path, e));
                    }
                    _ => {}
                }
            }
            tracing::info!(partition = %self.dir.display(), base, bytes = segment.size(), "deleted a segment");
            deleted.push(DeletedSegment {
                base_offset: base,
                next_offset: segment.next_offset(),
                bytes: segment.size(),
                max_timestamp: segment.max_timestamp(),
            });
        }
        // Without this a crash could bring deleted segments back and move the
        // log start backwards.
        self.storage
            .sync_dir(&self.dir)
            .map_err(|e| LogError::io(&self.dir, e))?;
        Ok(deleted)
    }
}
