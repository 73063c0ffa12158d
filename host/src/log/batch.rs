//! The on-disk record batch: the unit that is appended, checksummed and read.
//!
//! A batch is written with one `write` and is valid only as a whole: its CRC32C
//! covers every byte after the checksum field, so a torn or corrupt batch is
//! rejected entirely and a reader never sees part of one. Layout, little-endian:
//!
//! ```text
//! 0   u32  length          bytes after this field
//! 4   u32  crc32c          over bytes [8, 4 + length)
//! 8   u8   magic = 1
//! 9   u8   attributes: bit 0 = written by compaction (see below), others 0
//! 10  u16  reserved = 0
//! 12  u32  record count    >= 1
//! 16  u64  base offset     offset of the first record; the rest follow densely
//! 24  i64  max timestamp
//! 32  records: i64 timestamp, i32 key length (-1 = no key), key,
//!     u32 value length, value, u32 header count,
//!     per header: u16 name length, name (UTF-8), u32 value length, value
//! ```
//!
//! A value or header value length of `0xFFFFFFFF` ([`NULL_LEN`]) is a null
//! (Kafka's "no value", as a tombstone's), with no bytes after it. Batches
//! written before nulls existed never hold that length (a batch is far
//! smaller), so they read as they always did, and a batch without nulls is
//! encoded byte for byte as before.
//!
//! Offsets are dense inside a batch. Between batches they are dense too,
//! except after compaction: a batch compaction wrote carries
//! [`COMPACTED`], and may follow a gap (records compaction removed), as may
//! the end of its segment.

use bytes::Bytes;

mod decode;
pub use decode::{SEEK_STEP, Window, decode};

/// Bytes before the first record.
pub const HEADER_LEN: usize = 32;
const MAGIC: u8 = 1;
/// The attribute bit of a batch written by compaction.
pub const COMPACTED: u8 = 1;
/// The length that marks a null value or header value.
pub const NULL_LEN: u32 = u32::MAX;

/// Which of a record's value and header values are null (Kafka's "no
/// value") rather than empty. A null's bytes are empty, so every surface
/// without nulls (weir's HTTP API, CLI, frames and guests) reads it as
/// empty; the Kafka listener keeps the difference.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nulls {
    pub value: bool,
    /// Indexes into the record's headers, ascending.
    pub headers: Vec<u32>,
}

impl Nulls {
    /// Whether header `i`'s value is null.
    pub fn header(&self, i: usize) -> bool {
        self.headers.binary_search(&(i as u32)).is_ok()
    }
}

/// A record as a producer hands it to the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// `None` for a record without a key (not the same as an empty key).
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch; `None` means "stamp with append time".
    pub timestamp: Option<i64>,
    /// Null (not empty) value and header values, as Kafka producers send them.
    pub nulls: Nulls,
}

impl Record {
    /// A record with a value and nothing else.
    pub fn value(value: impl Into<Vec<u8>>) -> Record {
        Record {
            value: value.into(),
            ..Record::default()
        }
    }

    /// A keyed record.
    pub fn keyed(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Record {
        Record {
            key: Some(key.into()),
            value: value.into(),
            ..Record::default()
        }
    }

    /// A tombstone: a keyed record with a null value.
    pub fn tombstone(key: impl Into<Vec<u8>>) -> Record {
        Record {
            key: Some(key.into()),
            nulls: Nulls {
                value: true,
                headers: Vec::new(),
            },
            ..Record::default()
        }
    }

    fn value_bytes(&self) -> Option<&[u8]> {
        (!self.nulls.value).then_some(&self.value[..])
    }

    fn header_bytes(&self, i: usize) -> Option<&[u8]> {
        (!self.nulls.header(i)).then_some(&self.headers[i].1[..])
    }

    fn encoded_len(&self) -> usize {
        8 + 4
            + self.key.as_ref().map_or(0, Vec::len)
            + 4
            + self.value_bytes().map_or(0, <[u8]>::len)
            + 4
            + (0..self.headers.len())
                .map(|i| {
                    2 + self.headers[i].0.len() + 4 + self.header_bytes(i).map_or(0, <[u8]>::len)
                })
                .sum::<usize>()
    }
}

/// A record read back from the log, with its offset and timestamp fixed.
///
/// Key and value are views into the buffer the batch was read into (one
/// allocation per read, not two per record); cloning one shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Null (not empty) value and header values; see [`Nulls`].
    pub nulls: Nulls,
}

