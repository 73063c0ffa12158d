//! The Kafka-cluster backend: processors whose records live in a Kafka (or
//! Kafka-protocol) cluster instead of the embedded log, through librdkafka
//! (the `rdkafka` crate). It implements the seam ([`crate::consumer`]) so the
//! processor loop is the same one:
//!
//! - [`ClusterSpec`] (`settings.rs`): a processor spec's `cluster` table:
//!   bootstrap servers, an optional host id for static membership, and
//!   librdkafka properties passed through (security settings, say); the
//!   settings weir derives from the spec itself are refused there.
//! - [`ClusterBackend`] (this file): one connection to a cluster: metadata
//!   (topic checks at start and for guest emits), dead-letter topic creation,
//!   committed offsets and high watermarks for lag.
//! - `consumer.rs`: one group member (the cluster's coordinator assigns the
//!   partitions), polling with the seam's limits, committing after its emits
//!   are flushed, fenced when the partition has moved; `consumer/` holds its
//!   reading (`intake.rs`), rebalances (`rebalance.rs`) and positions,
//!   seeks and offset commits (`position.rs`).
//! - `producer.rs`: the emits of one member, flushed and checked before its
//!   offset commits.
//! - `transaction.rs`: exactly-once, and every commit of a group that keeps
//!   guest state, as one Kafka transaction per batch (emits, state changes,
//!   offset), fenced by the group generation (KIP-447) and by a stable
//!   transactional id.
//! - `changelog.rs`: guest state in a compacted changelog topic
//!   (`weir-state.<group>.<topic>`), restored into the local store when a
//!   partition is assigned.
//! - `seek.rs`: rewinds: positions resolved from the cluster (watermarks,
//!   `offsets_for_times`) and committed through the group while its members
//!   are stopped; a stateful group is refused.
//! - `side.rs`: a shadow's side topics, created in the cluster like their
//!   source before its first emits.
//!
//! What the embedded log does and a cluster cannot (yet) is refused with a
//! clear error: rewinding a group that keeps state (a compacted changelog
//! has no history) and topic settings.

mod changelog;
mod consumer;
mod producer;
mod seek;
mod settings;
mod side;
mod transaction;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

pub use consumer::ClusterConsumer;
pub use settings::{ClusterSpec, check_spec};

use crate::broker::{Moved, SeekTo};
use crate::consumer::{Backend, Consumer, ConsumerError, Membership};
use crate::log::LogError;
use crate::processor::ProcessorSpec;
use crate::processor::spec::OUTPUT_KEY;
use crate::runtime::EmitTopics;
use crate::state::{StateError, StateStore};
use crate::wire::PartitionLag;

/// How long a metadata or offset request to the cluster may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a call to a Kafka cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the Kafka cluster at {servers}: {source}")]
    Unreachable { servers: String, source: KafkaError },
    #[error("cluster settings: {0}")]
    Settings(String),
    #[error("the Kafka client refused its configuration: {0}")]
    Client(KafkaError),
    #[error(
        "the {role} topic {topic:?}{named_by} does not exist in the Kafka cluster at \
         {servers}{hint}; create it there first"
    )]
    UnknownTopic {
        role: &'static str,
        topic: String,
        named_by: &'static str,
        servers: String,
        hint: String,
    },
    #[error("creating the topic {topic:?} in the cluster: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("{0} is not supported against a Kafka cluster")]
    Unsupported(String),
    #[error(
        "the commit of {topic}/{partition} was fenced: this member no longer owns the partition \
         ({reason}); nothing was committed"
    )]
    Fenced {
        topic: String,
        partition: u32,
        reason: String,
    },
    #[error("producing to {topic}: {reason}")]
    Produce { topic: String, reason: String },
    #[error("restoring state from the changelog {changelog}/{partition}: {reason}")]
    Restore {
        changelog: String,
        partition: u32,
        reason: String,
    },
    #[error("{context}: {source}")]
    Kafka {
        context: &'static str,
        source: KafkaError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    /// A rewind's target that does not exist (a partition, an offset).
    #[error(transparent)]
    Position(LogError),
}

impl ClusterError {
    fn kafka(context: &'static str) -> impl FnOnce(KafkaError) -> ClusterError {
        move |source| ClusterError::Kafka { context, source }
    }
}

