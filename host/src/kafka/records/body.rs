//! The records inside a Kafka v2 batch (once decompressed), decoded and
//! encoded here rather than by kafka-protocol, whose record type keeps
//! headers in a map: Kafka headers are a list, in which a name may repeat
//! and order counts (librdkafka's test 0085), and a header value may be
//! null as well as empty (0073). Lengths and deltas are zigzag varints, as
//! in Kafka's `DefaultRecord`; a length of -1 is a null.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::log::{Nulls, Record};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One record as it sits in a batch: offsets and timestamps are deltas from
/// the batch's base ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body<'a> {
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// Decodes `count` records from `buf` into weir records, stamped from
/// `base_timestamp` (a negative timestamp leaves the record to be stamped
/// with append time).
pub fn decode(mut buf: Bytes, count: i32, base_timestamp: i64) -> Result<Vec<Record>, Error> {
    let mut out = Vec::with_capacity(count.clamp(0, 1 << 16) as usize);
    for _ in 0..count {
        let size = varint(&mut buf)?;
        let mut rec = take(&mut buf, size)?;
        if !rec.has_remaining() {
            return Err("empty record".into());
        }
        rec.advance(1); // attributes: unused in v2
        let timestamp = base_timestamp.wrapping_add(varlong(&mut rec)?);
        varint(&mut rec)?; // offset delta: the producer's are dense
        let key = nullable(&mut rec)?.map(|k| k.to_vec());
        let value = nullable(&mut rec)?;
        let mut nulls = Nulls {
            value: value.is_none(),
            headers: Vec::new(),
        };
        let count = varint(&mut rec)?;
        if count < 0 {
            return Err(format!("negative header count {count}").into());
        }
        let mut headers = Vec::with_capacity(count.min(64) as usize);
        for i in 0..count {
            let name_len = varint(&mut rec)?;
            let name = String::from_utf8(take(&mut rec, name_len)?.to_vec())
                .map_err(|_| "a header name is not UTF-8")?;
            let value = nullable(&mut rec)?;
            if value.is_none() {
                nulls.headers.push(i as u32);
            }
            headers.push((name, value.map_or_else(Vec::new, |v| v.to_vec())));
        }
        if rec.has_remaining() {
            return Err("bytes left over after a record".into());
        }
        out.push(Record {
            key,
            value: value.map_or_else(Vec::new, |v| v.to_vec()),
            headers,
            timestamp: (timestamp >= 0).then_some(timestamp),
            nulls,
        });
    }
    if buf.has_remaining() {
        return Err("bytes left over after the last record".into());
    }
    Ok(out)
}

/// Appends one record to `out`.
pub fn encode(out: &mut BytesMut, body: &Body<'_>) {
    let mut rec = BytesMut::with_capacity(
        16 + body.key.map_or(0, <[u8]>::len) + body.value.map_or(0, <[u8]>::len),
    );
    rec.put_u8(0);
    put_varlong(&mut rec, body.timestamp_delta);
    put_varint(&mut rec, body.offset_delta);
    put_nullable(&mut rec, body.key);
    put_nullable(&mut rec, body.value);
    put_varint(&mut rec, body.headers.len() as i32);
    for (name, value) in &body.headers {
        put_nullable(&mut rec, Some(name.as_bytes()));
        put_nullable(&mut rec, *value);
    }
    put_varint(out, rec.len() as i32);
    out.put_slice(&rec);
}

fn take(buf: &mut Bytes, len: i32) -> Result<Bytes, Error> {
    let len = usize::try_from(len).map_err(|_| format!("negative length {len}"))?;
    if buf.remaining() < len {
        return Err(format!("a length of {len} runs past the batch").into());
    }
    Ok(buf.split_to(len))
}

fn nullable(buf: &mut Bytes) -> Result<Option<Bytes>, Error> {
    match varint(buf)? {
        -1 => Ok(None),
        len => take(buf, len).map(Some),
    }
}

fn varlong(buf: &mut Bytes) -> Result<i64, Error> {
    let mut raw = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return Err("a varint runs past the batch".into());
        }
        let byte = buf.get_u8();
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    Err("a varint longer than ten bytes".into())
}

fn varint(buf: &mut Bytes) -> Result<i32, Error> {
    let v = varlong(buf)?;
    i32::try_from(v).map_err(|_| format!("varint {v} out of range").into())
}

fn put_varlong(out: &mut BytesMut, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.put_u8(raw as u8 | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw as u8);
}

fn put_varint(out: &mut BytesMut, v: i32) {
    put_varlong(out, i64::from(v));
}

fn put_nullable(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.put_slice(b);
        }
        None => put_varint(out, -1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = BytesMut::new();
            put_varlong(&mut out, v);
            assert_eq!(varlong(&mut out.freeze()).unwrap(), v);
        }
        assert!(varlong(&mut Bytes::from_static(&[0x80; 11])).is_err());
        assert!(varlong(&mut Bytes::from_static(&[0x80])).is_err());
    }

    #[test]
    fn null_values_null_headers_and_repeated_names_survive() {
        let body = Body {
            offset_delta: 0,
            timestamp_delta: 5,
            key: None,
            value: None,
            headers: vec![
                ("a", Some(b"1")),
                ("a", None),
                ("b", Some(b"")),
                ("a", Some(b"3")),
            ],
        };
        let mut out = BytesMut::new();
        encode(&mut out, &body);
        let records = decode(out.freeze(), 1, 1000).unwrap();
        let r = &records[0];
        assert_eq!((r.key.clone(), r.timestamp), (None, Some(1005)));
        assert!(r.nulls.value && r.value.is_empty());
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "a", "b", "a"], "order and repeats kept");
        assert_eq!(
            r.nulls.headers,
            [1],
            "only the null one is null, not the empty one"
        );
        assert_eq!(r.headers[3].1, b"3");
    }

    #[test]
    fn truncated_and_overlong_records_are_errors() {
        let mut out = BytesMut::new();
        encode(
            &mut out,
            &Body {
                offset_delta: 0,
                timestamp_delta: 0,
                key: Some(b"k"),
                value: Some(b"value"),
                headers: vec![],
            },
        );
        let whole = out.freeze();
        for cut in 0..whole.len() {
            assert!(decode(whole.slice(..cut), 1, 0).is_err(), "cut at {cut}");
        }
        assert!(
            decode(whole.clone(), 2, 0).is_err(),
            "fewer records than counted"
        );
        assert_eq!(decode(whole, 1, 0).unwrap()[0].value, b"value");
    }
}
