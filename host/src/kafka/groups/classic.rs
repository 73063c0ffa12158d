//! One classic Kafka consumer group (the JoinGroup/SyncGroup protocol that
//! Kafka clients speak), as pure logic over an explicit clock (`now`): every
//! timing rule is tested without sleeping, and the coordinator above only
//! waits, locks and translates.
//!
//! The group moves through Kafka's phases: `Empty` → `PreparingRebalance`
//! (the join barrier: every member must join again, until its rebalance
//! timeout) → `CompletingRebalance` (a new generation, a protocol chosen by
//! the members' votes, a leader that computes the assignment client-side) →
//! `Stable` (the leader's SyncGroup handed each member its part). Invariants:
//! - the generation goes up exactly when a join barrier completes, and every
//!   member that gets a join result of a generation was in the group at it;
//! - a dynamic member that does not join again by the barrier's deadline is
//!   dropped; a static one (`group.instance.id`) is kept until its session
//!   times out, so a restart within the session is no rebalance;
//! - a static instance has one member id at a time: a new incarnation takes
//!   the old id's place (and assignment) and the old one is fenced;
//! - assignments are opaque bytes from the leader: cooperative-sticky and
//!   every other assignor live in the clients, and the group only allows the
//!   repeated rebalances they ask for.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::GroupsError;

mod barrier;
mod membership;

/// The session timeouts a member may ask for (Kafka's
/// `group.min.session.timeout.ms` is 6 s; shorter ones are allowed here for
/// quick tests and local use).
pub const MIN_SESSION: Duration = Duration::from_millis(1000);
pub const MAX_SESSION: Duration = Duration::from_secs(1800);

/// Where a group stands, by Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl Phase {
    /// The state name DescribeGroups and ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Empty => "Empty",
            Phase::PreparingRebalance => "PreparingRebalance",
            Phase::CompletingRebalance => "CompletingRebalance",
            Phase::Stable => "Stable",
        }
    }
}

/// A JoinGroup, as the group needs it.
#[derive(Debug, Clone)]
pub struct Join {
    /// Empty for a first join.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a dynamic member's first join only gets an id
    /// (MEMBER_ID_REQUIRED) and must join again with it.
    pub require_known_member: bool,
}

/// What a JoinGroup gets back once its barrier completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol_name: String,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol: the leader's
    /// input to the assignment (empty for followers).
    pub members: Vec<JoinedMember>,
    /// A static leader that rejoined a stable group: it must not assign
    /// again (JoinGroup v9).
    pub skip_assignment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// A JoinGroup either completes at once or waits for the barrier (poll it
/// with [`ClassicGroup::poll_join`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Joined {
    Done(JoinResult),
    Waiting(String),
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocol_type: String,
    protocols: Vec<(String, Bytes)>,
    /// What the leader assigned it at the last SyncGroup.
    assignment: Bytes,
    last_heartbeat: Instant,
    /// Has joined the barrier under way.
    joined: bool,
    /// The barrier's result, until the waiting JoinGroup takes it.
    join_result: Option<JoinResult>,
    /// Waits in SyncGroup for the leader's assignment: alive meanwhile.
    awaiting_sync: bool,
}

/// One classic group.
#[derive(Debug)]
pub struct ClassicGroup {
    pub name: String,
    phase: Phase,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// The member id of each static instance.
    statics: BTreeMap<String, String>,
    /// Ids handed out with MEMBER_ID_REQUIRED, until their join (or session
    /// timeout): the barrier waits for them.
    pending: BTreeMap<String, Instant>,
    /// When the barrier under way gives up on members that did not join.
    deadline: Option<Instant>,
}

