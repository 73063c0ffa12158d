//! A shadow's side topics in the cluster: `<topic>.shadow`, created (once per
//! member, if missing) with as many partitions as the topic it shadows, so
//! the partitioner places each emit as it would in the source, before the
//! batch's emits are produced. They stay when the shadow goes, as the
//! processor's dead-letter topic does: the cluster's topics are its owner's
//! to remove.

use std::collections::BTreeSet;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;

use super::{ClusterError, ClusterSpec, REQUEST_TIMEOUT};

/// The side topics one member has made sure of.
pub(super) struct SideTopics {
    spec: ClusterSpec,
    /// Topics known to exist; the admin client is made at the first miss.
    ensured: BTreeSet<String>,
    admin: Option<(AdminClient<DefaultClientContext>, BaseConsumer)>,
}

impl SideTopics {
    pub fn new(spec: &ClusterSpec) -> SideTopics {
        SideTopics {
            spec: spec.clone(),
            ensured: BTreeSet::new(),
            admin: None,
        }
    }

    /// Creates each `(side, like)` unless it exists, with `like`'s partition
    /// count.
    pub fn ensure(&mut self, create_like: &[(String, String)]) -> Result<(), ClusterError> {
        for (side, like) in create_like {
            if self.ensured.contains(side) {
                continue;
            }
            if self.admin.is_none() {
                let config = self.spec.client_config();
                let admin = config.create().map_err(ClusterError::Client)?;
                let probe = config.create().map_err(ClusterError::Client)?;
                self.admin = Some((admin, probe));
            }
            let (admin, probe) = self.admin.as_ref().expect("made above");
            let count = |topic: &str| -> Result<Option<i32>, ClusterError> {
                let metadata = probe
                    .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
                    .map_err(ClusterError::kafka("reading a topic's metadata"))?;
                let found = metadata.topics().iter().find(|t| t.name() == topic);
                Ok(found
                    .filter(|t| t.error().is_none() && !t.partitions().is_empty())
                    .map(|t| t.partitions().len() as i32))
            };
            if count(side)?.is_none() {
                let partitions = count(like)?.ok_or_else(|| ClusterError::Produce {
                    topic: side.clone(),
                    reason: format!("the topic it shadows, {like:?}, does not exist"),
                })?;
                let new = NewTopic::new(side, partitions, TopicReplication::Fixed(1));
                let options = AdminOptions::new().operation_timeout(Some(REQUEST_TIMEOUT));
                let results = futures_executor::block_on(admin.create_topics([&new], &options))
                    .map_err(ClusterError::kafka("creating a side topic"))?;
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((topic, code)) => {
                            return Err(ClusterError::CreateTopic { topic, code });
                        }
                    }
                }
                tracing::info!(topic = %side, like = %like, partitions, "created a shadow's side topic in the cluster");
            }
            self.ensured.insert(side.clone());
        }
        Ok(())
    }
}