/// The fixed-size front of a batch, enough to skip over it or check its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Total bytes of the batch on disk, including the length field.
    pub size: u64,
    pub crc: u32,
    pub count: u32,
    pub base_offset: u64,
    pub max_timestamp: i64,
    pub attributes: u8,
}

impl BatchHeader {
    /// Parses the first [`HEADER_LEN`] bytes; `None` if they cannot be a batch.
    pub fn parse(bytes: &[u8]) -> Option<BatchHeader> {
        if bytes.len() < HEADER_LEN || bytes[8] != MAGIC {
            return None;
        }
        let length = u32::from_le_bytes(bytes[0..4].try_into().ok()?) as u64;
        let count = u32::from_le_bytes(bytes[12..16].try_into().ok()?);
        if length < (HEADER_LEN - 4) as u64 || count == 0 {
            return None;
        }
        Some(BatchHeader {
            size: length + 4,
            crc: u32::from_le_bytes(bytes[4..8].try_into().ok()?),
            count,
            base_offset: u64::from_le_bytes(bytes[16..24].try_into().ok()?),
            max_timestamp: i64::from_le_bytes(bytes[24..32].try_into().ok()?),
            attributes: bytes[9],
        })
    }

    /// Whether compaction wrote the batch, so a gap may come before it.
    pub fn is_compacted(&self) -> bool {
        self.attributes & COMPACTED != 0
    }

    /// The offset after this batch's last record.
    pub fn next_offset(&self) -> u64 {
        self.base_offset + self.count as u64
    }
}

/// Encodes `records` as one batch starting at `base_offset`; records without a
/// timestamp get `now_ms`.
pub fn encode(base_offset: u64, records: &[Record], now_ms: i64) -> Vec<u8> {
    encode_with(base_offset, records, now_ms, 0)
}

/// [`encode`] with attribute bits (such as [`COMPACTED`]).
pub fn encode_with(base_offset: u64, records: &[Record], now_ms: i64, attributes: u8) -> Vec<u8> {
    let body: usize = records.iter().map(Record::encoded_len).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + body);
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&[MAGIC, attributes, 0, 0]);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&base_offset.to_le_bytes());
    let max_ts = records
        .iter()
        .map(|r| r.timestamp.unwrap_or(now_ms))
        .max()
        .unwrap_or(now_ms);
    out.extend_from_slice(&max_ts.to_le_bytes());
    for r in records {
        out.extend_from_slice(&r.timestamp.unwrap_or(now_ms).to_le_bytes());
        match &r.key {
            Some(k) => {
                out.extend_from_slice(&(k.len() as i32).to_le_bytes());
                out.extend_from_slice(k);
            }
            None => out.extend_from_slice(&(-1i32).to_le_bytes()),
        }
        put_nullable(&mut out, r.value_bytes());
        out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
        for (i, (name, _)) in r.headers.iter().enumerate() {
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            put_nullable(&mut out, r.header_bytes(i));
        }
    }
    let length = (out.len() - 4) as u32;
    out[0..4].copy_from_slice(&length.to_le_bytes());
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&NULL_LEN.to_le_bytes()),
    }
}

/// Whether a whole batch's checksum matches.
pub fn checksum_ok(bytes: &[u8], header: &BatchHeader) -> bool {
    bytes.len() as u64 == header.size && crc32c::crc32c(&bytes[8..]) == header.crc
}

/// Bytes `records` take as one batch.
pub fn encoded_len(records: &[Record]) -> u64 {
    (HEADER_LEN + records.iter().map(Record::encoded_len).sum::<usize>()) as u64
}

