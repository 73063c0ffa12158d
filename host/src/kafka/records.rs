//! Kafka record batches (v2, any codec) to weir records and back, through
//! the `kafka-protocol` crate's encoder and decoder.
//!
//! What does not survive the trip: a null value (a tombstone) is stored as
//! an empty value, a null header value as an empty one, and of several
//! headers with the same name only the last is kept (the crate decodes
//! headers into a map). Batches go out uncompressed; clients decompress
//! what they get either way.

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record as KafkaRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType,
};

use crate::log::{Record, StoredRecord};

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
pub fn decode(
    bytes: Bytes,
) -> Result<Vec<ProducedBatch>, Box<dyn std::error::Error + Send + Sync>> {
    let mut buf = bytes;
    let sets = RecordBatchDecoder::decode_all(&mut buf)?;
    Ok(sets
        .into_iter()
        .filter(|set| !set.records.is_empty())
        .map(|set| {
            let first = &set.records[0];
            let (producer_id, producer_epoch, base_sequence, transactional) = (
                first.producer_id,
                first.producer_epoch,
                first.sequence,
                first.transactional,
            );
            let records = set
                .records
                .into_iter()
                .map(|r| Record {
                    key: r.key.map(|k| k.to_vec()),
                    value: r.value.map(|v| v.to_vec()).unwrap_or_default(),
                    headers: r
                        .headers
                        .into_iter()
                        .map(|(name, value)| {
                            (
                                name.to_string(),
                                value.map(|v| v.to_vec()).unwrap_or_default(),
                            )
                        })
                        .collect(),
                    timestamp: (r.timestamp >= 0).then_some(r.timestamp),
                })
                .collect();
            ProducedBatch {
                records,
                producer_id,
                producer_epoch,
                base_sequence,
                transactional,
            }
        })
        .collect())
}

/// Encodes records read from the log as one uncompressed v2 batch.
pub fn encode(records: &[StoredRecord]) -> Result<Bytes, Box<dyn std::error::Error + Send + Sync>> {
    let Some(first) = records.first() else {
        return Ok(Bytes::new());
    };
    let base = first.offset;
    let kafka: Vec<KafkaRecord> = records
        .iter()
        .map(|r| KafkaRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: r.offset as i64,
            // The encoder keeps records in one batch while offset minus
            // sequence stays the same; the batch's base sequence is then -1
            // ("none"), as for any batch of a producer that is not idempotent.
            sequence: (r.offset - base) as i32 - 1,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: Some(r.value.clone()),
            // `weir.txn` only tells recovery which commit appended a record.
            headers: r
                .headers
                .iter()
                .filter(|(n, _)| n != crate::state::changelog::TXN)
                .map(|(n, v)| {
                    (
                        StrBytes::from_string(n.clone()),
                        Some(Bytes::from(v.clone())),
                    )
                })
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &kafka, &options)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(offset: u64, key: Option<&[u8]>, value: &[u8]) -> StoredRecord {
        StoredRecord {
            offset,
            timestamp: 1_700_000_000_000 + offset as i64,
            key: key.map(Bytes::copy_from_slice),
            value: Bytes::copy_from_slice(value),
            headers: vec![("h".to_string(), b"v".to_vec())],
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
