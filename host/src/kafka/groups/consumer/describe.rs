//! ConsumerGroupDescribe: a consumer-protocol group with its Kafka members
//! (ids, epochs, subscriptions, what each was sent and what weir's
//! coordinator grants it), a weir processor's group with weir's members
//! (weir runs them the same server-side way), a group known only by its
//! committed offsets as `Empty`; a classic group or an unknown one is
//! GROUP_ID_NOT_FOUND, as Kafka answers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::group::{AssignorKind, TopicPartition};
use crate::kafka::groups::KafkaGroups;
use crate::log::Log;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Kafka's name for a weir assignor on the server side.
fn assignor_name(kind: AssignorKind) -> &'static str {
    match kind {
        AssignorKind::CooperativeSticky => "uniform",
        other => other.name(),
    }
}

fn assignment(log: &Log, partitions: &[TopicPartition]) -> Assignment {
    let by_id = super::wire::assignment(log, partitions);
    let topic_partitions = by_id
        .topic_partitions
        .into_iter()
        .map(|t| {
            let name = log.topic_by_id(t.topic_id).unwrap_or_default();
            TopicPartitions::default()
                .with_topic_id(t.topic_id)
                .with_topic_name(TopicName(s(&name)))
                .with_partitions(t.partitions)
        })
        .collect();
    Assignment::default().with_topic_partitions(topic_partitions)
}

impl KafkaGroups {
    /// ConsumerGroupDescribe: each group asked for.
    pub fn consumer_group_describe(
        &self,
        request: ConsumerGroupDescribeRequest,
    ) -> ConsumerGroupDescribeResponse {
        let groups = request
            .group_ids
            .into_iter()
            .map(|id| self.describe_consumer(id))
            .collect();
        ConsumerGroupDescribeResponse::default().with_groups(groups)
    }

    fn describe_consumer(&self, id: GroupId) -> DescribedGroup {
        let name = id.to_string();
        let described = DescribedGroup::default().with_group_id(id);
        let not_found = |message: String| {
            described
                .clone()
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(StrBytes::from_string(message)))
        };
        if crate::name::validate("group", &name).is_err() {
            return described.with_error_code(ResponseError::InvalidGroupId.code());
        }
        let log = self.broker.log();
        let live = self.broker.groups().describe(&name);
        if let Some(group) = self.consumer(&name) {
            let group = group.lock().expect("consumer group lock");
            if !group.members.is_empty() {
                let live = live.clone();
                let generation = live.as_ref().map_or(0, |l| l.generation as i32);
                let assignor = live
                    .as_ref()
                    .map_or("uniform", |l| assignor_name(l.assignor));
                let members = group
                    .members
                    .iter()
                    .map(|(id, m)| {
                        let target = live
                            .as_ref()
                            .and_then(|l| l.members.iter().find(|w| w.member == m.weir_id))
                            .map(|w| w.assigned.clone())
                            .unwrap_or_default();
                        Member::default()
                            .with_member_id(s(id))
                            .with_instance_id(m.instance_id.as_deref().map(s))
                            .with_rack_id(m.rack_id.as_deref().map(s))
                            .with_member_epoch(m.epoch)
                            .with_client_id(s(&m.client_id))
                            .with_client_host(s(&m.client_host))
                            .with_subscribed_topic_names(
                                m.names.iter().map(|n| TopicName(s(n))).collect(),
                            )
                            .with_subscribed_topic_regex(m.regex.as_deref().map(s))
                            .with_assignment(assignment(log, m.sent.as_deref().unwrap_or_default()))
                            .with_target_assignment(assignment(log, &target))
                            .with_member_type(1)
                    })
                    .collect();
                let reconciling = group.members.values().any(|m| m.epoch != generation);
                return described
                    .with_group_state(StrBytes::from_static_str(if reconciling {
                        "Reconciling"
                    } else {
                        "Stable"
                    }))
                    .with_group_epoch(generation)
                    .with_assignment_epoch(generation)
                    .with_assignor_name(StrBytes::from_static_str(assignor))
                    .with_members(members);
            }
        }
        if self
            .existing(&name)
            .is_some_and(|slot| !slot.with(|g| g.is_empty()))
        {
            return not_found(format!(
                "group {name:?} is not a consumer group (it is classic)"
            ));
        }
        if let Some(live) = live.filter(|l| !l.members.is_empty()) {
            let members = live
                .members
                .iter()
                .map(|m| {
                    Member::default()
                        .with_member_id(s(&m.member))
                        .with_instance_id(m.instance_id.as_deref().map(s))
                        .with_member_epoch(m.epoch as i32)
                        .with_client_id(StrBytes::from_static_str("weir"))
                        .with_subscribed_topic_names(
                            live.topics.iter().map(|t| TopicName(s(t))).collect(),
                        )
                        .with_assignment(assignment(log, &m.assigned))
                        .with_target_assignment(assignment(log, &m.assigned))
                        .with_member_type(1)
                })
                .collect();
            return described
                .with_group_state(StrBytes::from_static_str("Stable"))
                .with_group_epoch(live.generation as i32)
                .with_assignment_epoch(live.generation as i32)
                .with_assignor_name(StrBytes::from_static_str(assignor_name(live.assignor)))
                .with_members(members);
        }
        if !self.broker.offsets().of_group(&name).is_empty() {
            return described.with_group_state(StrBytes::from_static_str("Empty"));
        }
        not_found(format!("group {name:?} does not exist"))
    }
}
