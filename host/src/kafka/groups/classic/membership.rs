//! Who is in a classic group: the checks every request passes (member,
//! static instance, generation, protocols) and how members come, are
//! replaced (a static instance's new incarnation) and go.

use std::time::Instant;

use bytes::Bytes;

use super::{ClassicGroup, Join, Joined, Member, Phase};
use crate::kafka::groups::error::GroupsError;

impl ClassicGroup {
    pub(super) fn check_protocols(&self, join: &Join) -> Result<(), GroupsError> {
        if join.protocol_type.is_empty() || join.protocols.is_empty() {
            return Err(GroupsError::InconsistentProtocol(
                "a member must name a protocol type and at least one protocol".into(),
            ));
        }
        // A rejoining member is measured against the others only.
        let others: Vec<&Member> = self
            .members
            .iter()
            .filter(|(id, m)| {
                **id != join.member_id
                    && !(join.instance_id.is_some() && m.instance_id == join.instance_id)
            })
            .map(|(_, m)| m)
            .collect();
        if others.is_empty() {
            return Ok(());
        }
        if others.iter().any(|m| m.protocol_type != join.protocol_type) {
            return Err(GroupsError::InconsistentProtocol(format!(
                "the group's members speak protocol type {:?}, not {:?}",
                others[0].protocol_type, join.protocol_type
            )));
        }
        let common = join.protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        });
        if !common {
            return Err(GroupsError::InconsistentProtocol(
                "no protocol (assignor) in common with the group's members".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupsError> {
        if let Some(instance) = instance_id
            && let Some(current) = self.statics.get(instance)
            && current != member_id
        {
            return Err(GroupsError::FencedInstance {
                member: member_id.to_string(),
                instance: instance.to_string(),
            });
        }
        match self.members.get(member_id) {
            None => Err(GroupsError::UnknownMember(member_id.to_string())),
            Some(m) if instance_id.is_some() && m.instance_id.as_deref() != instance_id => {
                Err(GroupsError::FencedInstance {
                    member: member_id.to_string(),
                    instance: instance_id.unwrap_or_default().to_string(),
                })
            }
            Some(_) => Ok(()),
        }
    }

    pub(super) fn check_generation(&self, generation: i32) -> Result<(), GroupsError> {
        if generation != self.generation {
            return Err(GroupsError::IllegalGeneration {
                given: generation,
                current: self.generation,
            });
        }
        Ok(())
    }

    pub(super) fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub(super) fn add_member(&mut self, id: String, join: Join, now: Instant) {
        if let Some(instance) = &join.instance_id {
            self.statics.insert(instance.clone(), id.clone());
        }
        let mut member = Member {
            instance_id: join.instance_id.clone(),
            client_id: String::new(),
            client_host: String::new(),
            session_timeout: join.session_timeout,
            rebalance_timeout: join.rebalance_timeout,
            protocol_type: String::new(),
            protocols: Vec::new(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            joined: true,
            join_result: None,
            awaiting_sync: false,
        };
        member.update(&join, now);
        tracing::info!(group = %self.name, member = %id, instance = ?join.instance_id, "member joins");
        self.members.insert(id.clone(), member);
        if self.phase != Phase::PreparingRebalance {
            self.prepare_rebalance(now);
        } else {
            self.extend_deadline(now);
        }
        // Opening the barrier asked everyone to join again; this one has.
        self.members.get_mut(&id).expect("inserted").joined = true;
    }

    /// A static instance's new incarnation takes its old member's place. In a
    /// settled group with the same protocols, that is no rebalance: it gets
    /// the current generation and, at SyncGroup, the old assignment.
    pub(super) fn replace_static(
        &mut self,
        old: String,
        id: String,
        join: Join,
        now: Instant,
    ) -> Joined {
        let mut member = self.members.remove(&old).expect("statics name members");
        // As in Kafka, only a change of the group's protocol is a reason to
        // rebalance: the new incarnation's metadata (which owns nothing yet)
        // is simply kept.
        let same = self
            .protocol
            .as_ref()
            .is_some_and(|p| join.protocols.iter().any(|(n, _)| n == p));
        member.update(&join, now);
        member.join_result = None;
        let instance = join.instance_id.clone().expect("a static member");
        tracing::info!(group = %self.name, member = %id, replaces = %old, %instance, "static member rejoined");
        self.statics.insert(instance, id.clone());
        if self.leader.as_deref() == Some(old.as_str()) {
            self.leader = Some(id.clone());
        }
        self.members.insert(id.clone(), member);
        match self.phase {
            Phase::CompletingRebalance | Phase::Stable if same => {
                let leader = self.is_leader(&id);
                Joined::Done(self.result_for(&id, leader))
            }
            Phase::PreparingRebalance => {
                self.members.get_mut(&id).expect("inserted").joined = true;
                self.waiting(id, now)
            }
            _ => {
                self.prepare_rebalance(now);
                self.members.get_mut(&id).expect("inserted").joined = true;
                self.waiting(id, now)
            }
        }
    }

    pub(super) fn remove_member(&mut self, id: &str, now: Instant) {
        let Some(member) = self.members.remove(id) else {
            return;
        };
        if let Some(instance) = member.instance_id
            && self.statics.get(&instance).map(String::as_str) == Some(id)
        {
            self.statics.remove(&instance);
        }
        if self.phase != Phase::Empty {
            if self.phase != Phase::PreparingRebalance {
                self.prepare_rebalance(now);
            }
            self.maybe_complete_join(now);
        }
    }
}
