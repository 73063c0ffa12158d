//! One group's membership and assignment state, as pure logic over an explicit
//! clock (`now`), so every timing rule is testable without sleeping.
//!
//! Invariants:
//! - the target assignment is recomputed (and the generation bumped) exactly
//!   when membership or subscriptions change;
//! - a member only ever holds partitions it was granted, and under the
//!   cooperative protocol a partition is granted only once no other member still
//!   reports owning it; under the eager protocol nobody is granted anything
//!   until every member has revoked everything (the stop-the-world barrier);
//! - a commit is accepted only from a current member, at its current epoch, for
//!   a partition it holds; anything else is a zombie and is fenced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::assignor::{
    self, Assignment, AssignorKind, MemberId, MemberSubscription, TopicPartition,
};
use super::record::{GroupRecord, StaticMember};
use super::{GroupError, Protocol};

/// How one group behaves; fixed by its first member.
#[derive(Debug, Clone, Copy)]
pub struct GroupSettings {
    pub protocol: Protocol,
    pub assignor: AssignorKind,
    /// A member that sends no heartbeat for this long is evicted.
    pub session_timeout: Duration,
    /// A member that does not poll for this long (a guest stuck in a batch) is
    /// evicted and its partitions are reassigned.
    pub max_poll_interval: Duration,
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings {
            protocol: Protocol::Cooperative,
            assignor: AssignorKind::CooperativeSticky,
            session_timeout: Duration::from_secs(10),
            max_poll_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Member {
    pub instance_id: Option<String>,
    pub topics: Vec<String>,
    /// The generation at which the member last synced its assignment; its
    /// commits must carry it.
    pub epoch: u32,
    /// What the member said it owns at its last sync.
    pub owned: Vec<TopicPartition>,
    /// What it was last granted: the partitions it may process and commit.
    pub granted: Vec<TopicPartition>,
    pub last_heartbeat: Instant,
    pub last_poll: Instant,
    /// Restored from the group's record when the broker opened, and not yet
    /// rejoined by an incarnation of this process: it holds its partitions
    /// for its instance, but nothing runs it.
    pub restored: bool,
}

/// What a sync hands back to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The member's epoch, to carry on commits.
    pub epoch: u32,
    /// The partitions the member may own now; it revokes anything else.
    pub partitions: Vec<TopicPartition>,
}

#[derive(Debug)]
pub(super) struct GroupState {
    pub name: String,
    pub settings: GroupSettings,
    pub generation: u32,
    pub members: BTreeMap<MemberId, Member>,
    pub target: Assignment,
    /// Partition counts of every subscribed topic.
    pub partitions: BTreeMap<String, u32>,
    /// Eager protocol: set when the target changes, cleared once every member
    /// has revoked everything.
    barrier: bool,
    next_member: u64,
    /// Member ids a newer incarnation of the same static member replaced: they
    /// are fenced for good and must not rejoin (Kafka's FENCED_INSTANCE_ID), or
    /// two live incarnations would keep stealing the identity from each other.
    replaced: std::collections::BTreeSet<MemberId>,
    /// Set by every rebalance: the group's record is out of date.
    pub dirty: bool,
}

impl GroupState {
    pub fn new(name: &str, settings: GroupSettings) -> GroupState {
        GroupState {
            name: name.to_string(),
            settings,
            generation: 0,
            members: BTreeMap::new(),
            target: Assignment::new(),
            partitions: BTreeMap::new(),
            barrier: false,
            next_member: 0,
            replaced: std::collections::BTreeSet::new(),
            dirty: false,
        }
    }

    /// A group as its record left it: the generation goes on, and each static
    /// member holds its assignment (restricted to `partitions`, the counts of
    /// the topics that still exist) until its instance rejoins or its session
    /// times out from `now`.
    pub fn restore(
        name: &str,
        record: &GroupRecord,
        partitions: &BTreeMap<String, u32>,
        now: Instant,
    ) -> GroupState {
        let mut state = GroupState::new(name, record.settings());
        state.generation = record.generation;
        state.partitions = partitions.clone();
        for m in &record.members {
            if !m.topics.iter().all(|t| partitions.contains_key(t)) {
                continue;
            }
            let assignment: Vec<TopicPartition> = m
                .assignment
                .iter()
                .filter(|tp| partitions.get(&tp.topic).is_some_and(|n| tp.partition < *n))
                .cloned()
                .collect();
            state.next_member += 1;
            let id = format!("{name}-{}", state.next_member);
            state.target.insert(id.clone(), assignment.clone());
            state.members.insert(
                id,
                Member {
                    instance_id: Some(m.instance_id.clone()),
                    topics: m.topics.clone(),
                    epoch: record.generation,
                    owned: assignment.clone(),
                    granted: assignment,
                    last_heartbeat: now,
                    last_poll: now,
                    restored: true,
                },
            );
        }
        state
    }

