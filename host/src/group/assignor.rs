//! Partition assignors: pure functions that decide which member of a consumer
//! group reads which partition. The coordinator calls them; they do no I/O and
//! keep no state, so everything they promise is checked by unit and property
//! tests beside them.
//!
//! The four assignors carry Kafka's names, so a group's configuration reads the same:
//! - `range`: for each topic on its own, the topic's subscribers (sorted by id)
//!   each get one contiguous range of partitions; the first `count % n` get one
//!   extra. Balanced per topic, not across topics: with many topics the first
//!   members carry up to one extra partition per topic.
//! - `roundrobin`: every subscribed partition, sorted by (topic, partition), is
//!   dealt in turn to the members sorted by id, skipping a member that does not
//!   subscribe to the partition's topic.
//! - `sticky`: starts from what each member says it owns and moves as few
//!   partitions as balance needs. Orphans (partitions of members that left) go
//!   to the least loaded subscriber; then, while some member holds at least two
//!   more partitions than a member that could take one of them, one moves.
//!   Under the eager protocol members still revoke everything first, but they
//!   get most of it back.
//! - `cooperative-sticky`: the same target as `sticky`. What differs is the
//!   protocol (KIP-429): [`revocations`] names what each member must give up
//!   first, and [`reconcile`] is what may be handed out while those revocations
//!   are in flight (phase one) and once they are done (phase two). A member's
//!   unaffected partitions never stop being processed.
//!
//! Invariants, for every assignor:
//! - **Pure and deterministic**: the result depends on the inputs' contents,
//!   never on their order; members are ranked by id. A repeated member id
//!   counts once (its first occurrence).
//! - **Exclusive and complete**: every member appears in the result, maybe with
//!   nothing; a member only gets partitions of topics it subscribes to; every
//!   partition of a subscribed topic goes to exactly one member. Unknown topics
//!   and topics with zero partitions contribute nothing.
//! - **Balanced**: when all members subscribe to the same topics, counts differ
//!   by at most one (per topic for `range`). With mixed subscriptions, `sticky`
//!   leaves no partition that could move to a subscriber holding two fewer, so
//!   members with identical subscriptions still differ by at most one.
//! - **Sticky** (`sticky`, `cooperative-sticky`), from a balanced assignment with
//!   identical subscriptions: when members leave, every survivor keeps all it
//!   had; when members join, survivors only give partitions away to newcomers,
//!   and no more than balance requires.
//!
//! Stale ownership claims (a topic no longer subscribed, a partition that no
//! longer exists) are dropped. A partition claimed by two members goes to the
//! first by id: Kafka breaks that tie by generation, so the coordinator should
//! pass only claims made in the current generation.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// A group member's id, as the coordinator issued it.
pub type MemberId = String;

/// Who reads what: every member of the group, with its partitions sorted.
pub type Assignment = BTreeMap<MemberId, Vec<TopicPartition>>;

/// One partition of one topic, the unit of assignment.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

/// What one member brings to a rebalance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSubscription {
    pub member: MemberId,
    /// Topics the member wants to read; unknown topics are ignored, so a member
    /// may subscribe before its topic exists.
    pub topics: Vec<String>,
    /// What the member owns now. Only the sticky assignors read it: it is the
    /// history they stick to. Empty for a new member.
    pub owned: Vec<TopicPartition>,
}

/// The assignment strategy a group uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    Range,
    RoundRobin,
    Sticky,
    CooperativeSticky,
}

impl AssignorKind {
    pub const ALL: [AssignorKind; 4] = [
        AssignorKind::Range,
        AssignorKind::RoundRobin,
        AssignorKind::Sticky,
        AssignorKind::CooperativeSticky,
    ];

    /// The name used in configuration, the same as Kafka's.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::Sticky => "sticky",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The inverse of [`AssignorKind::name`]; `round-robin` is accepted too.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "round-robin" => Some(AssignorKind::RoundRobin),
            _ => Self::ALL.into_iter().find(|kind| kind.name() == s),
        }
    }

    /// Whether the group rebalances incrementally (KIP-429) rather than eagerly.
    pub fn is_cooperative(&self) -> bool {
        matches!(self, AssignorKind::CooperativeSticky)
    }
}

crate::keyword::keywords!(AssignorKind);

