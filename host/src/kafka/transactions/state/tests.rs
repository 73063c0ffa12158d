use super::*;
use std::cell::Cell;

const MINUTE: Duration = Duration::from_secs(60);

fn ids() -> impl Fn() -> i64 {
    let next = Cell::new(100);
    move || {
        next.set(next.get() + 1);
        next.get()
    }
}

fn record(value: &str) -> Record {
    Record::value(value.as_bytes().to_vec())
}

fn tp(topic: &str, partition: u32) -> (String, u32) {
    (topic.to_string(), partition)
}

#[test]
fn a_new_epoch_fences_the_old_producer_and_aborts_its_transaction() {
    let alloc = ids();
    let mut txns = Txns::new(1 << 20);
    let now = Instant::now();
    let old = txns.init("t", MINUTE, None, &alloc).unwrap();
    assert_eq!(old, (101, 0));
    txns.add_partitions("t", old, &[tp("out", 0)], now).unwrap();
    txns.hold_records(old, "out", 0, vec![record("a")], 10)
        .unwrap();
    let new = txns.init("t", MINUTE, None, &alloc).unwrap();
    assert_eq!(new, (101, 1));
    assert_eq!(txns.phase("t"), Some(Phase::Empty));
    let refused = txns.prepare_commit("t", old).unwrap_err();
    assert!(matches!(refused, TxnError::Fenced { .. }), "{refused:?}");
    let refused = txns.check_produce(old, "out", 0).unwrap_err();
    assert!(matches!(refused, TxnError::Fenced { .. }), "{refused:?}");
    // The new producer's commit holds none of the old one's records.
    txns.add_partitions("t", new, &[tp("out", 0)], now).unwrap();
    txns.hold_records(new, "out", 0, vec![record("b")], 10)
        .unwrap();
    let held = txns.prepare_commit("t", new).unwrap().unwrap();
    assert_eq!(held.records[&tp("out", 0)], vec![record("b")]);
}

#[test]
fn a_restored_id_fences_its_last_producer_and_the_next_init_bumps_again() {
    let mut txns = Txns::new(1 << 20);
    txns.restore("tx", (41, 3), &ids());
    let fenced = txns.add_partitions("tx", (41, 3), &[tp("t", 0)], Instant::now());
    assert!(
        matches!(
            fenced,
            Err(TxnError::Fenced {
                current: (41, 4),
                ..
            })
        ),
        "{fenced:?}"
    );
    assert_eq!(txns.init("tx", MINUTE, None, &ids()).unwrap(), (41, 5));
    let mut full = Txns::new(1 << 20);
    full.restore("tx", (41, i16::MAX), &ids());
    let (id, epoch) = full.init("tx", MINUTE, None, &ids()).unwrap();
    assert!(id != 41 && epoch == 1, "epochs ran out: a new producer id");
}

#[test]
fn kip_360_naming_the_current_epoch_bumps_it_and_an_older_one_is_fenced() {
    let alloc = ids();
    let mut txns = Txns::new(1 << 20);
    let first = txns.init("t", MINUTE, None, &alloc).unwrap();
    let second = txns.init("t", MINUTE, Some(first), &alloc).unwrap();
    assert_eq!(second, (first.0, first.1 + 1));
    let refused = txns.init("t", MINUTE, Some(first), &alloc).unwrap_err();
    assert!(matches!(refused, TxnError::Fenced { .. }), "{refused:?}");
}

#[test]
fn records_need_their_partition_added_and_offsets_their_group() {
    let alloc = ids();
    let mut txns = Txns::new(1 << 20);
    let now = Instant::now();
    let p = txns.init("t", MINUTE, None, &alloc).unwrap();
    assert!(matches!(
        txns.check_produce(p, "out", 0),
        Err(TxnError::PartitionNotAdded { .. })
    ));
    txns.add_partitions("t", p, &[tp("out", 0)], now).unwrap();
    assert!(matches!(
        txns.check_produce(p, "out", 1),
        Err(TxnError::PartitionNotAdded { .. })
    ));
    let offsets = [(
        "in".to_string(),
        0,
        Committed {
            offset: 5,
            generation: 1,
        },
    )];
    assert!(matches!(
        txns.hold_offsets("t", p, "g", &offsets),
        Err(TxnError::GroupNotAdded(_))
    ));
    txns.add_offsets("t", p, "g", now).unwrap();
    txns.hold_offsets("t", p, "g", &offsets).unwrap();
    assert!(matches!(
        txns.check_produce((999, 0), "out", 0),
        Err(TxnError::UnknownProducer(999))
    ));
    let held = txns.prepare_commit("t", p).unwrap().unwrap();
    assert_eq!(
        held.offsets[&("g".to_string(), "in".to_string(), 0)].offset,
        5
    );
}

