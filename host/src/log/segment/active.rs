//! The active segment: the one segment of a partition that is appended to.
//!
//! Its indexes live in memory only (in the shared [`SegmentReader`]); they are
//! written to `.index`/`.timeindex` files when the segment is sealed, and
//! rebuilt by a scan when the partition opens. Recovery validates every batch
//! (length, offset sequence, CRC32C) and truncates the file after the last valid
//! one: only the tail can be torn, because batches are written in order and a
//! batch past the tail was never acknowledged.

use std::path::Path;
use std::sync::Arc;

use super::super::LogError;
use super::super::batch::BatchHeader;
use super::super::index::SealRecord;
use super::super::storage::{CreateMode, Storage, write_whole};
use super::{Indexes, SealedSegment, SegmentReader, index_path, log_path, timeindex_path};

/// The least and the most a segment allocates ahead of its writes.
const RESERVE_MIN: u64 = 64 << 10;
const RESERVE_MAX: u64 = 8 << 20;

/// The segment appends go to. Owned by the partition's single writer.
#[derive(Debug)]
pub struct ActiveSegment {
    reader: Arc<SegmentReader>,
    /// Bytes of whole batches written; the next batch goes here.
    size: u64,
    /// Where the blocks allocated ahead of the writes end (see
    /// [`ActiveSegment::append`]); at least `size`.
    reserved: u64,
    /// The offset the next batch gets.
    next_offset: u64,
    /// When the segment got its first batch, for rolling by age.
    first_append_ms: Option<i64>,
}

impl ActiveSegment {
    /// Creates a new, empty segment file. The caller syncs the directory.
    pub fn create(storage: &dyn Storage, dir: &Path, base: u64) -> std::io::Result<ActiveSegment> {
        let path = log_path(dir, base);
        let file = storage.create(&path, CreateMode::New)?;
        Ok(ActiveSegment {
            reader: Arc::new(SegmentReader::new(base, path, file, Indexes::new())),
            size: 0,
            reserved: 0,
            next_offset: base,
            first_append_ms: None,
        })
    }

