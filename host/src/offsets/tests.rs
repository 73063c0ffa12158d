use super::*;

#[test]
fn commits_are_rebuilt_from_the_log_with_the_latest_value_winning() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        let offsets = Offsets::open(log).unwrap();
        let c = |offset| Committed {
            offset,
            generation: 1,
        };
        offsets.commit("g1", "orders", 0, c(10)).unwrap();
        offsets.commit("g1", "orders", 0, c(25)).unwrap();
        offsets.commit("g2", "orders", 0, c(3)).unwrap();
        offsets.commit("g1", "orders", 2, c(7)).unwrap();
    }
    let log = Arc::new(Log::open(dir.path()).unwrap());
    let offsets = Offsets::open(log).unwrap();
    assert_eq!(offsets.get("g1", "orders", 0).map(|c| c.offset), Some(25));
    assert_eq!(offsets.get("g2", "orders", 0).map(|c| c.offset), Some(3));
    assert_eq!(offsets.get("g1", "orders", 2).map(|c| c.offset), Some(7));
    assert_eq!(offsets.get("g1", "orders", 1), None);
    assert_eq!(offsets.groups(), vec!["g1".to_string(), "g2".to_string()]);
    assert_eq!(offsets.of_group("g1").len(), 2);
}

#[test]
fn compaction_keeps_the_latest_value_per_key_and_bounds_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let c = |offset| Committed {
        offset,
        generation: 3,
    };
    let keys = 10u32;
    let commits = 3 * COMPACT_MIN_RECORDS;
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        let offsets = Offsets::open(log.clone()).unwrap();
        for i in 0..commits {
            offsets
                .commit("g", "orders", (i % keys as u64) as u32, c(i))
                .unwrap();
        }
        let held = log.high_watermark(OFFSETS_TOPIC, 0).unwrap()
            - log.log_start(OFFSETS_TOPIC, 0).unwrap();
        assert!(
            held <= 2 * COMPACT_MIN_RECORDS,
            "{held} records held after {commits} commits"
        );
        assert!(log.segment_count(OFFSETS_TOPIC, 0).unwrap() <= 3);
        assert!(log.log_start(OFFSETS_TOPIC, 0).unwrap() > 0);
    }
    let log = Arc::new(Log::open(dir.path()).unwrap());
    let offsets = Offsets::open(log).unwrap();
    for p in 0..keys {
        let last = (0..commits).rev().find(|i| i % keys as u64 == p as u64);
        assert_eq!(offsets.get("g", "orders", p), last.map(c), "partition {p}");
    }
    assert_eq!(offsets.of_group("g").len(), keys as usize);
}

#[test]
fn an_explicit_compaction_survives_reopen_and_later_commits_win() {
    let dir = tempfile::tempdir().unwrap();
    let c = |offset| Committed {
        offset,
        generation: 1,
    };
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        let offsets = Offsets::open(log.clone()).unwrap();
        offsets.commit("a", "t", 0, c(1)).unwrap();
        offsets.commit("a", "t", 0, c(2)).unwrap();
        offsets.commit("b", "t", 1, c(5)).unwrap();
        offsets.compact().unwrap();
        assert_eq!(log.log_start(OFFSETS_TOPIC, 0).unwrap(), 3);
        offsets.commit("a", "t", 0, c(9)).unwrap();
    }
    let log = Arc::new(Log::open(dir.path()).unwrap());
    let offsets = Offsets::open(log).unwrap();
    assert_eq!(offsets.get("a", "t", 0), Some(c(9)));
    assert_eq!(offsets.get("b", "t", 1), Some(c(5)));
}

#[test]
fn deleting_a_topic_forgets_its_offsets_for_good_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let c = |offset| Committed {
        offset,
        generation: 1,
    };
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        log.create_topic("gone", TopicConfig::with_partitions(2))
            .unwrap();
        log.append("gone", 0, &[Record::value("a"), Record::value("b")])
            .unwrap();
        let offsets = Offsets::open(log.clone()).unwrap();
        offsets.commit("g", "gone", 0, c(2)).unwrap();
        offsets.commit("g", "gone", 1, c(0)).unwrap();
        offsets.commit("g", "kept", 0, c(7)).unwrap();
        offsets.delete_topic("gone").unwrap();
        assert_eq!(offsets.get("g", "gone", 0), None);
        assert!(matches!(
            log.partition_count("gone"),
            Err(LogError::UnknownTopic(_))
        ));
        assert!(matches!(
            offsets.delete_topic("gone"),
            Err(OffsetsError::Log(LogError::UnknownTopic(_)))
        ));
    }
    // A delete that crashed between its rename and its removal.
    let leftover = dir.path().join("topics/old~deleted-1/0");
    std::fs::create_dir_all(&leftover).unwrap();
    let log = Arc::new(Log::open(dir.path()).unwrap());
    assert!(!dir.path().join("topics/old~deleted-1").exists());
    let offsets = Offsets::open(log.clone()).unwrap();
    assert_eq!(offsets.get("g", "gone", 0), None, "the tombstone replays");
    assert_eq!(offsets.get("g", "gone", 1), None);
    assert_eq!(offsets.get("g", "kept", 0), Some(c(7)));
    offsets.compact().unwrap();
    assert_eq!(offsets.of_group("g").len(), 1);
    log.create_topic("gone", TopicConfig::with_partitions(1))
        .unwrap();
    assert_eq!(log.high_watermark("gone", 0).unwrap(), 0);
}

