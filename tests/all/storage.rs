//! The log on real files: torn tails, segment rolls, corruption, lost indexes,
//! seek by timestamp, retention and rolling by age.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use weir::log::{Durability, Log, LogError, LogOptions, Record, TopicConfig, segment_path};

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
        let copy = tempfile::tempdir().unwrap();
        copy_tree(dir.path(), copy.path());
        let copied = copy.path().join(seg.strip_prefix(dir.path()).unwrap());
        OpenOptions::new()
            .write(true)
            .open(&copied)
            .unwrap()
            .set_len(cut)
            .unwrap();

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

/// A log whose clock the test sets.
fn clocked_log(dir: &Path, clock: &Arc<AtomicI64>) -> Log {
    let clock = clock.clone();
    let options = LogOptions {
        clock: Arc::new(move || clock.load(Ordering::SeqCst)),
        // The test applies retention itself.
        maintenance: None,
        ..LogOptions::default()
    };
    Log::open_with(dir, options).unwrap()
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

#[test]
fn a_cut_at_every_byte_of_the_last_three_batches_keeps_exactly_the_whole_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, ends) = {
        let log = Log::open(dir.path()).unwrap();
        let config = TopicConfig::with_partitions(1).durability(Durability::Never);
        log.create_topic("t", config).unwrap();
        let seg = segment_path(&log.partition_dir("t", 0), 0);
        let mut ends = Vec::new(); // (byte end, offset end) of each batch
        for (i, n) in [3usize, 1, 4, 2, 5].into_iter().enumerate() {
            log.append("t", 0, &batch(&format!("b{i}"), n)).unwrap();
            let hw = log.high_watermark("t", 0).unwrap();
            ends.push((std::fs::metadata(&seg).unwrap().len(), hw));
        }
        (seg, ends)
    };
    let full = ends.last().unwrap().0;
    let from = ends[1].0; // the last three batches start here
    for cut in from..=full {
        let copy = tempfile::tempdir().unwrap();
        copy_tree(dir.path(), copy.path());
        let copied = copy.path().join(seg.strip_prefix(dir.path()).unwrap());
        OpenOptions::new()
            .write(true)
            .open(&copied)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (valid_len, valid_hw) = *ends.iter().rev().find(|(end, _)| *end <= cut).unwrap();

        let log = Log::open(copy.path()).unwrap();
        assert_eq!(
            log.high_watermark("t", 0).unwrap(),
            valid_hw,
            "cut at {cut}"
        );
        assert_eq!(
            std::fs::metadata(&copied).unwrap().len(),
            valid_len,
            "cut at {cut}"
        );
        assert_eq!(log.append("t", 0, &batch("next", 2)).unwrap(), valid_hw);
        let records = log.read("t", 0, 0, 100, 1 << 20).unwrap();
        assert_eq!(records.len() as u64, valid_hw + 2);
        assert!(
            records
                .iter()
                .enumerate()
                .all(|(i, r)| r.offset == i as u64)
        );
        assert_eq!(records[valid_hw as usize].value, &b"next-v0"[..]);
        drop(log);
        // Recovery is idempotent: the second open changes nothing.
        let before = std::fs::read(&copied).unwrap();
        let log = Log::open(copy.path()).unwrap();
        assert_eq!(log.high_watermark("t", 0).unwrap(), valid_hw + 2);
        assert_eq!(std::fs::read(&copied).unwrap(), before);
    }
}

