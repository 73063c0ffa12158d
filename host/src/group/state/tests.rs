use super::*;

fn tp(p: u32) -> TopicPartition {
    TopicPartition::new("t", p)
}

fn group(protocol: Protocol) -> (GroupState, BTreeMap<String, u32>, Vec<String>) {
    let assignor = match protocol {
        Protocol::Eager => AssignorKind::Range,
        Protocol::Cooperative => AssignorKind::CooperativeSticky,
    };
    let settings = GroupSettings {
        protocol,
        assignor,
        ..GroupSettings::default()
    };
    let parts = BTreeMap::from([("t".to_string(), 4)]);
    (GroupState::new("g", settings), parts, vec!["t".to_string()])
}

#[test]
fn cooperative_rebalance_keeps_unmoved_partitions_granted_throughout() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(None, &topics, &parts, now);
    let all = g.sync(&a, &[], now).unwrap().partitions;
    assert_eq!(all, vec![tp(0), tp(1), tp(2), tp(3)]);

    let b = g.join(None, &topics, &parts, now);
    // Phase one: a keeps what stays with it, b waits for what moves.
    let a1 = g.sync(&a, &all, now).unwrap().partitions;
    assert_eq!(a1.len(), 2, "a keeps two, revokes two");
    assert!(a1.iter().all(|p| all.contains(p)));
    let b1 = g.sync(&b, &[], now).unwrap().partitions;
    assert!(b1.is_empty(), "nothing is free until a revokes");
    // Phase two: a reports the revocation; b gets the rest.
    let a2 = g.sync(&a, &a1, now).unwrap().partitions;
    assert_eq!(a2, a1, "a's kept partitions never paused");
    let b2 = g.sync(&b, &[], now).unwrap().partitions;
    assert_eq!(b2.len(), 2);
    assert!(b2.iter().all(|p| !a1.contains(p)));
}

#[test]
fn a_partition_granted_but_not_yet_reported_is_never_granted_twice() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(None, &topics, &parts, now);
    let all = g.sync(&a, &[], now).unwrap().partitions;
    assert_eq!(all.len(), 4);
    // b joins before a syncs again: a still holds all four.
    let b = g.join(None, &topics, &parts, now);
    assert!(g.sync(&b, &[], now).unwrap().partitions.is_empty());
    let kept = g.sync(&a, &all, now).unwrap().partitions;
    assert!(
        g.sync(&b, &[], now).unwrap().partitions.is_empty(),
        "a has not confirmed yet"
    );
    assert_eq!(g.sync(&a, &kept, now).unwrap().partitions, kept);
    let moved = g.sync(&b, &[], now).unwrap().partitions;
    assert_eq!(kept.len() + moved.len(), 4);
    assert!(moved.iter().all(|p| !kept.contains(p)));
}

#[test]
fn eager_rebalance_grants_nothing_until_everyone_revoked_everything() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Eager);
    let a = g.join(None, &topics, &parts, now);
    let all = g.sync(&a, &[], now).unwrap().partitions;
    assert_eq!(all.len(), 4);
    let b = g.join(None, &topics, &parts, now);
    assert!(
        g.sync(&a, &all, now).unwrap().partitions.is_empty(),
        "a must revoke everything"
    );
    assert!(
        g.sync(&b, &[], now).unwrap().partitions.is_empty(),
        "b waits for a"
    );
    let a2 = g.sync(&a, &[], now).unwrap().partitions;
    let b2 = g.sync(&b, &[], now).unwrap().partitions;
    assert_eq!(a2.len() + b2.len(), 4);
    assert_eq!(a2.len(), 2);
}

#[test]
fn a_static_member_rejoining_in_time_keeps_its_assignment_without_a_rebalance() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(Some("p-0"), &topics, &parts, now);
    let b = g.join(Some("p-1"), &topics, &parts, now);
    let ga = g.sync(&a, &[], now).unwrap().partitions;
    g.sync(&b, &[], now).unwrap();
    let generation = g.generation;

    let a_again = g.join(Some("p-0"), &topics, &parts, now + Duration::from_secs(1));
    assert_ne!(a_again, a);
    assert_eq!(g.generation, generation, "no rebalance");
    let regained = g
        .sync(&a_again, &ga, now + Duration::from_secs(1))
        .unwrap()
        .partitions;
    assert_eq!(regained, ga);
    let zombie = g.check_commit(&a, generation, &ga[0]).unwrap_err();
    assert!(
        matches!(zombie, GroupError::Fenced { .. }),
        "the old incarnation is fenced"
    );
}

