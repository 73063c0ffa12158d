//! Consumer groups of the KIP-848 protocol (ConsumerGroupHeartbeat, which
//! librdkafka speaks with `group.protocol=consumer`), mapped onto weir's own
//! coordinator ([`crate::group::Groups`]), which already works the KIP-848
//! way: it computes each member's target with the group's assignor whenever
//! membership or subscriptions change, and a member converges on it by
//! reporting what it owns.
//!
//! The mapping: a Kafka member id names one weir member (weir makes its own
//! ids); joining is epoch 0, leaving -1, and a static member's temporary
//! leave -2 (its weir member keeps its partitions until its instance rejoins
//! or its session times out); the member epoch is the weir generation at
//! which the member last converged; subscribed topic names and a regex
//! (matched whole, against every topic but the internal `__…` ones, again
//! at each heartbeat so new topics join) become the weir member's topics
//! (only those that exist); the server assignor `uniform` is weir's
//! cooperative-sticky and `range` its range (the first member's choice
//! holds while the group has members); every heartbeat is a weir `sync`
//! with the partitions the member reports owning (`topic_partitions`, by
//! topic id), and the session timeout is weir's.
//!
//! Invariants:
//! - a member's epoch moves on to the group's generation only once it owns
//!   nothing outside its grant: while it still has partitions to revoke it
//!   keeps its epoch and is sent only what it keeps (KIP-848's unrevoked
//!   state), so its last commits of the revoked partitions go through, and
//!   weir's coordinator withholds a partition from its next owner until the
//!   previous owner reports it revoked: no partition has two owners;
//! - a heartbeat must carry the member's epoch, or its previous one when
//!   the last answer was lost (and it owns nothing it was not sent); any
//!   other epoch is FENCED_MEMBER_EPOCH, and the member is removed (it
//!   rejoins with epoch 0);
//! - an OffsetCommit must carry the member's epoch, or its previous one for
//!   partitions it still owns (a commit racing the heartbeat that moved
//!   the epoch on); anything else is STALE_MEMBER_EPOCH;
//! - a new incarnation of a static member (same `instance_id`) takes the
//!   old one's place and partitions; the old member id is then refused with
//!   UNRELEASED_INSTANCE_ID, which stops that client for good;
//! - a group is either classic or consumer-protocol while it has members:
//!   a member of the other kind, or a weir processor's group, is refused
//!   with INCONSISTENT_GROUP_PROTOCOL.
//!
//! Lock order: the map of consumer groups, then one consumer group, then a
//! classic group's slot or weir's coordinator.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{GroupsError, KafkaGroups};
use crate::group::{
    AssignorKind, GroupError, GroupSettings, Groups, MemberId, Protocol, TopicPartition,
};
use crate::log::Log;

mod describe;
mod wire;

use wire::Ask;
pub use wire::{assignor, heartbeat};

/// Kafka's `group.consumer.heartbeat.interval.ms` and
/// `group.consumer.session.timeout.ms`: how often members heartbeat, and
/// how long one may stay silent before weir drops it.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerTimeouts {
    pub heartbeat_interval: Duration,
    pub session_timeout: Duration,
}

impl Default for ConsumerTimeouts {
    /// A shorter heartbeat than Kafka's 5 s (one node, few members: a
    /// rebalance settles sooner) and Kafka's session timeout of 45 s.
    fn default() -> Self {
        ConsumerTimeouts {
            heartbeat_interval: Duration::from_secs(1),
            session_timeout: Duration::from_secs(45),
        }
    }
}

/// One consumer-protocol group's Kafka members.
#[derive(Default)]
pub(super) struct ConsumerGroup {
    pub(super) members: BTreeMap<String, Member>,
    /// The weir member ids made here, to tell this group's weir members
    /// (left static ones included) from a weir processor's.
    weir_ids: BTreeSet<MemberId>,
    /// Kafka member ids that a newer incarnation of their static instance
    /// replaced.
    replaced: BTreeSet<String>,
}

/// One Kafka member and its weir member.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) weir_id: MemberId,
    pub(super) instance_id: Option<String>,
    pub(super) epoch: i32,
    /// The epoch before the last change, accepted from a member whose last
    /// answer got lost, and on commits of partitions it still owns.
    previous_epoch: i32,
    /// The subscription as asked (topics that do not exist included).
    pub(super) names: Vec<String>,
    pub(super) regex: Option<String>,
    /// The existing topics the weir member subscribes to.
    pub(super) topics: Vec<String>,
    /// What the member last reported owning.
    owned: Vec<TopicPartition>,
    /// The assignment last sent (`None`: nothing sent yet).
    pub(super) sent: Option<Vec<TopicPartition>>,
    pub(super) assignor: Option<String>,
    pub(super) client_id: String,
    pub(super) client_host: String,
    pub(super) rack_id: Option<String>,
}

