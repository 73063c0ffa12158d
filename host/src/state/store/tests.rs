//! The local state copy: units applied, resets, scans, persistence.

use super::*;

fn unit(changes: Vec<(&str, Option<&str>)>, marker: Marker) -> Unit {
    Unit {
        changes: changes
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
            .collect(),
        emits: Vec::new(),
        marker,
        marker_offset: 0,
    }
}

fn commit(position: u64) -> Marker {
    Marker::Commit {
        position,
        dests: Vec::new(),
    }
}

#[test]
fn commits_apply_on_top_and_a_reset_replaces_the_partition_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state.redb")).unwrap();
    let (p0, p1) = (TopicPartition::new("in", 0), TopicPartition::new("in", 1));
    store
        .apply(
            &p0,
            &unit(vec![("a", Some("1")), ("b", Some("22"))], commit(5)),
            3,
        )
        .unwrap();
    store
        .apply(&p1, &unit(vec![("a", Some("x"))], commit(2)), 2)
        .unwrap();
    store
        .apply(
            &p0,
            &unit(vec![("a", None), ("c", Some("3"))], commit(9)),
            6,
        )
        .unwrap();
    assert_eq!(store.get(&p0, b"a").unwrap(), None);
    assert_eq!(store.get(&p0, b"c").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(store.get(&p1, b"a").unwrap().as_deref(), Some(&b"x"[..]));
    let meta = store.meta(&p0).unwrap();
    assert_eq!(
        (meta.checkpoint, meta.position, meta.keys, meta.bytes),
        (6, Some(9), 2, 5)
    );
    assert_eq!(store.total_bytes(), 5 + 2);

    store
        .apply(
            &p0,
            &unit(vec![("z", Some("0"))], Marker::Reset { position: 4 }),
            8,
        )
        .unwrap();
    let keys: Vec<Vec<u8>> = store
        .snapshot(&p0)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, vec![b"z".to_vec()]);
    assert_eq!(
        store.get(&p1, b"a").unwrap().as_deref(),
        Some(&b"x"[..]),
        "other partitions keep theirs"
    );
    assert_eq!(store.meta(&p0).unwrap().position, Some(4));
}

#[test]
fn a_scan_stays_inside_its_prefix_and_partition_and_pages_with_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(&dir.path().join("state.redb")).unwrap();
    let (p0, p1) = (TopicPartition::new("in", 0), TopicPartition::new("in", 1));
    let changes = vec![
        ("d/1", Some("a")),
        ("d/2", Some("b")),
        ("d/3", Some("c")),
        ("e/1", Some("z")),
    ];
    store.apply(&p0, &unit(changes, commit(1)), 1).unwrap();
    store
        .apply(&p1, &unit(vec![("d/0", Some("other"))], commit(1)), 1)
        .unwrap();
    let keys = |after: Option<&[u8]>, limit| -> Vec<String> {
        store
            .scan(&p0, b"d/", after, limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    };
    assert_eq!(keys(None, 10), ["d/1", "d/2", "d/3"]);
    assert_eq!(keys(None, 2), ["d/1", "d/2"]);
    assert_eq!(keys(Some(b"d/2"), 10), ["d/3"]);
}

#[test]
fn the_copy_survives_a_reopen_once_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let tp = TopicPartition::new("in", 0);
    {
        let store = StateStore::open(&path).unwrap();
        store
            .apply(&tp, &unit(vec![("k", Some("v"))], commit(7)), 2)
            .unwrap();
        store.persist().unwrap();
    }
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.get(&tp, b"k").unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(store.meta(&tp).unwrap().position, Some(7));
    assert_eq!(store.total_bytes(), 2);
}

#[test]
fn a_persist_with_nothing_applied_since_the_last_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let tp = TopicPartition::new("in", 0);
    let store = StateStore::open(&path).unwrap();
    let bytes = || std::fs::read(&path).unwrap();
    store
        .apply(&tp, &unit(vec![("k", Some("v"))], commit(7)), 2)
        .unwrap();
    store.persist().unwrap();
    let persisted = bytes();
    store.persist().unwrap();
    assert!(bytes() == persisted, "a second persist changed the file");
    store
        .apply(&tp, &unit(vec![("k", Some("w"))], commit(8)), 3)
        .unwrap();
    store.persist().unwrap();
    assert!(
        bytes() != persisted,
        "a persist after a change wrote nothing"
    );
    drop(store);
    let store = StateStore::open(&path).unwrap();
    assert_eq!(store.get(&tp, b"k").unwrap().as_deref(), Some(&b"w"[..]));
}
