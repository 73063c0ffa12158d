//! The KIP-848 consumer protocol at the wire level, over a listener in this
//! process and raw requests built with kafka-protocol: ApiVersions
//! advertises ConsumerGroupHeartbeat and ConsumerGroupDescribe; a join gets
//! an epoch and its partitions by topic id; a wrong epoch is
//! FENCED_MEMBER_EPOCH, a stranger UNKNOWN_MEMBER_ID, an unknown server
//! assignor UNSUPPORTED_ASSIGNOR; commits are checked against the member
//! epoch (STALE_MEMBER_EPOCH); classic and consumer-protocol members never
//! share a group (INCONSISTENT_GROUP_PROTOCOL); a silent member is dropped
//! after the session timeout.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use weir::kafka::groups::ConsumerTimeouts;
use weir_tests::Host;
use weir_tests::kafka_wire::{Listener, Wire};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn join_request(g: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(g)))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
        .with_topic_partitions(Some(vec![]))
}

fn beat(
    wire: &mut Wire,
    g: &str,
    member: &str,
    epoch: i32,
    owned: Option<Vec<TopicPartitions>>,
) -> ConsumerGroupHeartbeatResponse {
    wire.call(
        1,
        &ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(g)))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_topic_partitions(owned),
    )
}

fn commit(wire: &mut Wire, g: &str, member: &str, epoch: i32, offset: i64) -> i16 {
    weir_tests::kafka_wire::commit(wire, 9, g, member, epoch, offset)
}

/// The partitions of an assignment, with the topic id of `t`.
fn partitions(response: &ConsumerGroupHeartbeatResponse, t: uuid::Uuid) -> Vec<i32> {
    let assignment = response.assignment.as_ref().expect("an assignment");
    let mut out = Vec::new();
    for topic in &assignment.topic_partitions {
        assert_eq!(topic.topic_id, t, "assignments name topics by id");
        out.extend(&topic.partitions);
    }
    out.sort();
    out
}

#[test]
fn apiversions_advertises_the_consumer_protocol() {
    let host = Host::new();
    let listener = Listener::start(host.broker.clone());
    let versions = listener.connect().call(3, &ApiVersionsRequest::default());
    let range = |key: ApiKey| {
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::ConsumerGroupHeartbeat), Some((0, 1)));
    assert_eq!(range(ApiKey::ConsumerGroupDescribe), Some((0, 1)));
}

#[test]
fn a_consumer_protocol_member_joins_commits_at_its_epoch_and_wrong_epochs_are_refused() {
    let host = Host::new();
    host.topic("t", 2);
    host.append_values("t", 0, &["a", "b", "c"]);
    let topic_id = host.broker.log().topic_id("t").unwrap();
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();

    let joined = wire.call(1, &join_request("g", "m1"));
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.member_id.as_deref(), Some("m1"));
    assert!(joined.member_epoch >= 1);
    assert!(joined.heartbeat_interval_ms > 0);
    assert_eq!(partitions(&joined, topic_id), vec![0, 1]);
    let epoch = joined.member_epoch;
    let owned = Some(vec![
        TopicPartitions::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![0, 1]),
    ]);
    let steady = beat(&mut wire, "g", "m1", epoch, owned);
    assert_eq!((steady.error_code, steady.member_epoch), (0, epoch));
    assert!(steady.assignment.is_none(), "unchanged: no assignment sent");

    // Commits carry the member epoch.
    assert_eq!(commit(&mut wire, "g", "m1", epoch, 2), 0);
    assert_eq!(
        commit(&mut wire, "g", "m1", epoch + 1, 3),
        code(ResponseError::StaleMemberEpoch)
    );
    assert_eq!(
        commit(&mut wire, "g", "stranger", epoch, 3),
        code(ResponseError::UnknownMemberId)
    );
    let committed = host.broker.offsets().get("g", "t", 0).unwrap();
    assert_eq!(committed.offset, 2, "refused commits moved nothing");

    // weir's own coordinator runs the member, and describes it.
    let weir_view = host.broker.groups().describe("g").unwrap();
    assert_eq!(weir_view.members.len(), 1);
    let described = wire.call(
        1,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g"))]),
    );
    let group = &described.groups[0];
    assert_eq!(group.error_code, 0);
    assert_eq!(group.group_state.as_str(), "Stable");
    assert_eq!(group.assignor_name.as_str(), "uniform");
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].member_id.as_str(), "m1");
    assert_eq!(group.members[0].member_epoch, epoch);
    assert_eq!(
        group.members[0].assignment.topic_partitions[0].partitions,
        vec![0, 1]
    );

    // A stranger, and a wrong epoch (which fences the member).
    let stranger = beat(&mut wire, "g", "stranger", epoch, None);
    assert_eq!(stranger.error_code, code(ResponseError::UnknownMemberId));
    let fenced = beat(&mut wire, "g", "m1", epoch + 7, None);
    assert_eq!(fenced.error_code, code(ResponseError::FencedMemberEpoch));
    assert!(fenced.error_message.is_some_and(|m| m.contains("fenced")));
    let gone = beat(&mut wire, "g", "m1", epoch, None);
    assert_eq!(gone.error_code, code(ResponseError::UnknownMemberId));
    let back = wire.call(1, &join_request("g", "m1"));
    assert_eq!(back.error_code, 0);
    assert_eq!(partitions(&back, topic_id), vec![0, 1]);

    // A leave (-1) removes it from weir's coordinator.
    let left = beat(&mut wire, "g", "m1", -1, None);
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    assert!(
        host.broker
            .groups()
            .describe("g")
            .unwrap()
            .members
            .is_empty()
    );
}

