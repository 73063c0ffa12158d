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
mod tests;
