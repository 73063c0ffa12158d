//! Rewinds against a Kafka cluster: where a group's positions move (deploy
//! with rewind, `processor rewind`, a shadow's start), resolved from the
//! cluster's own answers and committed through the group.
//!
//! - A position resolves per partition as on the embedded log: `earliest` and
//!   `latest` from the partition's watermarks, an offset checked against them
//!   (out of range is refused), a time through `offsets_for_times` (the first
//!   record at or after it; none means the end).
//! - Every target is resolved before anything moves. The supervisor has
//!   stopped this host's members at a batch boundary; the new positions are
//!   then committed in one request by a client outside the group (Kafka's
//!   "simple" commit, as `kafka-consumer-groups --reset-offsets` does), which
//!   the cluster accepts while the group has no members. A group that still
//!   has members (static members keep their place while stopped, as do
//!   members on other hosts) refuses it: the targets are then kept as
//!   pending for the group, and each member of this host, when it next takes
//!   a partition with a pending target, commits the target through its own
//!   membership (fenced by the generation) and reads from there.
//! - A group whose guest keeps state is refused: its state would not follow
//!   the offsets (see `refuse_stateful`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::{ClusterBackend, ClusterError, REQUEST_TIMEOUT};
use crate::broker::{Moved, SeekTo};
use crate::group::TopicPartition;
use crate::log::LogError;

impl ClusterBackend {
    /// Every partition of `topics`, each with `to`.
    pub fn every_partition(
        &self,
        topics: &[String],
        to: SeekTo,
    ) -> Result<Vec<(TopicPartition, SeekTo)>, ClusterError> {
        let mut out = Vec::new();
        for topic in topics {
            for partition in 0..self.count_of(topic)? {
                out.push((TopicPartition::new(topic.clone(), partition), to));
            }
        }
        Ok(out)
    }

    /// `topic`'s partition count; an unknown topic is an error.
    pub fn count_of(&self, topic: &str) -> Result<u32, ClusterError> {
        self.partition_count(topic)?
            .ok_or_else(|| ClusterError::UnknownTopic {
                role: "input",
                topic: topic.to_string(),
                named_by: "",
                servers: self.servers().to_string(),
                hint: String::new(),
            })
    }

    /// Resolves each target to an offset, writing nothing: an unknown
    /// partition or an offset out of range is an error.
    pub fn resolve(
        &self,
        targets: &[(TopicPartition, SeekTo)],
    ) -> Result<Vec<(TopicPartition, u64)>, ClusterError> {
        let mut out = Vec::with_capacity(targets.len());
        for (tp, to) in targets {
            let count = self.count_of(&tp.topic)?;
            if tp.partition >= count {
                return Err(ClusterError::Position(LogError::UnknownPartition {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    count,
                }));
            }
            let (low, high) = self
                .probe
                .fetch_watermarks(&tp.topic, tp.partition as i32, REQUEST_TIMEOUT)
                .map_err(ClusterError::kafka("reading a partition's bounds"))?;
            let (start, end) = (low.max(0) as u64, high.max(0) as u64);
            let target = match *to {
                SeekTo::Earliest => start,
                SeekTo::Latest => end,
                SeekTo::Offset(o) if o >= start && o <= end => o,
                SeekTo::Offset(offset) => {
                    return Err(ClusterError::Position(LogError::OffsetOutOfRange {
                        offset,
                        start,
                        end,
                    }));
                }
                SeekTo::Timestamp(ms) => offset_for_time(&self.probe, tp, ms)?.unwrap_or(end),
            };
            out.push((tp.clone(), target.clamp(start, end)));
        }
        Ok(out)
    }

    /// Refuses to move `group` when its guest keeps state: its changelog
    /// exists in the cluster, or this host holds state for it. A rewind must
    /// take the state back with the offsets, which the cluster backend does
    /// not do yet.
    pub fn refuse_stateful(&self, group: &str, topics: &[String]) -> Result<(), ClusterError> {
        let mut stateful = false;
        for topic in topics {
            stateful |= self
                .partition_count(&super::changelog::topic(group, topic))?
                .is_some();
        }
        let store = self
            .stores
            .lock()
            .expect("state stores lock")
            .get(group)
            .cloned();
        if !stateful && let Some(store) = store {
            stateful = store.totals()?.0 > 0;
        }
        if stateful {
            return Err(ClusterError::Unsupported(format!(
                "rewinding the group {group:?}, whose guest keeps state, (its state would not \
                 follow the offsets)"
            )));
        }
        Ok(())
    }