#[test]
fn a_commit_in_flight_turns_other_requests_away_until_it_finishes() {
    let alloc = ids();
    let mut txns = Txns::new(1 << 20);
    let now = Instant::now();
    let p = txns.init("t", MINUTE, None, &alloc).unwrap();
    txns.add_partitions("t", p, &[tp("out", 0)], now).unwrap();
    txns.hold_records(p, "out", 0, vec![record("a")], 10)
        .unwrap();
    assert!(txns.prepare_commit("t", p).unwrap().is_some());
    assert_eq!(txns.phase("t"), Some(Phase::Committing));
    assert!(matches!(
        txns.add_partitions("t", p, &[tp("out", 0)], now),
        Err(TxnError::Concurrent(_))
    ));
    assert!(matches!(
        txns.init("t", MINUTE, None, &alloc),
        Err(TxnError::Concurrent(_))
    ));
    txns.finish("t");
    assert_eq!(txns.phase("t"), Some(Phase::Empty));
    // Nothing open: a commit writes nothing.
    assert_eq!(txns.prepare_commit("t", p).unwrap(), None);
}

#[test]
fn a_transaction_over_the_byte_limit_can_only_abort() {
    let alloc = ids();
    let mut txns = Txns::new(100);
    let now = Instant::now();
    let p = txns.init("t", MINUTE, None, &alloc).unwrap();
    txns.add_partitions("t", p, &[tp("out", 0)], now).unwrap();
    txns.hold_records(p, "out", 0, vec![record("a")], 60)
        .unwrap();
    let refused = txns
        .hold_records(p, "out", 0, vec![record("b")], 60)
        .unwrap_err();
    assert!(matches!(
        refused,
        TxnError::TooLarge {
            bytes: 120,
            max: 100,
            ..
        }
    ));
    assert!(matches!(
        txns.prepare_commit("t", p),
        Err(TxnError::Doomed(_))
    ));
    txns.abort("t", p).unwrap();
    // The next transaction starts clean.
    txns.add_partitions("t", p, &[tp("out", 0)], now).unwrap();
    txns.hold_records(p, "out", 0, vec![record("c")], 60)
        .unwrap();
    let held = txns.prepare_commit("t", p).unwrap().unwrap();
    assert_eq!(held.records[&tp("out", 0)], vec![record("c")]);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let alloc = ids();
    let mut txns = Txns::new(1 << 20);
    let start = Instant::now();
    let p = txns
        .init("t", Duration::from_secs(10), None, &alloc)
        .unwrap();
    txns.add_partitions("t", p, &[tp("out", 0)], start).unwrap();
    txns.hold_records(p, "out", 0, vec![record("a")], 10)
        .unwrap();
    assert!(
        txns.expire(start + Duration::from_secs(5), &alloc)
            .is_empty()
    );
    assert_eq!(
        txns.expire(start + Duration::from_secs(11), &alloc),
        vec!["t".to_string()]
    );
    assert!(matches!(
        txns.prepare_commit("t", p),
        Err(TxnError::Fenced { .. })
    ));
    // An id without an open transaction never expires.
    assert!(
        txns.expire(start + Duration::from_secs(100), &alloc)
            .is_empty()
    );
}

#[test]
fn timeouts_outside_the_limit_are_refused() {
    let alloc = ids();
    let mut txns = Txns::new(1 << 20);
    for timeout in [Duration::ZERO, MAX_TIMEOUT + Duration::from_secs(1)] {
        assert!(matches!(
            txns.init("t", timeout, None, &alloc),
            Err(TxnError::InvalidTimeout { .. })
        ));
    }
}
