use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use super::*;
use crate::broker::Broker;

fn setup() -> (tempfile::TempDir, Arc<Broker>, KafkaGroups) {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).unwrap();
    broker.create_topic("t", 4).unwrap();
    let groups = KafkaGroups::new(broker.clone());
    (dir, broker, groups)
}

fn ask(member: &str, epoch: i32) -> Ask {
    Ask {
        group: "g".into(),
        member_id: member.into(),
        epoch,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
        names: (epoch == 0).then(|| vec!["t".to_string()]),
        regex: None,
        assignor: None,
        owned: None,
    }
}

fn client() -> Client<'static> {
    Client {
        id: "test",
        host: "/127.0.0.1",
    }
}

fn beat(groups: &KafkaGroups, ask: Ask) -> Result<Beat, GroupsError> {
    groups.beat(ask, 1, client())
}

fn owning(member: &str, epoch: i32, owned: &[TopicPartition]) -> Ask {
    Ask {
        owned: Some(owned.to_vec()),
        ..ask(member, epoch)
    }
}

#[test]
fn a_joining_member_gets_every_partition_and_an_epoch() {
    let (_dir, _broker, groups) = setup();
    let joined = beat(&groups, ask("a", 0)).unwrap();
    assert!(joined.epoch >= 1);
    let all = joined.assignment.unwrap();
    assert_eq!(all.len(), 4);
    let again = beat(&groups, owning("a", joined.epoch, &all)).unwrap();
    assert_eq!(again.epoch, joined.epoch);
    assert_eq!(
        again.assignment, None,
        "nothing changed: no assignment sent"
    );
}

#[test]
fn a_partition_moves_only_after_its_owner_revoked_it_and_the_epoch_waits_for_that() {
    let (_dir, _broker, groups) = setup();
    let a = beat(&groups, ask("a", 0)).unwrap();
    let all = a.assignment.unwrap();
    let b = beat(&groups, ask("b", 0)).unwrap();
    assert_eq!(b.assignment, Some(vec![]), "a still owns everything");
    // a is told what it keeps, at its old epoch.
    let told = beat(&groups, owning("a", a.epoch, &all)).unwrap();
    let kept = told.assignment.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(told.epoch, a.epoch, "a has partitions to revoke");
    let waiting = beat(&groups, ask("b", b.epoch)).unwrap();
    assert!(waiting.assignment.is_none_or(|a| a.is_empty()));
    // a revokes: its epoch moves on, and b gets the other two.
    let revoked = beat(&groups, owning("a", a.epoch, &kept)).unwrap();
    assert!(revoked.epoch > a.epoch);
    let moved = beat(&groups, ask("b", waiting.epoch)).unwrap();
    let moved = moved.assignment.unwrap();
    assert_eq!(moved.len(), 2);
    assert!(moved.iter().all(|tp| !kept.contains(tp)));
}

#[test]
fn a_wrong_epoch_is_fenced_and_the_member_must_rejoin() {
    let (_dir, _broker, groups) = setup();
    let a = beat(&groups, ask("a", 0)).unwrap();
    let fenced = beat(&groups, ask("a", a.epoch + 5)).unwrap_err();
    assert_eq!(
        fenced.code(),
        ResponseError::FencedMemberEpoch.code(),
        "{fenced}"
    );
    let gone = beat(&groups, ask("a", a.epoch)).unwrap_err();
    assert_eq!(gone.code(), ResponseError::UnknownMemberId.code());
    let back = beat(&groups, ask("a", 0)).unwrap();
    assert_eq!(back.assignment.unwrap().len(), 4);
}

#[test]
fn commits_need_the_members_epoch() {
    let (_dir, _broker, groups) = setup();
    let a = beat(&groups, ask("a", 0)).unwrap();
    let all = a.assignment.unwrap();
    let commit = |member: &str, epoch: i32| {
        groups
            .consumer_commit("g", member, epoch, &all, || Ok(()))
            .expect("a consumer-protocol group")
    };
    assert!(commit("a", a.epoch).is_ok());
    let stale = commit("a", a.epoch - 1).unwrap_err();
    assert_eq!(stale.code(), ResponseError::StaleMemberEpoch.code());
    let unknown = commit("x", a.epoch).unwrap_err();
    assert_eq!(unknown.code(), ResponseError::UnknownMemberId.code());
    assert!(
        groups
            .consumer_commit("other", "a", 1, &all, || Ok(()))
            .is_none(),
        "another group follows the classic rules"
    );
}

#[test]
fn bad_requests_are_refused_with_kafkas_codes() {
    let (_dir, _broker, groups) = setup();
    let unknown = Ask {
        assignor: Some("magic".into()),
        ..ask("a", 0)
    };
    let e = beat(&groups, unknown).unwrap_err();
    assert_eq!(e.code(), ResponseError::UnsupportedAssignor.code());
    let no_subscription = Ask {
        names: None,
        ..ask("a", 0)
    };
    let e = beat(&groups, no_subscription).unwrap_err();
    assert_eq!(e.code(), ResponseError::InvalidRequest.code());
    let e = beat(&groups, ask("", 0)).unwrap_err();
    assert_eq!(
        e.code(),
        ResponseError::InvalidRequest.code(),
        "v1 needs a member id"
    );
    let regex = Ask {
        regex: Some(Some("(".into())),
        ..ask("a", 0)
    };
    let e = beat(&groups, regex).unwrap_err();
    assert_eq!(e.code(), ResponseError::InvalidRegularExpression.code());
    let e = beat(&groups, ask("a", -3)).unwrap_err();
    assert_eq!(e.code(), ResponseError::InvalidRequest.code());
}

#[test]
fn a_regex_subscription_follows_new_topics() {
    let (_dir, broker, groups) = setup();
    let joined = beat(
        &groups,
        Ask {
            names: None,
            regex: Some(Some("o.*".into())),
            ..ask("a", 0)
        },
    )
    .unwrap();
    assert_eq!(joined.assignment, Some(vec![]), "no topic matches yet");
    broker.create_topic("orders", 2).unwrap();
    let later = beat(&groups, ask("a", joined.epoch)).unwrap();
    assert_eq!(
        later.assignment,
        Some(vec![
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 1)
        ])
    );
}

#[test]
fn a_static_member_back_within_its_session_gets_its_partitions_and_its_old_self_is_stopped() {
    let (_dir, _broker, groups) = setup();
    let statik = |member: &str, epoch: i32| Ask {
        instance_id: Some("one".into()),
        ..ask(member, epoch)
    };
    let first = beat(&groups, statik("a", 0)).unwrap();
    let mine = first.assignment.unwrap();
    let other = beat(&groups, ask("b", 0)).unwrap();
    let _ = other;
    let settled = beat(
        &groups,
        Ask {
            owned: Some(mine.clone()),
            ..statik("a", first.epoch)
        },
    )
    .unwrap();
    let kept = settled.assignment.unwrap();
    beat(
        &groups,
        Ask {
            owned: Some(kept.clone()),
            ..statik("a", first.epoch)
        },
    )
    .unwrap();
    // A temporary leave (-2), then a new process of the same instance.
    beat(&groups, statik("a", -2)).unwrap();
    let back = beat(&groups, statik("a2", 0)).unwrap();
    assert_eq!(
        back.assignment.unwrap(),
        kept,
        "its partitions, no rebalance"
    );
    // A third incarnation while the second runs replaces it.
    beat(&groups, statik("a3", 0)).unwrap();
    let old = beat(&groups, statik("a2", back.epoch)).unwrap_err();
    assert_eq!(
        old.code(),
        ResponseError::UnreleasedInstanceId.code(),
        "{old}"
    );
}
