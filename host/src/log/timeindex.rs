//! The sparse time index of one segment (`.timeindex`): seek by timestamp.
//!
//! Record timestamps are set by producers and need not increase, so an entry
//! does not claim "this batch has timestamp T". It claims something that stays
//! true whatever the order: *every record before this batch (in the segment) has
//! a timestamp at most `before`*. `before` is a running maximum, so it never
//! decreases and a binary search finds the last entry whose `before` is below a
//! target timestamp; no record earlier than that batch can be the answer, and a
//! forward scan from there finds the earliest record at or after the target
//! (Kafka's ListOffsets semantics).
//!
//! Invariants: entries are added at the same batches as the offset index, are
//! non-decreasing in `before` and strictly increasing in offset and position, and
//! the first is `(i64::MIN, 0, 0)`. Like the offset index the file is derived,
//! written once at seal time with a CRC32C, and rebuilt if anything is off.

use super::index::checked_body;

const MAGIC: &[u8; 8] = b"WEIRTIX1";
const ENTRY_LEN: usize = 20;

/// One entry: see the module docs for what `before` promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// The largest timestamp of any record before this batch in the segment.
    pub before: i64,
    /// The batch's base offset relative to the segment base.
    pub relative_offset: u32,
    /// The batch's byte position.
    pub position: u64,
}

/// A segment's sparse time index, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<TimeEntry>,
}

impl TimeIndex {
    /// Adds an entry; the caller keeps entries ordered.
    pub fn push(&mut self, entry: TimeEntry) {
        debug_assert!(self.entries.last().is_none_or(|l| l.before <= entry.before
            && l.relative_offset < entry.relative_offset
            && l.position < entry.position));
        self.entries.push(entry);
    }

    /// Where a scan for the earliest record with timestamp `>= ts` may start:
    /// the byte position of the last indexed batch all of whose predecessors
    /// are older than `ts` (0 when none is).
    pub fn lookup(&self, ts: i64) -> u64 {
        let i = self.entries.partition_point(|e| e.before < ts);
        if i == 0 {
            0
        } else {
            self.entries[i - 1].position
        }
    }

    /// The `.timeindex` file: magic, entry count, entries, CRC32C.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.entries.len() * ENTRY_LEN + 4);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.before.to_le_bytes());
            out.extend_from_slice(&e.relative_offset.to_le_bytes());
            out.extend_from_slice(&e.position.to_le_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a `.timeindex` file for a segment of `size` bytes; `None` unless
    /// every check passes.
    pub fn decode(bytes: &[u8], size: u64) -> Option<TimeIndex> {
        let body = checked_body(bytes)?;
        if body.len() < 12 || &body[0..8] != MAGIC {
            return None;
        }
        let count = u32::from_le_bytes(body[8..12].try_into().ok()?) as usize;
        let rest = &body[12..];
        if rest.len() != count.checked_mul(ENTRY_LEN)? {
            return None;
        }
        let entries: Vec<TimeEntry> = rest
            .chunks_exact(ENTRY_LEN)
            .map(|c| TimeEntry {
                before: i64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
                relative_offset: u32::from_le_bytes(c[8..12].try_into().expect("4 bytes")),
                position: u64::from_le_bytes(c[12..20].try_into().expect("8 bytes")),
            })
            .collect();
        let ordered = entries.windows(2).all(|w| {
            w[0].before <= w[1].before
                && w[0].relative_offset < w[1].relative_offset
                && w[0].position < w[1].position
        });
        let in_bounds = entries.iter().all(|e| e.position < size);
        let first = TimeEntry {
            before: i64::MIN,
            relative_offset: 0,
            position: 0,
        };
        let starts_right = if size == 0 {
            entries.is_empty()
        } else {
            entries.first() == Some(&first)
        };
        (ordered && in_bounds && starts_right).then_some(TimeIndex { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(before: i64, relative_offset: u32, position: u64) -> TimeEntry {
        TimeEntry {
            before,
            relative_offset,
            position,
        }
    }

    #[test]
    fn lookup_starts_at_the_last_batch_whose_predecessors_are_all_older() {
        let mut index = TimeIndex::default();
        index.push(entry(i64::MIN, 0, 0));
        index.push(entry(100, 10, 5000));
        index.push(entry(100, 20, 9000));
        index.push(entry(250, 30, 13000));
        assert_eq!(index.lookup(i64::MIN), 0);
        assert_eq!(index.lookup(50), 0);
        assert_eq!(
            index.lookup(100),
            0,
            "a record at 100 may sit before batch 10"
        );
        assert_eq!(index.lookup(101), 9000);
        assert_eq!(index.lookup(250), 9000);
        assert_eq!(index.lookup(i64::MAX), 13000);
    }

    #[test]
    fn a_time_index_file_round_trips_and_damage_is_refused() {
        let mut index = TimeIndex::default();
        index.push(entry(i64::MIN, 0, 0));
        index.push(entry(7, 3, 4100));
        let bytes = index.encode();
        assert_eq!(TimeIndex::decode(&bytes, 8192), Some(index.clone()));
        assert!(TimeIndex::decode(&bytes, 4100).is_none(), "past the end");
        assert!(TimeIndex::decode(&vec![0u8; bytes.len()], 8192).is_none());
        for cut in 0..bytes.len() {
            assert!(TimeIndex::decode(&bytes[..cut], 8192).is_none());
        }
    }
}
