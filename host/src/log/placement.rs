//! Where a record goes when its producer does not name a partition. One rule
//! serves every path that appends for someone else: `weir produce` on a data
//! directory, produce over HTTP (JSON or binary, and so `weir produce
//! --server`), and a processor's emits.
//!
//! - A record that names a partition goes there (it must exist).
//! - A keyed record goes to CRC32C(key) modulo the partition count, so one
//!   key's records stay in order on one partition.
//! - An unkeyed record goes round robin, per record: the topic's n-th record
//!   (n = the sum of its partitions' high watermarks, counting every record
//!   appended before it, keyed or not) goes to partition n modulo the count.
//!
//! Why this rule: the counter is the topic's own record count, which the log
//! already keeps durably. Nothing extra is stored, it survives restarts, and
//! it is the same whatever process or path appends, so the same input lands
//! the same way embedded or through a server, in one request or in chunks.
//! Per record rather than sticky per request (Kafka's KIP-480): weir appends
//! one batch per partition per request anyway, so spreading costs no extra
//! round trip, and even a small request feeds every partition's consumers.
//! The former rule (every unkeyed record to partition 0) made partition 0 a
//! hot spot and left the others idle.
//!
//! Producers that place at the same moment may read the same count: each
//! still spreads its records evenly, but the strict alternation holds for one
//! producer at a time.

use std::collections::BTreeMap;

use super::{Log, LogError, Record};

/// The placement of one topic's next records: the rule above, with the
/// topic's record count read once when it is made.
#[derive(Debug, Clone)]
pub struct Placement {
    topic: String,
    partitions: u32,
    /// The sequence number of the next record placed in the topic.
    next: u64,
}

impl Placement {
    /// The sequence number of the next record placed: the topic's record
    /// count when this placement was made, plus the records placed since.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The partition of the next record, which names `partition` or not and
    /// has `key` or not. Every record placed advances the round robin,
    /// because every record appended raises one high watermark.
    pub fn place(&mut self, partition: Option<u32>, key: Option<&[u8]>) -> Result<u32, LogError> {
        let sequence = self.next;
        self.next += 1;
        match (partition, key) {
            (Some(p), _) if p < self.partitions => Ok(p),
            (Some(p), _) => Err(LogError::UnknownPartition {
                topic: self.topic.clone(),
                partition: p,
                count: self.partitions,
            }),
            (None, Some(key)) => Ok(crc32c::crc32c(key) % self.partitions),
            (None, None) => Ok((sequence % u64::from(self.partitions)) as u32),
        }
    }
}

impl Log {
    /// Where `topic`'s next records go (see the module doc).
    pub fn placement(&self, topic: &str) -> Result<Placement, LogError> {
        let partitions = self.partition_count(topic)?;
        let mut next = 0;
        for p in 0..partitions {
            next += self.high_watermark(topic, p)?;
        }
        Ok(Placement {
            topic: topic.to_string(),
            partitions,
            next,
        })
    }

    /// Places `records` (each with the partition it names, if any) by the
    /// rule of [`Placement`] and appends them, partition by partition in
    /// partition order, in as few batches as the topic's batch limits allow.
    /// Returns (partition, first offset) per batch. A partition that does not
    /// exist fails the call before anything is appended.
    pub fn produce(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (Option<u32>, Record)>,
    ) -> Result<Vec<(u32, u64)>, LogError> {
        let mut placement = self.placement(topic)?;
        let mut by_partition: BTreeMap<u32, Vec<Record>> = BTreeMap::new();
        for (partition, record) in records {
            let p = placement.place(partition, record.key.as_deref())?;
            by_partition.entry(p).or_default().push(record);
        }
        let mut batches = Vec::with_capacity(by_partition.len());
        for (p, records) in by_partition {
            let bases = self.append_chunked(topic, p, &records)?;
            batches.extend(bases.into_iter().map(|base| (p, base)));
        }
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(partitions: u32, next: u64) -> Placement {
        Placement {
            topic: "t".into(),
            partitions,
            next,
        }
    }

    #[test]
    fn unkeyed_records_go_round_robin_from_the_topics_record_count() {
        let mut at_five = placement(3, 5);
        let placed: Vec<u32> = (0..6).map(|_| at_five.place(None, None).unwrap()).collect();
        assert_eq!(placed, [2, 0, 1, 2, 0, 1]);
    }

    #[test]
    fn keyed_and_named_records_keep_their_partition_but_advance_the_count() {
        let mut p = placement(4, 0);
        let key_partition = crc32c::crc32c(b"k") % 4;
        assert_eq!(p.place(None, Some(b"k")).unwrap(), key_partition);
        assert_eq!(p.place(Some(3), None).unwrap(), 3);
        assert_eq!(
            p.place(None, None).unwrap(),
            2,
            "the third record of the topic"
        );
        assert!(matches!(
            p.place(Some(4), None),
            Err(LogError::UnknownPartition { partition: 4, .. })
        ));
    }

    #[test]
    fn placing_in_chunks_places_as_in_one_go() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path()).unwrap();
        let records =
            |range: std::ops::Range<usize>| range.map(|i| (None, Record::value(i.to_string())));
        for topic in ["whole", "chunked"] {
            log.create_topic(topic, crate::log::TopicConfig::with_partitions(3))
                .unwrap();
        }
        log.produce("whole", records(0..10)).unwrap();
        for chunk in [0..4, 4..5, 5..10] {
            log.produce("chunked", records(chunk)).unwrap();
        }
        for p in 0..3 {
            let values = |topic| -> Vec<Vec<u8>> {
                let read = log.read(topic, p, 0, 100, 1 << 20).unwrap();
                read.into_iter().map(|r| r.value.to_vec()).collect()
            };
            assert_eq!(values("whole"), values("chunked"), "partition {p}");
            assert_eq!(values("whole").len(), if p == 0 { 4 } else { 3 });
        }
    }
}