#[test]
fn a_restored_static_member_rejoins_with_its_partitions_and_the_generation_goes_on() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(Some("p-0"), &topics, &parts, now);
    let b = g.join(Some("p-1"), &topics, &parts, now);
    g.join(None, &topics, &parts, now);
    g.sync(&a, &[], now).unwrap();
    g.sync(&b, &[], now).unwrap();
    let record = g.record();
    assert_eq!(record.generation, 3);
    assert_eq!(record.members.len(), 2, "only static members are kept");
    assert_eq!(record.members[0].assignment, g.target[&a]);

    let later = now + Duration::from_secs(60);
    let mut r = GroupState::restore("g", &record, &parts, later);
    assert_eq!(r.generation, 3);
    assert_eq!(r.active_members(), 0, "nothing runs them yet");
    let a2 = r.join(Some("p-0"), &topics, &parts, later);
    assert_eq!(r.generation, 3, "no rebalance");
    assert!(!r.dirty);
    let expected: Vec<TopicPartition> = record.members[0].assignment.clone();
    assert!(!expected.is_empty());
    assert_eq!(r.sync(&a2, &[], later).unwrap().partitions, expected);
    // The instance that does not come back loses its partitions after
    // its session.
    let mid = later + Duration::from_secs(5);
    r.sync(&a2, &expected, mid).unwrap();
    let expired = later + r.settings.session_timeout + Duration::from_millis(1);
    r.sync(&a2, &expected, expired).unwrap();
    assert_eq!(r.members.len(), 1);
    assert_eq!(r.generation, 4);
    assert!(r.dirty);
}

#[test]
fn a_member_that_stops_polling_is_evicted_and_its_commits_are_fenced() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    g.settings.max_poll_interval = Duration::from_secs(5);
    let a = g.join(None, &topics, &parts, now);
    let b = g.join(None, &topics, &parts, now);
    let ga = g.sync(&a, &[], now).unwrap();
    g.sync(&b, &[], now).unwrap();
    // a is stuck in a batch but its heartbeats continue; b keeps polling.
    let mid = now + Duration::from_secs(3);
    g.heartbeat(&a, mid).unwrap();
    g.sync(&b, &[], mid).unwrap();
    let later = now + Duration::from_secs(6);
    g.heartbeat(&a, later).unwrap_err();
    let gb = g.sync(&b, &[], later).unwrap();
    assert_eq!(gb.partitions.len(), 4, "b takes over all partitions");
    let err = g.check_commit(&a, ga.epoch, &ga.partitions[0]).unwrap_err();
    assert!(matches!(err, GroupError::Fenced { .. }), "{err}");
    assert!(matches!(
        g.sync(&a, &ga.partitions, later),
        Err(GroupError::UnknownMember { .. })
    ));
}

#[test]
fn a_silent_member_is_evicted_after_the_session_timeout() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(None, &topics, &parts, now);
    let b = g.join(None, &topics, &parts, now);
    g.sync(&a, &[], now).unwrap();
    let later = now + g.settings.session_timeout + Duration::from_millis(1);
    g.members.get_mut(&b).unwrap().last_heartbeat = later;
    g.members.get_mut(&b).unwrap().last_poll = later;
    g.expire(later);
    assert!(!g.members.contains_key(&a));
    assert_eq!(g.target.get(&b).map(Vec::len), Some(4));
}

#[test]
fn commits_need_the_current_epoch_and_an_owned_partition() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(None, &topics, &parts, now);
    let grant = g.sync(&a, &[], now).unwrap();
    assert!(g.check_commit(&a, grant.epoch, &tp(0)).is_ok());
    assert!(g.check_commit(&a, grant.epoch - 1, &tp(0)).is_err());
    assert!(
        g.check_commit(&a, grant.epoch, &TopicPartition::new("other", 0))
            .is_err()
    );
    assert!(g.check_commit("ghost", grant.epoch, &tp(0)).is_err());
}

#[test]
fn a_changed_subscription_rebalances_and_an_unchanged_one_does_not() {
    let now = Instant::now();
    let (mut g, parts, topics) = group(Protocol::Cooperative);
    let a = g.join(None, &topics, &parts, now);
    assert_eq!(g.sync(&a, &[], now).unwrap().partitions.len(), 4);
    let generation = g.generation;
    g.subscribe(&a, &topics, &parts, now).unwrap();
    assert_eq!(g.generation, generation, "same topics: no rebalance");
    let more = BTreeMap::from([("u".to_string(), 2)]);
    let both = vec!["t".to_string(), "u".to_string()];
    g.subscribe(&a, &both, &more, now).unwrap();
    assert_eq!(g.generation, generation + 1);
    let all = g.sync(&a, &[], now).unwrap().partitions;
    assert_eq!(all.len(), 6, "t's four and u's two: {all:?}");
    assert!(g.subscribe("nobody", &both, &more, now).is_err());
}
