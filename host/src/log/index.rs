//! The sparse offset index of one segment, and the `.index` file that keeps it
//! (with the segment's seal record) for a sealed segment.
//!
//! Every [`INDEX_INTERVAL`] bytes or so an entry maps a batch's base offset
//! (relative to the segment's base) to the batch's byte position. A lookup
//! finds the last entry at or before an offset by binary search; the reader
//! scans batch headers forward from there.
//!
//! Invariants: entries are strictly increasing in both fields and the first is
//! always `(0, 0)`. The index is derived data: the file is written once, when
//! the segment is sealed, and carries a CRC32C over all of it. A file that is
//! missing, torn, zeroed or fails any check is rebuilt from the segment, never
//! trusted.

/// Bytes of log between two index entries (offset and time index alike).
pub const INDEX_INTERVAL: u64 = 4096;
const MAGIC: &[u8; 8] = b"WEIRIDX1";
const ENTRY_LEN: usize = 12;
/// magic, size, next offset, max timestamp, entry count.
const HEAD_LEN: usize = 8 + 8 + 8 + 8 + 4;

/// What a sealed segment looked like when it was sealed; checked against the
/// `.log` file on open so a sealed segment that changed length is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealRecord {
    /// Bytes of whole batches in the segment.
    pub size: u64,
    /// The offset after the segment's last record.
    pub next_offset: u64,
    /// The largest record timestamp in the segment (`i64::MIN` when empty).
    pub max_timestamp: i64,
}

/// A segment's sparse offset index, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    /// (offset relative to the segment base, byte position), both increasing.
    entries: Vec<(u32, u64)>,
}

impl OffsetIndex {
    /// Adds an entry; the caller keeps entries increasing.
    pub fn push(&mut self, relative_offset: u32, position: u64) {
        debug_assert!(
            self.entries
                .last()
                .is_none_or(|&(o, p)| o < relative_offset && p < position)
        );
        self.entries.push((relative_offset, position));
    }

    /// The byte position of the last indexed batch starting at or before
    /// `relative_offset` (0 when none is).
    pub fn lookup(&self, relative_offset: u32) -> u64 {
        let i = self.entries.partition_point(|e| e.0 <= relative_offset);
        if i == 0 { 0 } else { self.entries[i - 1].1 }
    }

    /// The position of the last entry, where a scan for the segment's end starts.
    pub fn last_position(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.1)
    }

    /// The `.index` file: header with the seal record, entries, CRC32C.
    pub fn encode(&self, seal: &SealRecord) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN + self.entries.len() * ENTRY_LEN + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&seal.size.to_le_bytes());
        out.extend_from_slice(&seal.next_offset.to_le_bytes());
        out.extend_from_slice(&seal.max_timestamp.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for (offset, position) in &self.entries {
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&position.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses an `.index` file; `None` unless every check passes.
    pub fn decode(bytes: &[u8]) -> Option<(OffsetIndex, SealRecord)> {
        let body = checked_body(bytes)?;
        if body.len() < HEAD_LEN || &body[0..8] != MAGIC {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        let seal = SealRecord {
            size: u64_at(8),
            next_offset: u64_at(16),
            max_timestamp: u64_at(24) as i64,
        };
        let count = u32::from_le_bytes(body[32..36].try_into().expect("4 bytes")) as usize;
        let rest = &body[HEAD_LEN..];
        if rest.len() != count.checked_mul(ENTRY_LEN)? {
            return None;
        }
        let entries: Vec<(u32, u64)> = rest
            .chunks_exact(ENTRY_LEN)
            .map(|c| {
                (
                    u32::from_le_bytes(c[0..4].try_into().expect("4 bytes")),
                    u64::from_le_bytes(c[4..12].try_into().expect("8 bytes")),
                )
            })
            .collect();
        let ordered = entries
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        let in_bounds = entries.iter().all(|e| e.1 < seal.size);
        let starts_right = if seal.size == 0 {
            entries.is_empty()
        } else {
            entries.first() == Some(&(0, 0))
        };
        (ordered && in_bounds && starts_right).then_some((OffsetIndex { entries }, seal))
    }
}

/// The bytes before a trailing CRC32C, if the CRC matches.
pub(super) fn checked_body(bytes: &[u8]) -> Option<&[u8]> {
    let split = bytes.len().checked_sub(4)?;
    let (body, crc) = bytes.split_at(split);
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    (crc32c::crc32c(body) == crc).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (OffsetIndex, SealRecord) {
        let mut index = OffsetIndex::default();
        index.push(0, 0);
        index.push(10, INDEX_INTERVAL);
        index.push(20, 2 * INDEX_INTERVAL + 1);
        let seal = SealRecord {
            size: 3 * INDEX_INTERVAL,
            next_offset: 130,
            max_timestamp: 99,
        };
        (index, seal)
    }

    #[test]
    fn lookup_finds_the_last_entry_at_or_before_the_offset() {
        let (index, _) = sample();
        assert_eq!(index.lookup(0), 0);
        assert_eq!(index.lookup(9), 0);
        assert_eq!(index.lookup(10), INDEX_INTERVAL);
        assert_eq!(index.lookup(19), INDEX_INTERVAL);
        assert_eq!(index.lookup(1000), 2 * INDEX_INTERVAL + 1);
        assert_eq!(OffsetIndex::default().lookup(5), 0);
    }

    #[test]
    fn an_index_file_round_trips_with_its_seal_record() {
        let (index, seal) = sample();
        let decoded = OffsetIndex::decode(&index.encode(&seal)).expect("valid file");
        assert_eq!(decoded, (index, seal));
    }

    #[test]
    fn torn_zeroed_flipped_and_inconsistent_index_files_are_refused() {
        let (index, seal) = sample();
        let bytes = index.encode(&seal);
        for cut in 0..bytes.len() {
            assert!(
                OffsetIndex::decode(&bytes[..cut]).is_none(),
                "torn at {cut}"
            );
        }
        assert!(
            OffsetIndex::decode(&vec![0u8; bytes.len()]).is_none(),
            "zeroed"
        );
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x04;
            assert!(OffsetIndex::decode(&flipped).is_none(), "flip at {i}");
        }
        let short = SealRecord {
            size: INDEX_INTERVAL,
            ..seal
        };
        assert!(
            OffsetIndex::decode(&index.encode(&short)).is_none(),
            "entries past the end of the segment"
        );
    }
}
