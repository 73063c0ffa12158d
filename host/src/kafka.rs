//! `weir serve --kafka-listen ADDR`: the Kafka wire protocol over the same
//! broker as the HTTP API (same topics, offsets and groups), so existing
//! Kafka clients (librdkafka and kcat, kafka-python, the Java clients)
//! produce to and fetch from weir unchanged. Message types, record batches
//! (v2) and their compression come from the `kafka-protocol` crate; nothing
//! here parses Kafka bytes by hand but the 4-byte size prefix of a frame.
//!
//! # Layout
//!
//! - `frame.rs`: the size-prefixed frames on a connection, with the size limit.
//! - `connection.rs`: one client connection: request header, version check,
//!   decode, dispatch, response, in order (Kafka clients rely on responses
//!   coming back in request order).
//! - `dispatch.rs`: the table of supported API versions and the one `match`
//!   from a request to its handler.
//! - `versions.rs` (ApiVersions), `metadata.rs` (Metadata, DescribeCluster), `produce.rs`
//!   (Produce), `fetch.rs` (Fetch), `list_offsets.rs` (ListOffsets),
//!   `topics.rs` (CreateTopics, DeleteTopics, DescribeConfigs),
//!   `producers.rs` (InitProducerId and the idempotent producer's sequence
//!   checks), `records.rs` (Kafka record batches to weir records and back),
//!   `sasl.rs` (SaslHandshake and SaslAuthenticate: PLAIN, and SCRAM-SHA-256
//!   and -512 from `sasl/scram.rs`, against the token), `tls.rs` (the
//!   listener's rustls configuration and handshake limit).
//! - `partitions.rs` (CreatePartitions: a topic's partitions grow),
//!   `configs.rs` (AlterConfigs and IncrementalAlterConfigs onto a topic's
//!   settings, under `topics.rs`' Kafka names).
//! - `groups.rs`, `groups/`: consumer groups of Kafka clients (FindCoordinator,
//!   JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
//!   DescribeGroups, ListGroups; ConsumerGroupHeartbeat and
//!   ConsumerGroupDescribe of the KIP-848 protocol, mapped onto weir's own
//!   coordinator), offsets kept in weir's `__consumer_offsets`.
//! - `transactions.rs`, `transactions/`: Kafka transactions (InitProducerId
//!   with a transactional id, AddPartitionsToTxn, AddOffsetsToTxn,
//!   TxnOffsetCommit, EndTxn): records and offsets held until commit, then
//!   written as one durable unit through the journal `__transactions`.
//!
//! Invariants: a frame over [`MAX_FRAME_BYTES`], a frame that is not a
//! request, an unknown API key or a version outside the advertised range
//! (but ApiVersions', answered with UNSUPPORTED_VERSION as Kafka does) closes
//! the connection and nothing else; so does any request but ApiVersions and
//! SASL's before a connection authenticated, when the listener has a token, and
//! so does a failed TLS handshake; no client input panics the server, and a
//! failing connection never affects another. Errors about topics, partitions,
//! offsets and records travel back as Kafka error codes in the response.
//!
//! weir is a single-node cluster here: node 0 leads every partition, which
//! has one replica, so acks 1 and all both mean "appended once the topic's
//! durability policy holds" and acks 0 means the same without a response.

mod configs;
mod connection;
pub mod dispatch;
mod fetch;
mod frame;
pub mod groups;
mod list_offsets;
mod metadata;
mod partitions;
mod produce;
mod producers;
mod records;
pub mod sasl;
pub mod tls;
mod topics;
pub mod transactions;
mod versions;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::broker::Broker;

pub use frame::MAX_FRAME_BYTES;

/// The node id weir answers as (the only broker of its cluster).
pub const NODE_ID: i32 = 0;