#[test]
fn a_bit_flip_in_a_sealed_segment_without_an_index_is_reported_on_open_and_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::with_partitions(1).segment_bytes(1024);
    let (sealed, pdir) = {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", config).unwrap();
        for i in 0..20 {
            log.append("t", 0, &batch(&format!("b{i}"), 4)).unwrap();
        }
        let pdir = log.partition_dir("t", 0);
        (segment_path(&pdir, 0), pdir)
    };
    let original = std::fs::read(&sealed).unwrap();
    for at in [40, original.len() / 2, original.len() - 1] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x20;
        std::fs::write(&sealed, &bytes).unwrap();
        for index in files_with(&pdir, "index").iter().take(1) {
            std::fs::remove_file(index).unwrap();
        }

        let log = Log::open(dir.path()).unwrap();
        let damage = log.damage();
        assert_eq!(damage.len(), 1, "flip at {at}: {damage:?}");
        assert!(
            matches!(&damage[0], LogError::Corrupt { path, position, .. }
                if path == &sealed && *position <= at as u64),
            "{:?}",
            damage[0]
        );
        assert_eq!(log.high_watermark("t", 0).unwrap(), 80, "never truncated");
        assert_eq!(
            std::fs::metadata(&sealed).unwrap().len(),
            original.len() as u64
        );
        // Reading every offset: good batches come back intact, the bad one is
        // an error naming the file, and no wrong byte is ever returned.
        let mut errors = 0;
        for from in 0..80u64 {
            match log.read("t", 0, from, 1, 1 << 20) {
                Ok(got) => assert_eq!(
                    got[0].value,
                    format!("b{}-v{}", from / 4, from % 4).into_bytes()
                ),
                Err(LogError::Corrupt { path, .. }) => {
                    assert_eq!(path, sealed);
                    errors += 1;
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert!(errors > 0, "the flip at {at} was never reported by a read");
        drop(log);
        std::fs::write(&sealed, &original).unwrap();
    }
}

#[test]
fn deleted_zeroed_and_truncated_time_indexes_are_rebuilt_and_seek_matches_the_oracle() {
    let dir = tempfile::tempdir().unwrap();
    let config = TopicConfig::with_partitions(1).segment_bytes(8 << 10);
    // Timestamps go up and down, so the earliest record at or after a time is
    // not simply the first record of the first newer batch.
    let ts_of = |offset: u64| 1_000 + (offset as i64 * 37) % 500 + (offset as i64 / 50) * 100;
    let count = 1200u64;
    let pdir = {
        let log = Log::open(dir.path()).unwrap();
        log.create_topic("t", config).unwrap();
        for start in (0..count).step_by(6) {
            let records: Vec<Record> = (start..start + 6)
                .map(|o| Record {
                    timestamp: Some(ts_of(o)),
                    ..Record::value(format!("v{o}"))
                })
                .collect();
            log.append("t", 0, &records).unwrap();
        }
        log.partition_dir("t", 0)
    };
    let oracle = |ts: i64| (0..count).find(|&o| ts_of(o) >= ts);
    let check = |log: &Log| {
        for ts in (900..3_700).step_by(7) {
            assert_eq!(
                log.offset_for_timestamp("t", 0, ts).unwrap(),
                oracle(ts),
                "ts {ts}"
            );
        }
        for from in (0..count).step_by(53) {
            let got = log.read("t", 0, from, 1, 1 << 20).unwrap();
            assert_eq!(got[0].value, format!("v{from}").into_bytes());
        }
    };
    check(&Log::open(dir.path()).unwrap());

    let times = files_with(&pdir, "timeindex");
    let offsets = files_with(&pdir, "index");
    assert!(
        times.len() >= 3 && offsets.len() >= 3,
        "several sealed segments"
    );
    let originals: Vec<Vec<u8>> = times
        .iter()
        .chain(&offsets)
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    std::fs::remove_file(&times[0]).unwrap();
    let len = std::fs::metadata(&times[1]).unwrap().len() as usize;
    std::fs::write(&times[1], vec![0u8; len]).unwrap();
    let len = std::fs::metadata(&times[2]).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&times[2])
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let len = std::fs::metadata(&offsets[1]).unwrap().len() as usize;
    std::fs::write(&offsets[1], vec![0u8; len]).unwrap();

    let log = Log::open(dir.path()).unwrap();
    assert!(
        log.damage().is_empty(),
        "an index is derived data, not damage"
    );
    check(&log);
    for (path, before) in times.iter().chain(&offsets).zip(&originals) {
        let now = std::fs::read(path).expect("rebuilt index file written");
        assert_eq!(&now, before, "{} rebuilt as it was", path.display());
    }
}

#[test]
fn retention_deletes_whole_sealed_segments_and_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(1_000_000));
    let log = clocked_log(dir.path(), &clock);
    let config = TopicConfig::with_partitions(1)
        .segment_bytes(1024)
        .retention(Some(60_000), Some(6_000));
    log.create_topic("t", config).unwrap();
    for i in 0..100 {
        log.append("t", 0, &batch(&format!("b{i}"), 3)).unwrap();
    }
    let bytes = log.partition_bytes("t", 0).unwrap();
    assert!(bytes > 6_000);

    // By size: the oldest segments go until the partition fits.
    let retained = log.enforce_retention().unwrap();
    assert_eq!(retained.len(), 1);
    let deleted = &retained[0].deleted;
    assert_eq!(deleted[0].base_offset, 0);
    let start = log.log_start("t", 0).unwrap();
    assert_eq!(start, deleted.last().unwrap().next_offset);
    let after = log.partition_bytes("t", 0).unwrap();
    assert!(after <= 6_000 && after + deleted.last().unwrap().bytes > 6_000);
    assert!(!segment_path(&log.partition_dir("t", 0), 0).exists());
    assert!(matches!(
        log.read("t", 0, start - 1, 1, 1 << 20),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.read("t", 0, start, 1, 1 << 20).unwrap()[0].offset,
        start
    );
    assert!(
        log.enforce_retention().unwrap().is_empty(),
        "nothing more is due"
    );

    // By time: once everything is older than the limit, every sealed segment
    // goes, but the active one stays, so the log start stops at its base.
    clock.fetch_add(61_000, Ordering::SeqCst);
    log.enforce_retention().unwrap();
    assert_eq!(log.segment_count("t", 0).unwrap(), 1);
    let hw = log.high_watermark("t", 0).unwrap();
    let start = log.log_start("t", 0).unwrap();
    assert!(start > 0 && start < hw);
    drop(log);
    let log = clocked_log(dir.path(), &clock);
    assert_eq!(
        log.log_start("t", 0).unwrap(),
        start,
        "deletion survives reopen"
    );
    assert_eq!(log.high_watermark("t", 0).unwrap(), hw);
}

#[test]
fn segments_roll_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicI64::new(5_000));
    let log = clocked_log(dir.path(), &clock);
    let config = TopicConfig {
        segment_ms: Some(1_000),
        ..TopicConfig::with_partitions(1)
    };
    log.create_topic("t", config).unwrap();
    log.append("t", 0, &batch("a", 1)).unwrap();
    clock.fetch_add(999, Ordering::SeqCst);
    log.append("t", 0, &batch("b", 1)).unwrap();
    assert_eq!(log.segment_count("t", 0).unwrap(), 1);
    clock.fetch_add(1, Ordering::SeqCst);
    log.append("t", 0, &batch("c", 1)).unwrap();
    assert_eq!(
        log.segment_count("t", 0).unwrap(),
        2,
        "rolled once a second old"
    );
    assert!(segment_path(&log.partition_dir("t", 0), 2).exists());
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
