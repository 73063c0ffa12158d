//! The offsets API of a group, as methods of the [`Broker`]: where a member
//! starts on a partition (the reset policy) and committing that start, lag per
//! partition for every group with committed offsets or members, a group's
//! description (positions, lag and membership), and seeking a
//! stopped group to the beginning, the end, an offset or a timestamp (through
//! the time index). A seek resolves every target before it writes anything,
//! and writes them as one batch: it moves every partition or none.

use super::Broker;
use crate::group::{GroupError, TopicPartition};
use crate::log::LogError;
use crate::offsets::{Committed, Offsets};
use crate::wire::{Assigned, GroupLag, GroupMember, GroupMembership, Moved, PartitionLag, SeekTo};

/// Where a member starts on a partition without a usable committed offset
/// (none yet, or one that retention has deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResetPolicy {
    /// The oldest record still in the log.
    #[default]
    Earliest,
    /// Only records appended from now on.
    Latest,
    /// Refuse to guess: a clear error.
    None,
}

impl ResetPolicy {
    pub const ALL: [ResetPolicy; 3] = [
        ResetPolicy::Earliest,
        ResetPolicy::Latest,
        ResetPolicy::None,
    ];

    /// The name in flags, JSON and `weir.toml`.
    pub fn name(self) -> &'static str {
        match self {
            ResetPolicy::Earliest => "earliest",
            ResetPolicy::Latest => "latest",
            ResetPolicy::None => "none",
        }
    }

    /// The inverse of [`ResetPolicy::name`].
    pub fn parse(s: &str) -> Option<ResetPolicy> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

crate::keyword::keywords!(ResetPolicy);

impl Broker {
    /// The position a member takes on a partition it gains.
    pub fn start_position(
        &self,
        group: &str,
        tp: &TopicPartition,
        reset: ResetPolicy,
    ) -> Result<u64, GroupError> {
        let (log, offsets) = (&self.log, &self.offsets);
        let (topic, partition) = (tp.topic.as_str(), tp.partition);
        let start = log.log_start(topic, partition)?;
        let end = log.high_watermark(topic, partition)?;
        match offsets.get(group, topic, partition) {
            Some(c) if c.offset >= start && c.offset <= end => Ok(c.offset),
            committed => {
                if let Some(c) = committed {
                    tracing::warn!(
                        group,
                        topic,
                        partition,
                        committed = c.offset,
                        start,
                        end,
                        "committed offset is outside the log; applying the reset policy"
                    );
                }
                match reset {
                    ResetPolicy::Earliest => Ok(start),
                    ResetPolicy::Latest => Ok(end),
                    ResetPolicy::None => Err(GroupError::NoOffset {
                        group: group.to_string(),
                        topic: topic.to_string(),
                        partition,
                    }),
                }
            }
        }
    }

    /// Commits where `group` starts on every partition of `topics` it has no
    /// committed offset for, when `reset` is `latest`: "latest" then means
    /// "from this start on", so records produced before the first commit (a
    /// run that stops early, a restart) are not skipped, as Kafka's
    /// auto-commit of the reset position achieves. Earliest needs no commit
    /// (the log start is where it would start anyway), and none has nothing
    /// to commit. Call it before the group's members start.
    pub fn commit_start(
        &self,
        group: &str,
        topics: &[String],
        reset: ResetPolicy,
    ) -> Result<Vec<Moved>, GroupError> {
        if reset != ResetPolicy::Latest {
            return Ok(Vec::new());
        }
        let mut moved = Vec::new();
        for topic in topics {
            for partition in 0..self.log.partition_count(topic)? {
                if self.offsets.get(group, topic, partition).is_none() {
                    let topics = std::slice::from_ref(topic);
                    moved.extend(self.reset(group, topics, Some(partition), SeekTo::Latest)?);
                }
            }
        }
        Ok(moved)
    }

    /// Committed offset, high watermark and lag for every partition of `topics`
    /// (or, when empty, of every topic the group has committed to).
    pub fn lag(&self, group: &str, topics: &[String]) -> Result<Vec<PartitionLag>, GroupError> {
        let (log, offsets) = (&self.log, &self.offsets);
        let topics = group_topics(offsets, group, topics);
        let mut out = Vec::new();
        for topic in topics {
            for partition in 0..log.partition_count(&topic)? {
                let committed = offsets.get(group, &topic, partition).map(|c| c.offset);
                let log_start = log.log_start(&topic, partition)?;
                let high_watermark = log.high_watermark(&topic, partition)?;
                let from = committed.unwrap_or(log_start).max(log_start);
                out.push(PartitionLag {
                    topic: topic.clone(),
                    partition,
                    committed,
                    log_start,
                    high_watermark,
                    lag: high_watermark.saturating_sub(from),
                    metadata: Some(offsets.meta(group, &topic, partition).metadata)
                        .filter(|m| !m.is_empty()),
                });
            }
        }
        Ok(out)
    }

