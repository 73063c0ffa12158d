use super::*;

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

fn join(member: &str, instance: Option<&str>, protocols: &[&str]) -> Join {
    Join {
        member_id: member.to_string(),
        instance_id: instance.map(str::to_string),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member: true,
    }
}

/// Ids like Kafka's, from a counter.
fn ids() -> impl FnMut(&str) -> String {
    let mut n = 0;
    move |client: &str| {
        n += 1;
        format!("{client}-{n}")
    }
}

/// A dynamic member's two-step join (MEMBER_ID_REQUIRED, then with its id).
fn join_dynamic(
    g: &mut ClassicGroup,
    next: &mut impl FnMut(&str) -> String,
    protocols: &[&str],
    now: Instant,
) -> (String, Joined) {
    let id = match g.join(join("", None, protocols), &mut *next, now) {
        Err(GroupsError::MemberIdRequired(id)) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    let joined = g.join(join(&id, None, protocols), &mut *next, now).unwrap();
    (id, joined)
}

fn done(joined: Joined) -> JoinResult {
    match joined {
        Joined::Done(result) => result,
        Joined::Waiting(id) => panic!("{id} still waits"),
    }
}

fn assignments(pairs: &[(&str, &str)]) -> BTreeMap<String, Bytes> {
    pairs
        .iter()
        .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
        .collect()
}

#[test]
fn a_first_join_without_an_id_gets_member_id_required_and_the_second_completes_alone() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, joined) = join_dynamic(&mut g, &mut next, &["range"], now);
    assert_eq!(joined, Joined::Waiting(a.clone()));
    let result = g
        .poll_join(&a, None, now)
        .unwrap()
        .expect("a lone member completes at once");
    assert_eq!(result.generation, 1);
    assert_eq!(result.leader, a);
    assert_eq!(result.protocol_name, "range");
    assert_eq!(result.members.len(), 1, "the leader sees every member");
    assert_eq!(g.phase(), Phase::CompletingRebalance);
    let own = g
        .sync(
            &a,
            None,
            1,
            (Some("consumer"), Some("range")),
            assignments(&[(&a, "A")]),
            now,
        )
        .unwrap();
    assert_eq!(own, Some(Bytes::from("A")));
    assert_eq!(g.phase(), Phase::Stable);
}

#[test]
fn a_second_member_opens_the_barrier_and_both_get_the_next_generation() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.poll_join(&a, None, now).unwrap().unwrap();
    g.sync(&a, None, 1, (None, None), assignments(&[(&a, "all")]), now)
        .unwrap();

    let (b, joined) = join_dynamic(&mut g, &mut next, &["range"], now);
    assert_eq!(joined, Joined::Waiting(b.clone()));
    assert_eq!(
        g.poll_join(&b, None, now).unwrap(),
        None,
        "a has not rejoined"
    );
    assert!(matches!(
        g.heartbeat(&a, None, 1, now),
        Err(GroupsError::RebalanceInProgress)
    ));
    assert_eq!(
        g.join(join(&a, None, &["range"]), &mut next, now).unwrap(),
        Joined::Waiting(a.clone())
    );
    let ra = g.poll_join(&a, None, now).unwrap().unwrap();
    let rb = g.poll_join(&b, None, now).unwrap().unwrap();
    assert_eq!((ra.generation, rb.generation), (2, 2));
    assert_eq!(ra.leader, a, "the leader stays the leader");
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "followers get no member list");

    // The follower waits for the leader's assignment.
    assert_eq!(
        g.sync(&b, None, 2, (None, None), BTreeMap::new(), now)
            .unwrap(),
        None
    );
    assert_eq!(g.poll_sync(&b, None, 2, now).unwrap(), None);
    let mine = g
        .sync(
            &a,
            None,
            2,
            (None, None),
            assignments(&[(&a, "p0"), (&b, "p1")]),
            now,
        )
        .unwrap();
    assert_eq!(mine, Some(Bytes::from("p0")));
    assert_eq!(
        g.poll_sync(&b, None, 2, now).unwrap(),
        Some(Bytes::from("p1"))
    );
    g.heartbeat(&a, None, 2, now).unwrap();
    assert!(matches!(
        g.heartbeat(&a, None, 1, now),
        Err(GroupsError::IllegalGeneration {
            given: 1,
            current: 2
        })
    ));
}

