//! Turns a polled batch into the WIT `batch`: record metadata as a flat list of
//! scalars and spans, and every key, value and header in one byte arena, so
//! lowering it into the guest costs a few allocations per batch, not per record.

use super::bindings::weir::processor::types::{Batch, HeaderMeta, RecordMeta, Span};
use crate::consumer::Polled;

/// Builds the columnar WIT batch for `polled`.
pub fn columnar(polled: &Polled) -> Batch {
    let records = &polled.records;
    let data_len: usize = records
        .iter()
        .map(|r| {
            r.key.as_ref().map_or(0, Vec::len)
                + r.value.len()
                + r.headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>()
        })
        .sum();
    let header_count: usize = records.iter().map(|r| r.headers.len()).sum();
    let mut data = Vec::with_capacity(data_len);
    let mut headers = Vec::with_capacity(header_count);
    let mut metas = Vec::with_capacity(records.len());
    let push = |bytes: &[u8], data: &mut Vec<u8>| {
        let span = Span {
            start: data.len() as u32,
            len: bytes.len() as u32,
        };
        data.extend_from_slice(bytes);
        span
    };
    for r in records {
        let key = r.key.as_deref().map(|k| push(k, &mut data));
        let value = push(&r.value, &mut data);
        let first_header = headers.len() as u32;
        for (name, v) in &r.headers {
            let name = push(name.as_bytes(), &mut data);
            let value = push(v, &mut data);
            headers.push(HeaderMeta { name, value });
        }
        metas.push(RecordMeta {
            offset: r.offset,
            timestamp: r.timestamp,
            key,
            value,
            headers: Span {
                start: first_header,
                len: r.headers.len() as u32,
            },
        });
    }
    Batch {
        topic: polled.topic.clone(),
        partition: polled.partition,
        high_watermark: polled.high_watermark,
        records: metas,
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
                    value: b"first".to_vec(),
                    headers: vec![("h1".into(), b"a".to_vec()), ("h2".into(), b"bb".to_vec())],
                },
                StoredRecord {
                    offset: 8,
                    timestamp: 2,
                    key: Some(b"k".to_vec()),
                    value: b"second".to_vec(),
                    headers: vec![],
                },
            ],
        };
        let batch = columnar(&polled);
        let bytes = |s: Span| &batch.data[s.start as usize..(s.start + s.len) as usize];
        assert_eq!((batch.partition, batch.high_watermark), (2, 9));
        assert!(batch.records[0].key.is_none());
        assert_eq!(bytes(batch.records[0].value), b"first");
        assert_eq!(bytes(batch.records[1].key.unwrap()), b"k");
        assert_eq!(bytes(batch.records[1].value), b"second");
        let h = batch.records[0].headers;
        assert_eq!((h.start, h.len), (0, 2));
        assert_eq!(bytes(batch.headers[1].name), b"h2");
        assert_eq!(bytes(batch.headers[1].value), b"bb");
        assert_eq!(batch.records[1].headers.len, 0);
        assert_eq!(
            batch.data.len(),
            "first".len() + 2 + 1 + 2 + 2 + 1 + "second".len()
        );
    }
}
