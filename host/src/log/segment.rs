//! One segment: a `{base:020}.log` file of whole batches, its sparse offset
//! index (`.index`) and time index (`.timeindex`).
//!
//! The read side, [`SegmentReader`], is shared (behind an `Arc`) by the writer
//! and every reader; the write side comes in two distinct types, so the compiler
//! keeps anyone from writing to a sealed segment:
//! - [`ActiveSegment`] (in `segment/active.rs`): the partition's last segment,
//!   the only one appended to. Its indexes live in memory and are rebuilt by a
//!   scan on open, where a torn or corrupt tail is truncated.
//! - [`SealedSegment`] (in `segment/sealed.rs`): immutable; its indexes are
//!   loaded from files written at seal time, or rebuilt by a strict scan. Any
//!   corruption is an error naming the file and byte position, never a
//!   truncation.
//!
//! Invariants kept here: a reader is handed only whole, checksum-verified
//! batches, and never reads past the byte limit and offset limit it is given
//! (the published end of the segment and the high watermark).

mod active;
mod sealed;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use active::ActiveSegment;
pub use sealed::SealedSegment;

use super::LogError;
use bytes::Bytes;

use super::batch::{self, BatchHeader, HEADER_LEN, SEEK_STEP, StoredRecord, Window};
use super::index::{INDEX_INTERVAL, OffsetIndex};
use super::storage::StorageFile;
use super::timeindex::{TimeEntry, TimeIndex};

/// The `.log` path of the segment with `base` in `dir`.
pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

/// The `.index` path of the segment with `base` in `dir`.
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

/// The `.timeindex` path of the segment with `base` in `dir`.
pub fn timeindex_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.timeindex"))
}

/// Both sparse indexes of a segment, plus what is needed to extend them.
#[derive(Debug, Clone)]
pub struct Indexes {
    pub offsets: OffsetIndex,
    pub times: TimeIndex,
    /// The largest record timestamp so far (`i64::MIN` when empty).
    pub max_timestamp: i64,
    /// Position of the last indexed batch, to space entries.
    last_indexed: Option<u64>,
}

impl Indexes {
    pub fn new() -> Indexes {
        Indexes {
            offsets: OffsetIndex::default(),
            times: TimeIndex::default(),
            max_timestamp: i64::MIN,
            last_indexed: None,
        }
    }

    /// Indexes loaded from files; `max_timestamp` comes from the seal record.
    pub fn loaded(offsets: OffsetIndex, times: TimeIndex, max_timestamp: i64) -> Indexes {
        Indexes {
            last_indexed: Some(offsets.last_position()),
            offsets,
            times,
            max_timestamp,
        }
    }

    /// Accounts for the batch `header` at `position` of the segment at `base`,
    /// adding index entries if it is far enough from the last indexed one.
    pub fn observe(&mut self, base: u64, header: &BatchHeader, position: u64) {
        let due = self
            .last_indexed
            .is_none_or(|last| position >= last + INDEX_INTERVAL);
        if due {
            let relative_offset = (header.base_offset - base) as u32;
            self.offsets.push(relative_offset, position);
            self.times.push(TimeEntry {
                before: self.max_timestamp,
                relative_offset,
                position,
            });
            self.last_indexed = Some(position);
        }
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
    }
}

/// The read side of one segment, shared by its writer and all readers.
#[derive(Debug)]
pub struct SegmentReader {
    /// Offset of the first record; also the file name.
    pub base: u64,
    pub path: PathBuf,
    file: Arc<dyn StorageFile>,
    /// Grows while the segment is active; fixed once sealed.
    indexes: RwLock<Indexes>,
    /// Seek samples of the large batches read lately: (batch position, byte
    /// position in the batch of every [`SEEK_STEP`]-th record), learnt when
    /// the batch was read whole and its checksum verified. A reader that
    /// resumes in the middle of such a batch reads and decodes only the
    /// samples around what it returns, so consuming a batch of n records
    /// k at a time costs about n, not n²/k.
    seeks: Mutex<VecDeque<(u64, Arc<Vec<u32>>)>>,
}

/// How many batches' seek samples a segment keeps.
const SEEK_CACHE: usize = 8;

/// What a scan of a segment from its start found.
#[derive(Debug)]
pub struct Scan {
    /// Bytes of valid batches from the start.
    pub valid_len: u64,
    /// The offset after the last valid batch.
    pub next_offset: u64,
    pub indexes: Indexes,
    /// Why the scan stopped before the end of the file, if it did.
    pub stopped: Option<&'static str>,
    /// Whether compaction wrote the segment (its batches say so), so its
    /// last records may be gone: it may end before the next one begins.
    pub compacted: bool,
}

