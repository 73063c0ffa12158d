//! The commit of a Kafka transaction as one durable unit, the way embedded
//! exactly-once writes a batch's emits, state and offset (see
//! `broker/state.rs`): the whole transaction (every held record with its
//! destination, every offset, and a closing `commit` marker) is appended to
//! the internal topic [`TOPIC`] as ONE batch, fsynced; that append is the
//! commit point. Then each destination partition gets its records, each
//! carrying the header `weir.txn` = `__transactions/0/<marker offset>`, the
//! offsets go to `__consumer_offsets`, and a `done` marker follows.
//!
//! Invariants: commits are written one at a time (the caller holds one lock
//! over [`commit`]), so only the journal's last unit can be unfinished; a
//! crash before the batch is durable leaves nothing of the transaction (a
//! torn batch is truncated on open); a crash after it is finished by
//! [`recover`] before the listener serves: records a destination already
//! has (counted by their `weir.txn` header from the high watermark the
//! marker noted) are not appended again, so every record lands exactly once.
//!
//! With the `crash-seam` feature and `WEIR_CRASH_IN_TXN_COMMIT` set, the
//! process aborts, as a kill would, after the first destination partition
//! of a commit got its records (the tests' way to cut a commit short).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::TxnError;
use super::state::Held;
use crate::log::{Durability, Log, LogError, Record, StoredRecord, TopicConfig};
use crate::offsets::{Committed, Offsets};
use crate::state::changelog::TXN;

/// The internal topic of transaction commits.
pub const TOPIC: &str = "__transactions";
/// Header of a journaled record: its destination topic.
const DEST: &str = "weir.txn.dest";
/// Header of a journaled record: its destination partition.
const DEST_PARTITION: &str = "weir.txn.partition";
/// Header of a journaled offset (value: [`Offset`] as JSON).
const OFFSET: &str = "weir.txn.offset";
/// Header of a marker: `commit` (value: [`Intent`]) or `done`.
const MARKER: &str = "weir.txn.marker";

const READ_RECORDS: usize = 10_000;
const READ_BYTES: u64 = 16 << 20;

/// What the `commit` marker says about its unit.
#[derive(Debug, Serialize, Deserialize)]
struct Intent {
    /// The transactional id, for the logs.
    id: String,
    /// How many records of the unit come before the marker.
    entries: u64,
    /// Every destination partition with its high watermark before the
    /// transaction's records.
    dests: Vec<(String, u32, u64)>,
}

/// One journaled offset.
#[derive(Debug, Serialize, Deserialize)]
struct Offset {
    group: String,
    topic: String,
    partition: u32,
    offset: u64,
    generation: u32,
}

/// Writes the transaction `id`'s `held` records and offsets as one unit
/// (see the module doc). Returns once all of it is in the log.
pub fn commit(log: &Log, offsets: &Offsets, id: &str, held: Held) -> Result<(), TxnError> {
    ensure(log)?;
    let mut dests = Vec::with_capacity(held.records.len());
    for (topic, partition) in held.records.keys() {
        dests.push((
            topic.clone(),
            *partition,
            log.high_watermark(topic, *partition)?,
        ));
    }
    let mut unit = Vec::new();
    for ((topic, partition), records) in &held.records {
        for record in records {
            let mut journaled = record.clone();
            journaled
                .headers
                .push((DEST.to_string(), topic.as_bytes().to_vec()));
            journaled.headers.push((
                DEST_PARTITION.to_string(),
                partition.to_string().into_bytes(),
            ));
            unit.push(journaled);
        }
    }
    for ((group, topic, partition), committed) in &held.offsets {
        let offset = Offset {
            group: group.clone(),
            topic: topic.clone(),
            partition: *partition,
            offset: committed.offset,
            generation: committed.generation,
        };
        let mut record = Record::value(serde_json::to_vec(&offset).expect("serializable"));
        record.headers.push((OFFSET.to_string(), Vec::new()));
        unit.push(record);
    }
    let intent = Intent {
        id: id.to_string(),
        entries: unit.len() as u64,
        dests,
    };
    let mut marker = Record::value(serde_json::to_vec(&intent).expect("serializable"));
    marker
        .headers
        .push((MARKER.to_string(), b"commit".to_vec()));
    unit.push(marker);
    // The commit point.
    let base = log.append(TOPIC, 0, &unit)?;
    let marker_offset = base + unit.len() as u64 - 1;
    apply(log, offsets, marker_offset, &intent, held, false)
}