/// Assigns the partitions of the subscribed topics to `members`.
///
/// `partitions` maps a topic to its partition count. The result names every
/// member, each with its partitions sorted. For `CooperativeSticky` this is the
/// *target*; see [`revocations`] and [`reconcile`] for how to reach it.
pub fn assign(
    kind: AssignorKind,
    members: &[MemberSubscription],
    partitions: &BTreeMap<String, u32>,
) -> Assignment {
    let members = ranked(members);
    let held = match kind {
        AssignorKind::Range => range(&members, partitions),
        AssignorKind::RoundRobin => round_robin(&members, partitions),
        AssignorKind::Sticky | AssignorKind::CooperativeSticky => sticky(&members, partitions),
    };
    members
        .iter()
        .zip(held)
        .map(|(member, held)| (member.id.to_owned(), held.into_iter().collect()))
        .collect()
}

/// The cooperative revoke list: for each member of `target`, the partitions it
/// owns in `previous` but will not keep, sorted.
///
/// Members with nothing to revoke are left out, so an empty result means the
/// rebalance completes in one round. Members absent from `target` have left the
/// group: nobody waits for them, and their partitions are free at once.
pub fn revocations(previous: &Assignment, target: &Assignment) -> Assignment {
    target
        .iter()
        .filter_map(|(member, wanted)| {
            let kept: BTreeSet<&TopicPartition> = wanted.iter().collect();
            let lost: BTreeSet<&TopicPartition> = previous
                .get(member)?
                .iter()
                .filter(|tp| !kept.contains(tp))
                .collect();
            (!lost.is_empty()).then(|| (member.clone(), lost.into_iter().cloned().collect()))
        })
        .collect()
}

/// The cooperative assignment to hand out now: `target` minus every
/// partition that some *other* member of `target` still owns in `previous`.
/// A member's own partitions are never withheld from it.
///
/// A member keeps processing all it owns and keeps, and starts on partitions
/// nobody holds: what it owns minus this is exactly its [`revocations`].
///
/// Once the revocations are confirmed, call this again with the new ownership
/// and the *same* target: it hands out the rest, and equals the target. Keep
/// the target until membership or subscriptions change. Recomputing it from
/// the phase-one ownership instead (as Kafka's client-side protocol does) also
/// needs no further revocation when all members subscribe alike, but with mixed
/// subscriptions it may pick a different balanced target and revoke again.
pub fn reconcile(previous: &Assignment, target: &Assignment) -> Assignment {
    let mut holders: BTreeMap<&TopicPartition, Vec<&MemberId>> = BTreeMap::new();
    for (member, owned) in previous.iter().filter(|(m, _)| target.contains_key(*m)) {
        for tp in owned {
            holders.entry(tp).or_default().push(member);
        }
    }
    target
        .iter()
        .map(|(member, wanted)| {
            let free = |tp: &&TopicPartition| holders.get(tp).is_none_or(|hs| hs.contains(&member));
            (
                member.clone(),
                wanted.iter().filter(free).cloned().collect(),
            )
        })
        .collect()
}

/// A member as the assignors see it: subscriptions as a set, ranked by id.
struct Member<'a> {
    id: &'a str,
    topics: BTreeSet<&'a str>,
    owned: &'a [TopicPartition],
}

fn ranked(members: &[MemberSubscription]) -> Vec<Member<'_>> {
    let mut ranked: Vec<Member<'_>> = members
        .iter()
        .map(|m| Member {
            id: &m.member,
            topics: m.topics.iter().map(String::as_str).collect(),
            owned: &m.owned,
        })
        .collect();
    // Stable, so the first occurrence of a repeated id survives the dedup.
    ranked.sort_by(|a, b| a.id.cmp(b.id));
    ranked.dedup_by(|later, first| later.id == first.id);
    ranked
}

/// The topics at least one member subscribes to, with their partition counts;
/// unknown topics and topics without partitions are left out.
fn subscribed<'a>(
    members: &[Member<'_>],
    partitions: &'a BTreeMap<String, u32>,
) -> impl Iterator<Item = (&'a str, u32)> {
    let wanted: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.topics.iter().copied())
        .collect();
    partitions
        .iter()
        .filter(move |(topic, count)| **count > 0 && wanted.contains(topic.as_str()))
        .map(|(topic, count)| (topic.as_str(), *count))
}

fn range(
    members: &[Member<'_>],
    partitions: &BTreeMap<String, u32>,
) -> Vec<BTreeSet<TopicPartition>> {
    let mut held = vec![BTreeSet::new(); members.len()];
    for (topic, count) in subscribed(members, partitions) {
        let readers: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(topic))
            .collect();
        // Past u32::MAX readers each partition gets its own reader: base 0 does that.
        let n = u32::try_from(readers.len()).unwrap_or(u32::MAX);
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (reader, rank) in readers.into_iter().zip(0u32..) {
            let take = base + u32::from(rank < extra);
            held[reader].extend((next..next + take).map(|p| TopicPartition::new(topic, p)));
            next += take;
        }
    }
    held
}