impl SegmentReader {
    pub fn new(base: u64, path: PathBuf, file: Arc<dyn StorageFile>, indexes: Indexes) -> Self {
        SegmentReader {
            base,
            path,
            file,
            indexes: RwLock::new(indexes),
            seeks: Mutex::new(VecDeque::new()),
        }
    }

    pub fn file(&self) -> &Arc<dyn StorageFile> {
        &self.file
    }

    pub fn indexes(&self) -> Indexes {
        self.indexes.read().expect("index lock").clone()
    }

    fn update_indexes(&self, f: impl FnOnce(&mut Indexes)) {
        f(&mut self.indexes.write().expect("index lock"));
    }

    /// Walks the batches of the first `len` bytes, validating length, offsets
    /// and CRC32C, and builds both indexes. Stops at the first bad batch.
    pub fn scan(
        file: &dyn StorageFile,
        path: &Path,
        base: u64,
        len: u64,
    ) -> Result<Scan, LogError> {
        let mut pos = 0u64;
        let mut expected = base;
        let mut indexes = Indexes::new();
        let mut head = [0u8; HEADER_LEN];
        let mut stopped = None;
        let mut compacted = false;
        while pos < len {
            if pos + HEADER_LEN as u64 > len {
                stopped = Some("truncated batch header");
                break;
            }
            read_at(file, path, &mut head, pos)?;
            let Some(header) = BatchHeader::parse(&head) else {
                stopped = Some("invalid batch header");
                break;
            };
            if !follows(&header, expected) {
                stopped = Some("batch offset out of sequence");
                break;
            }
            if pos + header.size > len {
                stopped = Some("batch runs past the end of the file");
                break;
            }
            let mut bytes = vec![0u8; header.size as usize];
            read_at(file, path, &mut bytes, pos)?;
            if !batch::checksum_ok(&bytes, &header) {
                stopped = Some("checksum mismatch");
                break;
            }
            indexes.observe(base, &header, pos);
            compacted |= header.is_compacted();
            pos += header.size;
            expected = header.next_offset();
        }
        Ok(Scan {
            valid_len: pos,
            next_offset: expected,
            indexes,
            stopped,
            compacted,
        })
    }

    /// Reads whole, checksum-verified batches holding offsets in `[from, end)`
    /// from the first `limit` bytes into `out`, until `max_records` records or
    /// `max_bytes` bytes (at least one batch per whole read) are gathered.
    /// Returns the bytes read.
    pub fn read(
        &self,
        from: u64,
        end: u64,
        limit: u64,
        max_records: usize,
        max_bytes: u64,
        out: &mut Vec<StoredRecord>,
    ) -> Result<u64, LogError> {
        let relative = from.saturating_sub(self.base).min(u32::MAX as u64) as u32;
        let mut pos = self
            .indexes
            .read()
            .expect("index lock")
            .offsets
            .lookup(relative);
        let mut read = 0u64;
        // The first batch of a whole read is taken whatever its size, so a batch
        // larger than `max_bytes` cannot stall a consumer.
        let first_is_free = out.is_empty();
        while pos < limit && out.len() < max_records {
            let header = self.header_at(pos, limit)?;
            if header.base_offset >= end {
                break;
            }
            if header.next_offset() <= from {
                pos += header.size;
                continue;
            }
            if (read > 0 || !first_is_free) && read + header.size > max_bytes {
                break;
            }
            let room = max_records - out.len();
            self.records_at(pos, &header, (from, end), room, out)?;
            read += header.size;
            pos += header.size;
        }
        Ok(read)
    }

    /// The earliest offset below `end` (within the first `limit` bytes) whose
    /// record has a timestamp `>= ts`, if any.
    pub fn offset_for_timestamp(
        &self,
        ts: i64,
        end: u64,
        limit: u64,
    ) -> Result<Option<u64>, LogError> {
        let mut pos = self.indexes.read().expect("index lock").times.lookup(ts);
        while pos < limit {
            let header = self.header_at(pos, limit)?;
            if header.base_offset >= end {
                break;
            }
            if header.max_timestamp >= ts {
                let mut records = Vec::new();
                self.records_at(pos, &header, (0, end), usize::MAX, &mut records)?;
                let found = records.iter().find(|r| r.timestamp >= ts).map(|r| r.offset);
                if found.is_some() {
                    return Ok(found);
                }
            }
            pos += header.size;
        }
        Ok(None)
    }