/// Finishes the journal's last unit if a crash cut it short; the
/// transactional id it finished, if any. Runs before the listener serves.
pub fn recover(log: &Log, offsets: &Offsets) -> Result<Option<String>, TxnError> {
    match log.partition_count(TOPIC) {
        Err(LogError::UnknownTopic(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    let hw = log.high_watermark(TOPIC, 0)?;
    let Some(last) = hw.checked_sub(1) else {
        return Ok(None);
    };
    let Some(marker) = read(log, last, hw)?.pop() else {
        return Ok(None);
    };
    if header(&marker, MARKER) != Some(b"commit".as_slice()) {
        return Ok(None);
    }
    let intent: Intent = serde_json::from_slice(&marker.value)
        .map_err(|e| TxnError::Malformed(last, e.to_string()))?;
    let start = last
        .checked_sub(intent.entries)
        .ok_or_else(|| TxnError::Malformed(last, "more entries than offsets".to_string()))?;
    let mut held = Held::default();
    for entry in read(log, start, last)? {
        if header(&entry, OFFSET).is_some() {
            let o: Offset = serde_json::from_slice(&entry.value)
                .map_err(|e| TxnError::Malformed(entry.offset, e.to_string()))?;
            let committed = Committed {
                offset: o.offset,
                generation: o.generation,
            };
            held.offsets
                .insert((o.group, o.topic, o.partition), committed);
            continue;
        }
        let dest = header(&entry, DEST).map(|t| String::from_utf8_lossy(t).into_owned());
        let partition = header(&entry, DEST_PARTITION)
            .and_then(|p| std::str::from_utf8(p).ok()?.parse::<u32>().ok());
        let (Some(topic), Some(partition)) = (dest, partition) else {
            return Err(TxnError::Malformed(
                entry.offset,
                "a record without its destination".to_string(),
            ));
        };
        let record = Record {
            key: entry.key.map(|k| k.to_vec()),
            value: entry.value.to_vec(),
            headers: entry
                .headers
                .into_iter()
                .filter(|(n, _)| n != DEST && n != DEST_PARTITION)
                .collect(),
            timestamp: Some(entry.timestamp),
            // The destination headers came last, so the indexes still hold.
            nulls: entry.nulls,
        };
        held.records
            .entry((topic, partition))
            .or_default()
            .push(record);
    }
    tracing::warn!(id = %intent.id, "finishing a Kafka transaction commit a crash cut short");
    apply(log, offsets, last, &intent, held, true)?;
    Ok(Some(intent.id))
}

/// Appends each destination's records (on `recovering`, only those it does
/// not have yet), commits the offsets and closes the unit with `done`.
fn apply(
    log: &Log,
    offsets: &Offsets,
    marker_offset: u64,
    intent: &Intent,
    held: Held,
    recovering: bool,
) -> Result<(), TxnError> {
    let tag = format!("{TOPIC}/0/{marker_offset}");
    let hws: BTreeMap<(&str, u32), u64> = intent
        .dests
        .iter()
        .map(|(t, p, hw)| ((t.as_str(), *p), *hw))
        .collect();
    for ((topic, partition), records) in held.records {
        let present = match hws.get(&(topic.as_str(), partition)) {
            Some(&hw) if recovering => tagged(log, &topic, partition, hw, &tag)?,
            _ => 0,
        };
        let missing: Vec<Record> = records
            .into_iter()
            .skip(present)
            .map(|mut r| {
                r.headers.push((TXN.to_string(), tag.as_bytes().to_vec()));
                r
            })
            .collect();
        match log.append_chunked(&topic, partition, &missing) {
            Ok(_) => {}
            // A partition deleted since, or a record its limits no longer
            // take: those records can never land; the rest of the unit must.
            Err(
                e @ (LogError::UnknownTopic(_)
                | LogError::UnknownPartition { .. }
                | LogError::Deleted { .. }
                | LogError::BatchTooLarge { .. }),
            ) => {
                tracing::error!(%topic, partition, records = missing.len(), error = %crate::error::chain(&e), "records of a committed Kafka transaction dropped");
            }
            Err(e) => return Err(e.into()),
        }
        #[cfg(feature = "crash-seam")]
        if !recovering && std::env::var_os("WEIR_CRASH_IN_TXN_COMMIT").is_some() {
            tracing::error!("crash-test seam: aborting inside a Kafka transaction commit");
            std::process::abort();
        }
    }
    let mut by_group: BTreeMap<String, Vec<(String, u32, Committed)>> = BTreeMap::new();
    for ((group, topic, partition), committed) in held.offsets {
        by_group
            .entry(group)
            .or_default()
            .push((topic, partition, committed));
    }
    for (group, commits) in by_group {
        offsets.commit_many(&group, &commits)?;
    }
    let mut done = Record::value(marker_offset.to_string().into_bytes());
    done.headers.push((MARKER.to_string(), b"done".to_vec()));
    log.append(TOPIC, 0, &[done])?;
    Ok(())
}

/// How many records of `topic`/`partition` from `from` carry `tag`.
fn tagged(log: &Log, topic: &str, partition: u32, from: u64, tag: &str) -> Result<usize, LogError> {
    let hw = log.high_watermark(topic, partition)?;
    Ok(read_range(log, topic, partition, from, hw)?
        .iter()
        .filter(|r| header(r, TXN) == Some(tag.as_bytes()))
        .count())
}

/// The records of `topic`/`partition` in [`from`, `to`).
fn read_range(
    log: &Log,
    topic: &str,
    partition: u32,
    from: u64,
    to: u64,
) -> Result<Vec<StoredRecord>, LogError> {
    let mut out = Vec::new();
    let mut next = from;
    while next < to {
        let records = log.read(topic, partition, next, READ_RECORDS, READ_BYTES)?;
        let Some(tail) = records.last() else { break };
        next = tail.offset + 1;
        out.extend(
            records
                .into_iter()
                .filter(|r| r.offset >= from && r.offset < to),
        );
    }
    Ok(out)
}

/// The journal's records in [`from`, `to`).
fn read(log: &Log, from: u64, to: u64) -> Result<Vec<StoredRecord>, LogError> {
    read_range(log, TOPIC, 0, from, to)
}

fn header<'a>(record: &'a StoredRecord, name: &str) -> Option<&'a [u8]> {
    record
        .headers
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

/// Creates the journal topic: one partition, every append fsynced before it
/// is acknowledged (a commit answered must survive), old segments dropped.
fn ensure(log: &Log) -> Result<(), LogError> {
    let mut config = TopicConfig::with_partitions(1).durability(Durability::Always);
    config.segment_bytes = 16 << 20;
    config.retention_bytes = Some(64 << 20);
    log.ensure_topic(TOPIC, config)
}
