//! Fetch: records of each asked partition from the asked offset, as v2
//! record batches, within `partition_max_bytes` and `max_bytes` (about: whole
//! batches, and at least one for the first partition with data, as Kafka
//! does so that a batch over the limit still gets through), long-polling up
//! to `max_wait_ms` until `min_bytes` are there. A fetch may start inside a
//! batch: the answer starts at the asked offset. v13+ names topics by id.
//!
//! Fetch sessions (KIP-227) are not kept: the answer's session id is 0, so
//! clients send full fetches. Records of a Kafka transaction reach the log
//! only when it commits (`transactions.rs`), so `read_committed` reads the
//! same as `read_uncommitted`, the last stable offset is the high watermark
//! and no aborted transactions are listed.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaError, Session, records};
use crate::log::{Log, LogError};

/// The most records one partition's answer holds (the byte limits usually
/// stop it first).
const MAX_RECORDS: usize = 100_000;

pub async fn handle(
    session: &Session,
    version: i16,
    request: FetchRequest,
) -> Result<FetchResponse, KafkaError> {
    let log = session.broker().log().clone();
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_bytes = if request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    let by_id = version >= 13;
    let topics = std::sync::Arc::new(request.topics);
    loop {
        // Registered before reading, so an append in between is not missed.
        let appended = log.appended();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let read_log = log.clone();
        let read_topics = topics.clone();
        let (responses, bytes, failed) =
            tokio::task::spawn_blocking(move || read(&read_log, &read_topics, by_id, max_bytes))
                .await?;
        if bytes >= min_bytes || failed || tokio::time::Instant::now() >= deadline {
            return Ok(FetchResponse::default().with_responses(responses));
        }
        if tokio::time::timeout_at(deadline, appended).await.is_err() {
            // Waited long enough: answer with what is there (possibly nothing).
            let log = log.clone();
            let (responses, _, _) =
                tokio::task::spawn_blocking(move || read(&log, &topics, by_id, max_bytes)).await?;
            return Ok(FetchResponse::default().with_responses(responses));
        }
    }
}

/// One pass over the asked partitions: the answers, the bytes of records in
/// them, and whether any partition failed (which answers at once).
fn read(
    log: &Log,
    topics: &[FetchTopic],
    by_id: bool,
    max_bytes: usize,
) -> (Vec<FetchableTopicResponse>, usize, bool) {
    let mut total = 0usize;
    let mut failed = false;
    let mut out = Vec::with_capacity(topics.len());
    for topic in topics {
        let name = if by_id {
            log.topic_by_id(topic.topic_id)
        } else {
            Some(topic.topic.0.to_string())
        };
        let mut response = FetchableTopicResponse::default();
        response = if by_id {
            response.with_topic_id(topic.topic_id)
        } else {
            response.with_topic(topic.topic.clone())
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for asked in &topic.partitions {
            let answer = PartitionData::default()
                .with_partition_index(asked.partition)
                .with_preferred_read_replica(BrokerId(-1));
            let Some(name) = &name else {
                failed = true;
                partitions.push(answer.with_error_code(ResponseError::UnknownTopicId.code()));
                continue;
            };
            let budget =
                (asked.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            let read = partition(
                log,
                name,
                asked.partition,
                asked.fetch_offset,
                budget,
                total == 0,
            );
            match read {
                Ok((hw, start, bytes)) => {
                    total += bytes.len();
                    partitions.push(
                        answer
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(start)
                            .with_records(Some(bytes)),
                    );
                }
                Err((code, hw, start)) => {
                    failed = true;
                    partitions.push(
                        answer
                            .with_error_code(code.code())
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(start),
                    );
                }
            }
        }
        out.push(response.with_partitions(partitions));
    }
    (out, total, failed)
}

/// One partition: (high watermark, log start, encoded records), or the
/// error code with what is known of the partition.
fn partition(
    log: &Log,
    topic: &str,
    partition: i32,
    offset: i64,
    budget: usize,
    first: bool,
) -> Result<(i64, i64, Bytes), (ResponseError, i64, i64)> {
    let unknown = (ResponseError::UnknownTopicOrPartition, -1, -1);
    let partition = u32::try_from(partition).map_err(|_| unknown)?;
    let (hw, start) = match (
        log.high_watermark(topic, partition),
        log.log_start(topic, partition),
    ) {
        (Ok(hw), Ok(start)) => (hw, start),
        (Err(e), _) | (_, Err(e)) => return Err((super::produce::refusal(e).0, -1, -1)),
    };
    let known = |code| (code, hw as i64, start as i64);
    if offset < start as i64 || offset > hw as i64 {
        return Err(known(ResponseError::OffsetOutOfRange));
    }
    let offset = offset as u64;
    // An empty budget still reads one batch for the first partition, so a
    // batch over the limits does not stall the consumer.
    if offset == hw || (budget == 0 && !first) {
        return Ok((hw as i64, start as i64, Bytes::new()));
    }
    let records = log
        .read(topic, partition, offset, MAX_RECORDS, budget.max(1) as u64)
        .map_err(|e| match e {
            LogError::OffsetOutOfRange { .. } => known(ResponseError::OffsetOutOfRange),
            e => known(super::produce::refusal(e).0),
        })?;
    let bytes = records::encode(&records).map_err(|e| {
        tracing::error!(error = %e, topic, partition, "encoding a Kafka record batch");
        known(ResponseError::UnknownServerError)
    })?;
    Ok((hw as i64, start as i64, bytes))
}

/// The name of a topic as the protocol carries it.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}
