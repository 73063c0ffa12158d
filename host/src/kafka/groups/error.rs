//! Why a Kafka client's group request was refused, one variant per Kafka
//! error code the group APIs send back, so the state machine speaks in
//! meanings and the handlers turn them into codes in one place.

use kafka_protocol::error::ResponseError;

/// A refused group request (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
/// OffsetCommit, ConsumerGroupHeartbeat) of a Kafka client.
#[derive(Debug, thiserror::Error)]
pub enum GroupsError {
    /// A first JoinGroup (v4+) of a dynamic member: it must join again with
    /// the id it is given here.
    #[error("member id required: join again as {0}")]
    MemberIdRequired(String),
    #[error("member {0:?} is not in the group")]
    UnknownMember(String),
    #[error("member {member:?} was replaced by a newer member of static instance {instance:?}")]
    FencedInstance { member: String, instance: String },
    #[error("generation {given} is not the group's current generation {current}")]
    IllegalGeneration { given: i32, current: i32 },
    #[error("the group is rebalancing: join again")]
    RebalanceInProgress,
    #[error("{0}")]
    InconsistentProtocol(String),
    #[error("invalid group id {0:?}")]
    InvalidGroupId(String),
    #[error("session timeout {0} ms is outside 1000..=1800000 ms")]
    InvalidSessionTimeout(i32),
    #[error(
        "member epoch {given} is fenced (the member's epoch is {current}): rejoin with epoch 0"
    )]
    FencedMemberEpoch { given: i32, current: i32 },
    #[error("member epoch {given} is stale (the member's epoch is {current})")]
    StaleMemberEpoch { given: i32, current: i32 },
    #[error("server assignor {0:?} is not supported: weir's are \"uniform\" and \"range\"")]
    UnsupportedAssignor(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid regular expression {regex:?}: {reason}")]
    InvalidRegex { regex: String, reason: String },
    #[error("instance {0:?} now belongs to a newer member: this one must stop")]
    UnreleasedInstance(String),
    #[error("the coordinator")]
    Coordinator(#[source] crate::group::GroupError),
    #[error("committing offsets failed")]
    Storage(#[from] crate::group::GroupError),
}

impl GroupsError {
    /// The Kafka error code clients expect.
    pub fn code(&self) -> i16 {
        let error = match self {
            GroupsError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            GroupsError::UnknownMember(_) => ResponseError::UnknownMemberId,
            GroupsError::FencedInstance { .. } => ResponseError::FencedInstanceId,
            GroupsError::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
            GroupsError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupsError::InconsistentProtocol(_) => ResponseError::InconsistentGroupProtocol,
            GroupsError::InvalidGroupId(_) => ResponseError::InvalidGroupId,
            GroupsError::InvalidSessionTimeout(_) => ResponseError::InvalidSessionTimeout,
            GroupsError::FencedMemberEpoch { .. } => ResponseError::FencedMemberEpoch,
            GroupsError::StaleMemberEpoch { .. } => ResponseError::StaleMemberEpoch,
            GroupsError::UnsupportedAssignor(_) => ResponseError::UnsupportedAssignor,
            GroupsError::InvalidRequest(_) => ResponseError::InvalidRequest,
            GroupsError::InvalidRegex { .. } => ResponseError::InvalidRegularExpression,
            GroupsError::UnreleasedInstance(_) => ResponseError::UnreleasedInstanceId,
            GroupsError::Coordinator(_) | GroupsError::Storage(_) => {
                ResponseError::UnknownServerError
            }
        };
        error.code()
    }
}
