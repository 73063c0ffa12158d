//! The log on real files: torn tails, segment rolls, corruption, lost indexes,
//! seek by timestamp, retention and rolling by age.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use weir::log::{Durability, Log, LogError, LogOptions, Record, TopicConfig, segment_path};

mod recovery;

fn batch(prefix: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record::keyed(format!("{prefix}-k{i}"), format!("{prefix}-v{i}")))
        .collect()
}

#[test]
fn a_torn_last_batch_is_truncated_on_reopen_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let seg = {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .unwrap();
        log.append("t", 0, &batch("a", 10)).unwrap();
        log.append("t", 0, &batch("b", 10)).unwrap();
        segment_path(&log.partition_dir("t", 0), 0)
    };
    let full = std::fs::metadata(&seg).unwrap().len();
    let first_batch_end = {
        // Find where the second batch starts by appending to a scratch log.
        let scratch = tempfile::tempdir().unwrap();
        let log = Log::open(scratch.path()).unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .unwrap();
        log.append("t", 0, &batch("a", 10)).unwrap();
        std::fs::metadata(segment_path(&log.partition_dir("t", 0), 0))
            .unwrap()
            .len()
    };
    // Cut the second batch at every byte: recovery always keeps exactly the first.
    for cut in first_batch_end + 1..full {
        let (copy, copied) = cut_copy(dir.path(), &seg, cut);

        let log = Log::open(copy.path()).unwrap();
        assert_eq!(log.high_watermark("t", 0).unwrap(), 10, "cut at byte {cut}");
        assert_eq!(std::fs::metadata(&copied).unwrap().len(), first_batch_end);
        assert_eq!(log.append("t", 0, &batch("c", 1)).unwrap(), 10);
        let records = log.read("t", 0, 0, 100, 1 << 20).unwrap();
        assert_eq!(records.len(), 11);
        assert_eq!(records[10].value, &b"c-v0"[..]);
    }
}

#[test]
fn garbage_after_the_last_batch_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let seg = {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", TopicConfig::with_partitions(1))
            .unwrap();
        log.append("t", 0, &batch("a", 3)).unwrap();
        segment_path(&log.partition_dir("t", 0), 0)
    };
    let len = std::fs::metadata(&seg).unwrap().len();
    OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0xAB; 100])
        .unwrap();

    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.high_watermark("t", 0).unwrap(), 3);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), len);
}

#[test]
fn segments_roll_by_size_and_reads_span_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::with_partitions(1).segment_bytes(2048);
    {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", config).unwrap();
        for i in 0..50 {
            log.append("t", 0, &batch(&format!("b{i}"), 5)).unwrap();
        }
        assert!(log.segment_count("t", 0).unwrap() > 3);
    }
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.high_watermark("t", 0).unwrap(), 250);
    let all = log.read("t", 0, 0, 1000, 1 << 20).unwrap();
    let offsets: Vec<u64> = all.iter().map(|r| r.offset).collect();
    assert_eq!(
        offsets,
        (0..250).collect::<Vec<_>>(),
        "dense across segments"
    );
    for from in [0u64, 1, 4, 5, 77, 124, 249] {
        let got = log.read("t", 0, from, 3, 1 << 20).unwrap();
        assert_eq!(got[0].offset, from);
        assert!(got.len() <= 3);
    }
    let tiny = log.read("t", 0, 10, 1000, 1).unwrap();
    assert_eq!(
        tiny.first().map(|r| r.offset),
        Some(10),
        "at least one batch despite max_bytes"
    );
    assert!(tiny.len() <= 5, "only one batch when max_bytes is tiny");
}

#[test]
fn a_bit_flip_in_a_sealed_segment_is_reported_with_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::with_partitions(1).segment_bytes(1024);
    let sealed = {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", config).unwrap();
        for i in 0..20 {
            log.append("t", 0, &batch(&format!("b{i}"), 4)).unwrap();
        }
        segment_path(&log.partition_dir("t", 0), 0)
    };
    let mut bytes = std::fs::read(&sealed).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&sealed, &bytes).unwrap();

    let log = Log::open(dir.path()).unwrap();
    assert_eq!(
        log.high_watermark("t", 0).unwrap(),
        80,
        "a sealed segment is never truncated"
    );
    let err = log
        .read("t", 0, 0, 1000, 1 << 20)
        .expect_err("corruption is an error");
    match &err {
        LogError::Corrupt { path, position, .. } => {
            assert_eq!(path, &sealed);
            assert!(
                *position <= at as u64,
                "reported batch starts at or before the flip"
            );
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(err.to_string().contains(&sealed.display().to_string()));
}

#[test]
fn deleted_and_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::with_partitions(1).segment_bytes(16 << 10);
    let pdir = {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", config).unwrap();
        for i in 0..200 {
            log.append("t", 0, &batch(&format!("b{i}"), 10)).unwrap();
        }
        log.partition_dir("t", 0)
    };
    let mut indexes: Vec<_> = std::fs::read_dir(&pdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect();
    indexes.sort();
    assert!(indexes.len() >= 3);
    std::fs::remove_file(&indexes[0]).unwrap();
    std::fs::write(&indexes[1], [0xFFu8; 16]).unwrap();
    let len = std::fs::metadata(&indexes[2]).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&indexes[2])
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let log = Log::open(dir.path()).unwrap();
    for from in (0..2000).step_by(97) {
        let got = log.read("t", 0, from, 1, 1 << 20).unwrap();
        assert_eq!(got[0].offset, from);
        assert_eq!(
            got[0].value,
            format!("b{}-v{}", from / 10, from % 10).into_bytes()
        );
    }
    assert!(indexes[0].exists(), "the deleted index is written again");
}

#[test]
fn unknown_topics_partitions_and_offsets_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path()).unwrap();
    log.create_topic("t", TopicConfig::with_partitions(2))
        .unwrap();
    log.append("t", 0, &batch("a", 2)).unwrap();
    assert!(
        matches!(log.append("nope", 0, &batch("a", 1)), Err(LogError::UnknownTopic(t)) if t == "nope")
    );
    assert!(matches!(
        log.read("t", 5, 0, 1, 1),
        Err(LogError::UnknownPartition {
            partition: 5,
            count: 2,
            ..
        })
    ));
    assert!(matches!(
        log.read("t", 0, 3, 1, 1),
        Err(LogError::OffsetOutOfRange { offset: 3, .. })
    ));
    assert!(matches!(
        log.create_topic("t", TopicConfig::with_partitions(1)),
        Err(LogError::TopicExists(_))
    ));
    assert!(matches!(
        log.create_topic("../x", TopicConfig::with_partitions(1)),
        Err(LogError::Name(_))
    ));
    assert!(matches!(
        log.create_topic("z", TopicConfig::with_partitions(0)),
        Err(LogError::BadPartitionCount { partitions: 0 })
    ));
}

/// A copy of the data directory `dir` in which the segment file `seg` (a
/// path under `dir`) is cut to its first `cut` bytes; the cut file's path.
fn cut_copy(dir: &Path, seg: &Path, cut: u64) -> (tempfile::TempDir, PathBuf) {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(dir, copy.path());
    let copied = copy.path().join(seg.strip_prefix(dir).unwrap());
    OpenOptions::new()
        .write(true)
        .open(&copied)
        .unwrap()
        .set_len(cut)
        .unwrap();
    (copy, copied)
}

fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
