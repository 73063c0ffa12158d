//! One segment: a `{base:020}.log` file of whole batches plus its `.index`.
//!
//! Only the partition's last segment is appended to. Recovery treats the two
//! kinds differently: the active segment is scanned batch by batch and a torn or
//! corrupt tail is truncated (it was never acknowledged as anything but the tail),
//! while a sealed segment is trusted to its index and any corruption found when
//! reading it is an error naming the file and byte position, never a truncation.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::LogError;
use super::batch::{self, BatchHeader, HEADER_LEN, StoredRecord};
use super::index::OffsetIndex;

/// A segment file and its index.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first record; also the file name.
    pub base: u64,
    path: PathBuf,
    file: File,
    /// Bytes of whole batches in the file; appends go here.
    size: u64,
    index: OffsetIndex,
}

/// What recovering the active segment found.
#[derive(Debug)]
pub struct Recovered {
    pub segment: Segment,
    /// The offset the next append gets.
    pub next_offset: u64,
}

/// The `.log` path of the segment with `base` in `dir`.
pub fn log_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.log"))
}

fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.index"))
}

impl Segment {
    /// Creates a new, empty segment.
    pub fn create(dir: &Path, base: u64) -> Result<Segment, LogError> {
        let path = log_path(dir, base);
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| LogError::io(&path, e))?;
        let index = OffsetIndex::create(&index_path(dir, base))
            .map_err(|e| LogError::io(&index_path(dir, base), e))?;
        Ok(Segment {
            base,
            path,
            file,
            size: 0,
            index,
        })
    }

    /// Opens a sealed segment; its index is rebuilt if it is unusable.
    pub fn open_sealed(dir: &Path, base: u64) -> Result<Segment, LogError> {
        let path = log_path(dir, base);
        let file = open_rw(&path)?;
        let size = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        let ipath = index_path(dir, base);
        let index = match OffsetIndex::load(&ipath, size).map_err(|e| LogError::io(&ipath, e))? {
            Some(index) => index,
            None => {
                tracing::warn!(segment = %path.display(), "rebuilding missing or damaged index");
                let mut segment = Segment::with_new_index(path, file, size, base, &ipath)?;
                segment.scan(true)?;
                return Ok(segment);
            }
        };
        Ok(Segment {
            base,
            path,
            file,
            size,
            index,
        })
    }

    /// Opens the active segment: validates every batch, truncates a torn or
    /// corrupt tail and rebuilds the index.
    pub fn recover(dir: &Path, base: u64) -> Result<Recovered, LogError> {
        let path = log_path(dir, base);
        let file = open_rw(&path)?;
        let len = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
        let mut segment = Segment::with_new_index(path, file, len, base, &index_path(dir, base))?;
        let (valid_len, next_offset) = segment.scan(false)?;
        let truncated = len - valid_len;
        if truncated > 0 {
            tracing::warn!(
                segment = %segment.path.display(),
                position = valid_len,
                bytes = truncated,
                "truncating torn tail"
            );
            segment
                .file
                .set_len(valid_len)
                .and_then(|()| segment.file.sync_all())
                .map_err(|e| LogError::io(&segment.path, e))?;
            segment.size = valid_len;
        }
        Ok(Recovered {
            segment,
            next_offset,
        })
    }

    fn with_new_index(
        path: PathBuf,
        file: File,
        size: u64,
        base: u64,
        ipath: &Path,
    ) -> Result<Segment, LogError> {
        let index = OffsetIndex::create(ipath).map_err(|e| LogError::io(ipath, e))?;
        Ok(Segment {
            base,
            path,
            file,
            size,
            index,
        })
    }

    /// Walks the batches from the start, re-indexing them. In `strict` mode (a
    /// sealed segment) a bad batch is corruption; otherwise the walk stops there
    /// and the valid prefix is returned as (length, next offset).
    fn scan(&mut self, strict: bool) -> Result<(u64, u64), LogError> {
        let mut pos = 0u64;
        let mut expected = self.base;
        let mut head = [0u8; HEADER_LEN];
        while pos < self.size {
            let header = if pos + HEADER_LEN as u64 <= self.size {
                self.read_at(&mut head, pos)?;
                BatchHeader::parse(&head)
            } else {
                None
            };
            let valid = header.filter(|h| {
                h.base_offset == expected
                    && pos + h.size <= self.size
                    && self
                        .batch_bytes(pos, h)
                        .is_ok_and(|b| batch::checksum_ok(&b, h))
            });
            let Some(header) = valid else {
                if strict {
                    return Err(self.corrupt(pos, "batch header or checksum"));
                }
                break;
            };
            self.index
                .maybe_add((header.base_offset - self.base) as u32, pos)
                .map_err(|e| LogError::io(self.index.path(), e))?;
            pos += header.size;
            expected = header.next_offset();
        }
        Ok((pos, expected))
    }

    /// Appends one encoded batch whose first offset is `base_offset`.
    pub fn append(&mut self, bytes: &[u8], base_offset: u64) -> Result<(), LogError> {
        self.file
            .write_all(bytes)
            .map_err(|e| LogError::io(&self.path, e))?;
        self.index
            .maybe_add((base_offset - self.base) as u32, self.size)
            .map_err(|e| LogError::io(self.index.path(), e))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Bytes of batches in the segment.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Flushes the segment and its index to disk.
    pub fn sync(&self) -> Result<(), LogError> {
        self.file
            .sync_data()
            .map_err(|e| LogError::io(&self.path, e))?;
        self.index
            .sync()
            .map_err(|e| LogError::io(self.index.path(), e))
    }

    /// Reads whole, checksum-verified batches holding offsets in `[from, end)`
    /// into `out`, until `max_records` records or `max_bytes` bytes (at least one
    /// batch) are gathered. Returns the bytes read.
    pub fn read(
        &self,
        from: u64,
        end: u64,
        max_records: usize,
        max_bytes: u64,
        out: &mut Vec<StoredRecord>,
    ) -> Result<u64, LogError> {
        let relative = from.saturating_sub(self.base).min(u32::MAX as u64) as u32;
        let mut pos = self.index.lookup(relative);
        let mut read = 0u64;
        // The first batch of a whole read is taken whatever its size, so a batch
        // larger than `max_bytes` cannot stall a consumer.
        let first_is_free = out.is_empty();
        let mut head = [0u8; HEADER_LEN];
        while pos < self.size && out.len() < max_records {
            if pos + HEADER_LEN as u64 > self.size {
                return Err(self.corrupt(pos, "truncated batch header"));
            }
            self.read_at(&mut head, pos)?;
            let header = BatchHeader::parse(&head)
                .filter(|h| pos + h.size <= self.size)
                .ok_or_else(|| self.corrupt(pos, "batch header"))?;
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
            let bytes = self.batch_bytes(pos, &header)?;
            if !batch::checksum_ok(&bytes, &header) {
                return Err(self.corrupt(pos, "checksum mismatch"));
            }
            let records = batch::decode(&bytes, &header, from, |what| self.corrupt(pos, what))?;
            let room = max_records - out.len();
            out.extend(records.into_iter().filter(|r| r.offset < end).take(room));
            read += header.size;
            pos += header.size;
        }
        Ok(read)
    }

    fn batch_bytes(&self, pos: u64, header: &BatchHeader) -> Result<Vec<u8>, LogError> {
        let mut bytes = vec![0u8; header.size as usize];
        self.read_at(&mut bytes, pos)?;
        Ok(bytes)
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> Result<(), LogError> {
        self.file
            .read_exact_at(buf, pos)
            .map_err(|e| LogError::io(&self.path, e))
    }

    fn corrupt(&self, position: u64, what: &str) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            position,
            what: what.to_string(),
        }
    }
}

fn open_rw(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| LogError::io(path, e))
}