fn round_robin(
    members: &[Member<'_>],
    partitions: &BTreeMap<String, u32>,
) -> Vec<BTreeSet<TopicPartition>> {
    let mut held = vec![BTreeSet::new(); members.len()];
    let mut turn = 0;
    for (topic, count) in subscribed(members, partitions) {
        for p in 0..count {
            // Some member subscribes to `topic`, so this finds one within a lap.
            let Some(reader) = (0..members.len())
                .map(|step| (turn + step) % members.len())
                .find(|&i| members[i].topics.contains(topic))
            else {
                continue;
            };
            held[reader].insert(TopicPartition::new(topic, p));
            turn = reader + 1;
        }
    }
    held
}

fn sticky(
    members: &[Member<'_>],
    partitions: &BTreeMap<String, u32>,
) -> Vec<BTreeSet<TopicPartition>> {
    let mut readers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (topic, _) in subscribed(members, partitions) {
        let subscribers = (0..members.len()).filter(|&i| members[i].topics.contains(topic));
        readers.insert(topic, subscribers.collect());
    }

    // 1. Keep every valid claim; the first claimant by id wins a disputed partition.
    let mut held = vec![Holding::default(); members.len()];
    let mut claimed = BTreeSet::new();
    for (i, member) in members.iter().enumerate() {
        for tp in member.owned {
            let exists = partitions
                .get(&tp.topic)
                .is_some_and(|&count| tp.partition < count);
            if exists && member.topics.contains(tp.topic.as_str()) && claimed.insert(tp) {
                held[i].kept.insert(tp.clone());
            }
        }
    }

    // 2. Orphans go to the least loaded reader, the most constrained partitions first.
    let mut orphans: Vec<TopicPartition> = subscribed(members, partitions)
        .flat_map(|(topic, count)| (0..count).map(move |p| TopicPartition::new(topic, p)))
        .filter(|tp| !claimed.contains(tp))
        .collect();
    orphans.sort_by_key(|tp| readers[tp.topic.as_str()].len());
    for tp in orphans {
        if let Some(to) = least_loaded(&readers[tp.topic.as_str()], &held, None) {
            held[to].gained.insert(tp);
        }
    }

    // 3. Move one partition at a time from a member to one holding two fewer.
    //    Each move lowers the sum of squared loads, so this ends.
    while let Some((from, tp, to)) = next_move(&held, &readers) {
        if !held[from].gained.remove(&tp) {
            held[from].kept.remove(&tp);
        }
        held[to].gained.insert(tp);
    }
    held.into_iter()
        .map(|Holding { mut kept, gained }| {
            kept.extend(gained);
            kept
        })
        .collect()
}

/// What a member holds during the sticky pass, split so that it gives up what
/// it gained in this pass before anything it owned before.
#[derive(Clone, Default)]
struct Holding {
    kept: BTreeSet<TopicPartition>,
    gained: BTreeSet<TopicPartition>,
}

impl Holding {
    fn len(&self) -> usize {
        self.kept.len() + self.gained.len()
    }
}

fn least_loaded(candidates: &[usize], held: &[Holding], except: Option<usize>) -> Option<usize> {
    candidates
        .iter()
        .copied()
        .filter(|&i| Some(i) != except)
        .min_by_key(|&i| (held[i].len(), i))
}

/// The next move for balance: from the most loaded member that can shed, one
/// of its partitions (gained ones first) to the least loaded reader of that
/// partition's topic, provided that reader holds at least two fewer.
fn next_move(
    held: &[Holding],
    readers: &BTreeMap<&str, Vec<usize>>,
) -> Option<(usize, TopicPartition, usize)> {
    let lightest = held.iter().map(Holding::len).min()?;
    let mut heaviest_first: Vec<usize> = (0..held.len()).collect();
    heaviest_first.sort_by_key(|&i| (Reverse(held[i].len()), i));
    for from in heaviest_first {
        let load = held[from].len();
        if load < lightest + 2 {
            return None;
        }
        // The taker depends only on the topic, so ask once per topic.
        let mut taker: BTreeMap<&str, Option<usize>> = BTreeMap::new();
        for tp in held[from].gained.iter().chain(&held[from].kept) {
            let to = *taker.entry(&tp.topic).or_insert_with(|| {
                least_loaded(&readers[tp.topic.as_str()], held, Some(from))
                    .filter(|&to| held[to].len() + 2 <= load)
            });
            if let Some(to) = to {
                return Some((from, tp.clone(), to));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
