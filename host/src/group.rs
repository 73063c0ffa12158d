//! The group coordinator: membership, generations, assignment and fencing for
//! every consumer group of this host, in-process.
//!
//! The model follows KIP-848 rather than the classic JoinGroup/SyncGroup dance:
//! the coordinator computes the target assignment itself (with the group's
//! assignor) whenever membership changes, and each member converges on it by
//! syncing at every poll: it reports what it owns and gets back what it may own.
//! That keeps the protocol to two calls (`sync`, `heartbeat`) that cannot
//! deadlock, and makes cooperative rebalancing natural: under the cooperative
//! protocol a member is told to revoke only the partitions that move, keeps
//! processing the rest, and a moved partition is granted to its new owner as soon
//! as the old owner's next sync confirms the revocation. The eager protocol is the
//! same machine with a barrier: nobody gets anything until everyone has revoked
//! everything.
//!
//! Liveness has two clocks, as in Kafka: heartbeats (every sync counts as one,
//! and a member sends them while its guest runs a batch) against the session
//! timeout, and polls against the max poll interval, so a guest stuck in a batch loses its partitions even though its
//! process is alive. Commits are fenced: they go through [`Groups::commit`], which
//! checks member, epoch and ownership under the group's lock and only then runs
//! the commit, so a zombie can neither append emits nor move an offset.
//!
//! Membership lives in memory, and each group's record (generation, settings,
//! static members and their assignment; `record.rs`) is kept in
//! `__consumer_offsets` at every rebalance and restored when the broker opens,
//! so a static member of a restarted host takes its partitions back without a
//! rebalance and the generation goes on. Committed offsets are durable
//! (`offsets`).

pub mod assignor;
mod record;
mod state;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use assignor::{AssignorKind, MemberId, TopicPartition};
pub use state::{Grant, GroupSettings};

use crate::log::{Log, LogError};
use crate::offsets::Offsets;
use record::GroupRecord;
use state::GroupState;

/// How a group rebalances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Every member revokes every partition, then all are reassigned.
    Eager,
    /// Only partitions that move are revoked (KIP-429); the rest keep flowing.
    #[default]
    Cooperative,
}

impl Protocol {
    pub const ALL: [Protocol; 2] = [Protocol::Eager, Protocol::Cooperative];

    /// The name in flags, JSON and `weir.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Eager => "eager",
            Protocol::Cooperative => "cooperative",
        }
    }

    /// The inverse of [`Protocol::name`].
    pub fn parse(s: &str) -> Option<Protocol> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

crate::keyword::keywords!(Protocol);

/// Everything that can go wrong in a group.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("member {member} is not in group {group} (evicted, or replaced by a newer instance)")]
    UnknownMember { group: String, member: String },
    #[error(
        "member {member} of group {group} was replaced by a newer incarnation of its static instance"
    )]
    FencedInstance { group: String, member: String },
    #[error("commit by {member} to group {group} rejected: {reason}")]
    Fenced {
        group: String,
        member: String,
        reason: String,
    },
    #[error("group {group} has {members} active member(s); stop them before resetting its offsets")]
    Active { group: String, members: usize },
    #[error(
        "group {group} has no committed offset for {topic}/{partition} and its reset policy is none"
    )]
    NoOffset {
        group: String,
        topic: String,
        partition: u32,
    },
    #[error("unknown group {0:?}")]
    UnknownGroup(String),
    #[error("group {0:?} has no committed offsets and no live members")]
    NoCommits(String),
    #[error("log")]
    Log(#[from] LogError),
    #[error("committed offsets")]
    Offsets(#[from] crate::offsets::OffsetsError),
    #[error("guest state")]
    State(#[from] crate::state::StateError),
}

/// A member as `describe` shows it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member: MemberId,
    pub instance_id: Option<String>,
    pub epoch: u32,
    pub assigned: Vec<TopicPartition>,
    /// Restored from the group's record and not yet rejoined by its instance.
    pub restored: bool,
}

/// A live group as `describe` shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub generation: u32,
    pub protocol: Protocol,
    pub assignor: AssignorKind,
    pub members: Vec<MemberDescription>,
    /// Every topic some member subscribes to.
    pub topics: Vec<String>,
}