/// What a heartbeat answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    pub member_id: String,
    pub epoch: i32,
    /// Sent when it changed, on a join, and on a full request.
    pub assignment: Option<Vec<TopicPartition>>,
}

/// The client of a heartbeat, as ConsumerGroupDescribe shows it.
pub struct Client<'a> {
    pub id: &'a str,
    pub host: &'a str,
}

impl Member {
    /// Syncs with weir's coordinator and works out the answer (see the
    /// module's invariants).
    fn sync(&mut self, groups: &Groups, group: &str, full: bool) -> Result<Beat, GroupError> {
        let grant = groups.sync(group, &self.weir_id, &self.owned)?;
        let revoking = self.owned.iter().any(|tp| !grant.partitions.contains(tp));
        let assignment = if revoking {
            self.owned
                .iter()
                .filter(|tp| grant.partitions.contains(tp))
                .cloned()
                .collect()
        } else {
            let epoch = (grant.epoch as i32).max(1);
            if epoch != self.epoch {
                self.previous_epoch = self.epoch;
                self.epoch = epoch;
            }
            grant.partitions
        };
        let send = full || self.sent.as_ref() != Some(&assignment);
        if send {
            self.sent = Some(assignment.clone());
        }
        Ok(Beat {
            member_id: String::new(),
            epoch: self.epoch,
            assignment: send.then_some(assignment),
        })
    }

    /// Whether every partition of `partitions` was in the last assignment.
    fn was_sent(&self, partitions: &[TopicPartition]) -> bool {
        partitions
            .iter()
            .all(|tp| self.sent.as_ref().is_some_and(|s| s.contains(tp)))
    }
}

/// The existing topics a subscription names or matches, sorted.
fn resolve(log: &Log, names: &[String], regex: Option<&str>) -> Vec<String> {
    let mut topics: BTreeSet<String> = names
        .iter()
        .filter(|n| log.partition_count(n).is_ok())
        .cloned()
        .collect();
    if let Some(re) = regex.and_then(|r| compile(r).ok()) {
        for (topic, _) in log.topics() {
            if !topic.starts_with("__") && re.is_match(&topic) {
                topics.insert(topic);
            }
        }
    }
    topics.into_iter().collect()
}

/// A subscription regex, matched against whole topic names as Kafka does.
fn compile(regex: &str) -> Result<regex::Regex, GroupsError> {
    regex::Regex::new(&format!("^(?:{regex})$")).map_err(|e| GroupsError::InvalidRegex {
        regex: regex.to_string(),
        reason: e.to_string(),
    })
}

impl KafkaGroups {
    /// The consumer-protocol group `name`, if a member ever joined it here.
    pub(super) fn consumer(&self, name: &str) -> Option<Arc<Mutex<ConsumerGroup>>> {
        self.consumers
            .lock()
            .expect("consumer groups lock")
            .get(name)
            .cloned()
    }

    /// Whether `name` is a consumer-protocol group with members.
    pub(super) fn consumer_has_members(&self, name: &str) -> bool {
        self.consumer(name).is_some_and(|g| {
            let g = g.lock().expect("consumer group lock");
            !g.members.is_empty()
        })
    }

    /// One ConsumerGroupHeartbeat: a join, a leave or a heartbeat.
    pub(super) fn beat(
        &self,
        mut ask: Ask,
        version: i16,
        client: Client,
    ) -> Result<Beat, GroupsError> {
        crate::name::validate("group", &ask.group)
            .map_err(|_| GroupsError::InvalidGroupId(ask.group.clone()))?;
        if ask.instance_id.as_deref() == Some("") {
            return Err(GroupsError::InvalidRequest(
                "InstanceId can't be empty".into(),
            ));
        }
        if ask.member_id.is_empty() {
            // v0 lets the coordinator name a joining member; v1 (KIP-1082)
            // has the client do it.
            if version >= 1 || ask.epoch != 0 {
                return Err(GroupsError::InvalidRequest(
                    "MemberId can't be empty".into(),
                ));
            }
            ask.member_id = uuid::Uuid::new_v4().to_string();
        }
        if let Some(name) = &ask.assignor {
            assignor(name)?;
        }
        if let Some(Some(regex)) = &ask.regex {
            compile(regex)?;
        }
        let beat = match ask.epoch {
            0 => self.join_consumer(&ask, client),
            -1 | -2 => self.leave_consumer(&ask),
            e if e > 0 => self.heartbeat_consumer(&ask),
            e => Err(GroupsError::InvalidRequest(format!(
                "MemberEpoch {e} is invalid"
            ))),
        }?;
        Ok(Beat {
            member_id: ask.member_id,
            ..beat
        })
    }

