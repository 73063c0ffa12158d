//! A Kafka listener in this process over a test's broker, and a raw Kafka
//! connection to it that sends requests built with the `kafka-protocol`
//! crate (or any bytes at all), for tests of the protocol itself: bad
//! frames, exact error codes, retried idempotent batches, long polls.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    GroupId, JoinGroupRequest, JoinGroupResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use weir::broker::Broker;

/// A Kafka listener over `broker` on 127.0.0.1:0, served by a runtime of
/// its own until dropped.
pub struct Listener {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    pub fn start(broker: Arc<Broker>) -> Listener {
        Listener::with_token(broker, None)
    }

    /// A listener whose clients must authenticate (SASL PLAIN) with `token`.
    pub fn with_token(broker: Arc<Broker>, token: Option<String>) -> Listener {
        Listener::configured(broker, move |state| state.with_token(token).unwrap())
    }

    /// A listener whose consumer-protocol (KIP-848) members heartbeat and
    /// time out by `timeouts`.
    pub fn with_consumer_timeouts(
        broker: Arc<Broker>,
        timeouts: weir::kafka::groups::ConsumerTimeouts,
    ) -> Listener {
        Listener::configured(broker, move |state| state.with_consumer_timeouts(timeouts))
    }

    fn configured(
        broker: Arc<Broker>,
        configure: impl FnOnce(weir::kafka::KafkaState) -> weir::kafka::KafkaState + Send + 'static,
    ) -> Listener {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let state = Arc::new(configure(weir::kafka::KafkaState::new(broker, None)));
                weir::kafka::serve(listener, state, async {
                    stopped.await.ok();
                })
                .await
                .unwrap();
            });
        });
        Listener {
            addr: rx.recv().expect("the listener's address"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// A new connection to it.
    pub fn connect(&self) -> Wire {
        Wire::connect(self.addr)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
        self.thread.take().map(|t| t.join());
    }
}

/// One raw Kafka connection.
pub struct Wire {
    stream: TcpStream,
    correlation: i32,
}

impl Wire {
    pub fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).expect("connect to the Kafka listener");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Wire {
            stream,
            correlation: 0,
        }
    }

    /// Sends `request` at `version` and reads its response.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> R::Response {
        self.send(version, request);
        self.receive::<R>(version)
    }

    /// Sends `request` without reading a response (acks 0, pipelining).
    pub fn send<R: Request>(&mut self, version: i16, request: &R) {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("weir-tests")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, R::header_version(version))
            .expect("encode the header");
        request
            .encode(&mut body, version)
            .expect("encode the request");
        self.raw(&(body.len() as i32).to_be_bytes());
        self.raw(&body);
    }

    /// Reads the response to the last request sent of type `R`.
    pub fn receive<R: Request>(&mut self, version: i16) -> R::Response {
        let mut frame = self.frame().expect("a response frame");
        let header = ResponseHeader::decode(
            &mut frame,
            <R::Response as HeaderVersion>::header_version(version),
        )
        .expect("decode the response header");
        assert!(header.correlation_id > 0, "a correlation id");
        let response = R::Response::decode(&mut frame, version).expect("decode the response");
        assert_eq!(frame.remaining(), 0, "the response was read whole");
        response
    }

    /// Writes bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the listener");
    }

    /// Reads one frame; `None` when the server closed the connection.
    pub fn frame(&mut self) -> Option<bytes::Bytes> {
        let mut size = [0u8; 4];
        self.stream.read_exact(&mut size).ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
        self.stream.read_exact(&mut frame).ok()?;
        Some(frame.into())
    }

    /// Whether the server closed the connection within the read timeout
    /// (an end of stream or a reset; a timeout says it is still open).
    pub fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(n) => n == 0,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        }
    }
}

/// A frame with a v1 request header (api key, version, correlation id, no
/// client id) and no body.
pub fn request_frame(api_key: i16, version: i16, correlation: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&api_key.to_be_bytes());
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&correlation.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// A protocol string.
pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// JoinGroup (a `consumer` group, protocol `range`) of group `g` as
/// `member` (empty on a first join), static when `instance` is given.
pub fn join_request(g: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(g)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(5_000)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"subscription")),
        ])
}

/// A dynamic member's full join of group `g` (MEMBER_ID_REQUIRED, then the
/// real join), over JoinGroup v5.
#[track_caller]
pub fn join(wire: &mut Wire, g: &str) -> JoinGroupResponse {
    let first = wire.call(5, &join_request(g, "", None));
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    assert!(!first.member_id.is_empty());
    let joined = wire.call(5, &join_request(g, &first.member_id, None));
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.member_id, first.member_id);
    joined
}

/// Commits `offset` for partition 0 of topic `t` in group `g` with OffsetCommit
/// `version`, as `member` at `generation_or_epoch` (a classic generation, or
/// from v9 a consumer-protocol member epoch); the partition's error code.
pub fn commit(
    wire: &mut Wire,
    version: i16,
    g: &str,
    member: &str,
    generation_or_epoch: i32,
    offset: i64,
) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
    let response = wire.call(
        version,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(s(g)))
            .with_generation_id_or_member_epoch(generation_or_epoch)
            .with_member_id(s(member))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("t")))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(offset),
                    ]),
            ]),
    );
    response.topics[0].partitions[0].error_code
}