/// Every group of this host.
pub struct Groups {
    log: Arc<Log>,
    /// Where each group's record is kept.
    offsets: Arc<Offsets>,
    groups: Mutex<BTreeMap<String, Arc<Mutex<GroupState>>>>,
}

impl Groups {
    /// The coordinator of `log`'s groups, with each group restored from its
    /// record in `offsets` (a record that cannot be read is logged and
    /// skipped: its group starts afresh, as it did before records existed).
    pub fn open(log: Arc<Log>, offsets: Arc<Offsets>) -> Groups {
        let now = Instant::now();
        let mut groups = BTreeMap::new();
        for (name, bytes) in offsets.group_records() {
            let record = match GroupRecord::decode(&bytes) {
                Ok(record) => record,
                Err(e) => {
                    tracing::warn!(group = %name, error = %e, "ignoring an unreadable group record");
                    continue;
                }
            };
            let mut partitions = BTreeMap::new();
            for m in &record.members {
                for topic in &m.topics {
                    if let Ok(count) = log.partition_count(topic) {
                        partitions.insert(topic.clone(), count);
                    }
                }
            }
            let state = GroupState::restore(&name, &record, &partitions, now);
            groups.insert(name, Arc::new(Mutex::new(state)));
        }
        Groups {
            log,
            offsets,
            groups: Mutex::new(groups),
        }
    }

    /// Forgets `group` (its members, restored ones included): the group of a
    /// deleted processor, whose record is removed with its offsets.
    pub fn forget(&self, group: &str) {
        self.groups.lock().expect("groups lock").remove(group);
    }

    /// Writes the group's record if a rebalance changed it. A failed write is
    /// logged and retried at the next call: membership itself is in memory,
    /// and a stale record only costs a rebalance after a restart.
    fn save(&self, state: &mut GroupState) {
        if !state.dirty {
            return;
        }
        match self
            .offsets
            .record_group(&state.name, &state.record().encode())
        {
            Ok(()) => state.dirty = false,
            Err(e) => {
                tracing::warn!(group = %state.name, error = %crate::error::chain(&e), "could not record the group")
            }
        }
    }

