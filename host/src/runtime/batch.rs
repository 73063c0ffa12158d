//! Turns a polled batch into the WIT `batch`: per-record columns as lists of
//! plain integers (offsets, timestamps, six spans per record, four per header)
//! and every byte in one arena. Integer lists lower into the guest as a single
//! copy each, so the boundary cost does not grow with per-record conversions.

use super::bindings::weir::processor::types::Batch;
use crate::consumer::Polled;

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
}
