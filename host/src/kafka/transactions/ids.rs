//! Which producer id and epoch own each transactional id, kept across
//! restarts in the compacted internal topic [`TOPIC`] (key: the
//! transactional id; value: [`Owner`] as JSON). InitProducerId writes the
//! owner it hands out, fsynced, before answering, under the coordinator's
//! lock, so the topic's newest record of an id is the newest owner any
//! producer was told of.
//!
//! On start-up ([`load`]) the newest owner of each id is read back and the
//! coordinator bumps its epoch once more (`Txns::restore`): a transaction
//! open at the crash was held in the process's memory and is gone, so its
//! producer must be fenced rather than allowed to commit it; a producer
//! that initializes again gets the epoch after that, as Kafka's coordinator
//! would give it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::log::{CleanupPolicy, Durability, Log, LogError, Record, TopicConfig};

/// The internal topic of transactional ids' owners.
pub const TOPIC: &str = "__transaction_ids";

const READ_RECORDS: usize = 10_000;
const READ_BYTES: u64 = 16 << 20;

/// The producer that owns a transactional id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub producer_id: i64,
    pub epoch: i16,
}

/// Records that `id` is owned by `owner`; returns once it is durable.
pub fn save(log: &Log, id: &str, owner: Owner) -> Result<(), LogError> {
    ensure(log)?;
    let value = serde_json::to_vec(&owner).expect("serializable");
    log.append(TOPIC, 0, &[Record::keyed(id, value)])?;
    Ok(())
}

/// The newest owner of every transactional id saved, in no order; a record
/// that does not parse is an error naming its offset.
pub fn load(log: &Log) -> Result<Vec<(String, Owner)>, super::TxnError> {
    match log.partition_count(TOPIC) {
        Err(LogError::UnknownTopic(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let hw = log.high_watermark(TOPIC, 0)?;
    let mut from = log.log_start(TOPIC, 0)?;
    let mut owners = HashMap::new();
    while from < hw {
        let records = log.read(TOPIC, 0, from, READ_RECORDS, READ_BYTES)?;
        let Some(last) = records.last() else { break };
        from = last.offset + 1;
        for r in records {
            let (Some(key), false) = (&r.key, r.value.is_empty()) else {
                continue;
            };
            let owner: Owner = serde_json::from_slice(&r.value)
                .map_err(|e| super::TxnError::MalformedOwner(r.offset, e.to_string()))?;
            owners.insert(String::from_utf8_lossy(key).into_owned(), owner);
        }
    }
    Ok(owners.into_iter().collect())
}

/// One partition, compacted (only each id's newest owner matters), every
/// append fsynced before it is acknowledged.
fn ensure(log: &Log) -> Result<(), LogError> {
    let mut config = TopicConfig::with_partitions(1).durability(Durability::Always);
    config.segment_bytes = 4 << 20;
    config.cleanup_policy = CleanupPolicy::Compact;
    log.ensure_topic(TOPIC, config)
}
