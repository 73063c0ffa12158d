//! FindCoordinator, DescribeGroups and ListGroups: this node coordinates
//! every group, and the listings show both kinds of group side by side:
//! Kafka clients' classic groups (type `classic`, in their phase) and the
//! groups of weir's coordinator, its processors' and those of Kafka clients
//! of the consumer protocol (type `consumer`, as Kafka 4 calls its
//! server-side assignment groups: `Stable` while members run, else
//! `Empty`). A group
//! known only by its committed offsets (a classic group after a restart, a
//! stopped processor's) is listed as `Empty`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, ListGroupsRequest, ListGroupsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::{KafkaGroups, Phase};

/// This node, as clients are told to reach it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

/// One group as the listings see it.
struct Listed {
    name: String,
    protocol_type: String,
    state: &'static str,
    kind: &'static str,
}

impl KafkaGroups {
    /// FindCoordinator: this node, for one key (v0-3) or each (v4+).
    pub fn find_coordinator(
        &self,
        request: FindCoordinatorRequest,
        version: i16,
        node: &Node,
    ) -> FindCoordinatorResponse {
        let host = StrBytes::from_string(node.host.clone());
        let mut response = FindCoordinatorResponse::default();
        if version < 4 {
            response.node_id = BrokerId(node.id);
            response.host = host;
            response.port = node.port;
            response.error_message = None;
            return response;
        }
        response.error_message = None;
        response.coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node.id))
                    .with_host(host.clone())
                    .with_port(node.port)
                    .with_error_message(None)
            })
            .collect();
        response
    }

    /// DescribeGroups: members with their metadata and assignment for
    /// classic groups, member ids for weir's; an unknown group is `Dead`
    /// (GROUP_ID_NOT_FOUND from v6).
    pub fn describe_groups(
        &self,
        request: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let groups = request
            .groups
            .into_iter()
            .map(|id| self.describe_one(id, version))
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }

    fn describe_one(&self, id: GroupId, version: i16) -> DescribedGroup {
        let name = id.to_string();
        let mut described = DescribedGroup::default().with_group_id(id);
        if crate::name::validate("group", &name).is_err() {
            described.error_code = ResponseError::InvalidGroupId.code();
            return described;
        }
        let instance = |i: Option<String>| i.filter(|_| version >= 4).map(StrBytes::from_string);
        if let Some(slot) = self.existing(&name) {
            let (phase, protocol_type, protocol, members) = slot.with(|g| {
                g.tick(std::time::Instant::now());
                (
                    g.phase(),
                    g.protocol_type().unwrap_or("consumer").to_string(),
                    g.protocol().unwrap_or_default().to_string(),
                    g.members(),
                )
            });
            if phase != Phase::Empty || !self.broker.offsets().of_group(&name).is_empty() {
                described.group_state = StrBytes::from_static_str(phase.name());
                described.protocol_type = StrBytes::from_string(protocol_type);
                described.protocol_data = StrBytes::from_string(protocol);
                described.members = members
                    .into_iter()
                    .map(|m| {
                        DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_string(m.member_id))
                            .with_group_instance_id(instance(m.instance_id))
                            .with_client_id(StrBytes::from_string(m.client_id))
                            .with_client_host(StrBytes::from_string(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment)
                    })
                    .collect();
                return described;
            }
        }
        if let Some(live) = self
            .broker
            .groups()
            .describe(&name)
            .filter(|d| !d.members.is_empty())
        {
            described.group_state = StrBytes::from_static_str("Stable");
            described.protocol_type = StrBytes::from_static_str("consumer");
            described.protocol_data = StrBytes::from_string(live.assignor.to_string());
            described.members = live
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.member))
                        .with_group_instance_id(instance(m.instance_id))
                        .with_client_id(StrBytes::from_static_str("weir"))
                })
                .collect();
            return described;
        }
        if !self.broker.offsets().of_group(&name).is_empty() {
            described.group_state = StrBytes::from_static_str("Empty");
            described.protocol_type = StrBytes::from_static_str("consumer");
            return described;
        }
        described.group_state = StrBytes::from_static_str("Dead");
        if version >= 6 {
            described.error_code = ResponseError::GroupIdNotFound.code();
        }
        described
    }

    /// ListGroups: every group, filtered by state (v4+) and type (v5+),
    /// both compared without regard to case as Kafka does.
    pub fn list_groups(&self, request: ListGroupsRequest) -> ListGroupsResponse {
        let wanted = |filter: &[StrBytes], value: &str| {
            filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
        };
        let groups = self
            .listed()
            .into_iter()
            .filter(|g| wanted(&request.states_filter, g.state))
            .filter(|g| wanted(&request.types_filter, g.kind))
            .map(|g| {
                ListedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(g.name)))
                    .with_protocol_type(StrBytes::from_string(g.protocol_type))
                    .with_group_state(StrBytes::from_static_str(g.state))
                    .with_group_type(StrBytes::from_static_str(g.kind))
            })
            .collect();
        ListGroupsResponse::default().with_groups(groups)
    }

    fn listed(&self) -> Vec<Listed> {
        let classic: Vec<(String, std::sync::Arc<super::Slot>)> = self
            .groups
            .lock()
            .expect("kafka groups lock")
            .iter()
            .map(|(n, s)| (n.clone(), s.clone()))
            .collect();
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let now = std::time::Instant::now();
        for (name, slot) in classic {
            let (phase, protocol_type) = slot.with(|g| {
                g.tick(now);
                (
                    g.phase(),
                    g.protocol_type().unwrap_or("consumer").to_string(),
                )
            });
            if phase == Phase::Empty && self.broker.offsets().of_group(&name).is_empty() {
                continue;
            }
            seen.insert(name.clone());
            out.push(Listed {
                name,
                protocol_type,
                state: phase.name(),
                kind: "classic",
            });
        }
        let live: std::collections::BTreeSet<String> =
            self.broker.groups().live_groups().into_iter().collect();
        for name in self.broker.list_groups() {
            if seen.contains(&name) {
                continue;
            }
            let running = live.contains(&name);
            out.push(Listed {
                name,
                protocol_type: "consumer".into(),
                state: if running { "Stable" } else { "Empty" },
                kind: if running { "consumer" } else { "classic" },
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}
