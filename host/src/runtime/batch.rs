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

/// The records of `emits`, or why not: `record <i>: ...` for the first
/// record whose ranges do not fit `data`, whose header name is not UTF-8, or
/// that `admit` refuses. Each record's ranges are checked and its size (key,
/// value, header names and values) passed to `admit` *before* anything is
/// copied, so ranges that overlap (a guest pointing a million records at the
/// same megabyte) are refused by the caller's limits, not allocated. Each
/// record's headers follow the previous record's in the header table, as
/// batches lay them out, so the table is read once however the records
/// point into it.
pub fn records(
    emits: &Emits,
    mut admit: impl FnMut(usize) -> Result<(), String>,
) -> Result<Vec<Record>, String> {
    if !emits.spans.len().is_multiple_of(SPAN_WIDTH)
        || !emits.headers.len().is_multiple_of(HEADER_WIDTH)
    {
        return Err(format!(
            "spans hold {} integers and headers {}: not whole records ({SPAN_WIDTH} each) and headers ({HEADER_WIDTH} each)",
            emits.spans.len(),
            emits.headers.len()
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
    let table_len = emits.headers.len() / HEADER_WIDTH;
    let mut next_header = 0usize;
    let mut record = |span: &[u32]| -> Result<Record, String> {
        let key = match span[1] {
            NO_KEY => None,
            len => Some(bytes(span[0], len)?),
        };
        let value = bytes(span[2], span[3])?;
        let (first, count) = (span[4] as usize, span[5] as usize);
        if first != next_header || table_len - first < count {
            return Err(format!(
                "headers {first}..{} are not the next {count} of the table of {table_len} (the next is {next_header})",
                first.saturating_add(count)
            ));
        }
        next_header += count;
        let table = &emits.headers[first * HEADER_WIDTH..(first + count) * HEADER_WIDTH];
        let mut headers = Vec::with_capacity(count);
        let mut size = key.map_or(0, <[u8]>::len) + value.len();
        for h in table.chunks_exact(HEADER_WIDTH) {
            let name = std::str::from_utf8(bytes(h[0], h[1])?)
                .map_err(|_| "a header name is not UTF-8".to_string())?;
            let value = bytes(h[2], h[3])?;
            size += name.len() + value.len();
            headers.push((name, value));
        }
        admit(size)?;
        Ok(Record {
            key: key.map(<[u8]>::to_vec),
            value: value.to_vec(),
            headers: headers
                .into_iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            ..Record::default()
        })
    };
    emits
        .spans
        .chunks_exact(SPAN_WIDTH)
        .enumerate()
        .map(|(i, span)| record(span).map_err(|why| format!("record {i}: {why}")))
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

    /// Reads records back with no limit, noting each admitted size.
    fn read(emits: &Emits) -> Result<(Vec<Record>, Vec<usize>), String> {
        let mut sizes = Vec::new();
        let records = super::records(emits, |size| {
            sizes.push(size);
            Ok(())
        })?;
        Ok((records, sizes))
    }

    #[test]
    fn emitted_records_are_read_back_from_their_spans() {
        // "k" "v1" "h" "x" | "v2"
        let emits = emits(
            vec![0, 1, 1, 2, 0, 1, 0, NO_KEY, 5, 2, 1, 0],
            vec![3, 1, 4, 1],
            b"kv1hxv2",
        );
        let (records, sizes) = read(&emits).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(records[0].value, b"v1");
        assert_eq!(records[0].headers, vec![("h".to_string(), b"x".to_vec())]);
        assert_eq!(records[1].key, None, "no key is not an empty key");
        assert_eq!(records[1].value, b"v2");
        assert!(records[1].headers.is_empty());
        assert_eq!(sizes, vec![5, 2]);
        assert!(
            read(&self::emits(vec![], vec![], b""))
                .unwrap()
                .0
                .is_empty()
        );
    }

    #[test]
    fn a_bad_emitted_record_is_named_by_its_index() {
        let data = b"abcdef";
        let ok = [0, 1, 1, 1, 0, 0];
        let refused = |span: [u32; 6], headers: Vec<u32>, data: &[u8]| {
            let mut spans = ok.to_vec();
            spans.extend(span);
            read(&emits(spans, headers, data)).unwrap_err()
        };
        let why = refused([0, 1, 4, 9, 0, 0], vec![], data);
        assert!(
            why.starts_with("record 1: range 4..13 is outside the 6 bytes"),
            "{why}"
        );
        let why = refused([u32::MAX - 1, 5, 0, 1, 0, 0], vec![], data);
        assert!(why.starts_with("record 1: range"), "{why}");
        let why = refused([0, 1, 1, 1, 0, 2], vec![0, 1, 1, 1], data);
        assert!(
            why.contains("headers 0..2 are not the next 2 of the table of 1"),
            "{why}"
        );
        let why = refused([0, 1, 1, 1, u32::MAX, 2], vec![0, 1, 1, 1], data);
        assert!(why.contains("not the next"), "{why}");
        let why = refused([0, 1, 1, 1, 0, 1], vec![0, 2, 0, 0], &[0xff, 0xfe, 1]);
        assert!(why.contains("not UTF-8"), "{why}");
        let why = read(&emits(vec![0, 1, 2], vec![], data)).unwrap_err();
        assert!(why.starts_with("spans hold 3 integers"), "{why}");
    }

    #[test]
    fn records_pointing_at_shared_bytes_or_headers_are_refused_before_they_are_copied() {
        // Two records may not share a header: the second must start where
        // the first's end.
        let shared = emits(
            vec![0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1],
            vec![0, 1, 1, 1],
            b"ab",
        );
        let why = read(&shared).unwrap_err();
        assert!(
            why.starts_with("record 1: headers 0..1 are not the next"),
            "{why}"
        );
        // A thousand records over the same 1,000 bytes: `admit` sees each
        // size before its record is copied and stops the third.
        let spans: Vec<u32> = (0..1000).flat_map(|_| [0, NO_KEY, 0, 1000, 0, 0]).collect();
        let many = emits(spans, vec![], &[7; 1000]);
        let mut admitted = 0;
        let why = super::records(&many, |size| {
            admitted += size;
            if admitted > 2500 {
                return Err("over the batch's limit".into());
            }
            Ok(())
        })
        .unwrap_err();
        assert_eq!(why, "record 2: over the batch's limit");
    }
}