    /// The lag of every partition a group has committed to or its members
    /// subscribe to, with its membership (members, instance ids, assignment,
    /// generation, protocol, assignor) when the coordinator knows the group;
    /// a group with neither commits nor members is [`GroupError::NoCommits`].
    pub fn describe_group(&self, group: &str) -> Result<GroupLag, GroupError> {
        let live = self
            .groups
            .describe(group)
            .filter(|d| !d.members.is_empty() || d.generation > 0);
        let topics = self.group_topics(group, live.as_ref().map(|d| &d.topics[..]));
        let lags = self.lag(group, &topics)?;
        if lags.is_empty() && live.as_ref().is_none_or(|d| d.members.is_empty()) {
            return Err(GroupError::NoCommits(group.to_string()));
        }
        let mut described = GroupLag::new(group, lags);
        described.membership = live.map(|d| GroupMembership {
            generation: d.generation,
            protocol: d.protocol.to_string(),
            assignor: d.assignor.to_string(),
            members: d
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member,
                    instance_id: m.instance_id,
                    generation: m.epoch,
                    assignment: m
                        .assigned
                        .into_iter()
                        .map(|tp| Assigned {
                            topic: tp.topic,
                            partition: tp.partition,
                        })
                        .collect(),
                    awaiting_rejoin: m.restored,
                })
                .collect(),
        });
        Ok(described)
    }

    /// The lag of every partition of every group with committed offsets or
    /// members (from its committed offset, or for a partition without one
    /// from the log start: where the earliest reset policy starts, and a
    /// group starting at latest commits its start first, see
    /// [`Broker::commit_start`]). What the metrics' lag gauges show.
    pub fn group_lags(&self) -> Vec<(String, Vec<PartitionLag>)> {
        let mut out = Vec::new();
        for group in self.list_groups() {
            let live = self.groups.describe(&group);
            let topics = self.group_topics(&group, live.as_ref().map(|d| &d.topics[..]));
            match self.lag(&group, &topics) {
                Ok(lags) => out.push((group, lags)),
                Err(e) => {
                    tracing::debug!(%group, error = %crate::error::chain(&e), "no lag for group")
                }
            }
        }
        out
    }

    /// The topics a group has committed to, with those its members subscribe
    /// to.
    fn group_topics(&self, group: &str, subscribed: Option<&[String]>) -> Vec<String> {
        let mut topics = group_topics(&self.offsets, group, &[]);
        topics.extend(subscribed.unwrap_or_default().iter().cloned());
        topics.sort();
        topics.dedup();
        topics
    }

    /// Every group with committed offsets or live members.
    pub fn list_groups(&self) -> Vec<String> {
        let mut all = self.offsets.groups();
        all.extend(self.groups.live_groups());
        all.sort();
        all.dedup();
        all
    }

    /// Moves a stopped group's committed offsets on `topics` (every topic it has
    /// committed to when empty), on one partition or all. Returns what
    /// moved, per partition.
    pub fn seek(
        &self,
        group: &str,
        topics: &[String],
        partition: Option<u32>,
        to: SeekTo,
    ) -> Result<Vec<Moved>, GroupError> {
        self.groups
            .when_idle(group, || self.reset(group, topics, partition, to))
    }

    /// [`seek`] without the stopped-group check: for callers that have paused the
    /// group's members themselves (deploy-and-rewind).
    pub fn reset(
        &self,
        group: &str,
        topics: &[String],
        partition: Option<u32>,
        to: SeekTo,
    ) -> Result<Vec<Moved>, GroupError> {
        crate::name::validate("group", group).map_err(LogError::from)?;
        let resolved = self.targets(group, topics, partition, to)?;
        self.write_resets(group, resolved)
    }

    /// Resolves one position per partition (what [`Broker::reset_each`]
    /// would write), writing nothing: a bad partition or offset is an error.
    pub fn resolve_each(
        &self,
        group: &str,
        targets: &[(TopicPartition, SeekTo)],
    ) -> Result<Vec<(TopicPartition, u64)>, GroupError> {
        let mut out = Vec::new();
        for (tp, to) in targets {
            let topics = std::slice::from_ref(&tp.topic);
            out.extend(self.targets(group, topics, Some(tp.partition), *to)?);
        }
        Ok(out)
    }

    /// [`Broker::reset`] with one position per partition: every target is
    /// resolved before anything is written, so they all move or none does.
    pub fn reset_each(
        &self,
        group: &str,
        targets: &[(TopicPartition, SeekTo)],
    ) -> Result<Vec<Moved>, GroupError> {
        crate::name::validate("group", group).map_err(LogError::from)?;
        let resolved = self.resolve_each(group, targets)?;
        self.write_resets(group, resolved)
    }

    /// Writes resolved positions: the state's rewinds, then the offsets.
    fn write_resets(
        &self,
        group: &str,
        resolved: Vec<(TopicPartition, u64)>,
    ) -> Result<Vec<Moved>, GroupError> {
        let mut plan = Vec::new();
        let mut rewinds = Vec::new();
        for (tp, target) in resolved {
            let old = self
                .offsets
                .get(group, &tp.topic, tp.partition)
                .map(|c| c.offset);
            let rewound = self.rewound(group, &tp, target)?;
            let target = rewound.as_ref().map_or(target, |r| r.position);
            plan.push(Moved {
                topic: tp.topic.clone(),
                partition: tp.partition,
                from: old,
                to: target,
            });
            rewinds.extend(rewound.map(|r| (tp, r)));
        }
        // Everything was resolved before anything is written. The state's units
        // go first (the changelog has the last word on where a stateful group
        // stands, so a crash in between is finished on the next start), then
        // the offsets as one batch: a bad partition or offset changes nothing.
        for (tp, rewound) in &rewinds {
            self.write_rewind(group, tp, rewound)?;
        }
        let commits: Vec<(String, u32, Committed)> = plan
            .iter()
            .map(|m| {
                (
                    m.topic.clone(),
                    m.partition,
                    Committed {
                        offset: m.to,
                        generation: 0,
                    },
                )
            })
            .collect();
        self.offsets.commit_many(group, &commits)?;
        Ok(plan)
    }

    /// Resolves `to` on `topics` (every topic `group` has committed to when
    /// empty), on one partition or all, to an offset per partition.
    pub(super) fn targets(
        &self,
        group: &str,
        topics: &[String],
        partition: Option<u32>,
        to: SeekTo,
    ) -> Result<Vec<(TopicPartition, u64)>, GroupError> {
        let log = &self.log;
        let mut out = Vec::new();
        for topic in group_topics(&self.offsets, group, topics) {
            let count = log.partition_count(&topic)?;
            let partitions: Vec<u32> = match partition {
                Some(p) if p < count => vec![p],
                Some(p) => {
                    return Err(LogError::UnknownPartition {
                        topic,
                        partition: p,
                        count,
                    }
                    .into());
                }
                None => (0..count).collect(),
            };
            for p in partitions {
                let start = log.log_start(&topic, p)?;
                let end = log.high_watermark(&topic, p)?;
                let target = match to {
                    SeekTo::Earliest => start,
                    SeekTo::Latest => end,
                    SeekTo::Offset(o) if o >= start && o <= end => o,
                    SeekTo::Offset(o) => {
                        return Err(LogError::OffsetOutOfRange {
                            offset: o,
                            start,
                            end,
                        }
                        .into());
                    }
                    SeekTo::Timestamp(ts) => {
                        log.offset_for_timestamp(&topic, p, ts)?.unwrap_or(end)
                    }
                };
                out.push((TopicPartition::new(topic.clone(), p), target));
            }
        }
        Ok(out)
    }

    /// Deletes `topic` and forgets every group's committed offsets on it.
    pub fn delete_topic(&self, topic: &str) -> Result<(), GroupError> {
        Ok(self.offsets.delete_topic(topic)?)
    }

    /// Forgets `group`: its committed offsets, the coordinator's record of it
    /// and its members, so it leaves `list_groups` and its lag is no longer
    /// reported (a deleted processor's group).
    pub fn delete_group(&self, group: &str) -> Result<(), GroupError> {
        self.offsets.delete_group(group)?;
        self.groups.forget(group);
        Ok(())
    }
}

fn group_topics(offsets: &Offsets, group: &str, topics: &[String]) -> Vec<String> {
    if !topics.is_empty() {
        return topics.to_vec();
    }
    let mut found: Vec<String> = offsets
        .of_group(group)
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    found.dedup();
    found
}
