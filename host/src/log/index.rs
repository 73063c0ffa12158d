//! The sparse offset index of one segment: every `INDEX_INTERVAL` bytes or so, an
//! entry maps a batch's base offset (relative to the segment's base) to the
//! batch's byte position. A lookup finds the last entry at or before an offset by
//! binary search; the reader scans forward from there.
//!
//! The index is only ever a hint that can be rebuilt from the segment: it is
//! rebuilt whenever it is missing, has a torn size, is out of order, or points
//! past the end of its segment.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of log between two index entries.
pub const INDEX_INTERVAL: u64 = 4096;
const ENTRY_LEN: usize = 8;

/// One segment's index, held in memory and mirrored to its `.index` file.
#[derive(Debug)]
pub struct OffsetIndex {
    path: PathBuf,
    file: File,
    /// (offset relative to the segment base, byte position), both increasing.
    entries: Vec<(u32, u32)>,
    /// Log position of the last entry, to space entries by `INDEX_INTERVAL`.
    last_position: Option<u64>,
}

impl OffsetIndex {
    /// Opens the index at `path` and keeps it only if it is consistent with a
    /// segment of `segment_len` bytes; otherwise returns `None` so the caller
    /// rebuilds it.
    pub fn load(path: &Path, segment_len: u64) -> std::io::Result<Option<OffsetIndex>> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => f.read_to_end(&mut bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() % ENTRY_LEN != 0 {
            return Ok(None);
        }
        let entries: Vec<(u32, u32)> = bytes
            .chunks_exact(ENTRY_LEN)
            .map(|c| {
                (
                    u32::from_le_bytes(c[0..4].try_into().expect("4 bytes")),
                    u32::from_le_bytes(c[4..8].try_into().expect("4 bytes")),
                )
            })
            .collect();
        let ordered = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let in_bounds = entries.iter().all(|e| (e.1 as u64) < segment_len);
        let starts_at_zero = entries.first().is_none_or(|e| *e == (0, 0));
        if !ordered || !in_bounds || !starts_at_zero {
            return Ok(None);
        }
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Some(OffsetIndex {
            path: path.to_path_buf(),
            file,
            last_position: entries.last().map(|e| e.1 as u64),
            entries,
        }))
    }

    /// Creates an empty index at `path`, replacing any file there.
    pub fn create(path: &Path) -> std::io::Result<OffsetIndex> {
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        drop(file);
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(OffsetIndex {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            last_position: None,
        })
    }

    /// Records that the batch with `relative_offset` starts at `position`, if
    /// enough bytes have passed since the last entry (the first batch always
    /// gets one).
    pub fn maybe_add(&mut self, relative_offset: u32, position: u64) -> std::io::Result<()> {
        if let Some(last) = self.last_position
            && position < last + INDEX_INTERVAL
        {
            return Ok(());
        }
        let mut entry = [0u8; ENTRY_LEN];
        entry[0..4].copy_from_slice(&relative_offset.to_le_bytes());
        entry[4..8].copy_from_slice(&(position as u32).to_le_bytes());
        self.file.write_all(&entry)?;
        self.entries.push((relative_offset, position as u32));
        self.last_position = Some(position);
        Ok(())
    }

    /// The byte position of the last indexed batch starting at or before
    /// `relative_offset` (0 when none is).
    pub fn lookup(&self, relative_offset: u32) -> u64 {
        let i = self.entries.partition_point(|e| e.0 <= relative_offset);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].1 as u64
        }
    }

    /// Flushes the index file to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Where the index lives, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_the_last_entry_at_or_before_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::create(&path).unwrap();
        index.maybe_add(0, 0).unwrap();
        index.maybe_add(5, 100).unwrap(); // too close: skipped
        index.maybe_add(10, INDEX_INTERVAL).unwrap();
        index.maybe_add(20, 2 * INDEX_INTERVAL + 1).unwrap();
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(9), 0);
        assert_eq!(index.lookup(10), INDEX_INTERVAL);
        assert_eq!(index.lookup(19), INDEX_INTERVAL);
        assert_eq!(index.lookup(1000), 2 * INDEX_INTERVAL + 1);

        let reloaded = OffsetIndex::load(&path, 3 * INDEX_INTERVAL)
            .unwrap()
            .unwrap();
        assert_eq!(reloaded.entries, index.entries);
    }

    #[test]
    fn torn_or_out_of_bounds_indexes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = OffsetIndex::create(&path).unwrap();
        index.maybe_add(0, 0).unwrap();
        index.maybe_add(10, INDEX_INTERVAL).unwrap();
        assert!(
            OffsetIndex::load(&path, INDEX_INTERVAL).unwrap().is_none(),
            "past end"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[1, 2, 3])
            .unwrap();
        assert!(
            OffsetIndex::load(&path, 10 * INDEX_INTERVAL)
                .unwrap()
                .is_none(),
            "torn"
        );
        assert!(
            OffsetIndex::load(&dir.path().join("missing"), 1)
                .unwrap()
                .is_none()
        );
    }
}
