//! One partition: a directory of segments, the only writer to them, and the
//! high watermark readers must not pass.
//!
//! Invariants: offsets are dense and strictly increasing across segments; a
//! segment's file name is the offset of its first record; `next_offset` (the high
//! watermark) only moves after a batch is wholly written, so a reader never sees a
//! partial batch.

use std::path::{Path, PathBuf};

use super::LogError;
use super::batch::{self, Record, StoredRecord};
use super::segment::{self, Segment};

/// A partition's segments, oldest first; the last one is active.
#[derive(Debug)]
pub struct Partition {
    dir: PathBuf,
    segments: Vec<Segment>,
    next_offset: u64,
    /// Roll to a new segment once the active one would grow past this.
    segment_bytes: u64,
}

impl Partition {
    /// Opens (or creates) the partition in `dir`, recovering its active segment.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<Partition, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
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
        bases.sort_unstable();
        let mut segments = Vec::with_capacity(bases.len().max(1));
        let next_offset = match bases.split_last() {
            None => {
                segments.push(Segment::create(dir, 0)?);
                sync_dir(dir)?;
                0
            }
            Some((&active, sealed)) => {
                for &base in sealed {
                    segments.push(Segment::open_sealed(dir, base)?);
                }
                let recovered = Segment::recover(dir, active)?;
                segments.push(recovered.segment);
                recovered.next_offset
            }
        };
        Ok(Partition {
            dir: dir.to_path_buf(),
            segments,
            next_offset,
            segment_bytes,
        })
    }

    /// The offset the next appended record gets; readers see offsets below it.
    pub fn high_watermark(&self) -> u64 {
        self.next_offset
    }

    /// The first offset still in the log.
    pub fn log_start(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.base)
    }

    /// Appends `records` as one batch and returns the offset of the first.
    pub fn append(&mut self, records: &[Record], now_ms: i64) -> Result<u64, LogError> {
        let base = self.next_offset;
        if records.is_empty() {
            return Ok(base);
        }
        let bytes = batch::encode(base, records, now_ms);
        let active = self
            .segments
            .last()
            .expect("a partition always has a segment");
        if active.size() > 0 && active.size() + bytes.len() as u64 > self.segment_bytes {
            self.roll()?;
        }
        let active = self
            .segments
            .last_mut()
            .expect("a partition always has a segment");
        active.append(&bytes, base)?;
        self.next_offset = base + records.len() as u64;
        Ok(base)
    }

    fn roll(&mut self) -> Result<(), LogError> {
        // The sealed segment's bytes must be durable before a newer one exists, so
        // recovery never finds a sealed segment shorter than what was written.
        self.segments
            .last()
            .expect("a partition always has a segment")
            .sync()?;
        self.segments
            .push(Segment::create(&self.dir, self.next_offset)?);
        // The new file's directory entry must survive a crash.
        sync_dir(&self.dir)
    }

    /// Reads records from `from` up to `max_records` or about `max_bytes` (at
    /// least one whole batch), never past the high watermark.
    pub fn read(
        &self,
        from: u64,
        max_records: usize,
        max_bytes: u64,
    ) -> Result<Vec<StoredRecord>, LogError> {
        let end = self.next_offset;
        if from < self.log_start() || from > end {
            return Err(LogError::OffsetOutOfRange {
                offset: from,
                start: self.log_start(),
                end,
            });
        }
        let mut out = Vec::new();
        let first = self
            .segments
            .partition_point(|s| s.base <= from)
            .saturating_sub(1);
        let mut budget = max_bytes;
        for segment in &self.segments[first..] {
            if from >= end || out.len() >= max_records || budget == 0 {
                break;
            }
            let read = segment.read(from, end, max_records, budget, &mut out)?;
            budget = budget.saturating_sub(read);
            if let Some(last) = out.last()
                && last.offset + 1 >= end
            {
                break;
            }
        }
        Ok(out)
    }

    /// Flushes the active segment to disk.
    pub fn sync(&self) -> Result<(), LogError> {
        self.segments
            .last()
            .expect("a partition always has a segment")
            .sync()
    }

    /// How many segment files the partition has.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// The `.log` path of the segment starting at `base`, for tests and tools.
pub fn segment_path(dir: &Path, base: u64) -> PathBuf {
    segment::log_path(dir, base)
}
