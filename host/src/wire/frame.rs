//! The binary framing of produce and fetch bodies (`application/octet-stream`),
//! for producers and consumers that carry bytes JSON cannot hold as they are.
//! All integers are big-endian:
//!
//! ```text
//! body     = u32 record count, then that many records, and nothing after
//! record   = [u64 offset, i64 timestamp]      (fetch responses only)
//!            u32 key length (0xFFFFFFFF = no key), key bytes,
//!            u32 value length, value bytes,
//!            u16 header count, then per header:
//!              u16 name length, name (UTF-8), u32 value length, value bytes
//! ```
//!
//! Decoding trusts nothing: every length is checked against the bytes that
//! remain before anything is allocated, the record count is bounded by
//! [`MAX_RECORDS`], and a truncated body, trailing bytes or a name that is not
//! UTF-8 is a [`FrameError`] naming the record and what was wrong.

use crate::log::{Record, StoredRecord};

/// The media type of the binary framing, in `Content-Type` (produce) and
/// `Accept` (fetch).
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The most records one body may declare.
pub const MAX_RECORDS: u32 = 100_000;
/// The key length that means "no key".
const NO_KEY: u32 = u32::MAX;

/// Why a body could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("binary body: record {record}: {what}")]
    Malformed { record: u32, what: &'static str },
    #[error("binary body declares {count} records; at most {MAX_RECORDS} are allowed")]
    TooMany { count: u32 },
    #[error("binary body has {bytes} bytes after its last record")]
    Trailing { bytes: usize },
}

/// Encodes records to produce.
pub fn encode_records(records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, records.len() as u32);
    for r in records {
        put_record(&mut out, r.key.as_deref(), &r.value, &r.headers);
    }
    out
}

/// Encodes fetched records, each with its offset and timestamp.
pub fn encode_stored(records: &[StoredRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    put_u32(&mut out, records.len() as u32);
    for r in records {
        out.extend_from_slice(&r.offset.to_be_bytes());
        out.extend_from_slice(&r.timestamp.to_be_bytes());
        put_record(&mut out, r.key.as_deref(), &r.value, &r.headers);
    }
    out
}

/// Decodes a produce body.
pub fn decode_records(body: &[u8]) -> Result<Vec<Record>, FrameError> {
    decode(body, false).map(|records| records.into_iter().map(|(_, _, record)| record).collect())
}

/// Decodes a fetch response.
pub fn decode_stored(body: &[u8]) -> Result<Vec<StoredRecord>, FrameError> {
    let records = decode(body, true)?;
    Ok(records
        .into_iter()
        .map(|(offset, timestamp, r)| StoredRecord {
            offset,
            timestamp,
            key: r.key.map(Into::into),
            value: r.value.into(),
            headers: r.headers,
            nulls: Default::default(),
        })
        .collect())
}

fn put_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_record(out: &mut Vec<u8>, key: Option<&[u8]>, value: &[u8], headers: &[(String, Vec<u8>)]) {
    match key {
        Some(key) => {
            put_u32(out, key.len() as u32);
            out.extend_from_slice(key);
        }
        None => put_u32(out, NO_KEY),
    }
    put_u32(out, value.len() as u32);
    out.extend_from_slice(value);
    out.extend_from_slice(&(headers.len() as u16).to_be_bytes());
    for (name, value) in headers {
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        put_u32(out, value.len() as u32);
        out.extend_from_slice(value);
    }
}

/// A cursor over a body that fails, naming the record, instead of reading
/// past the end.
struct Reader<'a> {
    rest: &'a [u8],
    record: u32,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Malformed {
                record: self.record,
                what,
            });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, what)?;
        Ok(bytes.try_into().expect("took exactly N bytes"))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, FrameError> {
        self.array(what).map(u16::from_be_bytes)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, FrameError> {
        self.array(what).map(u32::from_be_bytes)
    }

    fn bytes(&mut self, len: usize, what: &'static str) -> Result<Vec<u8>, FrameError> {
        self.take(len, what).map(<[u8]>::to_vec)
    }
}

