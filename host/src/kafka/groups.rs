//! Consumer groups of Kafka clients on weir's listener: the classic
//! JoinGroup/SyncGroup protocol (`classic.rs`, pure logic over a clock), its
//! requests and responses in kafka-protocol's types, the KIP-848 consumer
//! protocol (ConsumerGroupHeartbeat) mapped onto weir's own coordinator
//! (`consumer.rs`), committed offsets in weir's own `__consumer_offsets`
//! (`offsets.rs`), and the coordinator look-ups and listings (`listing.rs`).
//!
//! This node is every group's coordinator. JoinGroup and SyncGroup wait (as
//! tokio tasks, one per request) on their group's barrier: each group has a
//! watch channel that every change of the group bumps under its lock, so a
//! waiter that checked the state and then waits can miss no change; waiters
//! also wake at the barrier's deadline and every [`TICK`] to apply session
//! timeouts.
//!
//! Kafka-client groups and weir's processor groups share one namespace
//! (offsets, `weir group describe`, lag metrics), but never a group: a Kafka
//! client that joins or commits to a group that a weir processor runs is
//! refused with INCONSISTENT_GROUP_PROTOCOL (checked when the Kafka client
//! comes: a processor started on a Kafka client's group is not refused yet).
//! Reading a processor group's offsets (OffsetFetch) is allowed. A group
//! name weir cannot use (see [`crate::name`]) gets INVALID_GROUP_ID.
//!
//! Lock order: the map of groups, then one group's lock, then weir's
//! coordinator and offsets (whose own order is kept, see [`crate::broker`]).

mod classic;
pub mod consumer;
mod error;
mod listing;
mod offsets;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;

use super::Session;
use crate::broker::Broker;
pub use classic::{ClassicGroup, Join, JoinResult, Joined, MemberView, Phase};
pub use consumer::ConsumerTimeouts;
pub use error::GroupsError;
pub use listing::Node;

/// How often a waiting JoinGroup or SyncGroup looks at the clock.
pub const TICK: Duration = Duration::from_millis(250);

/// The classic groups of Kafka clients on this node.
pub struct KafkaGroups {
    broker: Arc<Broker>,
    groups: Mutex<BTreeMap<String, Arc<Slot>>>,
    /// The consumer-protocol (KIP-848) groups (`consumer.rs`).
    consumers: Mutex<BTreeMap<String, Arc<Mutex<consumer::ConsumerGroup>>>>,
    timeouts: ConsumerTimeouts,
    /// Member ids carry this (the process's start time) so that an id
    /// handed out before a restart never names a member after it.
    nonce: u64,
    next_id: AtomicU64,
}

/// One group and the channel its waiters listen on.
struct Slot {
    group: Mutex<ClassicGroup>,
    changed: watch::Sender<()>,
}

impl Slot {
    /// Runs `f` on the group and tells every waiter to look again.
    fn with<T>(&self, f: impl FnOnce(&mut ClassicGroup) -> T) -> T {
        let mut group = self.group.lock().expect("kafka group lock");
        let out = f(&mut group);
        self.changed.send_replace(());
        out
    }
}

impl KafkaGroups {
    pub fn new(broker: Arc<Broker>) -> KafkaGroups {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        KafkaGroups {
            broker,
            groups: Mutex::new(BTreeMap::new()),
            consumers: Mutex::new(BTreeMap::new()),
            timeouts: ConsumerTimeouts::default(),
            nonce,
            next_id: AtomicU64::new(0),
        }
    }

    /// Consumer-protocol members heartbeat and time out by `timeouts`.
    pub fn with_consumer_timeouts(mut self, timeouts: ConsumerTimeouts) -> KafkaGroups {
        self.timeouts = timeouts;
        self
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let client = if client_id.is_empty() {
            "member"
        } else {
            client_id
        };
        format!("{client}-{:x}-{n}", self.nonce)
    }

    /// The group, if a Kafka client ever joined or committed to it here.
    fn existing(&self, name: &str) -> Option<Arc<Slot>> {
        self.groups
            .lock()
            .expect("kafka groups lock")
            .get(name)
            .cloned()
    }