    /// What a restart keeps of the group (see `record.rs`).
    pub fn record(&self) -> GroupRecord {
        let mut members: Vec<StaticMember> = self
            .members
            .iter()
            .filter_map(|(id, m)| {
                Some(StaticMember {
                    instance_id: m.instance_id.clone()?,
                    topics: m.topics.clone(),
                    assignment: self.target.get(id).cloned().unwrap_or_default(),
                })
            })
            .collect();
        members.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        GroupRecord {
            generation: self.generation,
            protocol: self.settings.protocol,
            assignor: self.settings.assignor,
            session_timeout_ms: self.settings.session_timeout.as_millis() as u64,
            max_poll_interval_ms: self.settings.max_poll_interval.as_millis() as u64,
            members,
        }
    }

    /// Members that run in this process (not restored ones awaiting their
    /// instance).
    pub fn active_members(&self) -> usize {
        self.members.values().filter(|m| !m.restored).count()
    }

    /// Adds a member. A static member (with an instance id) that rejoins while
    /// its previous incarnation is still in the group takes over its identity
    /// and assignment without a rebalance; the old member id is fenced.
    pub fn join(
        &mut self,
        instance_id: Option<&str>,
        topics: &[String],
        partitions: &BTreeMap<String, u32>,
        now: Instant,
    ) -> MemberId {
        self.expire(now);
        self.next_member += 1;
        let id = format!("{}-{}", self.name, self.next_member);
        for (topic, count) in partitions {
            self.partitions.insert(topic.clone(), *count);
        }
        let previous = instance_id.and_then(|instance| {
            let old = self
                .members
                .iter()
                .find(|(_, m)| m.instance_id.as_deref() == Some(instance))
                .map(|(id, _)| id.clone())?;
            self.members.remove(&old).map(|m| (old, m))
        });
        match previous {
            Some((old, mut member)) if member.topics == topics => {
                member.last_heartbeat = now;
                member.last_poll = now;
                member.restored = false;
                if let Some(assigned) = self.target.remove(&old) {
                    self.target.insert(id.clone(), assigned);
                }
                self.members.insert(id.clone(), member);
                self.replaced.insert(old.clone());
                tracing::info!(group = %self.name, member = %id, replaces = %old, "static member rejoined without a rebalance");
            }
            _ => {
                self.members.insert(
                    id.clone(),
                    Member {
                        instance_id: instance_id.map(str::to_string),
                        topics: topics.to_vec(),
                        epoch: self.generation,
                        owned: Vec::new(),
                        granted: Vec::new(),
                        last_heartbeat: now,
                        last_poll: now,
                        restored: false,
                    },
                );
                self.rebalance("member joined");
            }
        }
        id
    }

    /// Changes what `member` subscribes to (a Kafka consumer-protocol member
    /// whose subscription, or the topics its regex matches, changed);
    /// `partitions` holds the counts of its topics. Rebalances only if the
    /// topics changed.
    pub fn subscribe(
        &mut self,
        member: &str,
        topics: &[String],
        partitions: &BTreeMap<String, u32>,
        now: Instant,
    ) -> Result<(), GroupError> {
        self.expire(now);
        for (topic, count) in partitions {
            self.partitions.insert(topic.clone(), *count);
        }
        let m = self.member_mut(member)?;
        if m.topics == topics {
            return Ok(());
        }
        m.topics = topics.to_vec();
        self.rebalance("member changed its subscription");
        Ok(())
    }

    /// Removes a member that is shutting down for good.
    pub fn leave(&mut self, member: &str) {
        if self.members.remove(member).is_some() {
            self.rebalance("member left");
        }
    }

    /// Records that `member` is alive.
    pub fn heartbeat(&mut self, member: &str, now: Instant) -> Result<(), GroupError> {
        self.expire(now);
        let m = self.member_mut(member)?;
        m.last_heartbeat = now;
        Ok(())
    }