    fn join_consumer(&self, ask: &Ask, client: Client) -> Result<Beat, GroupsError> {
        let invalid = |m: &str| Err(GroupsError::InvalidRequest(m.to_string()));
        if ask.rebalance_timeout_ms < 0 {
            return invalid("RebalanceTimeoutMs must be provided when joining");
        }
        if ask.names.is_none() && ask.regex.is_none() {
            return invalid(
                "SubscribedTopicNames or SubscribedTopicRegex must be set when joining",
            );
        }
        if ask.owned.as_ref().is_some_and(|o| !o.is_empty()) {
            return invalid("TopicPartitions must be empty when (re-)joining");
        }
        let name = ask.group.as_str();
        if let Some(slot) = self.existing(name) {
            let classic = slot.with(|g| {
                g.tick(Instant::now());
                !g.is_empty()
            });
            if classic {
                return Err(GroupsError::InconsistentProtocol(format!(
                    "group {name:?} is a classic group with members: a consumer-protocol member cannot join it"
                )));
            }
        }
        let group = self
            .consumers
            .lock()
            .expect("consumer groups lock")
            .entry(name.to_string())
            .or_default()
            .clone();
        let mut group = group.lock().expect("consumer group lock");
        let coordinator = self.broker.groups();
        if let Some(live) = coordinator.describe(name) {
            group
                .weir_ids
                .retain(|id| live.members.iter().any(|m| &m.member == id));
            if live
                .members
                .iter()
                .any(|m| !m.restored && !group.weir_ids.contains(&m.member))
            {
                return Err(GroupsError::InconsistentProtocol(format!(
                    "group {name:?} is run by a weir processor"
                )));
            }
        }
        // A rejoin under a known id starts afresh.
        if let Some(old) = group.members.remove(&ask.member_id)
            && (old.instance_id.is_none() || old.instance_id != ask.instance_id)
        {
            coordinator.leave(name, &old.weir_id);
        }
        if let Some(instance) = &ask.instance_id {
            let older: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| m.instance_id.as_ref() == Some(instance))
                .map(|(id, _)| id.clone())
                .collect();
            for id in older {
                tracing::info!(group = %name, member = %id, %instance, "a newer incarnation replaces a static member");
                group.members.remove(&id);
                group.replaced.insert(id);
            }
        }
        let names = ask.names.clone().unwrap_or_default();
        let regex = ask.regex.clone().flatten();
        let log = self.broker.log();
        let topics = resolve(log, &names, regex.as_deref());
        let settings = GroupSettings {
            protocol: Protocol::Cooperative,
            assignor: ask
                .assignor
                .as_deref()
                .map_or(Ok(AssignorKind::CooperativeSticky), assignor)?,
            session_timeout: self.timeouts.session_timeout,
            max_poll_interval: self.timeouts.session_timeout,
        };
        let weir_id = coordinator
            .join(name, ask.instance_id.as_deref(), &topics, settings)
            .map_err(GroupsError::Coordinator)?;
        group.weir_ids.insert(weir_id.clone());
        group.replaced.remove(&ask.member_id);
        let mut member = Member {
            weir_id,
            instance_id: ask.instance_id.clone(),
            epoch: 0,
            previous_epoch: 0,
            names,
            regex,
            topics,
            owned: Vec::new(),
            sent: None,
            assignor: ask.assignor.clone(),
            client_id: client.id.to_string(),
            client_host: client.host.to_string(),
            rack_id: ask.rack_id.clone(),
        };
        let beat = member
            .sync(coordinator, name, true)
            .map_err(GroupsError::Coordinator)?;
        tracing::info!(group = %name, member = %ask.member_id, weir = %member.weir_id, epoch = beat.epoch, "consumer-protocol member joined");
        group.members.insert(ask.member_id.clone(), member);
        Ok(beat)
    }

    fn leave_consumer(&self, ask: &Ask) -> Result<Beat, GroupsError> {
        if ask.epoch == -2 && ask.instance_id.is_none() {
            return Err(GroupsError::InvalidRequest(
                "a static member's leave (epoch -2) needs its InstanceId".into(),
            ));
        }
        let unknown = || GroupsError::UnknownMember(ask.member_id.clone());
        let group = self.consumer(&ask.group).ok_or_else(unknown)?;
        let mut group = group.lock().expect("consumer group lock");
        let member = group.members.remove(&ask.member_id).ok_or_else(unknown)?;
        if ask.epoch == -1 || member.instance_id.is_none() {
            self.broker.groups().leave(&ask.group, &member.weir_id);
            group.weir_ids.remove(&member.weir_id);
        }
        tracing::info!(group = %ask.group, member = %ask.member_id, epoch = ask.epoch, "consumer-protocol member left");
        Ok(Beat {
            member_id: String::new(),
            epoch: ask.epoch,
            assignment: None,
        })
    }

    fn heartbeat_consumer(&self, ask: &Ask) -> Result<Beat, GroupsError> {
        let unknown = || GroupsError::UnknownMember(ask.member_id.clone());
        let group = self.consumer(&ask.group).ok_or_else(unknown)?;
        let mut group = group.lock().expect("consumer group lock");
        if group.replaced.contains(&ask.member_id) {
            return Err(GroupsError::UnreleasedInstance(
                ask.instance_id.clone().unwrap_or_default(),
            ));
        }
        let name = ask.group.as_str();
        let coordinator = self.broker.groups();
        let member = group.members.get_mut(&ask.member_id).ok_or_else(unknown)?;
        let lost_answer = ask.epoch == member.previous_epoch
            && member.previous_epoch > 0
            && ask.owned.as_ref().is_none_or(|o| member.was_sent(o));
        if ask.epoch != member.epoch && !lost_answer {
            let current = member.epoch;
            let weir_id = member.weir_id.clone();
            group.members.remove(&ask.member_id);
            coordinator.leave(name, &weir_id);
            group.weir_ids.remove(&weir_id);
            return Err(GroupsError::FencedMemberEpoch {
                given: ask.epoch,
                current,
            });
        }
        if let Some(owned) = &ask.owned {
            member.owned = owned.clone();
        }
        if let Some(names) = &ask.names {
            member.names = names.clone();
        }
        if let Some(regex) = &ask.regex {
            member.regex = regex.clone();
        }
        if ask.assignor.is_some() {
            member.assignor = ask.assignor.clone();
        }
        let topics = resolve(self.broker.log(), &member.names, member.regex.as_deref());
        let full = ask.epoch != member.epoch || (ask.names.is_some() && ask.owned.is_some());
        let mut synced = Ok(());
        if topics != member.topics {
            synced = coordinator.subscribe(name, &member.weir_id, &topics);
            member.topics = topics;
        }
        let beat = synced.and_then(|()| member.sync(coordinator, name, full));
        match beat {
            Ok(beat) => Ok(beat),
            Err(e) => {
                let weir_id = member.weir_id.clone();
                group.members.remove(&ask.member_id);
                group.weir_ids.remove(&weir_id);
                Err(match e {
                    GroupError::UnknownMember { .. } | GroupError::UnknownGroup(_) => unknown(),
                    GroupError::FencedInstance { .. } => {
                        GroupsError::UnreleasedInstance(ask.instance_id.clone().unwrap_or_default())
                    }
                    e => GroupsError::Coordinator(e),
                })
            }
        }
    }

    /// Runs `write` if `member` at `epoch` may commit `partitions` of the
    /// consumer-protocol group `group`, holding the group's lock so no
    /// epoch moves in between; `None` when `group` is no consumer-protocol
    /// group with members (the classic rules apply).
    pub(super) fn consumer_commit<T>(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        partitions: &[TopicPartition],
        write: impl FnOnce() -> Result<T, GroupsError>,
    ) -> Option<Result<T, GroupsError>> {
        let group = self.consumer(group)?;
        let group = group.lock().expect("consumer group lock");
        if group.members.is_empty() {
            return None;
        }
        let Some(m) = group.members.get(member) else {
            return Some(Err(GroupsError::UnknownMember(member.to_string())));
        };
        let previous = m.previous_epoch > 0 && epoch == m.previous_epoch;
        if epoch != m.epoch && !(previous && m.was_sent(partitions)) {
            return Some(Err(GroupsError::StaleMemberEpoch {
                given: epoch,
                current: m.epoch,
            }));
        }
        Some(write())
    }
}

#[cfg(test)]
mod tests;
