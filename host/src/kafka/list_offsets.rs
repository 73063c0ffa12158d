//! ListOffsets: per partition, the earliest offset (timestamp -2), the
//! latest (-1, the high watermark), or the first offset whose record's
//! timestamp is at or after the given one, with that record's timestamp
//! (offset -1 when every record is older, as Kafka answers).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{KafkaError, Session};
use crate::log::Log;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub async fn handle(
    session: &Session,
    _version: i16,
    request: ListOffsetsRequest,
) -> Result<ListOffsetsResponse, KafkaError> {
    let log = session.broker().log().clone();
    let topics = tokio::task::spawn_blocking(move || {
        request
            .topics
            .into_iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let partitions = topic
                    .partitions
                    .iter()
                    .map(|p| {
                        let answer = ListOffsetsPartitionResponse::default()
                            .with_partition_index(p.partition_index);
                        match lookup(&log, &name, p.partition_index, p.timestamp) {
                            Ok((offset, timestamp)) => {
                                answer.with_offset(offset).with_timestamp(timestamp)
                            }
                            Err(code) => answer
                                .with_error_code(code.code())
                                .with_offset(-1)
                                .with_timestamp(-1),
                        }
                    })
                    .collect();
                ListOffsetsTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions)
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(ListOffsetsResponse::default().with_topics(topics))
}

/// (offset, timestamp) for one partition.
fn lookup(
    log: &Log,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> Result<(i64, i64), ResponseError> {
    let code = |e| super::produce::refusal(e).0;
    let partition = u32::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    match timestamp {
        LATEST => Ok((
            log.high_watermark(topic, partition).map_err(code)? as i64,
            -1,
        )),
        EARLIEST => Ok((log.log_start(topic, partition).map_err(code)? as i64, -1)),
        ts if ts >= 0 => {
            let Some(offset) = log
                .offset_for_timestamp(topic, partition, ts)
                .map_err(code)?
            else {
                return Ok((-1, -1));
            };
            let found = log.read(topic, partition, offset, 1, 1).map_err(code)?;
            let stamp = found.first().map_or(-1, |r| r.timestamp);
            Ok((offset as i64, stamp))
        }
        // -3 (max timestamp) and the tiered-storage specs are not offered.
        _ => Err(ResponseError::UnsupportedVersion),
    }
}