#[test]
fn a_member_that_does_not_rejoin_by_the_deadline_is_dropped() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.poll_join(&a, None, now).unwrap().unwrap();
    g.sync(&a, None, 1, (None, None), BTreeMap::new(), now)
        .unwrap();
    let (b, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    // a keeps heartbeating (REBALANCE_IN_PROGRESS) but never rejoins.
    for seconds in [9, 18, 27] {
        let at = now + Duration::from_secs(seconds);
        assert!(g.heartbeat(&a, None, 1, at).is_err(), "told to rejoin");
    }
    let later = now + REBALANCE - Duration::from_secs(1);
    assert_eq!(g.poll_join(&b, None, later).unwrap(), None);
    let result = g.poll_join(&b, None, now + REBALANCE).unwrap().unwrap();
    assert_eq!(result.generation, 2);
    assert_eq!(result.leader, b, "a new leader among those who joined");
    assert_eq!(result.members.len(), 1);
    assert!(matches!(
        g.heartbeat(&a, None, 2, now + REBALANCE),
        Err(GroupsError::UnknownMember(_))
    ));
}

#[test]
fn a_silent_member_is_evicted_after_its_session_timeout() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.poll_join(&a, None, now).unwrap().unwrap();
    g.sync(&a, None, 1, (None, None), BTreeMap::new(), now)
        .unwrap();
    g.tick(now + SESSION);
    assert_eq!(
        g.phase(),
        Phase::Stable,
        "exactly the session timeout is still alive"
    );
    g.tick(now + SESSION + Duration::from_millis(1));
    assert!(g.is_empty());
    assert_eq!(g.phase(), Phase::Empty);
    assert_eq!(g.generation(), 2, "emptying the group is a generation too");
}

#[test]
fn leave_group_rebalances_the_rest() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    let (b, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.join(join(&a, None, &["range"]), &mut next, now).unwrap();
    g.poll_join(&a, None, now).unwrap().unwrap();
    g.poll_join(&b, None, now).unwrap().unwrap();
    assert_eq!(g.leave(&b, None, now).unwrap(), b);
    assert_eq!(g.phase(), Phase::PreparingRebalance);
    assert!(matches!(
        g.leave(&b, None, now),
        Err(GroupsError::UnknownMember(_))
    ));
    g.join(join(&a, None, &["range"]), &mut next, now).unwrap();
    let result = g.poll_join(&a, None, now).unwrap().unwrap();
    assert_eq!((result.generation, result.members.len()), (3, 1));
}

#[test]
fn the_protocol_is_chosen_by_vote_among_those_everyone_supports() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["roundrobin", "range", "sticky"], now);
    let (b, _) = join_dynamic(&mut g, &mut next, &["range", "roundrobin"], now);
    let (c, _) = join_dynamic(
        &mut g,
        &mut next,
        &["range", "cooperative-sticky", "roundrobin"],
        now,
    );
    g.join(
        join(&a, None, &["roundrobin", "range", "sticky"]),
        &mut next,
        now,
    )
    .unwrap();
    let result = g.poll_join(&a, None, now).unwrap().unwrap();
    assert_eq!(result.protocol_name, "range");
    let metadata: Vec<&Bytes> = result.members.iter().map(|m| &m.metadata).collect();
    assert!(metadata.iter().all(|m| m[..] == b"meta-range"[..]));
    assert!(g.poll_join(&b, None, now).unwrap().is_some());
    assert!(g.poll_join(&c, None, now).unwrap().is_some());

    // A member with nothing in common, or another protocol type, is refused.
    let refused = g.join(join("", None, &["other"]), &mut next, now);
    assert!(matches!(refused, Err(GroupsError::InconsistentProtocol(_))));
    let mut connect = join("", None, &["range"]);
    connect.protocol_type = "connect".into();
    assert!(matches!(
        g.join(connect, &mut next, now),
        Err(GroupsError::InconsistentProtocol(_))
    ));
    assert!(matches!(
        g.join(join("", None, &[]), &mut next, now),
        Err(GroupsError::InconsistentProtocol(_))
    ));
}