    /// Opens the last segment of a partition: validates it batch by batch,
    /// truncates a torn or corrupt tail and rebuilds its indexes. Returns the
    /// segment and how many bytes were cut off.
    pub fn recover(
        storage: &dyn Storage,
        dir: &Path,
        base: u64,
        now_ms: i64,
    ) -> Result<(ActiveSegment, u64), LogError> {
        let path = log_path(dir, base);
        let file = storage.open(&path).map_err(|e| LogError::io(&path, e))?;
        let len = file.len().map_err(|e| LogError::io(&path, e))?;
        let scan = SegmentReader::scan(file.as_ref(), &path, base, len)?;
        let cut = len - scan.valid_len;
        if cut > 0 {
            tracing::warn!(
                segment = %path.display(),
                position = scan.valid_len,
                bytes = cut,
                reason = scan.stopped.unwrap_or("unknown"),
                "truncating the torn tail of the active segment"
            );
            // The cut must be durable before anything is appended after it, or a
            // crash could resurrect the old tail behind new batches.
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_data())
                .map_err(|e| LogError::io(&path, e))?;
        }
        let first_append_ms = (scan.valid_len > 0).then(|| scan.indexes.max_timestamp.min(now_ms));
        Ok((
            ActiveSegment {
                reader: Arc::new(SegmentReader::new(base, path, file, scan.indexes)),
                size: scan.valid_len,
                reserved: scan.valid_len,
                next_offset: scan.next_offset,
                first_append_ms,
            },
            cut,
        ))
    }

    /// Writes one encoded batch at the end of the segment. On error the file may
    /// hold part of the batch past `size`; the caller must poison the partition.
    pub fn append(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        now_ms: i64,
    ) -> std::io::Result<()> {
        let end = self.size + bytes.len() as u64;
        if end > self.reserved {
            self.reserve_past(end);
        }
        self.reader.file().write_all_at(bytes, self.size)?;
        let (base, position) = (self.reader.base, self.size);
        self.reader
            .update_indexes(|ix| ix.observe(base, header, position));
        self.size += bytes.len() as u64;
        self.next_offset = header.next_offset();
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Allocates the segment's blocks ahead of its writes, up to `end` and as
    /// far again as the segment already holds (at least [`RESERVE_MIN`], at
    /// most [`RESERVE_MAX`] past `end`). Writes into allocated blocks skip
    /// the file system's delayed allocation: on ext4 that made 64 KiB appends
    /// about a third faster. The blocks past the last batch are released
    /// when the segment is sealed. A failure (a full disk, say) is left to
    /// the write that follows.
    fn reserve_past(&mut self, end: u64) {
        let ahead = self.size.clamp(RESERVE_MIN, RESERVE_MAX);
        let target = end + ahead;
        if let Err(e) = self
            .reader
            .file()
            .reserve(self.reserved, target - self.reserved)
        {
            tracing::debug!(segment = %self.reader.path.display(), error = %e, "cannot allocate segment blocks ahead");
        }
        self.reserved = target;
    }

    /// Makes the written batches durable.
    pub fn sync(&self) -> std::io::Result<()> {
        self.reader.file().sync_data()
    }

    /// Seals the segment: its bytes are made durable first (so recovery never
    /// finds a sealed segment shorter than what was acknowledged), then its
    /// index files are written. The caller replaces this active segment with a
    /// new one; on error it keeps it (and poisons the partition).
    pub fn seal(&self, storage: &dyn Storage, dir: &Path) -> std::io::Result<SealedSegment> {
        if self.reserved > self.size {
            // Truncating to its own length frees the blocks allocated ahead.
            self.reader.file().set_len(self.size)?;
        }
        self.sync()?;
        let indexes = self.reader.indexes();
        let seal = SealRecord {
            size: self.size,
            next_offset: self.next_offset,
            max_timestamp: indexes.max_timestamp,
        };
        let base = self.reader.base;
        write_whole(
            storage,
            &index_path(dir, base),
            &indexes.offsets.encode(&seal),
        )?;
        write_whole(storage, &timeindex_path(dir, base), &indexes.times.encode())?;
        Ok(SealedSegment::new(self.reader.clone(), seal))
    }

    pub fn reader(&self) -> &Arc<SegmentReader> {
        &self.reader
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// How long ago the first batch arrived (0 for an empty segment).
    pub fn age_ms(&self, now_ms: i64) -> u64 {
        self.first_append_ms
            .map_or(0, |first| now_ms.saturating_sub(first).max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::log::Record;
    use crate::log::batch;
    use crate::log::storage::OsStorage;

    /// Bytes of disk allocated to the file at `path`.
    fn allocated(path: &Path) -> u64 {
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    #[test]
    fn blocks_are_allocated_ahead_of_appends_and_released_at_seal() {
        let dir = tempfile::tempdir().unwrap();
        let mut active = ActiveSegment::create(&OsStorage, dir.path(), 0).unwrap();
        let records: Vec<Record> = (0..64).map(|_| Record::value(vec![7u8; 1024])).collect();
        for _ in 0..4 {
            let bytes = batch::encode(active.next_offset(), &records, 1);
            let header = BatchHeader::parse(&bytes).unwrap();
            active.append(&bytes, &header, 1).unwrap();
        }
        let path = log_path(dir.path(), 0);
        let len = std::fs::metadata(&path).unwrap().len();
        assert_eq!(len, active.size());
        assert!(
            allocated(&path) >= len + RESERVE_MIN,
            "{} bytes allocated for {len} written",
            allocated(&path)
        );
        active.seal(&OsStorage, dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        assert!(
            allocated(&path) < len + 4096,
            "{} bytes still allocated for {len} after the seal",
            allocated(&path)
        );
    }
}
