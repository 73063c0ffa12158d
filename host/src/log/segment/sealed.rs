//! A sealed segment: immutable, never appended to, never truncated.
//!
//! Opening one trusts its `.index` and `.timeindex` only if both pass their
//! checksums and agree with the `.log` file; otherwise both are rebuilt by a
//! strict scan and written again. Anything wrong with the segment itself (a
//! changed length, a bad batch found by the scan or by the cheap check of its
//! last batches, a gap before the next segment) is *damage*: reported with file
//! and byte position on open, and again by every read that reaches it. The
//! segment stays as it is, so nothing is silently dropped and a repaired or
//! restored file can still be used.

use std::path::Path;
use std::sync::Arc;

use super::super::LogError;
use super::super::index::{OffsetIndex, SealRecord};
use super::super::storage::{Storage, read_whole, write_whole};
use super::super::timeindex::TimeIndex;
use super::{Indexes, SegmentReader, index_path, log_path, timeindex_path};

/// A segment that is only read.
#[derive(Debug, Clone)]
pub struct SealedSegment {
    reader: Arc<SegmentReader>,
    seal: SealRecord,
    /// Whether damage was found on open: its metadata is then not trusted to
    /// skip it in a timestamp search.
    damaged: bool,
}

impl SealedSegment {
    pub fn new(reader: Arc<SegmentReader>, seal: SealRecord) -> SealedSegment {
        SealedSegment {
            reader,
            seal,
            damaged: false,
        }
    }

    /// Opens the sealed segment at `base`, whose successor starts at
    /// `next_base`. Returns the segment and the damage found, if any.
    pub fn open(
        storage: &dyn Storage,
        dir: &Path,
        base: u64,
        next_base: u64,
    ) -> Result<(SealedSegment, Option<LogError>), LogError> {
        let path = log_path(dir, base);
        let file = storage.open(&path).map_err(|e| LogError::io(&path, e))?;
        let len = file.len().map_err(|e| LogError::io(&path, e))?;
        let (ipath, tpath) = (index_path(dir, base), timeindex_path(dir, base));
        let loaded = read_whole(storage, &ipath)
            .map_err(|e| LogError::io(&ipath, e))?
            .and_then(|b| OffsetIndex::decode(&b));
        let loaded = match loaded {
            Some((offsets, seal)) => read_whole(storage, &tpath)
                .map_err(|e| LogError::io(&tpath, e))?
                .and_then(|b| TimeIndex::decode(&b, seal.size))
                .map(|times| (offsets, times, seal)),
            None => None,
        };
        if let Some((offsets, times, seal)) = loaded {
            let tail = offsets.last_position();
            let indexes = Indexes::loaded(offsets, times, seal.max_timestamp);
            let reader = Arc::new(SegmentReader::new(base, path, file, indexes));
            let damage = if len != seal.size {
                Some(reader.corrupt(len.min(seal.size), "sealed segment changed length"))
            } else if seal.next_offset != next_base {
                Some(reader.corrupt(
                    seal.size,
                    "sealed segment does not end where the next begins",
                ))
            } else {
                reader.check_tail(tail, seal.size, seal.next_offset).err()
            };
            let damaged = damage.is_some();
            return Ok((
                SealedSegment {
                    reader,
                    seal,
                    damaged,
                },
                damage,
            ));
        }

        tracing::warn!(segment = %path.display(), "rebuilding a missing or damaged index");
        let scan = SegmentReader::scan(file.as_ref(), &path, base, len)?;
        let seal = SealRecord {
            size: len,
            next_offset: next_base,
            max_timestamp: scan.indexes.max_timestamp,
        };
        let indexes = scan.indexes;
        let reader = Arc::new(SegmentReader::new(base, path, file, indexes.clone()));
        let damage = match scan.stopped {
            Some(what) => Some(reader.corrupt(scan.valid_len, what)),
            // Compaction may have removed the last records; never more than
            // the segment held.
            None if scan.next_offset > next_base
                || (scan.next_offset < next_base && !scan.compacted) =>
            {
                Some(reader.corrupt(
                    scan.valid_len,
                    "sealed segment does not end where the next begins",
                ))
            }
            None => None,
        };
        if damage.is_none() {
            // A rebuilt index is only written for a sound segment, so a damaged
            // one is scanned (and reported) again on every open.
            let written = write_whole(storage, &ipath, &indexes.offsets.encode(&seal))
                .and_then(|()| write_whole(storage, &tpath, &indexes.times.encode()));
            if let Err(e) = written {
                tracing::warn!(segment = %reader.path.display(), error = %e, "could not save a rebuilt index");
            }
        }
        let damaged = damage.is_some();
        Ok((
            SealedSegment {
                reader,
                seal,
                damaged,
            },
            damage,
        ))
    }

    pub fn reader(&self) -> &Arc<SegmentReader> {
        &self.reader
    }

    pub fn base(&self) -> u64 {
        self.reader.base
    }

    /// Bytes of the segment (its readable limit).
    pub fn size(&self) -> u64 {
        self.seal.size
    }

    /// The offset after the segment's last record.
    pub fn next_offset(&self) -> u64 {
        self.seal.next_offset
    }

    /// Whether damage was found when the segment was opened.
    pub fn is_damaged(&self) -> bool {
        self.damaged
    }

    /// The largest record timestamp in the segment.
    pub fn max_timestamp(&self) -> i64 {
        self.seal.max_timestamp
    }
}