    /// Moves `group`'s committed positions to `targets`: every target is
    /// resolved first, then they are committed in one request, or left
    /// pending for this host's members when the group has members (see the
    /// module). Returns what moves.
    pub fn reset_each(
        &self,
        group: &str,
        targets: &[(TopicPartition, SeekTo)],
    ) -> Result<Vec<Moved>, ClusterError> {
        crate::name::validate("group", group)
            .map_err(|e| ClusterError::Position(LogError::from(e)))?;
        let topics: Vec<String> = targets.iter().map(|(tp, _)| tp.topic.clone()).collect();
        self.refuse_stateful(group, &topics)?;
        let resolved = self.resolve(targets)?;
        let (moved, committed) = self.commit_positions(group, &resolved)?;
        if !committed {
            let mut pending = self.pending.lock().expect("pending rewinds lock");
            let waiting = pending.entry(group.to_string()).or_default();
            waiting.extend(resolved);
            tracing::info!(
                group,
                partitions = waiting.len(),
                "the group has members: its members move it as they take their partitions"
            );
        }
        Ok(moved)
    }

    /// Commits `resolved` for `group` as a client outside its membership;
    /// says whether the cluster took it (not while the group has members).
    fn commit_positions(
        &self,
        group: &str,
        resolved: &[(TopicPartition, u64)],
    ) -> Result<(Vec<Moved>, bool), ClusterError> {
        let client = self.group_client(group)?;
        let mut wanted = TopicPartitionList::new();
        let mut commit = TopicPartitionList::new();
        for (tp, offset) in resolved {
            wanted.add_partition(&tp.topic, tp.partition as i32);
            commit
                .add_partition_offset(
                    &tp.topic,
                    tp.partition as i32,
                    Offset::Offset(*offset as i64),
                )
                .map_err(ClusterError::kafka("naming an offset to commit"))?;
        }
        let before = client
            .committed_offsets(wanted, REQUEST_TIMEOUT)
            .map_err(ClusterError::kafka("reading the group's committed offsets"))?;
        let committed = match client.commit(&commit, CommitMode::Sync) {
            Ok(()) => true,
            Err(e) if has_members(&e) => false,
            Err(source) => {
                return Err(ClusterError::Kafka {
                    context: "committing the new positions",
                    source,
                });
            }
        };
        let moved = resolved
            .iter()
            .map(|(tp, offset)| {
                let from = before
                    .find_partition(&tp.topic, tp.partition as i32)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) if o >= 0 => Some(o as u64),
                        _ => None,
                    });
                Moved {
                    topic: tp.topic.clone(),
                    partition: tp.partition,
                    from,
                    to: *offset,
                }
            })
            .collect();
        Ok((moved, committed))
    }
}

/// Rewinds waiting for a group's members: by group, the target of each
/// partition.
pub(super) type Pending = Arc<Mutex<HashMap<String, BTreeMap<TopicPartition, u64>>>>;

/// The pending target of `group` on `tp`, if any.
pub(super) fn pending_target(pending: &Pending, group: &str, tp: &TopicPartition) -> Option<u64> {
    let pending = pending.lock().expect("pending rewinds lock");
    pending
        .get(group)
        .and_then(|targets| targets.get(tp))
        .copied()
}

/// Forgets `group`'s pending target on `tp` once a member committed it.
pub(super) fn clear_pending(pending: &Pending, group: &str, tp: &TopicPartition) {
    let mut pending = pending.lock().expect("pending rewinds lock");
    if let Some(targets) = pending.get_mut(group) {
        targets.remove(tp);
        if targets.is_empty() {
            pending.remove(group);
        }
    }
}

/// Whether a commit from outside the group was refused because the group
/// has members.
fn has_members(e: &rdkafka::error::KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId
        )
    )
}

/// The first offset of `tp` whose record is at or after `ms`, from the
/// cluster's time index (`offsets_for_times`); `None` when no record is that
/// late.
pub(super) fn offset_for_time<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
    tp: &TopicPartition,
    ms: i64,
) -> Result<Option<u64>, ClusterError> {
    let mut wanted = TopicPartitionList::new();
    wanted
        .add_partition_offset(&tp.topic, tp.partition as i32, Offset::Offset(ms))
        .map_err(ClusterError::kafka("naming a time to look up"))?;
    let found = consumer
        .offsets_for_times(wanted, REQUEST_TIMEOUT)
        .map_err(ClusterError::kafka("looking up an offset by time"))?;
    let offset = found
        .find_partition(&tp.topic, tp.partition as i32)
        .map(|e| e.offset());
    Ok(match offset {
        Some(Offset::Offset(o)) if o >= 0 => Some(o as u64),
        _ => None,
    })
}
