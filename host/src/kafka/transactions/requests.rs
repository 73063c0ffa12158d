//! The handlers of the transaction requests (InitProducerId with a
//! transactional id, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
//! EndTxn): each asks the coordinator ([`super::Transactions`]) under its
//! lock and answers a refusal with the code the request's version expects
//! (PRODUCER_FENCED or, before it, INVALID_PRODUCER_EPOCH for a stale
//! epoch); EndTxn writes a commit through the journal off the async thread.

use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

use super::{ids, journal};
use crate::kafka::{KafkaError, Session};
use crate::offsets::Committed;

/// The fenced code of a request at `version`: PRODUCER_FENCED from
/// `since`, INVALID_PRODUCER_EPOCH before.
fn fenced(version: i16, since: i16) -> ResponseError {
    if version >= since {
        ResponseError::ProducerFenced
    } else {
        ResponseError::InvalidProducerEpoch
    }
}

/// InitProducerId with a transactional id.
pub fn init(
    session: &Session,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let state = &session.state;
    let id = request
        .transactional_id
        .as_ref()
        .map(|id| id.0.to_string())
        .unwrap_or_default();
    let timeout = Duration::from_millis(request.transaction_timeout_ms.max(0) as u64);
    let current = (request.producer_id.0 >= 0 && request.producer_epoch >= 0)
        .then_some((request.producer_id.0, request.producer_epoch));
    // The owner is saved under the coordinator's lock, so the newest saved
    // is the newest handed out (`transactions/ids.rs`).
    let mut txns = state.transactions.lock(&state.producers);
    let result = txns
        .init(&id, timeout, current, &|| state.producers.allocate())
        .and_then(|(producer_id, epoch)| {
            let owner = ids::Owner { producer_id, epoch };
            ids::save(state.broker.log(), &id, owner)?;
            Ok((producer_id, epoch))
        });
    drop(txns);
    let response = InitProducerIdResponse::default();
    match result {
        Ok((producer_id, epoch)) => response
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(epoch),
        Err(e) => {
            tracing::debug!(%id, error = %e, "InitProducerId refused");
            response
                .with_error_code(e.code(fenced(version, 4)))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}

/// AddPartitionsToTxn (v0-3): every partition must exist; if one does not,
/// the others get OPERATION_NOT_ATTEMPTED, as in Kafka.
pub fn add_partitions(
    session: &Session,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let state = &session.state;
    let log = state.broker.log();
    let id = request.v3_and_below_transactional_id.0.to_string();
    let producer = (
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
    );
    let mut asked = Vec::new();
    let mut bad = false;
    for topic in &request.v3_and_below_topics {
        let count = log.partition_count(&topic.name).ok();
        for &p in &topic.partitions {
            let code = if topic.name.starts_with("__") {
                ResponseError::TopicAuthorizationFailed.code()
            } else if count.is_some_and(|n| p >= 0 && (p as u32) < n) {
                0
            } else {
                ResponseError::UnknownTopicOrPartition.code()
            };
            bad |= code != 0;
            asked.push((topic.name.clone(), p, code));
        }
    }
    let verdict = if bad {
        ResponseError::OperationNotAttempted.code()
    } else {
        let partitions: Vec<(String, u32)> = asked
            .iter()
            .map(|(t, p, _)| (t.to_string(), *p as u32))
            .collect();
        match state.transactions.lock(&state.producers).add_partitions(
            &id,
            producer,
            &partitions,
            Instant::now(),
        ) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(%id, error = %e, "AddPartitionsToTxn refused");
                e.code(fenced(version, 2))
            }
        }
    };
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for (name, p, code) in asked {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(p)
            .with_partition_error_code(if code == 0 { verdict } else { code });
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.results_by_partition.push(result),
            None => topics.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(name)
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}

/// AddOffsetsToTxn: the group's offsets may follow (TxnOffsetCommit).
pub fn add_offsets(
    session: &Session,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let state = &session.state;
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let code = if crate::name::validate("group", &group).is_err() {
        ResponseError::InvalidGroupId.code()
    } else {
        match state.transactions.lock(&state.producers).add_offsets(
            &id,
            (request.producer_id.0, request.producer_epoch),
            &group,
            Instant::now(),
        ) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(%id, error = %e, "AddOffsetsToTxn refused");
                e.code(fenced(version, 2))
            }
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}

/// TxnOffsetCommit: holds the offsets until the transaction ends. From v3
/// a request that names its member and generation (KIP-447) is checked
/// against the group like an OffsetCommit, so a zombie is refused.
pub fn txn_offset_commit(
    session: &Session,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let state = &session.state;
    let log = state.broker.log();
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let generation = request.generation_id;
    let member = request.member_id.to_string();
    let mut verdicts = Vec::new();
    let mut offsets = Vec::new();
    for topic in &request.topics {
        let count = log.partition_count(&topic.name).ok();
        for p in &topic.partitions {
            let known =
                count.is_some_and(|n| p.partition_index >= 0 && (p.partition_index as u32) < n);
            let code = if !known {
                ResponseError::UnknownTopicOrPartition.code()
            } else if p.committed_offset < 0 {
                ResponseError::OffsetOutOfRange.code()
            } else {
                offsets.push((
                    topic.name.to_string(),
                    p.partition_index as u32,
                    Committed {
                        offset: p.committed_offset as u64,
                        generation: generation.max(0) as u32,
                    },
                ));
                0
            };
            verdicts.push((topic.name.clone(), p.partition_index, code));
        }
    }
    let checked = if version >= 3 && !(generation < 0 && member.is_empty()) {
        state.groups.check_txn_commit(
            &group,
            &member,
            request.group_instance_id.as_deref(),
            generation,
        )
    } else {
        Ok(())
    };
    let refused = match checked {
        Err(code) => code,
        Ok(()) => match state.transactions.lock(&state.producers).hold_offsets(
            &id,
            (request.producer_id.0, request.producer_epoch),
            &group,
            &offsets,
        ) {
            Ok(()) => 0,
            Err(e) => {
                tracing::debug!(%id, error = %e, "TxnOffsetCommit refused");
                e.code(fenced(version, 3))
            }
        },
    };
    let mut topics: Vec<TxnOffsetCommitResponseTopic> = Vec::new();
    for (name, p, code) in verdicts {
        let answer = TxnOffsetCommitResponsePartition::default()
            .with_partition_index(p)
            .with_error_code(if code == 0 { refused } else { code });
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partitions.push(answer),
            None => topics.push(
                TxnOffsetCommitResponseTopic::default()
                    .with_name(name)
                    .with_partitions(vec![answer]),
            ),
        }
    }
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// EndTxn: an abort drops what the transaction held; a commit writes it as
/// one durable unit and answers once all of it is in the log. A commit that
/// fails to write fences its producer (its epoch is bumped), so a retry
/// cannot pass for a success.
pub async fn end(
    session: &Session,
    version: i16,
    request: EndTxnRequest,
) -> Result<EndTxnResponse, KafkaError> {
    let state = session.state.clone();
    let id = request.transactional_id.0.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let fenced = fenced(version, 2);
    let response = EndTxnResponse::default();
    let prepared = {
        let mut txns = state.transactions.lock(&state.producers);
        if request.committed {
            txns.prepare_commit(&id, producer)
        } else {
            txns.abort(&id, producer).map(|()| None)
        }
    };
    let held = match prepared {
        Ok(Some(held)) => held,
        Ok(None) => return Ok(response),
        Err(e) => {
            tracing::debug!(%id, error = %e, "EndTxn refused");
            return Ok(response.with_error_code(e.code(fenced)));
        }
    };
    let code = tokio::task::spawn_blocking(move || {
        let one = state.transactions.committing.lock().expect("commit lock");
        let written = journal::commit(state.broker.log(), state.broker.offsets(), &id, held);
        drop(one);
        let mut txns = state.transactions.lock(&state.producers);
        txns.finish(&id);
        match written {
            Ok(()) => 0,
            Err(e) => {
                txns.fence(&id, &|| state.producers.allocate());
                e.code(fenced)
            }
        }
    })
    .await?;
    Ok(response.with_error_code(code))
}
