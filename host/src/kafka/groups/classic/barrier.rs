//! The join barrier of a classic group: opening it (everyone must join
//! again), its deadline, and closing it into a new generation with a chosen
//! protocol, a leader and each member's join result.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;

use super::{ClassicGroup, Join, JoinResult, Joined, JoinedMember, Member, Phase};

impl ClassicGroup {
    pub(super) fn waiting(&mut self, id: String, now: Instant) -> Joined {
        self.maybe_complete_join(now);
        Joined::Waiting(id)
    }

    /// Opens the join barrier: every member must join again.
    pub(super) fn prepare_rebalance(&mut self, now: Instant) {
        self.phase = Phase::PreparingRebalance;
        for m in self.members.values_mut() {
            m.joined = false;
            m.awaiting_sync = false;
        }
        self.deadline = None;
        self.extend_deadline(now);
        tracing::info!(group = %self.name, generation = self.generation, "classic group rebalancing");
    }

    pub(super) fn extend_deadline(&mut self, now: Instant) {
        let longest = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let deadline = now + longest;
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.max(deadline)));
    }

    pub(super) fn maybe_complete_join(&mut self, now: Instant) {
        if self.phase != Phase::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.joined) && self.pending.is_empty();
        if all_joined || self.deadline.is_some_and(|d| now >= d) {
            self.complete_join(now);
        }
    }

    /// Closes the barrier: dynamic members that did not join are dropped,
    /// and the rest get the new generation.
    pub(super) fn complete_join(&mut self, now: Instant) {
        let late: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| !m.joined && m.instance_id.is_none())
            .map(|(id, _)| id.clone())
            .collect();
        for id in &late {
            tracing::warn!(group = %self.name, member = %id, "dropping a member that did not join again in time");
            self.members.remove(id);
        }
        self.pending.clear();
        self.deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.phase = Phase::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone());
        self.protocol = Some(self.select_protocol());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.get(l).is_some_and(|m| m.joined))
        {
            self.leader = self
                .members
                .iter()
                .find(|(_, m)| m.joined)
                .map(|(id, _)| id.clone());
        }
        self.phase = Phase::CompletingRebalance;
        let joined: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| m.joined)
            .map(|(id, _)| id.clone())
            .collect();
        for id in joined {
            let result = self.result_for(&id, false);
            let m = self.members.get_mut(&id).expect("a member");
            m.join_result = Some(result);
            m.last_heartbeat = now;
        }
        tracing::info!(group = %self.name, generation = self.generation, members = self.members.len(),
            protocol = ?self.protocol, leader = ?self.leader, "classic group joined");
    }

    /// The protocol every member supports that most members prefer (each
    /// votes for its first supported one; ties go to the name first in
    /// order).
    pub(super) fn select_protocol(&self) -> String {
        let candidates: BTreeSet<&String> = self
            .members
            .values()
            .map(|m| m.protocols.iter().map(|(n, _)| n).collect::<BTreeSet<_>>())
            .reduce(|a, b| a.intersection(&b).copied().collect())
            .unwrap_or_default();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        let best = votes.values().copied().max().unwrap_or(0);
        votes
            .into_iter()
            .find(|(_, v)| *v == best)
            .map(|(name, _)| name.clone())
            .unwrap_or_default()
    }

    pub(super) fn metadata(&self, member: &Member) -> Bytes {
        member
            .protocols
            .iter()
            .find(|(n, _)| Some(n) == self.protocol.as_ref())
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    pub(super) fn result_for(&self, id: &str, skip_assignment: bool) -> JoinResult {
        let leader = self.is_leader(id);
        JoinResult {
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_name: self.protocol.clone().unwrap_or_default(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_string(),
            members: if leader {
                self.members
                    .iter()
                    .map(|(id, m)| JoinedMember {
                        member_id: id.clone(),
                        instance_id: m.instance_id.clone(),
                        metadata: self.metadata(m),
                    })
                    .collect()
            } else {
                Vec::new()
            },
            skip_assignment: skip_assignment && leader,
        }
    }
}

impl Member {
    pub(super) fn update(&mut self, join: &Join, now: Instant) {
        self.client_id = join.client_id.clone();
        self.client_host = join.client_host.clone();
        self.session_timeout = join.session_timeout;
        self.rebalance_timeout = join.rebalance_timeout;
        self.protocol_type = join.protocol_type.clone();
        self.protocols = join.protocols.clone();
        self.last_heartbeat = now;
    }
}