fn decode(body: &[u8], stored: bool) -> Result<Vec<(u64, i64, Record)>, FrameError> {
    let mut r = Reader {
        rest: body,
        record: 0,
    };
    let count = r.u32("truncated record count")?;
    if count > MAX_RECORDS {
        return Err(FrameError::TooMany { count });
    }
    // Every record takes at least 10 bytes, which bounds the allocation by the
    // body's size whatever the count claims.
    let mut out = Vec::with_capacity((count as usize).min(body.len() / 10));
    for i in 0..count {
        r.record = i;
        let (offset, timestamp) = if stored {
            let offset = u64::from_be_bytes(r.array("truncated offset")?);
            (offset, i64::from_be_bytes(r.array("truncated timestamp")?))
        } else {
            (0, 0)
        };
        let key = match r.u32("truncated key length")? {
            NO_KEY => None,
            len => Some(r.bytes(len as usize, "key longer than the body")?),
        };
        let len = r.u32("truncated value length")?;
        let value = r.bytes(len as usize, "value longer than the body")?;
        let header_count = r.u16("truncated header count")?;
        let mut headers = Vec::with_capacity((header_count as usize).min(r.rest.len() / 6));
        for _ in 0..header_count {
            let len = r.u16("truncated header name length")?;
            let name = r.bytes(len as usize, "header name longer than the body")?;
            let name = String::from_utf8(name).map_err(|_| FrameError::Malformed {
                record: i,
                what: "header name is not UTF-8",
            })?;
            let len = r.u32("truncated header value length")?;
            headers.push((
                name,
                r.bytes(len as usize, "header value longer than the body")?,
            ));
        }
        let record = Record {
            key,
            value,
            headers,
            timestamp: None,
            nulls: Default::default(),
        };
        out.push((offset, timestamp, record));
    }
    if !r.rest.is_empty() {
        return Err(FrameError::Trailing {
            bytes: r.rest.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Record> {
        vec![
            Record {
                key: Some(vec![0, 255, 7]),
                value: vec![0xde, 0xad],
                headers: vec![("trace".into(), vec![1, 2]), ("e".into(), vec![])],
                timestamp: None,
                nulls: Default::default(),
            },
            Record::value(""),
            Record::keyed("", "v"),
        ]
    }

    #[test]
    fn records_round_trip_with_empty_and_missing_keys_kept_apart() {
        let records = sample();
        assert_eq!(decode_records(&encode_records(&records)).unwrap(), records);
    }

    #[test]
    fn fetched_records_round_trip_with_offsets_and_timestamps() {
        let stored: Vec<StoredRecord> = sample()
            .into_iter()
            .enumerate()
            .map(|(i, r)| StoredRecord {
                offset: 40 + i as u64,
                timestamp: -5 + i as i64,
                key: r.key.map(Into::into),
                value: r.value.into(),
                headers: r.headers,
                nulls: Default::default(),
            })
            .collect();
        assert_eq!(decode_stored(&encode_stored(&stored)).unwrap(), stored);
    }

    #[test]
    fn every_truncation_and_any_trailing_byte_is_an_error() {
        let body = encode_records(&sample());
        for cut in 0..body.len() {
            assert!(decode_records(&body[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = body.clone();
        long.push(0);
        assert_eq!(
            decode_records(&long),
            Err(FrameError::Trailing { bytes: 1 })
        );
    }

    #[test]
    fn huge_counts_and_lengths_are_refused_without_allocating_them() {
        assert_eq!(
            decode_records(&u32::MAX.to_be_bytes()),
            Err(FrameError::TooMany { count: u32::MAX })
        );
        let mut body = 1u32.to_be_bytes().to_vec();
        body.extend_from_slice(&0xFFFF_FFF0u32.to_be_bytes());
        assert!(matches!(
            decode_records(&body),
            Err(FrameError::Malformed { record: 0, .. })
        ));
        let mut bad_name = 1u32.to_be_bytes().to_vec();
        bad_name.extend_from_slice(&NO_KEY.to_be_bytes());
        bad_name.extend_from_slice(&0u32.to_be_bytes());
        bad_name.extend_from_slice(&1u16.to_be_bytes());
        bad_name.extend_from_slice(&1u16.to_be_bytes());
        bad_name.push(0xff);
        bad_name.extend_from_slice(&0u32.to_be_bytes());
        assert_eq!(
            decode_records(&bad_name),
            Err(FrameError::Malformed {
                record: 0,
                what: "header name is not UTF-8"
            })
        );
    }
}
