//! Kafka consumer groups at the protocol level, over a listener in this
//! process and raw requests built with kafka-protocol: the two-step join,
//! the barrier between two members, SyncGroup, heartbeats during a
//! rebalance, commits checked against generation and member
//! (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID), OffsetFetch, LeaveGroup, the
//! listings, and the names weir refuses.

use std::thread;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;

use weir::group::GroupSettings;
use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire, join, join_request, s};

fn group(v: &str) -> GroupId {
    GroupId(s(v))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn sync(
    wire: &mut Wire,
    g: &str,
    member: &str,
    generation: i32,
    assign: &[(&str, &str)],
) -> SyncGroupResponse {
    let assignments = assign
        .iter()
        .map(|(m, a)| {
            SyncGroupRequestAssignment::default()
                .with_member_id(s(m))
                .with_assignment(Bytes::from(a.to_string()))
        })
        .collect();
    wire.call(
        3,
        &SyncGroupRequest::default()
            .with_group_id(group(g))
            .with_generation_id(generation)
            .with_member_id(s(member))
            .with_assignments(assignments),
    )
}

fn commit(wire: &mut Wire, g: &str, member: &str, generation: i32, offset: i64) -> i16 {
    weir_tests::kafka_wire::commit(wire, 8, g, member, generation, offset)
}

fn heartbeat(wire: &mut Wire, g: &str, member: &str, generation: i32) -> i16 {
    wire.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(group(g))
            .with_generation_id(generation)
            .with_member_id(s(member)),
    )
    .error_code
}

#[test]
fn two_members_join_sync_commit_and_stale_commits_are_refused() {
    let host = Host::new();
    host.topic("t", 2);
    host.append_values("t", 0, &["a", "b", "c", "d"]);
    let listener = Listener::start(host.broker.clone());
    let mut a = listener.connect();

    let coordinator = a.call(3, &FindCoordinatorRequest::default().with_key(s("g")));
    assert_eq!(coordinator.error_code, 0);
    assert_eq!(coordinator.port, i32::from(listener.addr.port()));

    // a joins alone and leads generation 1.
    let ja = join(&mut a, "g");
    assert_eq!(
        (ja.generation_id, ja.leader.as_str()),
        (1, ja.member_id.as_str())
    );
    let member_a = ja.member_id.to_string();
    let synced = sync(&mut a, "g", &member_a, 1, &[(&member_a, "a: 0,1")]);
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"a: 0,1"[..])
    );
    assert_eq!(commit(&mut a, "g", &member_a, 1, 2), 0);

    // b joins on another connection: its JoinGroup waits at the barrier
    // until a (told by its heartbeat) joins again.
    let addr = listener.addr;
    let b = thread::spawn(move || {
        let mut b = Wire::connect(addr);
        let joined = join(&mut b, "g");
        let synced = sync(&mut b, "g", &joined.member_id, joined.generation_id, &[]);
        (joined, synced)
    });
    let mut rebalancing = false;
    for _ in 0..100 {
        if heartbeat(&mut a, "g", &member_a, 1) == code(ResponseError::RebalanceInProgress) {
            rebalancing = true;
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(rebalancing, "a's heartbeat says REBALANCE_IN_PROGRESS");
    // The current generation may still commit before it joins again.
    assert_eq!(commit(&mut a, "g", &member_a, 1, 3), 0);
    let ja2 = a.call(5, &join_request("g", &member_a, None));
    assert_eq!((ja2.error_code, ja2.generation_id), (0, 2));
    assert_eq!(ja2.members.len(), 2, "the leader sees both members");
    let member_b = ja2
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .find(|m| *m != member_a)
        .unwrap();
    let mine = sync(
        &mut a,
        "g",
        &member_a,
        2,
        &[(&member_a, "a: 0"), (&member_b, "b: 1")],
    );
    assert_eq!(&mine.assignment[..], b"a: 0");
    let (jb, sb) = b.join().unwrap();
    assert_eq!(
        (jb.generation_id, jb.leader.as_str()),
        (2, member_a.as_str())
    );
    assert!(jb.members.is_empty(), "followers get no member list");
    assert_eq!((sb.error_code, &sb.assignment[..]), (0, &b"b: 1"[..]));

    // Fencing: a stale generation and a stranger are refused; nothing moves.
    assert_eq!(
        commit(&mut a, "g", &member_a, 1, 4),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        commit(&mut a, "g", "stranger", 2, 4),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        commit(&mut a, "g", "", -1, 4),
        code(ResponseError::UnknownMemberId),
        "a simple commit to a live group"
    );
    assert_eq!(
        heartbeat(&mut a, "g", &member_a, 1),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        heartbeat(&mut a, "g", "stranger", 2),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(host.committed("g", "t", 0), 3);
    assert_eq!(commit(&mut a, "g", &member_a, 2, 4), 0);
    assert_eq!(
        host.committed("g", "t", 0),
        4,
        "committed in weir's own offsets"
    );

    // OffsetFetch, old style (one group) and batched (v8+).
    let fetched = a.call(
        5,
        &OffsetFetchRequest::default()
            .with_group_id(group("g"))
            .with_topics(None),
    );
    assert_eq!(fetched.topics.len(), 1);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 4);
    let batched = a.call(
        8,
        &OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(group("g"))
                .with_topics(None),
            OffsetFetchRequestGroup::default()
                .with_group_id(group("nobody"))
                .with_topics(None),
        ]),
    );
    assert_eq!(
        batched.groups[0].topics[0].partitions[0].committed_offset,
        4
    );
    assert!(batched.groups[1].topics.is_empty());

    // The listings.
    let listed = a.call(4, &ListGroupsRequest::default());
    let g = listed
        .groups
        .iter()
        .find(|l| l.group_id.as_str() == "g")
        .unwrap();
    assert_eq!(
        (g.protocol_type.as_str(), g.group_state.as_str()),
        ("consumer", "Stable")
    );
    let described = a.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![group("g"), group("nobody")]),
    );
    assert_eq!(described.groups[0].members.len(), 2);
    assert_eq!(described.groups[0].protocol_data.as_str(), "range");
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");

    // b leaves (v3+ batch): a is told to join again, alone in generation 3.
    let left = a.call(
        3,
        &LeaveGroupRequest::default()
            .with_group_id(group("g"))
            .with_members(vec![
                MemberIdentity::default().with_member_id(s(&member_b)),
                MemberIdentity::default().with_member_id(s("stranger")),
            ]),
    );
    assert_eq!(left.members[0].error_code, 0);
    assert_eq!(
        left.members[1].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        heartbeat(&mut a, "g", &member_a, 2),
        code(ResponseError::RebalanceInProgress)
    );
    let ja3 = a.call(5, &join_request("g", &member_a, None));
    assert_eq!((ja3.generation_id, ja3.members.len()), (3, 1));
}