/// One connection to a Kafka cluster, shared by the members of the processors
/// that name it.
pub struct ClusterBackend {
    spec: ClusterSpec,
    /// Where the local copies of state live: `<data-dir>/cluster-state`.
    state_dir: PathBuf,
    admin: AdminClient<DefaultClientContext>,
    /// A client in no group: metadata and high watermarks.
    probe: BaseConsumer,
    /// Topics seen in the cluster's metadata, with their partition counts.
    known: Mutex<HashMap<String, u32>>,
    /// One client per group, for its committed offsets.
    offsets: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    stores: Mutex<HashMap<String, Arc<StateStore>>>,
    /// Rewinds this host's members apply as they take their partitions.
    pending: seek::Pending,
}

impl ClusterBackend {
    /// Connects to the cluster `spec` names and reads its metadata once, so a
    /// wrong address fails here with the address in the message.
    pub fn connect(
        spec: &ClusterSpec,
        data_dir: &Path,
    ) -> Result<Arc<ClusterBackend>, ClusterError> {
        spec.validate().map_err(ClusterError::Settings)?;
        let config = spec.client_config();
        let admin = config.create().map_err(ClusterError::Client)?;
        let probe = config.create().map_err(ClusterError::Client)?;
        let backend = ClusterBackend {
            spec: spec.clone(),
            state_dir: data_dir.join("cluster-state"),
            admin,
            probe,
            known: Mutex::new(HashMap::new()),
            offsets: Mutex::new(HashMap::new()),
            stores: Mutex::new(HashMap::new()),
            pending: Default::default(),
        };
        backend
            .refresh()
            .map_err(|source| ClusterError::Unreachable {
                servers: spec.bootstrap_servers.clone(),
                source,
            })?;
        Ok(Arc::new(backend))
    }

    /// The bootstrap servers, as configured.
    pub fn servers(&self) -> &str {
        &self.spec.bootstrap_servers
    }

    /// Reads the cluster's topics and their partition counts.
    fn refresh(&self) -> Result<(), KafkaError> {
        let metadata = self.probe.fetch_metadata(None, REQUEST_TIMEOUT)?;
        let mut known = self.known.lock().expect("topics lock");
        known.clear();
        for topic in metadata.topics() {
            if topic.error().is_none() {
                known.insert(topic.name().to_string(), topic.partitions().len() as u32);
            }
        }
        Ok(())
    }

    /// `topic`'s partition count, reading the metadata again when it is not
    /// known yet.
    pub fn partition_count(&self, topic: &str) -> Result<Option<u32>, ClusterError> {
        if let Some(&n) = self.known.lock().expect("topics lock").get(topic) {
            return Ok(Some(n));
        }
        self.refresh()
            .map_err(ClusterError::kafka("reading the cluster's topics"))?;
        Ok(self.known.lock().expect("topics lock").get(topic).copied())
    }

    /// Checks that the processor's input topics and its configured output
    /// topic exist in the cluster (weir does not create them: their
    /// partitions and settings are the cluster's owner's to choose).
    pub fn check_topics(&self, spec: &ProcessorSpec) -> Result<(), ClusterError> {
        let inputs = spec.topics.iter().map(|t| (t, "input", ""));
        let output = spec.config.get(OUTPUT_KEY);
        let wanted = inputs.chain(output.map(|t| (t, "output", " (config output)")));
        for (topic, role, named_by) in wanted {
            if self.partition_count(topic)?.is_some() {
                continue;
            }
            let known = self.known.lock().expect("topics lock");
            let names = known
                .keys()
                .map(String::as_str)
                .filter(|n| !n.starts_with("__"));
            return Err(ClusterError::UnknownTopic {
                role,
                topic: topic.clone(),
                named_by,
                servers: self.spec.bootstrap_servers.clone(),
                hint: crate::error::did_you_mean(topic, names),
            });
        }
        Ok(())
    }