    /// The member reports what it owns (having revoked what it was told to) and
    /// polls; it gets back what it may own now.
    pub fn sync(
        &mut self,
        member: &str,
        owned: &[TopicPartition],
        now: Instant,
    ) -> Result<Grant, GroupError> {
        self.expire(now);
        let generation = self.generation;
        let m = self.member_mut(member)?;
        m.last_heartbeat = now;
        m.last_poll = now;
        m.owned = owned.to_vec();
        m.epoch = generation;
        let barrier = self.barrier;
        let m = self.member_mut(member)?;
        if barrier {
            // Under the eager barrier the member drops everything now.
            m.granted.clear();
        }
        let partitions = self.grant_for(member);
        let m = self.member_mut(member)?;
        m.granted = partitions.clone();
        Ok(Grant {
            epoch: generation,
            partitions,
        })
    }

    fn grant_for(&mut self, member: &str) -> Vec<TopicPartition> {
        match self.settings.protocol {
            Protocol::Cooperative => {
                // A member applies each grant as soon as it gets it, so what the
                // others hold is what they were last granted (plus, to be safe,
                // what they last reported); the syncing member holds what it
                // reports now.
                let owned: Assignment = self
                    .members
                    .iter()
                    .map(|(id, m)| {
                        let mut held = m.owned.clone();
                        if id != member {
                            held.extend(
                                m.granted.iter().filter(|tp| !m.owned.contains(tp)).cloned(),
                            );
                        }
                        (id.clone(), held)
                    })
                    .collect();
                assignor::reconcile(&owned, &self.target)
                    .remove(member)
                    .unwrap_or_default()
            }
            Protocol::Eager => {
                let revoked = |m: &Member| m.owned.is_empty() && m.granted.is_empty();
                if self.barrier && self.members.values().all(revoked) {
                    self.barrier = false;
                }
                if self.barrier {
                    Vec::new()
                } else {
                    self.target.get(member).cloned().unwrap_or_default()
                }
            }
        }
    }

    /// Checks that a commit comes from a live member at its current epoch, for
    /// a partition it holds.
    pub fn check_commit(
        &self,
        member: &str,
        epoch: u32,
        tp: &TopicPartition,
    ) -> Result<(), GroupError> {
        let fenced = |reason: &str| GroupError::Fenced {
            group: self.name.clone(),
            member: member.to_string(),
            reason: reason.to_string(),
        };
        let m = self
            .members
            .get(member)
            .ok_or_else(|| fenced("it is no longer a member"))?;
        if m.epoch != epoch {
            return Err(fenced(&format!(
                "epoch {epoch} is stale (current {})",
                m.epoch
            )));
        }
        if !m.granted.contains(tp) {
            return Err(fenced(&format!(
                "it does not own {}/{}",
                tp.topic, tp.partition
            )));
        }
        Ok(())
    }

    /// Evicts members past their session timeout or max poll interval.
    pub fn expire(&mut self, now: Instant) {
        let settings = self.settings;
        let expired: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(_, m)| {
                now.duration_since(m.last_heartbeat) > settings.session_timeout
                    || now.duration_since(m.last_poll) > settings.max_poll_interval
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            tracing::warn!(group = %self.name, member = %id, "evicting member: session timeout or max poll interval exceeded");
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.rebalance("member evicted");
        }
    }

    fn member_mut(&mut self, member: &str) -> Result<&mut Member, GroupError> {
        let name = self.name.clone();
        if self.replaced.contains(member) {
            return Err(GroupError::FencedInstance {
                group: name,
                member: member.to_string(),
            });
        }
        self.members
            .get_mut(member)
            .ok_or_else(|| GroupError::UnknownMember {
                group: name,
                member: member.to_string(),
            })
    }

    fn rebalance(&mut self, why: &str) {
        let subscriptions: Vec<MemberSubscription> = self
            .members
            .iter()
            .map(|(id, m)| MemberSubscription {
                member: id.clone(),
                topics: m.topics.clone(),
                owned: m.owned.clone(),
            })
            .collect();
        self.target = assignor::assign(self.settings.assignor, &subscriptions, &self.partitions);
        self.generation += 1;
        self.barrier = self.settings.protocol == Protocol::Eager;
        self.dirty = true;
        tracing::info!(group = %self.name, generation = self.generation, members = self.members.len(), "rebalance: {why}");
    }
}

#[cfg(test)]
mod tests;