/// Splits `records` into runs, in order, each within `max_records` and (as a
/// batch) `max_bytes`. A record too large alone is a run of its own, which
/// the log then refuses.
pub fn chunks(
    records: &[Record],
    max_records: u32,
    max_bytes: u64,
) -> impl Iterator<Item = &[Record]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = HEADER_LEN as u64;
        let mut n = 0;
        while n < rest.len() && n < max_records.max(1) as usize {
            let len = rest[n].encoded_len() as u64;
            if n > 0 && bytes + len > max_bytes {
                break;
            }
            bytes += len;
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogError;

    fn sample() -> Vec<Record> {
        vec![
            Record::keyed("k1", "v1"),
            Record {
                key: None,
                value: b"v2".to_vec(),
                headers: vec![("h".into(), b"x".to_vec()), ("empty".into(), vec![])],
                timestamp: Some(42),
                nulls: Nulls::default(),
            },
            Record::keyed("", ""),
        ]
    }

    fn no_corruption(what: &str) -> LogError {
        panic!("unexpected corruption: {what}")
    }

    fn decoded(
        window: &Window<'_>,
        from: u64,
        max: usize,
        seek: Option<&mut Vec<u32>>,
    ) -> Vec<StoredRecord> {
        let mut out = Vec::new();
        decode(window, (from, u64::MAX), max, seek, &mut out, no_corruption).unwrap();
        out
    }

    #[test]
    fn decode_stops_below_until_and_appends_to_what_is_there() {
        let bytes = Bytes::from(encode(10, &sample(), 0));
        let header = BatchHeader::parse(&bytes).unwrap();
        let whole = Window::whole(&bytes, &header);
        let mut out = decoded(&whole, 10, 1, None);
        decode(&whole, (11, 12), usize::MAX, None, &mut out, no_corruption).unwrap();
        let offsets: Vec<u64> = out.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![10, 11]);
        let mut seek = Vec::new();
        let mut none = Vec::new();
        decode(
            &whole,
            (10, 10),
            5,
            Some(&mut seek),
            &mut none,
            no_corruption,
        )
        .unwrap();
        assert!(none.is_empty(), "nothing below until");
        assert_eq!(seek, vec![HEADER_LEN as u32], "the walk still samples");
    }

    #[test]
    fn encoded_batch_round_trips_with_dense_offsets() {
        let bytes = Bytes::from(encode(100, &sample(), 7));
        let header = BatchHeader::parse(&bytes).expect("header");
        assert_eq!(header.size as usize, bytes.len());
        assert_eq!(
            (header.base_offset, header.count, header.max_timestamp),
            (100, 3, 42)
        );
        assert!(checksum_ok(&bytes, &header));
        let whole = Window::whole(&bytes, &header);
        let records = decoded(&whole, 0, usize::MAX, None);
        let offsets: Vec<u64> = records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![100, 101, 102]);
        assert_eq!(records[0].key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(records[0].timestamp, 7);
        assert_eq!(records[1].key, None);
        assert_eq!(records[1].headers, sample()[1].headers);
        assert_eq!(
            records[2].key.as_deref(),
            Some(&b""[..]),
            "empty key is not no key"
        );
    }

    #[test]
    fn decode_from_mid_batch_skips_earlier_records() {
        let bytes = Bytes::from(encode(10, &sample(), 0));
        let header = BatchHeader::parse(&bytes).unwrap();
        let whole = Window::whole(&bytes, &header);
        let records = decoded(&whole, 12, usize::MAX, None);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].offset, 12);
    }

    #[test]
    fn a_window_from_a_seek_sample_decodes_like_the_whole_batch() {
        let records: Vec<Record> = (0..1000)
            .map(|i| Record::keyed(format!("k{i}"), "v".repeat(i % 50)))
            .collect();
        let bytes = Bytes::from(encode(5000, &records, 1));
        let header = BatchHeader::parse(&bytes).unwrap();
        let mut seek = Vec::new();
        let whole = Window::whole(&bytes, &header);
        let first = decoded(&whole, 5300, 10, Some(&mut seek));
        assert_eq!(seek.len(), 1000usize.div_ceil(SEEK_STEP as usize));
        assert_eq!(first.len(), 10);
        // From sample 2 (record 256) to sample 4 (record 512): offsets 5300..5310.
        let prefix = bytes.slice(..seek[4] as usize);
        let window = Window {
            bytes: &prefix,
            start: seek[2] as usize,
            first: 5000 + 2 * SEEK_STEP,
            end: 5000 + 4 * SEEK_STEP,
        };
        let again = decoded(&window, 5300, 10, None);
        assert_eq!(again, first);
        assert_eq!(again[0].offset, 5300);
        assert_eq!(again[0].key.as_deref(), Some(&b"k300"[..]));
    }

    #[test]
    fn chunks_stay_within_both_limits_and_keep_order() {
        let records: Vec<Record> = (0..100).map(|i| Record::value(vec![i as u8; 40])).collect();
        let chunks: Vec<&[Record]> = chunks(&records, 7, 300).collect();
        assert!(chunks.iter().all(|c| c.len() <= 7 && encoded_len(c) <= 300));
        assert_eq!(chunks.concat(), records);
        let big = [Record::value(vec![0; 1000])];
        assert_eq!(
            super::chunks(&big, 7, 300).count(),
            1,
            "alone, to be refused"
        );
    }

    /// A batch as weir wrote it before nulls existed (built by hand from
    /// the layout above, crc32c included): offset 7, a keyed record with a
    /// header, then an unkeyed record with an empty value.
    const OLD_BATCH: &str = "4e0000008612056c01000000020000000700000000000000e903000000000000\
        e803000000000000010000006b0100000076010000000100680100000078e903000000000000\
        ffffffff0000000000000000";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_batch_written_before_nulls_reads_the_same_and_encodes_byte_for_byte() {
        let old = Bytes::from(unhex(OLD_BATCH));
        let header = BatchHeader::parse(&old).expect("header");
        assert!(checksum_ok(&old, &header));
        let records = decoded(&Window::whole(&old, &header), 0, usize::MAX, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].value, &b"v"[..]);
        assert_eq!(records[0].headers, vec![("h".to_string(), b"x".to_vec())]);
        assert_eq!(records[1].key, None);
        assert!(
            records.iter().all(|r| r.nulls == Nulls::default()),
            "no nulls"
        );
        let again = vec![
            Record {
                headers: vec![("h".into(), b"x".to_vec())],
                timestamp: Some(1000),
                ..Record::keyed("k", "v")
            },
            Record {
                timestamp: Some(1001),
                ..Record::default()
            },
        ];
        assert_eq!(
            encode(7, &again, 0),
            old.to_vec(),
            "the same bytes as before"
        );
    }

    #[test]
    fn null_values_and_null_header_values_round_trip_apart_from_empty_ones() {
        let records = vec![
            Record::tombstone("gone"),
            Record {
                headers: vec![
                    ("a".into(), b"1".to_vec()),
                    ("a".into(), vec![]),
                    ("a".into(), vec![]),
                ],
                nulls: Nulls {
                    value: false,
                    headers: vec![1],
                },
                ..Record::keyed("k", "")
            },
        ];
        let bytes = Bytes::from(encode(0, &records, 5));
        assert_eq!(bytes.len() as u64, encoded_len(&records));
        let header = BatchHeader::parse(&bytes).unwrap();
        assert!(checksum_ok(&bytes, &header));
        let whole = Window::whole(&bytes, &header);
        let back = decoded(&whole, 0, usize::MAX, None);
        assert!(back[0].nulls.value && back[0].value.is_empty());
        assert!(!back[1].nulls.value, "an empty value is not a null one");
        assert_eq!(back[1].nulls.headers, [1]);
        assert_eq!(back[1].headers, records[1].headers);
        // Skipping over nulls (a read from the second record) lands right.
        let mut seek = Vec::new();
        let second = decoded(&whole, 1, usize::MAX, Some(&mut seek));
        assert_eq!(second, back[1..]);
    }

    #[test]
    fn every_single_bit_flip_is_caught_by_the_header_or_the_checksum() {
        let bytes = encode(0, &sample(), 0);
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x10;
            let caught = match BatchHeader::parse(&flipped) {
                None => true,
                Some(h) => !checksum_ok(&flipped, &h),
            };
            assert!(caught, "bit flip at byte {i} went unnoticed");
        }
    }
}
