//! Kafka record batches (v2, any codec) to weir records and back. The
//! batch header, its CRC and the codecs are kafka-protocol's; the records
//! inside are `records/body.rs`'s, because the crate's record type keeps
//! headers in a map and Kafka's are a list (repeated names, in order).
//!
//! Everything survives the trip: null keys, null values (tombstones), null
//! header values and repeated header names. Batches go out uncompressed, one
//! per fetch answer (offset gaps left by compaction are deltas inside it);
//! clients decompress what they get either way.

mod body;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, None as Plain, Snappy, Zstd};
use kafka_protocol::records::{BatchDecodeInfo, Compression, RecordBatchDecoder};

use crate::log::{Record, StoredRecord};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Bytes of a v2 batch before its records.
const BATCH_HEADER_LEN: usize = 61;

/// Headers weir keeps in its own log for its own bookkeeping, which Kafka
/// fetches leave out: `weir.txn` tells recovery which commit appended a
/// record, `weir.producer` which idempotent batch (`producers.rs`).
const INTERNAL_HEADERS: [&str; 2] = [crate::state::changelog::TXN, super::producers::HEADER];

/// One decoded producer batch: its records and what the idempotence checks
/// need.
pub struct ProducedBatch {
    pub records: Vec<Record>,
    /// -1 unless the producer is idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Part of a transaction: held until EndTxn (`transactions.rs`).
    pub transactional: bool,
}

/// Decodes the batches of one partition of a Produce request.
pub fn decode(mut bytes: Bytes) -> Result<Vec<ProducedBatch>, Error> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 12 {
            return Err("a truncated batch header".into());
        }
        let length = i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let size = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_add(12))
            .filter(|&s| s >= BATCH_HEADER_LEN && s <= bytes.len())
            .ok_or_else(|| format!("a batch length of {length} does not fit"))?;
        let batch = bytes.split_to(size);
        // Checks the magic byte and the CRC.
        let info = RecordBatchDecoder::decode_batch_info(&mut batch.clone())?
            .pop()
            .ok_or("not a v2 record batch (message sets v0 and v1 are not supported)")?;
        if info.record_count == 0 {
            continue;
        }
        let records = records(batch.slice(BATCH_HEADER_LEN..), &info)?;
        out.push(ProducedBatch {
            records,
            producer_id: info.producer_id,
            producer_epoch: info.producer_epoch,
            base_sequence: info.base_sequence,
            transactional: info.transactional,
        });
    }
    Ok(out)
}

fn records(mut compressed: Bytes, info: &BatchDecodeInfo) -> Result<Vec<Record>, Error> {
    // The codecs take a closure returning their own error type; the
    // records' own errors ride inside its value.
    let decode = |buf: &mut Bytes| {
        Ok(body::decode(
            std::mem::take(buf),
            info.record_count,
            info.min_timestamp,
        ))
    };
    let c = &mut compressed;
    match info.compression {
        Compression::None => <Plain as Decompressor<Bytes>>::decompress(c, decode),
        Compression::Gzip => <Gzip as Decompressor<Bytes>>::decompress(c, decode),
        Compression::Snappy => <Snappy as Decompressor<Bytes>>::decompress(c, decode),
        Compression::Lz4 => <Lz4 as Decompressor<Bytes>>::decompress(c, decode),
        Compression::Zstd => <Zstd as Decompressor<Bytes>>::decompress(c, decode),
    }?
}

/// Encodes records read from the log as one uncompressed v2 batch.
pub fn encode(records: &[StoredRecord]) -> Result<Bytes, Error> {
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return Ok(Bytes::new());
    };
    let base = first.offset;
    let base_ts = records.iter().map(|r| r.timestamp).min().unwrap_or(0);
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(0);
    let mut out = BytesMut::with_capacity(
        BATCH_HEADER_LEN
            + records
                .iter()
                .map(|r| 24 + r.value.len() + r.key.as_ref().map_or(0, Bytes::len))
                .sum::<usize>(),
    );
    out.put_i64(base as i64);
    out.put_i32(0); // length, below
    out.put_i32(0); // partition leader epoch
    out.put_i8(2); // magic
    out.put_u32(0); // CRC, below
    out.put_i16(0); // attributes: no codec, creation time, not transactional
    out.put_i32(delta(last.offset, base)?);
    out.put_i64(base_ts);
    out.put_i64(max_ts);
    out.put_i64(-1); // producer id
    out.put_i16(-1); // producer epoch
    out.put_i32(-1); // base sequence
    out.put_i32(i32::try_from(records.len())?);
    for r in records {
        let headers = r
            .headers
            .iter()
            .enumerate()
            .filter(|(_, (n, _))| !INTERNAL_HEADERS.contains(&n.as_str()))
            .map(|(i, (n, v))| (n.as_str(), (!r.nulls.header(i)).then_some(&v[..])))
            .collect();
        body::encode(
            &mut out,
            &body::Body {
                offset_delta: delta(r.offset, base)?,
                timestamp_delta: r.timestamp - base_ts,
                key: r.key.as_deref(),
                value: (!r.nulls.value).then_some(&r.value[..]),
                headers,
            },
        );
    }
    let length = i32::try_from(out.len() - 12)?;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out.freeze())
}