#[test]
fn a_restarted_static_member_replaces_its_old_id_which_is_fenced() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    // Static members need no MEMBER_ID_REQUIRED step.
    let first = wire.call(5, &join_request("s", "", Some("i-1")));
    assert_eq!((first.error_code, first.generation_id), (0, 1));
    let old = first.member_id.to_string();
    assert_eq!(sync(&mut wire, "s", &old, 1, &[(&old, "p0")]).error_code, 0);

    let again = wire.call(5, &join_request("s", "", Some("i-1")));
    assert_eq!(again.error_code, 0);
    assert_eq!(again.generation_id, 1, "no rebalance");
    assert_ne!(again.member_id.as_str(), old);
    let new = again.member_id.to_string();
    let synced = sync(&mut wire, "s", &new, 1, &[]);
    assert_eq!(
        &synced.assignment[..],
        b"p0",
        "the old assignment comes back"
    );

    let stale = wire.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(group("s"))
            .with_generation_id(1)
            .with_member_id(s(&old))
            .with_group_instance_id(Some(s("i-1"))),
    );
    assert_eq!(stale.error_code, code(ResponseError::FencedInstanceId));
}

#[test]
fn bad_group_names_and_groups_weir_runs_are_refused() {
    let host = Host::new();
    host.topic("t", 1);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();
    let bad = wire.call(5, &join_request("a/b", "", None));
    assert_eq!(bad.error_code, code(ResponseError::InvalidGroupId));
    let fetched = wire.call(
        5,
        &OffsetFetchRequest::default()
            .with_group_id(group(".."))
            .with_topics(None),
    );
    assert_eq!(fetched.error_code, code(ResponseError::InvalidGroupId));

    // A weir processor's group is not a Kafka client's to join or commit to.
    host.groups
        .join("proc", None, &["t".to_string()], GroupSettings::default())
        .unwrap();
    let refused = wire.call(5, &join_request("proc", "", None));
    assert_eq!(
        refused.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    assert_eq!(
        commit(&mut wire, "proc", "", -1, 1),
        code(ResponseError::InconsistentGroupProtocol)
    );
    let listed = wire.call(5, &ListGroupsRequest::default());
    let proc = listed
        .groups
        .iter()
        .find(|l| l.group_id.as_str() == "proc")
        .unwrap();
    assert_eq!(
        (proc.group_state.as_str(), proc.group_type.as_str()),
        ("Stable", "consumer")
    );

    // A simple consumer (generation -1) commits to a group nobody runs.
    assert_eq!(commit(&mut wire, "simple", "", -1, 1), 0);
    assert_eq!(host.committed("simple", "t", 0), 1);
}