    /// The group, created if new: refused if weir cannot use its name or a
    /// weir processor runs it.
    fn slot(&self, name: &str) -> Result<Arc<Slot>, GroupsError> {
        crate::name::validate("group", name)
            .map_err(|_| GroupsError::InvalidGroupId(name.to_string()))?;
        if self.consumer_has_members(name) {
            return Err(GroupsError::InconsistentProtocol(format!(
                "group {name:?} is a consumer-protocol (KIP-848) group: a classic member cannot join it"
            )));
        }
        if self.weir_runs(name) {
            return Err(GroupsError::InconsistentProtocol(format!(
                "group {name:?} has members in weir's coordinator (a weir processor, or consumer-protocol members that left for a while)"
            )));
        }
        let mut groups = self.groups.lock().expect("kafka groups lock");
        Ok(groups
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    group: Mutex::new(ClassicGroup::new(name)),
                    changed: watch::channel(()).0,
                })
            })
            .clone())
    }

    /// Whether weir's own coordinator has members in `name` (processors,
    /// or restored static members awaiting theirs).
    fn weir_runs(&self, name: &str) -> bool {
        self.broker
            .groups()
            .describe(name)
            .is_some_and(|d| !d.members.is_empty())
    }

    /// Polls the group until `poll` has an answer, waking on every change,
    /// at the barrier's deadline and every [`TICK`].
    async fn wait<T>(
        &self,
        slot: &Slot,
        mut poll: impl FnMut(&mut ClassicGroup, Instant) -> Result<Option<T>, GroupsError>,
    ) -> Result<T, GroupsError> {
        let mut changed = slot.changed.subscribe();
        loop {
            let wake = {
                let mut group = slot.group.lock().expect("kafka group lock");
                let now = Instant::now();
                let answer = poll(&mut group, now);
                slot.changed.send_replace(());
                // Our own bump is seen; only others' wake us.
                changed.borrow_and_update();
                if let Some(answer) = answer.transpose() {
                    return answer;
                }
                let tick = now + TICK;
                group.deadline().map_or(tick, |d| d.min(tick))
            };
            let wake = tokio::time::Instant::from_std(wake);
            let _ = tokio::time::timeout_at(wake, changed.changed()).await;
        }
    }

    /// JoinGroup: waits for the group's barrier. `client_host` is how
    /// DescribeGroups shows the member (Kafka's form is `/127.0.0.1`).
    pub async fn join_group(
        &self,
        request: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> JoinGroupResponse {
        let member_id = request.member_id.to_string();
        let result = self.join(request, version, client_id, client_host).await;
        let mut response = JoinGroupResponse::default();
        match result {
            Ok(result) => {
                response.generation_id = result.generation;
                response.protocol_type =
                    (version >= 7).then(|| StrBytes::from_string(result.protocol_type));
                response.protocol_name = Some(StrBytes::from_string(result.protocol_name));
                response.leader = StrBytes::from_string(result.leader);
                response.skip_assignment = version >= 9 && result.skip_assignment;
                response.member_id = StrBytes::from_string(result.member_id);
                response.members = result
                    .members
                    .into_iter()
                    .map(|m| {
                        JoinGroupResponseMember::default()
                            .with_member_id(StrBytes::from_string(m.member_id))
                            .with_group_instance_id(
                                m.instance_id
                                    .filter(|_| version >= 5)
                                    .map(StrBytes::from_string),
                            )
                            .with_metadata(m.metadata)
                    })
                    .collect();
            }
            Err(e) => {
                tracing::debug!(error = %e, "JoinGroup refused");
                response.error_code = e.code();
                response.generation_id = -1;
                response.protocol_name = (version < 7).then(StrBytes::default);
                response.member_id = StrBytes::from_string(match e {
                    GroupsError::MemberIdRequired(id) => id,
                    _ => member_id,
                });
            }
        }
        response
    }

    async fn join(
        &self,
        request: JoinGroupRequest,
        version: i16,
        client_id: &str,
        client_host: &str,
    ) -> Result<JoinResult, GroupsError> {
        let slot = self.slot(&request.group_id)?;
        let session = millis(request.session_timeout_ms);
        let join = Join {
            member_id: request.member_id.to_string(),
            instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: client_id.to_string(),
            client_host: client_host.to_string(),
            session_timeout: session,
            // v0 has no rebalance timeout: the session timeout serves.
            rebalance_timeout: if version >= 1 {
                millis(request.rebalance_timeout_ms)
            } else {
                session
            },
            protocol_type: request.protocol_type.to_string(),
            protocols: request
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member: version >= 4,
        };
        let instance = join.instance_id.clone();
        let joined = slot.with(|g| g.join(join, |c| self.new_member_id(c), Instant::now()))?;
        let id = match joined {
            Joined::Done(result) => return Ok(result),
            Joined::Waiting(id) => id,
        };
        self.wait(&slot, |g, now| g.poll_join(&id, instance.as_deref(), now))
            .await
    }

    /// SyncGroup: the leader's assignments in, each member's out (a
    /// follower waits for the leader's).
    pub async fn sync_group(&self, request: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        let protocol_type = request.protocol_type.as_ref().map(|t| t.to_string());
        let protocol_name = request.protocol_name.as_ref().map(|t| t.to_string());
        let mut response = SyncGroupResponse::default();
        match self.sync(request).await {
            Ok(assignment) => {
                response.assignment = assignment;
                if version >= 5 {
                    response.protocol_type = protocol_type.map(StrBytes::from_string);
                    response.protocol_name = protocol_name.map(StrBytes::from_string);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "SyncGroup refused");
                response.error_code = e.code();
            }
        }
        response
    }

    async fn sync(&self, request: SyncGroupRequest) -> Result<bytes::Bytes, GroupsError> {
        let slot = self.known(&request.group_id, &request.member_id)?;
        let member = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        let generation = request.generation_id;
        let assignments: BTreeMap<String, bytes::Bytes> = request
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect();
        let protocol = (
            request.protocol_type.as_deref(),
            request.protocol_name.as_deref(),
        );
        let synced = slot.with(|g| {
            g.sync(
                &member,
                instance.as_deref(),
                generation,
                protocol,
                assignments,
                Instant::now(),
            )
        })?;
        if let Some(assignment) = synced {
            return Ok(assignment);
        }
        self.wait(&slot, |g, now| {
            g.poll_sync(&member, instance.as_deref(), generation, now)
        })
        .await
    }

    /// The group of a member's request: a group nobody joined here has no
    /// members (UNKNOWN_MEMBER_ID).
    fn known(&self, group: &str, member: &str) -> Result<Arc<Slot>, GroupsError> {
        self.existing(group)
            .ok_or_else(|| GroupsError::UnknownMember(member.to_string()))
    }

    /// Heartbeat: REBALANCE_IN_PROGRESS while the group's barrier is open.
    pub fn heartbeat(&self, request: HeartbeatRequest) -> HeartbeatResponse {
        let member = request.member_id.to_string();
        let instance = request.group_instance_id.as_ref().map(|i| i.to_string());
        let result = self.known(&request.group_id, &member).and_then(|slot| {
            slot.with(|g| {
                g.heartbeat(
                    &member,
                    instance.as_deref(),
                    request.generation_id,
                    Instant::now(),
                )
            })
        });
        HeartbeatResponse::default().with_error_code(code(&result))
    }

    /// LeaveGroup: one member (v0-2) or a batch by member or instance id
    /// (v3+), each with its own error.
    pub fn leave_group(&self, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let slot = self.existing(&request.group_id);
        let leave = |member: &str, instance: Option<&str>| match &slot {
            None => Err(GroupsError::UnknownMember(member.to_string())),
            Some(slot) => slot.with(|g| g.leave(member, instance, Instant::now())),
        };
        let mut response = LeaveGroupResponse::default();
        if version < 3 {
            response.error_code = code(&leave(&request.member_id, None));
            return response;
        }
        response.members = request
            .members
            .iter()
            .map(|m| {
                let instance = m.group_instance_id.as_deref();
                MemberResponse::default()
                    .with_member_id(m.member_id.clone())
                    .with_group_instance_id(m.group_instance_id.clone())
                    .with_error_code(code(&leave(&m.member_id, instance)))
            })
            .collect();
        response
    }
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// FindCoordinator on a connection: this node, at the address the
/// connection advertises.
pub fn find_coordinator(
    session: &Session,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = session.advertised();
    let node = Node {
        id: super::NODE_ID,
        host,
        port: i32::from(port),
    };
    session
        .state
        .groups
        .find_coordinator(request, version, &node)
}

/// JoinGroup on a connection: the member is shown with the connection's
/// client id and address.
pub async fn join_group(
    session: &Session,
    version: i16,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let client_id = session.client_id.clone().unwrap_or_default();
    let host = format!("/{}", session.peer.ip());
    session
        .state
        .groups
        .join_group(request, version, &client_id, &host)
        .await
}

/// A result's Kafka error code (0 for success).
fn code<T>(result: &Result<T, GroupsError>) -> i16 {
    match result {
        Ok(_) => 0,
        Err(e) => e.code(),
    }
}
