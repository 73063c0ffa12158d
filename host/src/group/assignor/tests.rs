//! Unit tests on hand-checked cases, then property tests over random groups.

use super::*;
use proptest::prelude::*;

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn member(id: &str, topics: &[&str], owned: &[TopicPartition]) -> MemberSubscription {
    MemberSubscription {
        member: id.to_owned(),
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        owned: owned.to_vec(),
    }
}

fn topics(counts: &[(&str, u32)]) -> BTreeMap<String, u32> {
    counts.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

fn expect(rows: &[(&str, &[TopicPartition])]) -> Assignment {
    rows.iter()
        .map(|(m, tps)| ((*m).to_owned(), tps.to_vec()))
        .collect()
}

/// Members that own what `assignment` gives them, all subscribed to `subs`.
fn owning(assignment: &Assignment, subs: &[&str]) -> Vec<MemberSubscription> {
    assignment
        .iter()
        .map(|(m, owned)| member(m, subs, owned))
        .collect()
}

#[test]
fn range_assignor_gives_contiguous_ranges_per_topic() {
    let parts = topics(&[("t0", 5), ("t1", 3)]);
    let members = [
        member("b", &["t0", "t1"], &[]),
        member("a", &["t0", "t1"], &[]),
    ];
    let got = assign(AssignorKind::Range, &members, &parts);
    let a = [
        tp("t0", 0),
        tp("t0", 1),
        tp("t0", 2),
        tp("t1", 0),
        tp("t1", 1),
    ];
    let b = [tp("t0", 3), tp("t0", 4), tp("t1", 2)];
    assert_eq!(got, expect(&[("a", &a), ("b", &b)]));
}

#[test]
fn range_assignor_splits_each_topic_among_its_own_subscribers() {
    let parts = topics(&[("t0", 2), ("t1", 2)]);
    let members = [member("a", &["t0"], &[]), member("b", &["t0", "t1"], &[])];
    let got = assign(AssignorKind::Range, &members, &parts);
    let b = [tp("t0", 1), tp("t1", 0), tp("t1", 1)];
    assert_eq!(got, expect(&[("a", &[tp("t0", 0)]), ("b", &b)]));
}

#[test]
fn round_robin_assignor_deals_sorted_partitions_across_topics() {
    let parts = topics(&[("t0", 3), ("t1", 2)]);
    let members = [
        member("c", &["t0", "t1"], &[]),
        member("a", &["t0", "t1"], &[]),
        member("b", &["t0", "t1"], &[]),
    ];
    let got = assign(AssignorKind::RoundRobin, &members, &parts);
    let a = [tp("t0", 0), tp("t1", 0)];
    let b = [tp("t0", 1), tp("t1", 1)];
    assert_eq!(got, expect(&[("a", &a), ("b", &b), ("c", &[tp("t0", 2)])]));
}

#[test]
fn round_robin_assignor_skips_members_not_subscribed_to_the_topic() {
    let parts = topics(&[("t0", 2), ("t1", 2)]);
    let members = [member("a", &["t0", "t1"], &[]), member("b", &["t1"], &[])];
    let got = assign(AssignorKind::RoundRobin, &members, &parts);
    let a = [tp("t0", 0), tp("t0", 1), tp("t1", 1)];
    assert_eq!(got, expect(&[("a", &a), ("b", &[tp("t1", 0)])]));
}

#[test]
fn sticky_assignor_keeps_partitions_of_surviving_members() {
    let parts = topics(&[("t", 6)]);
    let members = [
        member("a", &["t"], &[tp("t", 0), tp("t", 3)]),
        member("b", &["t"], &[tp("t", 1), tp("t", 4)]),
    ]; // c, which owned 2 and 5, has left
    let got = assign(AssignorKind::Sticky, &members, &parts);
    let a = [tp("t", 0), tp("t", 2), tp("t", 3)];
    let b = [tp("t", 1), tp("t", 4), tp("t", 5)];
    assert_eq!(got, expect(&[("a", &a), ("b", &b)]));
}

#[test]
fn sticky_assignor_moves_only_what_a_joining_member_needs() {
    let parts = topics(&[("t", 5)]);
    let all: Vec<_> = (0..5).map(|p| tp("t", p)).collect();
    let members = [member("a", &["t"], &all), member("b", &["t"], &[])];
    let got = assign(AssignorKind::Sticky, &members, &parts);
    assert_eq!(got["a"].len() + got["b"].len(), 5);
    assert_eq!(got["a"].len(), 3, "a keeps the ceiling share");
    assert!(got["a"].iter().all(|p| all.contains(p)));
}

#[test]
fn sticky_assignor_drops_stale_claims_and_settles_disputes_by_member_id() {
    let parts = topics(&[("t", 2), ("u", 1)]);
    let members = [
        member("b", &["t"], &[tp("t", 0), tp("t", 7), tp("u", 0)]),
        member("a", &["t", "u"], &[tp("t", 0)]),
    ];
    let got = assign(AssignorKind::Sticky, &members, &parts);
    assert_eq!(
        got,
        expect(&[("a", &[tp("t", 0), tp("u", 0)]), ("b", &[tp("t", 1)])])
    );
}

#[test]
fn cooperative_sticky_assignor_targets_the_same_assignment_as_sticky() {
    let parts = topics(&[("t", 7), ("u", 3)]);
    let members = [
        member("a", &["t", "u"], &[tp("t", 0), tp("t", 1), tp("u", 2)]),
        member("b", &["t", "u"], &[tp("t", 2)]),
        member("c", &["t"], &[]),
    ];
    let sticky = assign(AssignorKind::Sticky, &members, &parts);
    assert_eq!(
        assign(AssignorKind::CooperativeSticky, &members, &parts),
        sticky
    );
}

#[test]
fn cooperative_rebalance_revokes_only_moving_partitions_in_two_phases() {
    let parts = topics(&[("t", 4)]);
    let previous = expect(&[
        ("a", &[tp("t", 0), tp("t", 1)]),
        ("b", &[tp("t", 2), tp("t", 3)]),
    ]);
    let mut members = owning(&previous, &["t"]);
    members.push(member("c", &["t"], &[]));
    let target = assign(AssignorKind::CooperativeSticky, &members, &parts);

    let revoked = revocations(&previous, &target);
    let moving: Vec<&TopicPartition> = revoked.values().flatten().collect();
    assert_eq!(moving.len(), 1, "one partition moves to c: {revoked:?}");
    assert_eq!(target["c"], vec![moving[0].clone()]);

    let first = reconcile(&previous, &target);
    assert!(first["c"].is_empty(), "c waits until the owner revokes");
    for m in ["a", "b"] {
        let kept: Vec<_> = previous[m]
            .iter()
            .filter(|p| !moving.contains(p))
            .cloned()
            .collect();
        assert_eq!(first[m], kept, "{m} keeps processing what stays");
    }

    let members = owning(&first, &["t"]);
    let second = assign(AssignorKind::CooperativeSticky, &members, &parts);
    assert!(revocations(&first, &second).is_empty());
    assert_eq!(reconcile(&first, &second), second);
    assert_eq!(second, target);
}

#[test]
fn a_departed_member_needs_no_revocation_and_frees_its_partitions_at_once() {
    let previous = expect(&[("a", &[tp("t", 0)]), ("gone", &[tp("t", 1)])]);
    let target = expect(&[("a", &[tp("t", 0), tp("t", 1)])]);
    assert!(revocations(&previous, &target).is_empty());
    assert_eq!(reconcile(&previous, &target), target);
}

#[test]
fn every_assignor_handles_no_members_empty_subscriptions_and_unknown_topics() {
    let parts = topics(&[("t", 2), ("empty", 0)]);
    for kind in AssignorKind::ALL {
        assert!(assign(kind, &[], &parts).is_empty(), "{kind:?}");
        let members = [
            member("idle", &[], &[]),
            member("lost", &["ghost", "empty"], &[tp("ghost", 0)]),
        ];
        assert_eq!(
            assign(kind, &members, &parts),
            expect(&[("idle", &[]), ("lost", &[])]),
            "{kind:?}"
        );
        let repeated = [member("a", &["t"], &[]), member("a", &[], &[])];
        assert_eq!(
            assign(kind, &repeated, &parts),
            expect(&[("a", &[tp("t", 0), tp("t", 1)])]),
            "{kind:?}"
        );
    }
}

#[test]
fn assignor_kind_names_round_trip_through_parse() {
    for kind in AssignorKind::ALL {
        assert_eq!(AssignorKind::parse(kind.name()), Some(kind));
        assert_eq!(
            kind.is_cooperative(),
            kind == AssignorKind::CooperativeSticky
        );
    }
    assert_eq!(
        AssignorKind::parse("round-robin"),
        Some(AssignorKind::RoundRobin)
    );
    assert_eq!(AssignorKind::parse("fastest"), None);
}

// ---- Property tests -------------------------------------------------------

/// A random group: 1..4 topics of 0..12 partitions, 1..8 members with random
/// (or, when `alike`, identical) subscriptions that may name an unknown topic,
/// and random, possibly stale or disputed, ownership claims.
#[derive(Debug, Clone)]
struct Group {
    partitions: BTreeMap<String, u32>,
    members: Vec<MemberSubscription>,
}

const GHOST: &str = "ghost";

fn group(alike: bool) -> impl Strategy<Value = Group> {
    (prop::collection::vec(0u32..12, 1..4), 1usize..8).prop_flat_map(move |(counts, n)| {
        let names = counts.len() + 1; // the last name is the unknown topic
        let subs = prop::collection::vec(prop::collection::vec(any::<bool>(), names), n);
        let claims = prop::collection::vec(prop::collection::vec((0..names, 0u32..14), 0..8), n);
        (Just(counts), subs, claims).prop_map(move |(counts, subs, claims)| {
            let name = |i: usize| {
                if i < counts.len() {
                    format!("t{i}")
                } else {
                    GHOST.to_owned()
                }
            };
            let members = subs
                .iter()
                .zip(claims)
                .enumerate()
                .map(|(m, (wants, claims))| MemberSubscription {
                    member: format!("m{m}"),
                    topics: (0..names)
                        .filter(|&t| if alike { subs[0][t] } else { wants[t] })
                        .map(name)
                        .collect(),
                    owned: claims
                        .into_iter()
                        .map(|(t, p)| TopicPartition::new(name(t), p))
                        .collect(),
                })
                .collect();
            let partitions = counts
                .iter()
                .enumerate()
                .map(|(t, c)| (name(t), *c))
                .collect();
            Group {
                partitions,
                members,
            }
        })
    })
}

/// A random group, and a random order of its members.
fn shuffled_group() -> impl Strategy<Value = (Group, Vec<usize>)> {
    group(false).prop_flat_map(|g| {
        let order = Just((0..g.members.len()).collect::<Vec<_>>()).prop_shuffle();
        (Just(g), order)
    })
}

/// Every partition of a subscribed topic, owned by exactly one subscriber.
fn assert_exclusive_and_complete(g: &Group, got: &Assignment) {
    let ids: BTreeSet<&str> = g.members.iter().map(|m| m.member.as_str()).collect();
    assert_eq!(got.keys().map(String::as_str).collect::<BTreeSet<_>>(), ids);
    let mut owners: BTreeMap<&TopicPartition, usize> = BTreeMap::new();
    for (m, tps) in got {
        let sub = g.members.iter().find(|s| &s.member == m).expect("a member");
        for p in tps {
            assert!(
                sub.topics.contains(&p.topic),
                "{m} got {p:?} without subscribing"
            );
            *owners.entry(p).or_default() += 1;
        }
    }
    let mut expected = BTreeSet::new();
    for (topic, count) in &g.partitions {
        if g.members.iter().any(|s| s.topics.contains(topic)) {
            expected.extend((0..*count).map(|p| tp(topic, p)));
        }
    }
    assert_eq!(
        owners.keys().copied().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(
        owners.values().all(|&n| n == 1),
        "a partition owned twice: {owners:?}"
    );
}

fn spread(loads: impl Iterator<Item = usize>) -> usize {
    let loads: Vec<usize> = loads.collect();
    loads.iter().max().unwrap_or(&0) - loads.iter().min().unwrap_or(&0)
}

fn subscriptions(g: &Group) -> Vec<&str> {
    g.members[0].topics.iter().map(String::as_str).collect()
}

/// What each member claims, as a previous assignment (claims may be invalid).
fn ownership(g: &Group) -> Assignment {
    g.members
        .iter()
        .map(|m| (m.member.clone(), m.owned.clone()))
        .collect()
}

/// The claims the sticky assignor honours: subscribed, existing, first by id.
fn valid_claims(g: &Group) -> BTreeMap<TopicPartition, String> {
    let mut claims = BTreeMap::new();
    for m in &g.members {
        for p in &m.owned {
            let exists = g.partitions.get(&p.topic).is_some_and(|&c| p.partition < c);
            if exists && m.topics.contains(&p.topic) {
                claims.entry(p.clone()).or_insert_with(|| m.member.clone());
            }
        }
    }
    claims
}

/// The fewest valid claims any balanced assignment must break: the members
/// with the largest valid claims get the ceiling shares.
fn fewest_moves(g: &Group, got: &Assignment) -> usize {
    let total: usize = got.values().map(Vec::len).sum();
    let claims = valid_claims(g);
    let mut counts: Vec<usize> = g
        .members
        .iter()
        .map(|m| claims.values().filter(|o| **o == m.member).count())
        .collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    let n = counts.len();
    let quota = |rank: usize| total / n + usize::from(rank < total % n);
    counts
        .iter()
        .enumerate()
        .map(|(rank, &c)| c.saturating_sub(quota(rank)))
        .sum()
}

proptest! {
    #[test]
    fn every_subscribed_partition_is_owned_by_exactly_one_subscriber(g in group(false)) {
        for kind in AssignorKind::ALL {
            assert_exclusive_and_complete(&g, &assign(kind, &g.members, &g.partitions));
        }
    }

    #[test]
    fn assignment_is_deterministic_whatever_the_input_order((g, order) in shuffled_group()) {
        let shuffled: Vec<_> = order
            .iter()
            .map(|&i| {
                let mut m = g.members[i].clone();
                m.topics.reverse();
                m.owned.reverse();
                m
            })
            .collect();
        for kind in AssignorKind::ALL {
            let once = assign(kind, &g.members, &g.partitions);
            prop_assert_eq!(assign(kind, &shuffled, &g.partitions), once);
        }
    }

    #[test]
    fn load_is_balanced_within_one_when_members_subscribe_alike(g in group(true)) {
        use AssignorKind::{CooperativeSticky, RoundRobin, Sticky};
        for kind in [RoundRobin, Sticky, CooperativeSticky] {
            let got = assign(kind, &g.members, &g.partitions);
            prop_assert!(spread(got.values().map(Vec::len)) <= 1, "{:?}: {:?}", kind, got);
        }
        let got = assign(AssignorKind::Range, &g.members, &g.partitions);
        for topic in g.partitions.keys() {
            let per_topic = got.values().map(|tps| tps.iter().filter(|p| &p.topic == topic));
            let per_topic = per_topic.map(Iterator::count);
            prop_assert!(spread(per_topic) <= 1, "range on {}: {:?}", topic, got);
        }
    }

    #[test]
    fn sticky_assignor_leaves_no_partition_a_lighter_subscriber_could_take(g in group(false)) {
        let got = assign(AssignorKind::Sticky, &g.members, &g.partitions);
        for (a, heavy) in &got {
            for b in g.members.iter().filter(|b| got[&b.member].len() + 2 <= heavy.len()) {
                let movable = heavy.iter().find(|p| b.topics.contains(&p.topic));
                let (to, got) = (&b.member, &got);
                prop_assert!(movable.is_none(), "{} could give {} {:?}: {:?}", a, to, movable, got);
            }
        }
    }

    #[test]
    fn sticky_assignor_moves_no_more_than_balance_requires(g in group(true)) {
        let got = assign(AssignorKind::Sticky, &g.members, &g.partitions);
        let moved = valid_claims(&g)
            .into_iter()
            .filter(|(p, m)| !got[m].contains(p))
            .count();
        prop_assert_eq!(moved, fewest_moves(&g, &got), "{:?}", got);
    }

    #[test]
    fn sticky_assignor_keeps_every_partition_of_every_surviving_member(
        g in group(true),
        leaver in any::<prop::sample::Index>(),
    ) {
        let subs = subscriptions(&g);
        let before = assign(AssignorKind::Sticky, &g.members, &g.partitions);
        let gone = &leaver.get(&g.members).member;
        let survivors: Vec<_> =
            owning(&before, &subs).into_iter().filter(|m| &m.member != gone).collect();
        let after = assign(AssignorKind::Sticky, &survivors, &g.partitions);
        for m in &survivors {
            let lost: Vec<_> = m.owned.iter().filter(|p| !after[&m.member].contains(p)).collect();
            let who = &m.member;
            prop_assert!(lost.is_empty(), "{} lost {:?}: {:?} -> {:?}", who, lost, before, after);
        }
    }

    #[test]
    fn sticky_assignor_gives_a_joining_member_only_what_survivors_can_spare(g in group(true)) {
        let subs = subscriptions(&g);
        let before = assign(AssignorKind::Sticky, &g.members, &g.partitions);
        let mut members = owning(&before, &subs);
        members.push(member("newcomer", &subs, &[]));
        let after = assign(AssignorKind::Sticky, &members, &g.partitions);
        for (m, owned) in &before {
            let taken: Vec<_> = after[m].iter().filter(|p| !owned.contains(p)).collect();
            prop_assert!(taken.is_empty(), "{} took {:?}: {:?} -> {:?}", m, taken, before, after);
        }
        prop_assert!(spread(after.values().map(Vec::len)) <= 1);
    }

    #[test]
    fn cooperative_revocations_name_exactly_the_partitions_that_move(g in group(false)) {
        let previous = ownership(&g);
        let target = assign(AssignorKind::CooperativeSticky, &g.members, &g.partitions);
        let revoked = revocations(&previous, &target);
        let revoked_by = |m: &str| -> BTreeSet<&TopicPartition> {
            revoked.get(m).into_iter().flatten().collect()
        };
        for (m, owned) in &previous {
            let leaving: BTreeSet<_> = owned.iter().filter(|p| !target[m].contains(p)).collect();
            prop_assert_eq!(revoked_by(m), leaving, "{}", m);
        }
        let first = reconcile(&previous, &target);
        for (m, wanted) in &target {
            let dropped: BTreeSet<_> =
                previous[m].iter().filter(|p| !first[m].contains(p)).collect();
            prop_assert_eq!(dropped, revoked_by(m), "{} drops exactly what it revokes", m);
            prop_assert!(first[m].iter().all(|p| wanted.contains(p)));
            for p in &first[m] {
                let held = previous.iter().find(|(o, owned)| {
                    *o != m && owned.contains(p) && !revoked_by(o).contains(p)
                });
                prop_assert!(held.is_none(), "{:?} handed to {} while {:?} holds it", p, m, held);
            }
            let second = reconcile(&first, &target);
            prop_assert_eq!(&second[m], wanted, "{} reaches the target after revoking", m);
        }
    }

    #[test]
    fn cooperative_recomputed_target_revokes_nothing_more_when_members_subscribe_alike(
        g in group(true),
    ) {
        let target = assign(AssignorKind::CooperativeSticky, &g.members, &g.partitions);
        let first = reconcile(&ownership(&g), &target);
        let rejoined = owning(&first, &subscriptions(&g));
        let second = assign(AssignorKind::CooperativeSticky, &rejoined, &g.partitions);
        prop_assert!(revocations(&first, &second).is_empty(), "{:?} -> {:?}", first, second);
        assert_exclusive_and_complete(&g, &second);
    }
}
