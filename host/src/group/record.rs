//! What the coordinator keeps of a group across restarts, as Kafka keeps its
//! group metadata in `__consumer_offsets`: the generation, the settings its
//! first member fixed, and every static member (instance id, subscription and
//! target assignment). Dynamic members are not kept: a restarted process gives
//! them new ids anyway, so they rejoin as new members.
//!
//! A record is written (through [`crate::offsets::Offsets::record_group`])
//! whenever a rebalance changes the target, and read back when the broker
//! opens. The restored static members hold their partitions until their
//! instances rejoin (taking them over without a rebalance, the generation
//! going on from where it was) or their session times out, exactly as a live
//! static member that restarts within its session does.
//!
//! Sound because one process owns a data directory at a time (its lock): a
//! restored member has no incarnation left anywhere that could still commit,
//! and a commit is only accepted from an incarnation that joined in this
//! process at its current epoch.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::assignor::{AssignorKind, TopicPartition};
use super::{GroupSettings, Protocol};

/// One group as the topic keeps it (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub generation: u32,
    pub protocol: Protocol,
    pub assignor: AssignorKind,
    pub session_timeout_ms: u64,
    pub max_poll_interval_ms: u64,
    /// By instance id.
    pub members: Vec<StaticMember>,
}

/// A static member and what it was assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticMember {
    pub instance_id: String,
    pub topics: Vec<String>,
    pub assignment: Vec<TopicPartition>,
}

impl GroupRecord {
    /// The settings the group had.
    pub fn settings(&self) -> GroupSettings {
        GroupSettings {
            protocol: self.protocol,
            assignor: self.assignor,
            session_timeout: Duration::from_millis(self.session_timeout_ms),
            max_poll_interval: Duration::from_millis(self.max_poll_interval_ms),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a group record serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<GroupRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_record_round_trips_through_its_bytes() {
        let record = GroupRecord {
            generation: 7,
            protocol: Protocol::Eager,
            assignor: AssignorKind::Range,
            session_timeout_ms: 1500,
            max_poll_interval_ms: 60_000,
            members: vec![StaticMember {
                instance_id: "p-0".into(),
                topics: vec!["in".into()],
                assignment: vec![TopicPartition::new("in", 1)],
            }],
        };
        assert_eq!(GroupRecord::decode(&record.encode()).unwrap(), record);
        assert_eq!(
            record.settings().session_timeout,
            Duration::from_millis(1500)
        );
        assert!(GroupRecord::decode(b"{}").is_err());
    }
}
