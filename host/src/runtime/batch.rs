//! The columnar form records cross the boundary in, both ways: a polled batch
//! turned into the WIT `batch` (per-record columns as lists of plain integers:
//! offsets, timestamps, six spans per record, four per header; every byte in
//! one arena), and the WIT `emits` of an `emit-batch` call turned back into
//! records. Integer lists cross as a single copy each, so the boundary cost
//! does not grow with per-record conversions.

use super::bindings::weir::processor::types::{Batch, Emits};
use crate::consumer::Polled;
use crate::log::Record;

/// The key length that marks a record without a key.
pub const NO_KEY: u32 = u32::MAX;
/// Integers per record in `spans`.
pub const SPAN_WIDTH: usize = 6;
/// Integers per header in `headers`.
pub const HEADER_WIDTH: usize = 4;

/// Builds the columnar WIT batch for `polled`.
pub fn columnar(polled: &Polled) -> Batch {
    let records = &polled.records;
    let data_len: usize = records
        .iter()
        .map(|r| {
            r.key.as_ref().map_or(0, |k| k.len())
                + r.value.len()
                + r.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    let header_count: usize = records.iter().map(|r| r.headers.len()).sum();
    let mut data = Vec::with_capacity(data_len);
    let mut headers = Vec::with_capacity(header_count * HEADER_WIDTH);
    let mut spans = Vec::with_capacity(records.len() * SPAN_WIDTH);
    let mut offsets = Vec::with_capacity(records.len());
    let mut timestamps = Vec::with_capacity(records.len());
    let push = |bytes: &[u8], data: &mut Vec<u8>| {
        let start = data.len() as u32;
        data.extend_from_slice(bytes);
        [start, bytes.len() as u32]
    };
    for r in records {
        offsets.push(r.offset);
        timestamps.push(r.timestamp);
        let key = match &r.key {
            Some(k) => push(k, &mut data),
            None => [data.len() as u32, NO_KEY],
        };
        let value = push(&r.value, &mut data);
        let first_header = (headers.len() / HEADER_WIDTH) as u32;
        for (name, v) in &r.headers {
            headers.extend(push(name.as_bytes(), &mut data));
            headers.extend(push(v, &mut data));
        }
        spans.extend([
            key[0],
            key[1],
            value[0],
            value[1],
            first_header,
            r.headers.len() as u32,
        ]);
    }
    Batch {
        topic: polled.topic.clone(),
        partition: polled.partition,
        high_watermark: polled.high_watermark,
        offsets,
        timestamps,
        spans,
        headers,
        data,
    }
}

/// The records of `emits`, each with its size (key, value, header names and
/// values), or the index of the first record whose ranges do not fit `data`
/// or whose header name is not UTF-8, and why.
pub fn records(emits: &Emits) -> Result<Vec<(Record, usize)>, (usize, String)> {
    if !emits.spans.len().is_multiple_of(SPAN_WIDTH)
        || !emits.headers.len().is_multiple_of(HEADER_WIDTH)
    {
        return Err((
            emits.spans.len() / SPAN_WIDTH,
            format!(
                "spans hold {} integers and headers {}: not whole records ({SPAN_WIDTH} each) and headers ({HEADER_WIDTH} each)",
                emits.spans.len(),
                emits.headers.len()
            ),
        ));
    }
    let bytes = |start: u32, len: u32| -> Result<&[u8], String> {
        let (start, len) = (start as usize, len as usize);
        emits
            .data
            .get(start..start.checked_add(len).ok_or("a range overflows")?)
            .ok_or_else(|| {
                format!(
                    "range {start}..{} is outside the {} bytes of data",
                    start + len,
                    emits.data.len()
                )
            })
    };
    let record = |span: &[u32]| -> Result<(Record, usize), String> {
        let key = match span[1] {
            NO_KEY => None,
            len => Some(bytes(span[0], len)?.to_vec()),
        };
        let value = bytes(span[2], span[3])?.to_vec();
        let (first, count) = (span[4] as usize, span[5] as usize);
        let table = first
            .checked_add(count)
            .and_then(|end| emits.headers.get(first * HEADER_WIDTH..end * HEADER_WIDTH))
            .ok_or_else(|| {
                format!(
                    "headers {first}..{} are outside the table of {}",
                    first.saturating_add(count),
                    emits.headers.len() / HEADER_WIDTH
                )
            })?;
        let mut size = key.as_ref().map_or(0, Vec::len) + value.len();
        let mut headers = Vec::with_capacity(count);
        for h in table.chunks_exact(HEADER_WIDTH) {
            let name = std::str::from_utf8(bytes(h[0], h[1])?)
                .map_err(|_| "a header name is not UTF-8".to_string())?;
            let value = bytes(h[2], h[3])?;
            size += name.len() + value.len();
            headers.push((name.to_string(), value.to_vec()));
        }
        let record = Record {
            key,
            value,
            headers,
            ..Record::default()
        };
        Ok((record, size))
    };
    emits
        .spans
        .chunks_exact(SPAN_WIDTH)
        .enumerate()
        .map(|(i, span)| record(span).map_err(|why| (i, why)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::StoredRecord;

    #[test]
    fn spans_point_at_each_records_bytes() {
        let polled = Polled {
            topic: "t".into(),
            partition: 2,
            high_watermark: 9,
            records: vec![
                StoredRecord {
                    offset: 7,
                    timestamp: 1,
                    key: None,
                    value: b"first".to_vec().into(),
                    headers: vec![("h1".into(), b"a".to_vec()), ("h2".into(), b"bb".to_vec())],
                    nulls: Default::default(),
                },
                StoredRecord {
                    offset: 8,
                    timestamp: 2,
                    key: Some(b"k".to_vec().into()),
                    value: b"second".to_vec().into(),
                    headers: vec![],
                    nulls: Default::default(),
                },
            ],
        };
        let batch = columnar(&polled);
        let bytes = |start: u32, len: u32| &batch.data[start as usize..(start + len) as usize];
        let span = |i: usize| &batch.spans[i * SPAN_WIDTH..(i + 1) * SPAN_WIDTH];
        assert_eq!((batch.partition, batch.high_watermark), (2, 9));
        assert_eq!(batch.offsets, vec![7, 8]);
        assert_eq!(batch.timestamps, vec![1, 2]);
        assert_eq!(span(0)[1], NO_KEY, "no key is marked, not empty");
        assert_eq!(bytes(span(0)[2], span(0)[3]), b"first");
        assert_eq!(bytes(span(1)[0], span(1)[1]), b"k");
        assert_eq!(bytes(span(1)[2], span(1)[3]), b"second");
        assert_eq!((span(0)[4], span(0)[5]), (0, 2));
        assert_eq!(span(1)[5], 0);
        let h = &batch.headers[HEADER_WIDTH..2 * HEADER_WIDTH];
        assert_eq!(bytes(h[0], h[1]), b"h2");
        assert_eq!(bytes(h[2], h[3]), b"bb");
        assert_eq!(
            batch.data.len(),
            "first".len() + 2 + 1 + 2 + 2 + 1 + "second".len()
        );
    }

    fn emits(spans: Vec<u32>, headers: Vec<u32>, data: &[u8]) -> Emits {
        Emits {
            topic: "out".into(),
            spans,
            headers,
            data: data.to_vec(),
        }
    }

    #[test]
    fn emitted_records_are_read_back_from_their_spans() {
        // "k" "v1" "h" "x" | "v2"
        let emits = emits(
            vec![0, 1, 1, 2, 0, 1, 0, NO_KEY, 5, 2, 1, 0],
            vec![3, 1, 4, 1],
            b"kv1hxv2",
        );
        let records = records(&emits).unwrap();
        assert_eq!(records.len(), 2);
        let (first, size) = &records[0];
        assert_eq!(first.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(first.value, b"v1");
        assert_eq!(first.headers, vec![("h".to_string(), b"x".to_vec())]);
        assert_eq!(*size, 5);
        let (second, size) = &records[1];
        assert_eq!(second.key, None, "no key is not an empty key");
        assert_eq!(second.value, b"v2");
        assert!(second.headers.is_empty());
        assert_eq!(*size, 2);
        assert!(super::records(&emits_of_nothing()).unwrap().is_empty());
    }

    fn emits_of_nothing() -> Emits {
        emits(Vec::new(), Vec::new(), b"")
    }

    #[test]
    fn a_bad_emitted_record_is_named_by_its_index() {
        let data = b"abcdef";
        let ok = [0, 1, 1, 1, 0, 0];
        let refused = |span: [u32; 6], headers: Vec<u32>, data: &[u8]| {
            let mut spans = ok.to_vec();
            spans.extend(span);
            records(&emits(spans, headers, data)).unwrap_err()
        };
        let (index, why) = refused([0, 1, 4, 9, 0, 0], vec![], data);
        assert_eq!(index, 1);
        assert!(why.contains("outside the 6 bytes"), "{why}");
        let (index, why) = refused([u32::MAX - 1, 5, 0, 1, 0, 0], vec![], data);
        assert_eq!(index, 1);
        assert!(why.contains("outside"), "{why}");
        let (_, why) = refused([0, 1, 1, 1, 0, 2], vec![0, 1, 1, 1], data);
        assert!(
            why.contains("headers 0..2 are outside the table of 1"),
            "{why}"
        );
        let (_, why) = refused([0, 1, 1, 1, u32::MAX, 2], vec![0, 1, 1, 1], data);
        assert!(why.contains("outside the table"), "{why}");
        let (_, why) = refused([0, 1, 1, 1, 0, 1], vec![0, 2, 0, 0], &[0xff, 0xfe, 1]);
        assert!(why.contains("not UTF-8"), "{why}");
        let (index, why) = records(&emits(vec![0, 1, 2], vec![], data)).unwrap_err();
        assert_eq!(index, 0);
        assert!(why.contains("not whole records"), "{why}");
    }
}