fn delta(offset: u64, base: u64) -> Result<i32, Error> {
    i32::try_from(offset - base).map_err(|_| "offsets too far apart for one batch".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use indexmap::IndexMap;
    use kafka_protocol::records::{
        Record as KafkaRecord, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn stored(offset: u64, key: Option<&[u8]>, value: &[u8]) -> StoredRecord {
        StoredRecord {
            offset,
            timestamp: 1_700_000_000_000 + offset as i64,
            key: key.map(Bytes::copy_from_slice),
            value: Bytes::copy_from_slice(value),
            headers: vec![("h".to_string(), b"v".to_vec())],
            nulls: Default::default(),
        }
    }

    #[test]
    fn records_read_from_the_log_decode_back_as_kafka_records() {
        let records = vec![
            stored(5, Some(b"k"), b"one"),
            stored(6, None, b"two"),
            stored(9, Some(b""), b""), // a gap, as compaction leaves
        ];
        let bytes = encode(&records).unwrap();
        let mut buf = bytes.clone();
        let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
        assert_eq!(sets.len(), 1, "one batch");
        let got: Vec<(i64, Option<Bytes>, i64)> = sets[0]
            .records
            .iter()
            .map(|r| (r.offset, r.key.clone(), r.timestamp))
            .collect();
        assert_eq!(
            got,
            vec![
                (5, Some(Bytes::from_static(b"k")), 1_700_000_000_005),
                (6, None, 1_700_000_000_006),
                (9, Some(Bytes::new()), 1_700_000_000_009),
            ]
        );
        let batches = decode(bytes).unwrap();
        assert_eq!(batches[0].producer_id, -1);
        assert_eq!(batches[0].base_sequence, -1);
        assert_eq!(batches[0].records[1].key, None);
        assert_eq!(batches[0].records[0].headers, records[0].headers);
    }

    #[test]
    fn nulls_and_repeated_headers_go_out_as_kafka_has_them_and_internal_headers_stay_home() {
        let mut tombstone = stored(3, Some(b"k"), b"");
        tombstone.nulls.value = true;
        tombstone.headers = vec![
            ("a".into(), b"1".to_vec()),
            (super::super::producers::HEADER.into(), vec![0; 18]),
            ("a".into(), Vec::new()),
            ("a".into(), Vec::new()),
        ];
        tombstone.nulls.headers = vec![2];
        let bytes = encode(&[tombstone]).unwrap();
        // The crate's decoder (a map of headers) sees the null value.
        let sets = RecordBatchDecoder::decode_all(&mut bytes.clone()).unwrap();
        assert_eq!(sets[0].records[0].value, None);
        // Ours sees every header, in order, the null one null.
        let back = &decode(bytes).unwrap()[0].records[0];
        assert!(back.nulls.value);
        let names: Vec<&str> = back.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a", "a", "a"], "weir.producer left out");
        assert_eq!(back.nulls.headers, [1], "the null one, renumbered");
    }

    #[test]
    fn every_codec_decodes_into_the_same_records() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let kafka: Vec<KafkaRecord> = (0..3)
                .map(|i| KafkaRecord {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: 7,
                    producer_epoch: 0,
                    timestamp_type: TimestampType::Creation,
                    offset: i,
                    sequence: 10 + i as i32,
                    timestamp: 1000 + i,
                    key: None,
                    value: Some(Bytes::from(vec![b'x'; 100])),
                    headers: IndexMap::new(),
                })
                .collect();
            let mut buf = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression,
            };
            RecordBatchEncoder::encode(&mut buf, &kafka, &options).unwrap();
            let batches = decode(buf.freeze()).unwrap();
            assert_eq!(batches.len(), 1, "{compression:?}");
            assert_eq!(batches[0].producer_id, 7);
            assert_eq!(batches[0].base_sequence, 10);
            assert_eq!(batches[0].records.len(), 3);
            assert_eq!(batches[0].records[2].timestamp, Some(1002));
            assert_eq!(batches[0].records[2].value, vec![b'x'; 100]);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(Bytes::from_static(&[0u8; 70])).is_err());
        assert!(decode(Bytes::from_static(b"garbage")).is_err());
    }
}