/// What can go wrong on the Kafka listener. Every variant ends one
/// connection at most; the listener goes on serving the others.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(
        "the Kafka listener on {addr} (not loopback) needs a token for SASL PLAIN and SCRAM: set --token or WEIR_TOKEN"
    )]
    TokenRequired { addr: SocketAddr },
    #[error("{path} is not {what}")]
    TlsFile {
        path: std::path::PathBuf,
        what: &'static str,
        #[source]
        source: tokio_rustls::rustls::pki_types::pem::Error,
    },
    #[error("the TLS certificate {cert} and key {key} do not make a server configuration")]
    TlsConfig {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
        #[source]
        source: tokio_rustls::rustls::Error,
    },
    #[error("TLS handshake")]
    TlsHandshake(#[source] std::io::Error),
    #[error("no TLS handshake within {0:?}")]
    TlsHandshakeTimeout(std::time::Duration),
    #[error("the system's random source")]
    Random(#[source] getrandom::Error),
    #[error("{0:?} before SASL authentication")]
    Unauthenticated(kafka_protocol::messages::ApiKey),
    #[error("SASL authentication failed")]
    AuthenticationFailed,
    #[error("Kafka connection I/O")]
    Io(#[from] std::io::Error),
    #[error("a frame of {size} bytes is over the limit of {max} bytes")]
    FrameTooLarge { size: i64, max: usize },
    #[error("malformed frame: {0}")]
    BadFrame(&'static str),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} version {version} is not supported (weir speaks {min} to {max})")]
    UnsupportedVersion {
        api: kafka_protocol::messages::ApiKey,
        version: i16,
        min: i16,
        max: i16,
    },
    #[error("undecodable {api:?} v{version} request")]
    Decode {
        api: kafka_protocol::messages::ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("encoding a {api:?} v{version} response")]
    Encode {
        api: kafka_protocol::messages::ApiKey,
        version: i16,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("a blocking task of the Kafka listener failed")]
    Task(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Log(#[from] crate::log::LogError),
    #[error(transparent)]
    Group(#[from] crate::group::GroupError),
}

/// What every connection of one listener shares.
pub struct KafkaState {
    pub broker: Arc<Broker>,
    /// The `HOST:PORT` clients are told to connect to (Metadata's broker
    /// list); `None`: the address each connection reached, which is right
    /// on loopback and on a single interface.
    pub advertised: Option<(String, u16)>,
    /// When set, a connection must authenticate with SASL (PLAIN or SCRAM)
    /// and the token as its password before anything but ApiVersions.
    pub credentials: Option<sasl::Credentials>,
    /// When set, every connection speaks TLS first.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `weir serve`'s processors, so a topic one reads is not deleted.
    pub supervisor: Option<Arc<crate::supervisor::Supervisor>>,
    /// The idempotent producers' ids and sequence numbers.
    pub(crate) producers: producers::Producers,
    /// The consumer groups of Kafka clients (`groups.rs`).
    pub groups: groups::KafkaGroups,
    /// When set, Metadata creates an unknown topic a client asks for, with
    /// this many partitions and default settings, if the request allows it
    /// (Kafka's `auto.create.topics.enable` and `num.partitions`); off
    /// unless asked for.
    pub auto_create_partitions: Option<u32>,
    /// The transaction coordinator (`transactions.rs`).
    pub(crate) transactions: transactions::Transactions,
}

impl KafkaState {
    pub fn new(broker: Arc<Broker>, advertised: Option<(String, u16)>) -> KafkaState {
        KafkaState {
            groups: groups::KafkaGroups::new(broker.clone()),
            broker,
            advertised,
            credentials: None,
            tls: None,
            supervisor: None,
            producers: producers::Producers::default(),
            auto_create_partitions: None,
            transactions: transactions::Transactions::new(transactions::DEFAULT_MAX_BYTES),
        }
    }
}

impl KafkaState {
    /// Connections must authenticate with `token` as their password (SASL
    /// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512); derives SCRAM's keys.
    pub fn with_token(mut self, token: Option<String>) -> Result<KafkaState, KafkaError> {
        self.credentials = token.map(sasl::Credentials::new).transpose()?;
        Ok(self)
    }

    /// Connections speak TLS through `acceptor` (see [`tls::acceptor`]).
    pub fn with_tls(mut self, acceptor: Option<tokio_rustls::TlsAcceptor>) -> KafkaState {
        self.tls = acceptor;
        self
    }

    /// Topic deletions go through `supervisor`, which refuses to delete a
    /// topic a processor reads.
    pub fn with_supervisor(mut self, supervisor: Arc<crate::supervisor::Supervisor>) -> KafkaState {
        self.supervisor = Some(supervisor);
        self
    }

    /// Consumer-protocol (KIP-848) members heartbeat and time out by
    /// `timeouts`.
    pub fn with_consumer_timeouts(mut self, timeouts: groups::ConsumerTimeouts) -> KafkaState {
        self.groups = self.groups.with_consumer_timeouts(timeouts);
        self
    }

    /// Metadata creates the unknown topics clients ask for, with
    /// `partitions` partitions (see [`KafkaState::auto_create_partitions`]).
    pub fn with_auto_create_partitions(mut self, partitions: Option<u32>) -> KafkaState {
        self.auto_create_partitions = partitions;
        self
    }
}

/// One client connection, as the handlers see it.
pub struct Session {
    pub state: Arc<KafkaState>,
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client reached (what Metadata advertises unless
    /// [`KafkaState::advertised`] says otherwise).
    pub local: SocketAddr,
    /// The `client.id` of the request being handled.
    pub client_id: Option<String>,
    /// The SASL mechanism chosen and the exchange under way.
    pub(crate) login: sasl::Login,
    /// SaslAuthenticate succeeded (or no token is required).
    pub(crate) authenticated: bool,
    /// SaslAuthenticate failed: the connection closes after its answer.
    pub(crate) failed_auth: bool,
}

impl Session {
    /// The shared broker: log, offsets and groups.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.state.broker
    }

    /// Where clients should connect: (host, port).
    pub fn advertised(&self) -> (String, u16) {
        match &self.state.advertised {
            Some((host, port)) => (host.clone(), *port),
            None => (self.local.ip().to_string(), self.local.port()),
        }
    }
}

/// Parses `HOST:PORT` for `--kafka-advertised`.
pub fn parse_advertised(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    let port = port
        .parse()
        .map_err(|_| format!("{port:?} is not a port number"))?;
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// Accepts Kafka connections on `listener` until `shutdown` completes; each
/// connection runs in its own task.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<KafkaState>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), KafkaError> {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: keep listening.
                tracing::warn!(error = %e, "accepting a Kafka connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        stream.set_nodelay(true).ok();
        let local = stream.local_addr()?;
        let session = Session {
            authenticated: state.credentials.is_none(),
            state: state.clone(),
            peer,
            local,
            client_id: None,
            login: sasl::Login::default(),
            failed_auth: false,
        };
        match state.tls.clone() {
            None => tokio::spawn(connection::run(stream, session)),
            Some(acceptor) => tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                match handshake {
                    Ok(Ok(stream)) => connection::run(stream, session).await,
                    Ok(Err(e)) => {
                        let e = KafkaError::TlsHandshake(e);
                        tracing::warn!(%peer, error = %crate::error::chain(&e), "closing a Kafka connection");
                    }
                    Err(_) => {
                        let e = KafkaError::TlsHandshakeTimeout(tls::HANDSHAKE_TIMEOUT);
                        tracing::warn!(%peer, error = %e, "closing a Kafka connection");
                    }
                }
            }),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_addresses_parse_with_their_port() {
        assert_eq!(
            parse_advertised("kafka.example:9092").unwrap(),
            ("kafka.example".to_string(), 9092)
        );
        assert_eq!(
            parse_advertised("[::1]:9092").unwrap(),
            ("::1".to_string(), 9092)
        );
        assert!(parse_advertised("nohost").is_err());
        assert!(parse_advertised(":9092").is_err());
        assert!(parse_advertised("h:port").is_err());
    }
}
