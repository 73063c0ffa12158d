//! Recovery at every cut, bit flips without an index, rebuilt time indexes, retention and rolls by age.

use super::*;

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
        let (copy, copied) = cut_copy(dir.path(), &seg, cut);
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