    /// Checks the chain of batch headers from `pos` to exactly `size`, ending
    /// at `next_offset`: a cheap check of a sealed segment's tail on open.
    pub fn check_tail(&self, mut pos: u64, size: u64, next_offset: u64) -> Result<(), LogError> {
        let mut expected = None;
        let mut compacted = false;
        while pos < size {
            let header = self.header_at(pos, size)?;
            if expected.is_some_and(|e| !follows(&header, e)) {
                return Err(self.corrupt(pos, "batch offset out of sequence"));
            }
            expected = Some(header.next_offset());
            compacted = header.is_compacted();
            pos += header.size;
        }
        match expected {
            Some(e) if e > next_offset || (e < next_offset && !compacted) => {
                Err(self.corrupt(pos, "segment does not end where sealed"))
            }
            _ => Ok(()),
        }
    }

    fn header_at(&self, pos: u64, limit: u64) -> Result<BatchHeader, LogError> {
        if pos + HEADER_LEN as u64 > limit {
            return Err(self.corrupt(pos, "truncated batch header"));
        }
        let mut head = [0u8; HEADER_LEN];
        self.read_at(&mut head, pos)?;
        BatchHeader::parse(&head)
            .filter(|h| pos + h.size <= limit && h.base_offset >= self.base)
            .ok_or_else(|| self.corrupt(pos, "invalid batch header"))
    }

    /// Appends to `out` at most `max` records of the batch at `pos` with
    /// offsets in `[from, until)`.
    fn records_at(
        &self,
        pos: u64,
        header: &BatchHeader,
        (from, until): (u64, u64),
        max: usize,
        out: &mut Vec<StoredRecord>,
    ) -> Result<(), LogError> {
        let corrupt = |what: &str| self.corrupt(pos, what);
        let large = u64::from(header.count) > SEEK_STEP;
        if large && let Some(seek) = self.seek_samples(pos) {
            let base = header.base_offset;
            let skip = from.saturating_sub(base);
            let first = skip / SEEK_STEP;
            let last = skip
                .saturating_add(max as u64)
                .min(u64::from(header.count))
                .div_ceil(SEEK_STEP);
            let start = u64::from(seek[first as usize]);
            let stop = seek
                .get(last as usize)
                .map_or(header.size, |&p| u64::from(p));
            let mut bytes = vec![0u8; (stop - start) as usize];
            self.read_at(&mut bytes, pos + start)?;
            let bytes = Bytes::from(bytes);
            let window = Window {
                bytes: &bytes,
                start: 0,
                first: base + first * SEEK_STEP,
                end: (base + last * SEEK_STEP).min(header.next_offset()),
            };
            return batch::decode(&window, (from, until), max, None, out, corrupt);
        }
        let mut bytes = vec![0u8; header.size as usize];
        self.read_at(&mut bytes, pos)?;
        let bytes = Bytes::from(bytes);
        if !batch::checksum_ok(&bytes, header) {
            return Err(self.corrupt(pos, "checksum mismatch"));
        }
        let whole = Window::whole(&bytes, header);
        if !large {
            return batch::decode(&whole, (from, until), max, None, out, corrupt);
        }
        let mut seek = Vec::new();
        batch::decode(&whole, (from, until), max, Some(&mut seek), out, corrupt)?;
        let mut seeks = self.seeks.lock().expect("seek lock");
        if seeks.len() >= SEEK_CACHE {
            seeks.pop_front();
        }
        seeks.push_back((pos, Arc::new(seek)));
        Ok(())
    }

    fn seek_samples(&self, pos: u64) -> Option<Arc<Vec<u32>>> {
        let seeks = self.seeks.lock().expect("seek lock");
        seeks
            .iter()
            .find(|(p, _)| *p == pos)
            .map(|(_, s)| s.clone())
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
        match self.file.read_exact_at(buf, pos) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err(self.corrupt(pos, "segment file ends early"))
            }
            other => other.map_err(|e| LogError::io(&self.path, e)),
        }
    }

    pub fn corrupt(&self, position: u64, what: &str) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            position,
            what: what.to_string(),
        }
    }
}

/// Whether a batch may come where offset `expected` is due: right there, or
/// later when compaction wrote it (the records between are gone).
fn follows(header: &BatchHeader, expected: u64) -> bool {
    header.base_offset == expected || (header.is_compacted() && header.base_offset > expected)
}

fn read_at(file: &dyn StorageFile, path: &Path, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
    file.read_exact_at(buf, pos)
        .map_err(|e| LogError::io(path, e))
}
