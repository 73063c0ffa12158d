//! Compaction against what it must keep: the latest record of each key at
//! its own offset, unkeyed records, tombstones until they are due; and a
//! crash after every file step of a compaction, which must lose nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::CRASH_AFTER;
use crate::log::{CleanupPolicy, Durability, Log, LogOptions, Record, StoredRecord, TopicConfig};

fn open(dir: &Path, clock: &Arc<AtomicI64>) -> Log {
    let clock = clock.clone();
    let options = LogOptions {
        clock: Arc::new(move || clock.load(Ordering::SeqCst)),
        maintenance: None,
        ..LogOptions::default()
    };
    Log::open_with(dir, options).unwrap()
}

fn config() -> TopicConfig {
    let mut config = TopicConfig::with_partitions(1)
        .durability(Durability::Never)
        .segment_bytes(400);
    config.cleanup_policy = CleanupPolicy::Compact;
    config.delete_retention_ms = 10_000;
    config
}

/// 120 records over 6 keys, a few unkeyed, a tombstone for key 5; sealed
/// in many small segments, with one last record left in the active one.
fn fill(log: &Log) -> Vec<StoredRecord> {
    log.create_topic("t", config()).unwrap();
    for i in 0..120u32 {
        let record = match i {
            118 => Record::keyed("k5", ""),
            _ if i % 17 == 0 => Record::value(format!("free {i}")),
            _ => Record::keyed(format!("k{}", i % 6), format!("v{i}")),
        };
        log.append("t", 0, &[record]).unwrap();
    }
    log.roll("t", 0).unwrap();
    log.append("t", 0, &[Record::keyed("k0", "active")])
        .unwrap();
    all(log)
}

fn all(log: &Log) -> Vec<StoredRecord> {
    let start = log.log_start("t", 0).unwrap();
    log.read("t", 0, start, usize::MAX, u64::MAX).unwrap()
}

/// What compaction keeps of `records` (the last one sits in the active
/// segment and is kept whatever it supersedes), tombstones kept.
fn expected(records: &[StoredRecord]) -> Vec<StoredRecord> {
    let (sealed, active) = records.split_at(records.len() - 1);
    let mut latest = BTreeMap::new();
    for r in sealed {
        if let Some(k) = &r.key {
            latest.insert(k.clone(), r.offset);
        }
    }
    let mut kept: Vec<StoredRecord> = sealed
        .iter()
        .filter(|r| r.key.as_ref().is_none_or(|k| latest[k] == r.offset))
        .cloned()
        .collect();
    kept.extend_from_slice(active);
    kept
}

#[test]
fn compaction_keeps_the_latest_record_of_each_key_at_its_own_offset() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let log = open(dir.path(), &clock);
    let before = fill(&log);
    let segments = log.segment_count("t", 0).unwrap();
    log.maintain().unwrap();
    let after = all(&log);
    assert_eq!(after, expected(&before));
    assert!(
        after.iter().any(|r| r.key.is_none()),
        "unkeyed records stay"
    );
    assert!(
        log.segment_count("t", 0).unwrap() < segments,
        "shrunk segments are merged"
    );
    assert_eq!(
        log.log_start("t", 0).unwrap(),
        0,
        "the log start does not move"
    );
    assert_eq!(log.high_watermark("t", 0).unwrap(), 121);
    // A reader starting in a gap gets the next record kept.
    let gap = (0..121)
        .find(|o| !after.iter().any(|r| r.offset == *o))
        .unwrap();
    let next = log.read("t", 0, gap, 1, u64::MAX).unwrap();
    assert_eq!(
        next[0].offset,
        after.iter().find(|r| r.offset > gap).unwrap().offset
    );
    // A second pass with nothing new changes nothing; a reopen reads the same,
    // also when the indexes are gone and must be rebuilt across the gaps.
    log.maintain().unwrap();
    assert_eq!(all(&log), after);
    drop(log);
    for entry in std::fs::read_dir(dir.path().join("topics/t/0")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "index" || e == "timeindex")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let log = open(dir.path(), &clock);
    assert!(log.damage().is_empty(), "{:?}", log.damage());
    assert_eq!(all(&log), after);
}

#[test]
fn a_tombstone_stays_until_it_is_due_then_goes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let log = open(dir.path(), &clock);
    fill(&log);
    log.maintain().unwrap();
    let has_tombstone = |log: &Log| {
        all(log)
            .iter()
            .any(|r| r.key.as_deref() == Some(b"k5") && r.value.is_empty())
    };
    assert!(has_tombstone(&log));
    clock.fetch_add(10_001, Ordering::SeqCst);
    log.maintain().unwrap();
    assert!(!has_tombstone(&log));
    assert!(
        !all(&log).iter().any(|r| r.key.as_deref() == Some(b"k5")),
        "k5 is gone"
    );
}

#[test]
fn a_null_value_is_a_tombstone_and_stays_null_through_a_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let log = open(dir.path(), &clock);
    log.create_topic("t", config()).unwrap();
    for i in 0..40u32 {
        let record = match i {
            37 => Record::tombstone("k1"),
            _ => Record::keyed(format!("k{}", i % 3), format!("v{i}")),
        };
        log.append("t", 0, &[record]).unwrap();
    }
    log.roll("t", 0).unwrap();
    log.append("t", 0, &[Record::keyed("k0", "active")])
        .unwrap();
    log.maintain().unwrap();
    let k1: Vec<StoredRecord> = all(&log)
        .into_iter()
        .filter(|r| r.key.as_deref() == Some(b"k1"))
        .collect();
    assert_eq!(k1.len(), 1, "only the tombstone is left of k1: {k1:?}");
    assert!(k1[0].nulls.value, "kept as a null, as Kafka readers expect");
    assert_eq!(k1[0].offset, 37);
    clock.fetch_add(10_001, Ordering::SeqCst);
    log.maintain().unwrap();
    assert!(
        !all(&log).iter().any(|r| r.key.as_deref() == Some(b"k1")),
        "the tombstone goes once it is due"
    );
}

#[test]
fn a_crash_at_any_step_of_a_compaction_loses_nothing() {
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let template = tempfile::tempdir().unwrap();
    let before = fill(&open(template.path(), &clock));
    let mut crashed = 0;
    for limit in 0.. {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(template.path(), dir.path());
        let log = open(dir.path(), &clock);
        CRASH_AFTER.with(|c| c.set(Some(limit)));
        let outcome = log.maintain();
        CRASH_AFTER.with(|c| c.set(None));
        if outcome.is_ok() {
            break;
        }
        crashed += 1;
        drop(log);
        let log = open(dir.path(), &clock);
        assert!(log.damage().is_empty(), "step {limit}: {:?}", log.damage());
        // Each run of segments is swapped whole or not at all: what is read
        // is some of the records, unchanged, and every one compaction keeps.
        let read = all(&log);
        assert!(read.iter().all(|r| before.contains(r)), "step {limit}");
        assert!(
            expected(&before).iter().all(|r| read.contains(r)),
            "step {limit}"
        );
        assert!(
            read.windows(2).all(|w| w[0].offset < w[1].offset),
            "step {limit}"
        );
        // The next pass finishes the job.
        log.maintain().unwrap();
        assert_eq!(all(&log), expected(&before), "step {limit}");
    }
    assert!(crashed > 3, "the test crashed {crashed} compactions only");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
