//! OffsetCommit and OffsetFetch of Kafka clients, kept in weir's own
//! [`crate::offsets::Offsets`] (`__consumer_offsets`), so a Kafka client's
//! group shows in `weir group describe`, the API and the lag metrics like
//! every other group, and survives restarts.
//!
//! A commit is checked against the member and generation (a consumer-protocol
//! member's against its member epoch, see `consumer.rs`) and written under
//! the group's lock, so no rebalance can slip in between; the request's
//! valid partitions are written as one batch (all or none). Each commit's
//! metadata string and leader epoch are kept with its offset
//! ([`crate::offsets::CommitMeta`]) and OffsetFetch returns them; a metadata
//! string over [`MAX_METADATA_BYTES`] is OFFSET_METADATA_TOO_LARGE, as with
//! Kafka's default `offset.metadata.max.bytes`.

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{GroupsError, KafkaGroups};
use crate::group::TopicPartition;
use crate::offsets::{CommitMeta, Committed, MAX_METADATA_BYTES};

/// One partition's answer: (partition, offset (-1: none), error code), and
/// the commit's metadata.
type Fetched = (i32, i64, i16, CommitMeta);

impl KafkaGroups {
    /// OffsetCommit: every partition gets the request's error if the member
    /// or generation is refused, else its own (an unknown topic or
    /// partition, a negative offset).
    pub fn offset_commit(&self, request: OffsetCommitRequest) -> OffsetCommitResponse {
        let group = request.group_id.to_string();
        let member = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        let generation = request.generation_id_or_member_epoch;
        let log = self.broker.log();
        // Each partition's own verdict first.
        let mut verdicts: Vec<(TopicName, Vec<Fetched>)> = Vec::new();
        for topic in &request.topics {
            let count = log.partition_count(&topic.name).ok();
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let known = count
                        .is_some_and(|n| p.partition_index >= 0 && (p.partition_index as u32) < n);
                    let metadata = p.committed_metadata.as_deref().unwrap_or("");
                    let error = if !known {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else if p.committed_offset < 0 {
                        ResponseError::OffsetOutOfRange.code()
                    } else if metadata.len() > MAX_METADATA_BYTES {
                        ResponseError::OffsetMetadataTooLarge.code()
                    } else {
                        0
                    };
                    let meta = CommitMeta {
                        leader_epoch: p.committed_leader_epoch,
                        metadata: metadata.to_string(),
                    };
                    (p.partition_index, p.committed_offset, error, meta)
                })
                .collect();
            verdicts.push((topic.name.clone(), partitions));
        }
        let commits: Vec<(String, u32, Committed, CommitMeta)> = verdicts
            .iter()
            .flat_map(|(topic, partitions)| {
                partitions
                    .iter()
                    .filter(|(_, _, error, _)| *error == 0)
                    .map(|(p, offset, _, meta)| {
                        let committed = Committed {
                            offset: *offset as u64,
                            generation: generation.max(0) as u32,
                        };
                        (topic.to_string(), *p as u32, committed, meta.clone())
                    })
            })
            .collect();
        let write = || {
            if !commits.is_empty() {
                self.broker
                    .offsets()
                    .commit_many_with_meta(&group, &commits)
                    .map_err(|e| GroupsError::Storage(e.into()))?;
            }
            Ok(())
        };
        let partitions: Vec<TopicPartition> = commits
            .iter()
            .map(|(t, p, _, _)| TopicPartition::new(t.clone(), *p))
            .collect();
        // A consumer-protocol member's commit is checked against its epoch;
        // a classic one's against the member and generation.
        let written = match self.consumer_commit(&group, &member, generation, &partitions, write) {
            Some(written) => written,
            None => self.slot(&group).and_then(|slot| {
                slot.with(|g| {
                    g.check_commit(&member, instance.as_deref(), generation, Instant::now())?;
                    write()
                })
            }),
        };
        if let Err(e) = &written {
            tracing::debug!(%group, error = %crate::error::chain(e), "OffsetCommit refused");
        }
        let refused = super::code(&written);
        let topics = verdicts
            .into_iter()
            .map(|(name, partitions)| {
                OffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, _, error, _)| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_error_code(if error == 0 { refused } else { error })
                            })
                            .collect(),
                    )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }

    /// Checks a TxnOffsetCommit's member and generation (KIP-447) as an
    /// OffsetCommit's are checked; the refusal's error code.
    pub(crate) fn check_txn_commit(
        &self,
        group: &str,
        member: &str,
        instance: Option<&str>,
        generation: i32,
    ) -> Result<(), i16> {
        let checked = match self.consumer_commit(group, member, generation, &[], || Ok(())) {
            Some(checked) => checked,
            None => self.slot(group).and_then(|slot| {
                slot.with(|g| g.check_commit(member, instance, generation, Instant::now()))
            }),
        };
        match checked {
            Ok(()) => Ok(()),
            Err(e) => Err(e.code()),
        }
    }

    /// OffsetFetch: one group (v0-7) or several (v8+); no topics listed
    /// means every partition the group has committed to. A partition
    /// without a commit answers -1.
    pub fn offset_fetch(&self, request: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        let mut response = OffsetFetchResponse::default();
        if version < 8 {
            let topics = request.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            match self.fetch(&request.group_id, topics) {
                Ok(found) => {
                    response.topics = found
                        .into_iter()
                        .map(|(name, partitions)| {
                            OffsetFetchResponseTopic::default()
                                .with_name(name)
                                .with_partitions(
                                    partitions
                                        .into_iter()
                                        .map(|(p, offset, error, meta)| {
                                            OffsetFetchResponsePartition::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(offset)
                                                .with_committed_leader_epoch(meta.leader_epoch)
                                                .with_metadata(Some(StrBytes::from_string(
                                                    meta.metadata,
                                                )))
                                                .with_error_code(error)
                                        })
                                        .collect(),
                                )
                        })
                        .collect();
                }
                Err(error) if version >= 2 => response.error_code = error,
                Err(_) => {}
            }
            return response;
        }
        response.groups = request
            .groups
            .into_iter()
            .map(|group| {
                let topics = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let mut answer =
                    OffsetFetchResponseGroup::default().with_group_id(group.group_id.clone());
                match self.fetch(&group.group_id, topics) {
                    Ok(found) => {
                        answer.topics = found
                            .into_iter()
                            .map(|(name, partitions)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(name)
                                    .with_partitions(
                                        partitions
                                            .into_iter()
                                            .map(|(p, offset, error, meta)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_committed_offset(offset)
                                                    .with_committed_leader_epoch(meta.leader_epoch)
                                                    .with_metadata(Some(StrBytes::from_string(
                                                        meta.metadata,
                                                    )))
                                                    .with_error_code(error)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect();
                    }
                    Err(error) => answer.error_code = error,
                }
                answer
            })
            .collect();
        response
    }

    /// The committed offsets of `group` on `topics` (every committed
    /// partition when `None`), or the group's error code.
    fn fetch(
        &self,
        group: &str,
        topics: Option<Vec<(TopicName, Vec<i32>)>>,
    ) -> Result<Vec<(TopicName, Vec<Fetched>)>, i16> {
        if crate::name::validate("group", group).is_err() {
            return Err(ResponseError::InvalidGroupId.code());
        }
        let offsets = self.broker.offsets();
        let Some(topics) = topics else {
            let mut out: Vec<(TopicName, Vec<Fetched>)> = Vec::new();
            for (topic, partition, committed) in offsets.of_group(group) {
                let meta = offsets.meta(group, &topic, partition);
                let fetched = (partition as i32, committed.offset as i64, 0, meta);
                match out.last_mut() {
                    Some((name, partitions)) if name.as_str() == topic => partitions.push(fetched),
                    _ => out.push((TopicName(StrBytes::from_string(topic)), vec![fetched])),
                }
            }
            return Ok(out);
        };
        Ok(topics
            .into_iter()
            .map(|(name, partitions)| {
                let fetched = partitions
                    .into_iter()
                    .map(|p| {
                        let committed = u32::try_from(p)
                            .ok()
                            .and_then(|i| Some((offsets.get(group, &name, i)?, i)));
                        match committed {
                            Some((c, i)) => (p, c.offset as i64, 0, offsets.meta(group, &name, i)),
                            None => (p, -1, 0, CommitMeta::none()),
                        }
                    })
                    .collect();
                (name, fetched)
            })
            .collect())
    }
}