#[test]
fn a_restarted_static_member_takes_its_old_place_without_a_rebalance() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    // Static members join with no MEMBER_ID_REQUIRED step.
    let a = match g
        .join(join("", Some("a"), &["range"]), &mut next, now)
        .unwrap()
    {
        Joined::Waiting(id) => id,
        done => panic!("{done:?}"),
    };
    let (b, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.join(join(&a, Some("a"), &["range"]), &mut next, now)
        .unwrap();
    g.poll_join(&a, Some("a"), now).unwrap().unwrap();
    g.poll_join(&b, None, now).unwrap().unwrap();
    g.sync(
        &a,
        Some("a"),
        2,
        (None, None),
        assignments(&[(&a, "pa"), (&b, "pb")]),
        now,
    )
    .unwrap();
    assert_eq!(g.generation(), 2);

    // The instance restarts: a new member id, the same generation and assignment.
    let later = now + Duration::from_secs(3);
    let result = done(
        g.join(join("", Some("a"), &["range"]), &mut next, later)
            .unwrap(),
    );
    let a2 = result.member_id.clone();
    assert_ne!(a2, a);
    assert_eq!(result.generation, 2, "no rebalance");
    assert_eq!(result.leader, a2, "the leader's place is taken too");
    assert!(
        result.skip_assignment,
        "a static leader must not assign again"
    );
    assert_eq!(g.phase(), Phase::Stable);
    let own = g
        .sync(&a2, Some("a"), 2, (None, None), BTreeMap::new(), later)
        .unwrap();
    assert_eq!(own, Some(Bytes::from("pa")));
    g.heartbeat(&b, None, 2, later).unwrap();

    // The old incarnation is fenced everywhere.
    let fenced = |e: Result<(), GroupsError>| matches!(e, Err(GroupsError::FencedInstance { .. }));
    assert!(fenced(g.heartbeat(&a, Some("a"), 2, later)));
    assert!(fenced(g.check_commit(&a, Some("a"), 2, later)));
    assert!(fenced(g.leave(&a, Some("a"), later).map(|_| ())));
    g.check_commit(&a2, Some("a"), 2, later).unwrap();
}

#[test]
fn a_static_member_that_misses_a_rebalance_is_kept_until_its_session_times_out() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    // A rebalance timeout shorter than the session: a restart fits in it.
    let short = |member: &str, instance: Option<&str>| Join {
        rebalance_timeout: Duration::from_secs(4),
        ..join(member, instance, &["range"])
    };
    let Joined::Waiting(a) = g.join(short("", Some("a")), &mut next, now).unwrap() else {
        panic!("a waits")
    };
    g.poll_join(&a, Some("a"), now).unwrap().unwrap();
    g.sync(&a, Some("a"), 1, (None, None), BTreeMap::new(), now)
        .unwrap();
    let b = match g.join(short("", None), &mut next, now) {
        Err(GroupsError::MemberIdRequired(id)) => id,
        other => panic!("{other:?}"),
    };
    g.join(short(&b, None), &mut next, now).unwrap();
    let deadline = now + Duration::from_secs(4);
    let result = g.poll_join(&b, None, deadline).unwrap().unwrap();
    assert_eq!(
        result.members.len(),
        2,
        "the static member is still a member"
    );
    // b stays alive; a never comes back.
    g.sync(&b, None, 2, (None, None), BTreeMap::new(), deadline)
        .unwrap();
    g.heartbeat(&b, None, 2, now + SESSION).unwrap();
    assert_eq!(g.phase(), Phase::Stable);
    g.tick(now + SESSION + Duration::from_millis(1));
    assert_eq!(g.phase(), Phase::PreparingRebalance, "a's session ended");
    assert_eq!(g.members().len(), 1);
}

#[test]
fn leave_group_by_instance_id_removes_the_static_member() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let Joined::Waiting(a) = g
        .join(join("", Some("a"), &["range"]), &mut next, now)
        .unwrap()
    else {
        panic!("a waits")
    };
    assert!(matches!(
        g.leave("", Some("nobody"), now),
        Err(GroupsError::UnknownMember(_))
    ));
    assert_eq!(g.leave("", Some("a"), now).unwrap(), a);
    assert!(g.is_empty());
    assert!(matches!(
        g.poll_join(&a, Some("a"), now),
        Err(GroupsError::UnknownMember(_))
    ));
}