#[test]
fn bad_heartbeats_and_mixed_protocols_are_refused_with_kafkas_codes() {
    let host = Host::new();
    host.topic("t", 2);
    let listener = Listener::start(host.broker.clone());
    let mut wire = listener.connect();

    let unknown_assignor = wire.call(
        1,
        &join_request("g", "m1").with_server_assignor(Some(s("fancy"))),
    );
    assert_eq!(
        unknown_assignor.error_code,
        code(ResponseError::UnsupportedAssignor)
    );
    assert!(
        unknown_assignor
            .error_message
            .is_some_and(|m| m.contains("uniform"))
    );
    let ranged = wire.call(
        1,
        &join_request("g", "m1").with_server_assignor(Some(s("range"))),
    );
    assert_eq!(ranged.error_code, 0);
    let no_id = wire.call(1, &join_request("g", ""));
    assert_eq!(no_id.error_code, code(ResponseError::InvalidRequest));
    let no_subscription = wire.call(
        1,
        &join_request("g", "m2").with_subscribed_topic_names(None),
    );
    assert_eq!(
        no_subscription.error_code,
        code(ResponseError::InvalidRequest)
    );

    // A classic member cannot join the consumer-protocol group.
    let classic = wire.call(
        5,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(5_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"x")),
            ]),
    );
    assert_eq!(
        classic.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );

    // Nor a consumer-protocol member a classic group with members.
    let first = wire.call(
        5,
        &JoinGroupRequest::default()
            .with_group_id(GroupId(s("old")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(5_000)
            .with_group_instance_id(Some(s("i")))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"x")),
            ]),
    );
    assert_eq!(first.error_code, 0, "{first:?}");
    let mixed = wire.call(1, &join_request("old", "m9"));
    assert_eq!(
        mixed.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let described = wire.call(
        1,
        &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("old"))]),
    );
    assert_eq!(
        described.groups[0].error_code,
        code(ResponseError::GroupIdNotFound),
        "a classic group is no consumer group"
    );
}

#[test]
fn a_silent_member_is_dropped_after_the_session_timeout_and_its_partitions_move() {
    let host = Host::new();
    host.topic("t", 2);
    let topic_id = host.broker.log().topic_id("t").unwrap();
    let timeouts = ConsumerTimeouts {
        heartbeat_interval: Duration::from_millis(200),
        session_timeout: Duration::from_millis(1500),
    };
    let listener = Listener::with_consumer_timeouts(host.broker.clone(), timeouts);
    let mut wire = listener.connect();
    let a = wire.call(1, &join_request("g", "a"));
    assert_eq!(a.heartbeat_interval_ms, 200);
    let b = wire.call(1, &join_request("g", "b"));
    assert_eq!(partitions(&b, topic_id), Vec::<i32>::new(), "a owns both");
    // a falls silent; b keeps beating and gets both once a is dropped.
    let mut epoch = b.member_epoch;
    let mut got = Vec::new();
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(100));
        let answer = beat(&mut wire, "g", "b", epoch, None);
        assert_eq!(answer.error_code, 0, "{answer:?}");
        epoch = answer.member_epoch;
        if answer.assignment.is_some() {
            got = partitions(&answer, topic_id);
            if got.len() == 2 {
                break;
            }
        }
    }
    assert_eq!(got, vec![0, 1], "b took over a's partitions");
    let late = beat(&mut wire, "g", "a", a.member_epoch, None);
    assert_eq!(late.error_code, code(ResponseError::UnknownMemberId));
}