    /// Committed offset, high watermark and lag of `group` on every
    /// partition of `topics`.
    pub fn lag(&self, group: &str, topics: &[String]) -> Result<Vec<PartitionLag>, ClusterError> {
        let client = self.group_client(group)?;
        let mut wanted = TopicPartitionList::new();
        for topic in topics {
            let count = self.partition_count(topic)?.unwrap_or(0);
            for partition in 0..count {
                wanted.add_partition(topic, partition as i32);
            }
        }
        let committed = client
            .committed_offsets(wanted, REQUEST_TIMEOUT)
            .map_err(ClusterError::kafka("reading the group's committed offsets"))?;
        let mut out = Vec::new();
        for element in committed.elements() {
            let (low, high) = self
                .probe
                .fetch_watermarks(element.topic(), element.partition(), REQUEST_TIMEOUT)
                .map_err(ClusterError::kafka("reading a partition's high watermark"))?;
            let (low, high) = (low.max(0) as u64, high.max(0) as u64);
            let committed = match element.offset() {
                Offset::Offset(o) if o >= 0 => Some(o as u64),
                _ => None,
            };
            out.push(PartitionLag {
                topic: element.topic().to_string(),
                partition: element.partition() as u32,
                committed,
                log_start: low,
                high_watermark: high,
                lag: high.saturating_sub(committed.unwrap_or(low).max(low)),
                metadata: None,
            });
        }
        Ok(out)
    }

    /// A client in `group` (never subscribed) for its committed offsets.
    fn group_client(&self, group: &str) -> Result<Arc<BaseConsumer>, ClusterError> {
        let mut clients = self.offsets.lock().expect("offset clients lock");
        if let Some(client) = clients.get(group) {
            return Ok(client.clone());
        }
        let mut config = self.spec.client_config();
        config.set("group.id", group);
        config.set("enable.auto.commit", "false");
        let client: Arc<BaseConsumer> = Arc::new(config.create().map_err(ClusterError::Client)?);
        clients.insert(group.to_string(), client.clone());
        Ok(client)
    }

    /// Creates `topic` with `partitions` partitions unless it exists.
    fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), ClusterError> {
        if self.partition_count(topic)?.is_some() {
            return Ok(());
        }
        let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
        let results = futures_executor::block_on(self.admin.create_topics([&new], &options))
            .map_err(ClusterError::kafka("creating a topic"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => return Err(ClusterError::CreateTopic { topic, code }),
            }
        }
        self.known
            .lock()
            .expect("topics lock")
            .insert(topic.to_string(), partitions);
        Ok(())
    }
}

impl EmitTopics for ClusterBackend {
    fn check(&self, topic: &str) -> Result<(), String> {
        match self.partition_count(topic) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!(
                "topic {topic:?} does not exist in the Kafka cluster at {}",
                self.spec.bootstrap_servers
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl Backend for ClusterBackend {
    fn join(&self, membership: Membership) -> Result<Box<dyn Consumer>, ConsumerError> {
        let pending = self.pending.clone();
        Ok(Box::new(ClusterConsumer::join(
            &self.spec, membership, pending,
        )?))
    }

    fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), ConsumerError> {
        Ok(self.create_topic(topic, partitions)?)
    }

    /// The local copy of the group's state; its truth is the changelog in the
    /// cluster, restored into it when a partition is assigned.
    fn state(&self, group: &str) -> Result<Arc<StateStore>, ConsumerError> {
        crate::name::validate("group", group).map_err(|e| StateError::Log(e.into()))?;
        let mut stores = self.stores.lock().expect("state stores lock");
        if let Some(store) = stores.get(group) {
            return Ok(store.clone());
        }
        std::fs::create_dir_all(&self.state_dir)
            .map_err(|e| StateError::Log(crate::log::LogError::io(&self.state_dir, e)))?;
        let store = Arc::new(StateStore::open(
            &self.state_dir.join(format!("{group}.redb")),
        )?);
        stores.insert(group.to_string(), store.clone());
        Ok(store)
    }

    fn reset(
        &self,
        group: &str,
        topics: &[String],
        to: SeekTo,
    ) -> Result<Vec<Moved>, ConsumerError> {
        let targets = self.every_partition(topics, to)?;
        Ok(self.reset_each(group, &targets)?)
    }
}

/// The partitions of `tpl`, as (topic, partition) pairs.
fn partitions_of(tpl: &TopicPartitionList) -> BTreeSet<(String, u32)> {
    tpl.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition() as u32))
        .collect()
}