#[test]
fn commits_are_checked_against_member_and_generation() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    // Simple consumers commit with generation -1 while nobody is a member.
    g.check_commit("", None, -1, now).unwrap();
    g.check_commit("assigns-only", None, -1, now).unwrap();
    let (a, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.poll_join(&a, None, now).unwrap().unwrap();
    assert!(matches!(
        g.check_commit(&a, None, 1, now),
        Err(GroupsError::RebalanceInProgress)
    ));
    g.sync(&a, None, 1, (None, None), BTreeMap::new(), now)
        .unwrap();
    g.check_commit(&a, None, 1, now).unwrap();
    assert!(matches!(
        g.check_commit(&a, None, 0, now),
        Err(GroupsError::IllegalGeneration {
            given: 0,
            current: 1
        })
    ));
    assert!(matches!(
        g.check_commit("stranger", None, 1, now),
        Err(GroupsError::UnknownMember(_))
    ));
    assert!(matches!(
        g.check_commit("", None, -1, now),
        Err(GroupsError::UnknownMember(_))
    ));
    // While the barrier is open, the current generation may still commit
    // what it consumed before it rejoins.
    let _ = join_dynamic(&mut g, &mut next, &["range"], now);
    assert_eq!(g.phase(), Phase::PreparingRebalance);
    g.check_commit(&a, None, 1, now).unwrap();
}

#[test]
fn cooperative_members_rejoin_with_new_metadata_for_a_second_rebalance() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["cooperative-sticky"], now);
    let (b, _) = join_dynamic(&mut g, &mut next, &["cooperative-sticky"], now);
    g.join(join(&a, None, &["cooperative-sticky"]), &mut next, now)
        .unwrap();
    g.poll_join(&a, None, now).unwrap().unwrap();
    g.poll_join(&b, None, now).unwrap().unwrap();
    g.sync(&a, None, 2, (None, None), BTreeMap::new(), now)
        .unwrap();
    g.sync(&b, None, 2, (None, None), BTreeMap::new(), now)
        .unwrap();
    assert_eq!(g.phase(), Phase::Stable);
    // A follower rejoining with the same metadata gets the same generation.
    let same = done(
        g.join(join(&b, None, &["cooperative-sticky"]), &mut next, now)
            .unwrap(),
    );
    assert_eq!(same.generation, 2);
    // After revoking, b rejoins with new owned partitions in its metadata.
    let mut revoked = join(&b, None, &[]);
    revoked.protocols = vec![("cooperative-sticky".into(), Bytes::from("owned: none"))];
    assert_eq!(
        g.join(revoked, &mut next, now).unwrap(),
        Joined::Waiting(b.clone())
    );
    g.join(join(&a, None, &["cooperative-sticky"]), &mut next, now)
        .unwrap();
    let result = g.poll_join(&a, None, now).unwrap().unwrap();
    assert_eq!(result.generation, 3);
    let bm = result.members.iter().find(|m| m.member_id == b).unwrap();
    assert_eq!(bm.metadata, Bytes::from("owned: none"));
}

#[test]
fn session_timeouts_out_of_range_are_refused() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut short = join("", None, &["range"]);
    short.session_timeout = Duration::from_millis(10);
    assert!(matches!(
        g.join(short, ids(), now),
        Err(GroupsError::InvalidSessionTimeout(10))
    ));
}

#[test]
fn an_unused_member_id_expires_and_stops_holding_the_barrier() {
    let now = Instant::now();
    let mut g = ClassicGroup::new("g");
    let mut next = ids();
    let (a, _) = join_dynamic(&mut g, &mut next, &["range"], now);
    g.poll_join(&a, None, now).unwrap().unwrap();
    g.sync(&a, None, 1, (None, None), BTreeMap::new(), now)
        .unwrap();
    // b is handed an id but never joins with it; a rejoins.
    assert!(g.join(join("", None, &["range"]), &mut next, now).is_err());
    let mut leader = join(&a, None, &["range"]);
    leader.protocols[0].1 = Bytes::from("changed");
    g.join(leader, &mut next, now).unwrap();
    assert_eq!(
        g.poll_join(&a, None, now).unwrap(),
        None,
        "the pending id holds the barrier"
    );
    let later = now + SESSION + Duration::from_millis(1);
    g.heartbeat(&a, None, 1, now + SESSION).unwrap_err();
    let result = g.poll_join(&a, None, later).unwrap().unwrap();
    assert_eq!(result.generation, 2);
}
