//! State that follows a rewind in the embedded broker: a group's state on a
//! partition as of a position, rebuilt from its changelog's units; the unit a
//! rewind or seek leaves (a reset with the snapshot, or an empty commit); and
//! seeding one group's state and position from another's (a shadow from a
//! chosen point, or a promotion).

use std::collections::BTreeMap;

use super::changelog_topic;
use crate::broker::{Broker, Moved, SeekTo};
use crate::group::TopicPartition;
use crate::log::{LogError, TopicConfig};
use crate::offsets::Committed;
use crate::state::StateError;
use crate::state::changelog::{self, Marker, Unit, Units};

/// A group's state on a partition as of some position.
struct StateAt {
    position: u64,
    snapshot: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether that is the changelog's last unit (the state as it is now).
    last: bool,
}

/// Where a rewind leaves a partition's state.
pub(in crate::broker) struct Rewound {
    pub position: u64,
    /// The state at `position`, or `None` when the state stays as it is (a
    /// forward seek).
    pub snapshot: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Broker {
    /// Where rewinding `group` on `tp` to `target` leaves its state, when the
    /// group keeps a changelog: the state at the last unit whose position is
    /// at most `target` (or empty at the log start), which moves the target
    /// back to that unit's position (state is kept per batch); a target at or
    /// past the last unit keeps the state as it is.
    pub(in crate::broker) fn rewound(
        &self,
        group: &str,
        tp: &TopicPartition,
        target: u64,
    ) -> Result<Option<Rewound>, StateError> {
        Ok(self.state_at(group, tp, target)?.map(|at| match at.last {
            true => Rewound {
                position: target,
                snapshot: None,
            },
            false => Rewound {
                position: at.position,
                snapshot: Some(at.snapshot),
            },
        }))
    }

    /// `group`'s state on `tp` as of the last unit whose position is at most
    /// `target`, if the group keeps a changelog.
    fn state_at(
        &self,
        group: &str,
        tp: &TopicPartition,
        target: u64,
    ) -> Result<Option<StateAt>, StateError> {
        if !self.has_changelog(group, &tp.topic) {
            return Ok(None);
        }
        let changelog = changelog_topic(group, &tp.topic);
        let units = self.units(&changelog, tp.partition)?;
        let last_at_most = units.iter().rposition(|u| u.marker.position() <= target);
        let mut state: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let position = match last_at_most {
            None => self.log.log_start(&tp.topic, tp.partition)?,
            Some(i) => {
                for unit in &units[..=i] {
                    if let Marker::Reset { .. } = unit.marker {
                        state.clear();
                    }
                    for (key, value) in &unit.changes {
                        match value {
                            Some(v) => state.insert(key.clone(), v.clone()),
                            None => state.remove(key),
                        };
                    }
                }
                units[i].marker.position()
            }
        };
        Ok(Some(StateAt {
            position,
            snapshot: state.into_iter().collect(),
            last: units.is_empty() || last_at_most.is_some_and(|i| i + 1 == units.len()),
        }))
    }

    /// Starts `to_group` on `topics` from `from_group`'s state and position at
    /// `to` (a shadow from a chosen point, or a promotion): each partition's
    /// state is copied as a reset unit of `to_group`'s changelog, and its
    /// offset committed at that unit's position. Partitions `from_group` has
    /// no state for start at `to` with empty state.
    pub fn seed_state(
        &self,
        from_group: &str,
        to_group: &str,
        topics: &[String],
        to: SeekTo,
    ) -> Result<Vec<Moved>, crate::group::GroupError> {
        crate::name::validate("group", to_group).map_err(LogError::from)?;
        let mut plan = Vec::new();
        for (tp, target) in self.targets(to_group, topics, None, to)? {
            let at = self.state_at(from_group, &tp, target)?;
            let position = at.as_ref().map_or(target, |a| a.position);
            plan.push((tp, position, at));
        }
        let mut moved = Vec::new();
        let mut commits = Vec::new();
        for (tp, position, at) in plan {
            if let Some(at) = at {
                let changelog = changelog_topic(to_group, &tp.topic);
                self.log.ensure_topic(
                    &changelog,
                    TopicConfig::with_partitions(self.log.partition_count(&tp.topic)?),
                )?;
                let rewound = Rewound {
                    position,
                    snapshot: Some(at.snapshot),
                };
                self.write_rewind(to_group, &tp, &rewound)?;
            }
            let from = self
                .offsets
                .get(to_group, &tp.topic, tp.partition)
                .map(|c| c.offset);
            commits.push((
                tp.topic.clone(),
                tp.partition,
                Committed {
                    offset: position,
                    generation: 0,
                },
            ));
            moved.push(Moved {
                topic: tp.topic,
                partition: tp.partition,
                from,
                to: position,
            });
        }
        self.offsets.commit_many(to_group, &commits)?;
        Ok(moved)
    }

    /// Writes the unit a rewind or seek of `tp` leaves: a reset with the
    /// snapshot, or an empty commit at the new position.
    pub(in crate::broker) fn write_rewind(
        &self,
        group: &str,
        tp: &TopicPartition,
        rewound: &Rewound,
    ) -> Result<(), LogError> {
        let changelog = changelog_topic(group, &tp.topic);
        let (mut records, marker) = match &rewound.snapshot {
            Some(snapshot) => (
                snapshot
                    .iter()
                    .map(|(k, v)| changelog::change_record(&(k.clone(), Some(v.clone()))))
                    .collect::<Vec<_>>(),
                Marker::Reset {
                    position: rewound.position,
                },
            ),
            None => (
                Vec::new(),
                Marker::Commit {
                    position: rewound.position,
                    dests: Vec::new(),
                },
            ),
        };
        records.push(changelog::marker_record(&marker));
        self.log.append(&changelog, tp.partition, &records)?;
        Ok(())
    }

    /// Every committed unit of a changelog partition, from its start.
    fn units(&self, changelog: &str, partition: u32) -> Result<Vec<Unit>, StateError> {
        let mut from = self.log.log_start(changelog, partition)?;
        let mut pending = Units::default();
        let mut units = Vec::new();
        loop {
            let records = self.read_changelog(changelog, partition, from)?;
            let Some(tail) = records.last() else { break };
            from = tail.offset + 1;
            for r in &records {
                let entry = changelog::decode(changelog, partition, r)?;
                units.extend(pending.push(entry, r.offset));
            }
        }
        Ok(units)
    }
}