#[test]
fn deleting_a_group_forgets_its_offsets_for_good_and_keeps_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let c = |offset| Committed {
        offset,
        generation: 1,
    };
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        let offsets = Offsets::open(log).unwrap();
        offsets.commit("gone", "t", 0, c(3)).unwrap();
        offsets.commit("gone", "u", 1, c(4)).unwrap();
        offsets.commit("kept", "t", 0, c(5)).unwrap();
        offsets.delete_group("gone").unwrap();
        assert_eq!(offsets.groups(), ["kept"]);
        offsets.delete_group("never-was").unwrap();
    }
    let log = Arc::new(Log::open(dir.path()).unwrap());
    let offsets = Offsets::open(log).unwrap();
    assert_eq!(offsets.groups(), ["kept"], "the tombstones replay");
    assert_eq!(offsets.get("kept", "t", 0), Some(c(5)));
}

#[test]
fn group_metadata_survives_reopen_and_compaction_beside_the_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let c = Committed {
        offset: 4,
        generation: 2,
    };
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        let offsets = Offsets::open(log).unwrap();
        offsets.record_group("g", b"first").unwrap();
        offsets.commit("g", "t", 0, c).unwrap();
        offsets.record_group("g", b"second").unwrap();
        offsets.record_group("h", b"other").unwrap();
        offsets.compact().unwrap();
    }
    let log = Arc::new(Log::open(dir.path()).unwrap());
    let offsets = Offsets::open(log).unwrap();
    assert_eq!(
        offsets.group_records(),
        vec![
            ("g".to_string(), b"second".to_vec()),
            ("h".to_string(), b"other".to_vec())
        ]
    );
    assert_eq!(offsets.get("g", "t", 0), Some(c));
    assert_eq!(
        offsets.groups(),
        vec!["g".to_string()],
        "metadata is no commit"
    );
}

#[test]
fn a_malformed_offset_record_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path()).unwrap());
    log.ensure_topic(OFFSETS_TOPIC, TopicConfig::with_partitions(1))
        .unwrap();
    log.append(OFFSETS_TOPIC, 0, &[Record::keyed("g/t/0", "short")])
        .unwrap();
    let err = Offsets::open(log).err().expect("malformed record");
    assert!(
        matches!(err, OffsetsError::Malformed { offset: 0 }),
        "{err}"
    );
}

#[test]
fn commit_metadata_survives_reopen_and_compaction_and_old_values_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let c = |offset| Committed {
        offset,
        generation: 1,
    };
    let meta = |epoch, text: &str| CommitMeta {
        leader_epoch: epoch,
        metadata: text.to_string(),
    };
    {
        let log = Arc::new(Log::open(dir.path()).unwrap());
        log.ensure_topic(OFFSETS_TOPIC, TopicConfig::with_partitions(1))
            .unwrap();
        // A value as weirs before commit metadata wrote it: 8 + 4 bytes.
        let mut old = 17u64.to_le_bytes().to_vec();
        old.extend_from_slice(&3u32.to_le_bytes());
        log.append(OFFSETS_TOPIC, 0, &[Record::keyed("old/t/0", old)])
            .unwrap();
        let offsets = Offsets::open(log).unwrap();
        let commits = [
            ("t".to_string(), 0, c(42), meta(5, "Hello world!")),
            ("t".to_string(), 1, c(7), CommitMeta::none()),
            ("u".to_string(), 0, c(9), meta(-1, "ünïcode")),
        ];
        offsets.commit_many_with_meta("g", &commits).unwrap();
        assert_eq!(offsets.meta("g", "t", 0), meta(5, "Hello world!"));
        // A later commit without metadata clears it.
        offsets.commit("g", "u", 0, c(10)).unwrap();
        assert_eq!(offsets.meta("g", "u", 0), CommitMeta::none());
    }
    let log = Arc::new(Log::open(dir.path()).unwrap());
    let offsets = Offsets::open(log.clone()).unwrap();
    assert_eq!(
        offsets.get("old", "t", 0),
        Some(Committed {
            offset: 17,
            generation: 3
        })
    );
    assert_eq!(offsets.meta("old", "t", 0), CommitMeta::none());
    assert_eq!(offsets.get("g", "t", 0), Some(c(42)));
    assert_eq!(offsets.meta("g", "t", 0), meta(5, "Hello world!"));
    assert_eq!(offsets.meta("g", "t", 1), CommitMeta::none());
    assert_eq!(offsets.meta("g", "u", 0), CommitMeta::none());
    offsets.compact().unwrap();
    drop(offsets);
    let offsets = Offsets::open(log).unwrap();
    assert_eq!(offsets.meta("g", "t", 0), meta(5, "Hello world!"));
    assert_eq!(offsets.get("g", "u", 0), Some(c(10)));
    offsets.delete_group("g").unwrap();
    assert_eq!(offsets.meta("g", "t", 0), CommitMeta::none());
}