impl ClassicGroup {
    pub fn new(name: &str) -> ClassicGroup {
        ClassicGroup {
            name: name.to_string(),
            phase: Phase::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            statics: BTreeMap::new(),
            pending: BTreeMap::new(),
            deadline: None,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn generation(&self) -> i32 {
        self.generation
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Handles a JoinGroup; `new_id` makes a fresh member id if one is needed.
    pub fn join(
        &mut self,
        join: Join,
        new_id: impl FnOnce(&str) -> String,
        now: Instant,
    ) -> Result<Joined, GroupsError> {
        self.tick(now);
        if join.session_timeout < MIN_SESSION || join.session_timeout > MAX_SESSION {
            return Err(GroupsError::InvalidSessionTimeout(
                join.session_timeout.as_millis() as i32,
            ));
        }
        self.check_protocols(&join)?;
        if join.member_id.is_empty() {
            let id = new_id(&join.client_id);
            let instance = join.instance_id.clone();
            if let Some(old) = instance.as_ref().and_then(|i| self.statics.get(i)).cloned() {
                return Ok(self.replace_static(old, id, join, now));
            }
            if instance.is_none() && join.require_known_member {
                self.pending.insert(id.clone(), now + join.session_timeout);
                return Err(GroupsError::MemberIdRequired(id));
            }
            self.add_member(id.clone(), join, now);
            return Ok(self.waiting(id, now));
        }
        let id = join.member_id.clone();
        if self.pending.remove(&id).is_some() {
            self.add_member(id.clone(), join, now);
            return Ok(self.waiting(id, now));
        }
        self.check_member(&id, join.instance_id.as_deref())?;
        let member = self.members.get_mut(&id).expect("checked");
        let same = member.protocols == join.protocols;
        member.update(&join, now);
        match self.phase {
            Phase::PreparingRebalance => {
                member.joined = true;
                Ok(self.waiting(id, now))
            }
            Phase::CompletingRebalance | Phase::Stable
                if same && (self.phase == Phase::CompletingRebalance || !self.is_leader(&id)) =>
            {
                // Nothing changed: the current generation's result again.
                Ok(Joined::Done(self.result_for(&id, false)))
            }
            _ => {
                self.prepare_rebalance(now);
                self.members.get_mut(&id).expect("checked").joined = true;
                Ok(self.waiting(id, now))
            }
        }
    }

    /// The result of a waiting JoinGroup, once its barrier completed
    /// (`None`: still waiting).
    pub fn poll_join(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<Option<JoinResult>, GroupsError> {
        self.tick(now);
        self.check_member(member_id, instance_id)?;
        let member = self.members.get_mut(member_id).expect("checked");
        if let Some(result) = member.join_result.take() {
            return Ok(Some(result));
        }
        if self.phase == Phase::PreparingRebalance && member.joined {
            return Ok(None);
        }
        Err(GroupsError::RebalanceInProgress)
    }

    /// Handles a SyncGroup: the leader hands in every member's assignment;
    /// `None` means wait for the leader's (poll with [`Self::poll_sync`]).
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol: (Option<&str>, Option<&str>),
        assignments: BTreeMap<String, Bytes>,
        now: Instant,
    ) -> Result<Option<Bytes>, GroupsError> {
        self.tick(now);
        self.check_member(member_id, instance_id)?;
        self.check_generation(generation)?;
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return Err(GroupsError::InconsistentProtocol(
                "SyncGroup names another protocol than the group's".into(),
            ));
        }
        let leader = self.is_leader(member_id);
        let member = self.members.get_mut(member_id).expect("checked");
        member.last_heartbeat = now;
        match self.phase {
            Phase::PreparingRebalance | Phase::Empty => Err(GroupsError::RebalanceInProgress),
            Phase::Stable => Ok(Some(member.assignment.clone())),
            Phase::CompletingRebalance if leader => {
                for (id, m) in self.members.iter_mut() {
                    m.assignment = assignments.get(id).cloned().unwrap_or_default();
                    m.awaiting_sync = false;
                }
                self.phase = Phase::Stable;
                tracing::info!(group = %self.name, generation = self.generation, "classic group stable");
                Ok(Some(self.members[member_id].assignment.clone()))
            }
            Phase::CompletingRebalance => {
                member.awaiting_sync = true;
                Ok(None)
            }
        }
    }

    /// The assignment of a waiting SyncGroup once the leader's arrived.
    pub fn poll_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<Option<Bytes>, GroupsError> {
        self.tick(now);
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(GroupsError::RebalanceInProgress);
        }
        let member = self.members.get_mut(member_id).expect("checked");
        match self.phase {
            Phase::Stable => {
                member.awaiting_sync = false;
                Ok(Some(member.assignment.clone()))
            }
            Phase::CompletingRebalance => Ok(None),
            _ => {
                member.awaiting_sync = false;
                Err(GroupsError::RebalanceInProgress)
            }
        }
    }

    /// Handles a Heartbeat: REBALANCE_IN_PROGRESS tells the member to join
    /// again.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupsError> {
        self.tick(now);
        self.check_member(member_id, instance_id)?;
        self.members
            .get_mut(member_id)
            .expect("checked")
            .last_heartbeat = now;
        self.check_generation(generation)?;
        match self.phase {
            Phase::PreparingRebalance => Err(GroupsError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles one member of a LeaveGroup (by member id, or by instance id
    /// for static members); returns the member id that left.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<String, GroupsError> {
        self.tick(now);
        let id = match instance_id {
            Some(instance) => {
                let id = self
                    .statics
                    .get(instance)
                    .cloned()
                    .ok_or_else(|| GroupsError::UnknownMember(member_id.to_string()))?;
                if !member_id.is_empty() && member_id != id {
                    return Err(GroupsError::FencedInstance {
                        member: member_id.to_string(),
                        instance: instance.to_string(),
                    });
                }
                id
            }
            None => {
                if self.pending.remove(member_id).is_some() {
                    return Ok(member_id.to_string());
                }
                self.check_member(member_id, None)?;
                member_id.to_string()
            }
        };
        tracing::info!(group = %self.name, member = %id, "member left");
        self.remove_member(&id, now);
        Ok(id)
    }

    /// Checks an OffsetCommit's member and generation. A commit with
    /// generation -1 (a simple consumer, an admin tool; a consumer-protocol
    /// client that only assigns partitions sends its member id too) is
    /// allowed while the group has no members, as Kafka allows it.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), GroupsError> {
        self.tick(now);
        if generation < 0 && self.members.is_empty() {
            return Ok(());
        }
        self.check_member(member_id, instance_id)?;
        self.check_generation(generation)?;
        if self.phase == Phase::CompletingRebalance {
            return Err(GroupsError::RebalanceInProgress);
        }
        // A commit is a sign of life too.
        self.members
            .get_mut(member_id)
            .expect("checked")
            .last_heartbeat = now;
        Ok(())
    }

    /// The members, with their metadata for the chosen protocol.
    pub fn members(&self) -> Vec<MemberView> {
        self.members
            .iter()
            .map(|(id, m)| MemberView {
                member_id: id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: self.metadata(m),
                assignment: m.assignment.clone(),
            })
            .collect()
    }

    /// Applies the clock: members past their session timeout and ids never
    /// used are dropped, and a barrier whose members have all joined, or
    /// whose deadline passed, completes.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline >= now);
        let phase = self.phase;
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                let waiting = (phase == Phase::PreparingRebalance && m.joined)
                    || (phase == Phase::CompletingRebalance && m.awaiting_sync);
                !waiting && now.duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            tracing::warn!(group = %self.name, member = %id, "evicting member: session timeout");
            self.remove_member(&id, now);
        }
        self.maybe_complete_join(now);
    }

    /// The earliest moment the clock changes something by itself (a
    /// barrier's deadline), for waiters to wake up at.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests;