    fn group(&self, name: &str, settings: GroupSettings) -> Arc<Mutex<GroupState>> {
        let mut groups = self.groups.lock().expect("groups lock");
        groups
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(GroupState::new(name, settings))))
            .clone()
    }

    fn existing(&self, name: &str) -> Result<Arc<Mutex<GroupState>>, GroupError> {
        let groups = self.groups.lock().expect("groups lock");
        groups
            .get(name)
            .cloned()
            .ok_or_else(|| GroupError::UnknownGroup(name.to_string()))
    }

    /// Joins `group` (creating it with `settings` if it is new, or giving it
    /// them if no member runs: a processor restarted with new settings)
    /// subscribed to `topics`; returns the new member id.
    pub fn join(
        &self,
        group: &str,
        instance_id: Option<&str>,
        topics: &[String],
        settings: GroupSettings,
    ) -> Result<MemberId, GroupError> {
        crate::name::validate("group", group).map_err(LogError::from)?;
        let mut partitions = BTreeMap::new();
        for topic in topics {
            partitions.insert(topic.clone(), self.log.partition_count(topic)?);
        }
        let state = self.group(group, settings);
        let mut state = state.lock().expect("group lock");
        if state.active_members() == 0 {
            // Nothing runs in the group (restored members only wait for
            // their instances): the joining processor's settings apply.
            state.settings = settings;
        }
        let member = state.join(instance_id, topics, &partitions, Instant::now());
        self.save(&mut state);
        Ok(member)
    }

    /// Changes what `member` subscribes to; rebalances if the topics changed.
    pub fn subscribe(
        &self,
        group: &str,
        member: &str,
        topics: &[String],
    ) -> Result<(), GroupError> {
        let mut partitions = BTreeMap::new();
        for topic in topics {
            partitions.insert(topic.clone(), self.log.partition_count(topic)?);
        }
        let state = self.existing(group)?;
        let mut state = state.lock().expect("group lock");
        let result = state.subscribe(member, topics, &partitions, Instant::now());
        self.save(&mut state);
        result
    }

    /// Reports liveness.
    pub fn heartbeat(&self, group: &str, member: &str) -> Result<(), GroupError> {
        let state = self.existing(group)?;
        let mut state = state.lock().expect("group lock");
        let result = state.heartbeat(member, Instant::now());
        self.save(&mut state);
        result
    }

    /// Reports what `member` owns and polls; returns what it may own now.
    pub fn sync(
        &self,
        group: &str,
        member: &str,
        owned: &[TopicPartition],
    ) -> Result<Grant, GroupError> {
        let state = self.existing(group)?;
        let mut state = state.lock().expect("group lock");
        let grant = state.sync(member, owned, Instant::now());
        self.save(&mut state);
        grant
    }

    /// Leaves the group for good (a static member that only restarts should not).
    pub fn leave(&self, group: &str, member: &str) {
        if let Ok(state) = self.existing(group) {
            let mut state = state.lock().expect("group lock");
            state.leave(member);
            self.save(&mut state);
        }
    }

    /// Runs `commit` only if `member` at `epoch` still owns `tp`; the group
    /// stays locked throughout, so ownership cannot move in between.
    pub fn commit<T, E: From<GroupError>>(
        &self,
        group: &str,
        member: &str,
        epoch: u32,
        tp: &TopicPartition,
        commit: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let state = self.existing(group)?;
        let mut state = state.lock().expect("group lock");
        state.expire(Instant::now());
        self.save(&mut state);
        state.check_commit(member, epoch, tp)?;
        commit()
    }

    /// The live state of `group`, if any member ever joined it here.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        let state = self.existing(group).ok()?;
        let mut state = state.lock().expect("group lock");
        state.expire(Instant::now());
        self.save(&mut state);
        let mut topics: Vec<String> = state
            .members
            .values()
            .flat_map(|m| m.topics.iter().cloned())
            .collect();
        topics.sort();
        topics.dedup();
        Some(GroupDescription {
            generation: state.generation,
            protocol: state.settings.protocol,
            assignor: state.settings.assignor,
            members: state
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member: id.clone(),
                    instance_id: m.instance_id.clone(),
                    epoch: m.epoch,
                    assigned: m.granted.clone(),
                    restored: m.restored,
                })
                .collect(),
            topics,
        })
    }

    /// Runs `f` only if `group` has no live member, holding the group's lock
    /// so no member can join in between (seeking a running group would race
    /// its commits). Restored members awaiting their instance do not count:
    /// nothing runs them.
    pub fn when_idle<T>(
        &self,
        group: &str,
        f: impl FnOnce() -> Result<T, GroupError>,
    ) -> Result<T, GroupError> {
        let state = self.group(group, GroupSettings::default());
        let mut state = state.lock().expect("group lock");
        state.expire(Instant::now());
        self.save(&mut state);
        let members = state.active_members();
        if members > 0 {
            return Err(GroupError::Active {
                group: group.to_string(),
                members,
            });
        }
        f()
    }

    /// Groups with members on this host (restored ones included).
    pub fn live_groups(&self) -> Vec<String> {
        // The map's lock is let go before any group's is taken.
        let groups: Vec<(String, Arc<Mutex<GroupState>>)> = self
            .groups
            .lock()
            .expect("groups lock")
            .iter()
            .map(|(name, state)| (name.clone(), state.clone()))
            .collect();
        let now = Instant::now();
        groups
            .into_iter()
            .filter(|(_, state)| {
                let mut state = state.lock().expect("group lock");
                state.expire(now);
                self.save(&mut state);
                !state.members.is_empty()
            })
            .map(|(name, _)| name)
            .collect()
    }
}
