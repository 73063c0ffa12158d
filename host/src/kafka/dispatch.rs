//! The Kafka APIs weir speaks: [`SUPPORTED`] is what ApiVersions advertises
//! and what a request's version is checked against before it is decoded, and
//! [`dispatch`] is the one `match` from a decoded request to its handler. An
//! API gets a line in each, nowhere else.

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use super::{KafkaError, Session};
use super::{configs, partitions};
use super::{
    fetch, groups, list_offsets, metadata, produce, producers, sasl, topics, transactions, versions,
};

/// Every API weir answers, with the lowest and highest version. Produce's
/// minimum is 0 as in Kafka 4.0, although versions below 3 (message sets
/// before v2 batches) are refused: librdkafka before 2.11.1 turns
/// compression off when a broker advertises a higher minimum.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 11),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 8),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 4),
    (ApiKey::TxnOffsetCommit, 0, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The (min, max) versions of `api`, if weir speaks it.
pub fn supported(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
}

/// Runs the handler of `request` (already checked against [`SUPPORTED`]);
/// `None` when no response goes back (a Produce with acks 0).
pub async fn dispatch(
    session: &mut Session,
    api: ApiKey,
    version: i16,
    request: RequestKind,
) -> Result<Option<ResponseKind>, KafkaError> {
    let response = match request {
        RequestKind::ApiVersions(r) => ResponseKind::ApiVersions(versions::handle(version, r)),
        RequestKind::Metadata(r) => {
            ResponseKind::Metadata(metadata::handle(session, version, r).await?)
        }
        RequestKind::Produce(r) => match produce::handle(session, version, r).await? {
            Some(response) => ResponseKind::Produce(response),
            None => return Ok(None),
        },
        RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(session, version, r).await?),
        RequestKind::ListOffsets(r) => {
            ResponseKind::ListOffsets(list_offsets::handle(session, version, r).await?)
        }
        RequestKind::CreateTopics(r) => {
            ResponseKind::CreateTopics(topics::create(session, version, r).await?)
        }
        RequestKind::DeleteTopics(r) => {
            ResponseKind::DeleteTopics(topics::delete(session, version, r).await?)
        }
        RequestKind::DescribeConfigs(r) => {
            ResponseKind::DescribeConfigs(topics::describe_configs(session, version, r)?)
        }
        RequestKind::InitProducerId(r) => {
            ResponseKind::InitProducerId(producers::init(session, version, r)?)
        }
        RequestKind::SaslHandshake(r) => ResponseKind::SaslHandshake(sasl::handshake(session, r)),
        RequestKind::SaslAuthenticate(r) => {
            ResponseKind::SaslAuthenticate(sasl::authenticate(session, r)?)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(groups::find_coordinator(session, version, r))
        }
        RequestKind::JoinGroup(r) => {
            ResponseKind::JoinGroup(groups::join_group(session, version, r).await)
        }
        RequestKind::SyncGroup(r) => {
            ResponseKind::SyncGroup(session.state.groups.sync_group(r, version).await)
        }
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(session.state.groups.heartbeat(r)),
        RequestKind::LeaveGroup(r) => {
            ResponseKind::LeaveGroup(session.state.groups.leave_group(r, version))
        }
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(session.state.groups.offset_commit(r))
        }
        RequestKind::OffsetFetch(r) => {
            ResponseKind::OffsetFetch(session.state.groups.offset_fetch(r, version))
        }
        RequestKind::DescribeGroups(r) => {
            ResponseKind::DescribeGroups(session.state.groups.describe_groups(r, version))
        }
        RequestKind::ListGroups(r) => ResponseKind::ListGroups(session.state.groups.list_groups(r)),
        RequestKind::ConsumerGroupHeartbeat(r) => {
            ResponseKind::ConsumerGroupHeartbeat(groups::consumer::heartbeat(session, version, r))
        }
        RequestKind::ConsumerGroupDescribe(r) => {
            ResponseKind::ConsumerGroupDescribe(session.state.groups.consumer_group_describe(r))
        }
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(transactions::add_partitions(session, version, r))
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(transactions::add_offsets(session, version, r))
        }
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(transactions::txn_offset_commit(session, version, r))
        }
        RequestKind::EndTxn(r) => {
            ResponseKind::EndTxn(transactions::end(session, version, r).await?)
        }
        RequestKind::CreatePartitions(r) => {
            ResponseKind::CreatePartitions(partitions::create(session, version, r).await?)
        }
        RequestKind::AlterConfigs(r) => {
            ResponseKind::AlterConfigs(configs::alter(session, version, r).await?)
        }
        RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
            configs::incremental_alter(session, version, r).await?,
        ),
        RequestKind::DescribeCluster(r) => {
            ResponseKind::DescribeCluster(metadata::describe_cluster(session, version, r))
        }
        // Unreachable while SUPPORTED and this match agree.
        _ => return Err(KafkaError::UnknownApiKey(api as i16)),
    };
    Ok(Some(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_version_is_one_the_codec_knows() {
        for &(api, min, max) in SUPPORTED {
            let known = api.valid_versions();
            // Produce below 3 is advertised on purpose and refused.
            let min = if api == ApiKey::Produce { 3 } else { min };
            assert!(
                min >= known.min && max <= known.max,
                "{api:?} {min}..={max} is outside the codec's {known}"
            );
        }
    }
}
