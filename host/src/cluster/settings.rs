//! A processor's `cluster` table: which Kafka cluster it runs against, and
//! the rules that keep a spec runnable there.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::broker::ResetPolicy;
use crate::group::AssignorKind;
use crate::processor::ProcessorSpec;

/// The Kafka cluster a processor reads and writes instead of the embedded
/// log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// `host:port[,host:port...]`: librdkafka's `bootstrap.servers`.
    pub bootstrap_servers: String,
    /// This host's id for static membership: member `i` of the processor
    /// joins with `group.instance.id` `<instance_id>.<processor>-<i>`, so a
    /// restart within the session timeout keeps its partitions. Each host
    /// sharing the processor needs its own. Default: none (dynamic members,
    /// since two hosts would otherwise claim the same ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// librdkafka properties passed through as they are (security settings:
    /// `security.protocol`, `sasl.mechanisms`, `ssl.ca.location`...), to the
    /// consumers, producers and admin client alike. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Properties weir sets itself, with the spec setting each comes from.
const RESERVED: [(&str, &str); 13] = [
    ("bootstrap.servers", "cluster.bootstrap_servers"),
    ("group.id", "group"),
    ("group.instance.id", "cluster.instance_id"),
    ("enable.auto.commit", "commit"),
    ("enable.auto.offset.store", "commit"),
    ("auto.offset.reset", "reset"),
    ("partition.assignment.strategy", "assignor"),
    ("session.timeout.ms", "session_timeout_ms"),
    ("heartbeat.interval.ms", "session_timeout_ms"),
    ("max.poll.interval.ms", "max_poll_interval_ms"),
    ("transactional.id", "commit"),
    ("isolation.level", "commit"),
    ("allow.auto.create.topics", "the topics' owner"),
];

impl ClusterSpec {
    /// A cluster at `bootstrap_servers` with nothing else set.
    pub fn at(bootstrap_servers: impl Into<String>) -> ClusterSpec {
        ClusterSpec {
            bootstrap_servers: bootstrap_servers.into(),
            instance_id: None,
            properties: BTreeMap::new(),
        }
    }

    /// Refuses an empty address and properties weir sets itself.
    pub fn validate(&self) -> Result<(), String> {
        if self.bootstrap_servers.trim().is_empty() {
            return Err("cluster.bootstrap_servers is empty".into());
        }
        if let Some(id) = &self.instance_id {
            crate::name::validate("cluster.instance_id", id).map_err(|e| e.to_string())?;
        }
        for key in self.properties.keys() {
            if let Some((_, from)) = RESERVED.iter().find(|(k, _)| k == key) {
                return Err(format!(
                    "the cluster property {key:?} is weir's to set (it follows {from}); remove it \
                     from cluster.properties"
                ));
            }
        }
        Ok(())
    }

    /// The address and the passed-through properties: what every client of
    /// this cluster starts from.
    pub(super) fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }
}

/// Checks that `spec`, which names a cluster, asks for nothing the cluster
/// backend cannot do; the message names the setting.
pub fn check_spec(spec: &ProcessorSpec) -> Result<(), String> {
    let Some(cluster) = &spec.cluster else {
        return Ok(());
    };
    cluster.validate()?;
    if spec.assignor == AssignorKind::Sticky {
        return Err(
            "assignor = sticky is not offered by librdkafka: use cooperative-sticky, \
                    range or roundrobin against a Kafka cluster"
                .into(),
        );
    }
    if spec.session_timeout_ms > spec.max_poll_interval_ms {
        return Err(format!(
            "session_timeout_ms ({}) is above max_poll_interval_ms ({}), which librdkafka refuses",
            spec.session_timeout_ms, spec.max_poll_interval_ms
        ));
    }
    Ok(())
}

/// librdkafka's name for an assignor.
pub(super) fn assignor_name(assignor: AssignorKind) -> &'static str {
    match assignor {
        AssignorKind::Range => "range",
        AssignorKind::RoundRobin => "roundrobin",
        // Refused by `check_spec`; the nearest librdkafka offers.
        AssignorKind::Sticky | AssignorKind::CooperativeSticky => "cooperative-sticky",
    }
}

/// librdkafka's `auto.offset.reset` for a reset policy.
pub(super) fn reset_name(reset: ResetPolicy) -> &'static str {
    match reset {
        ResetPolicy::Earliest => "earliest",
        ResetPolicy::Latest => "latest",
        ResetPolicy::None => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::CommitMode;

    #[test]
    fn properties_weir_sets_are_refused_with_the_setting_they_follow() {
        let mut cluster = ClusterSpec::at("127.0.0.1:9092");
        cluster
            .properties
            .insert("security.protocol".into(), "ssl".into());
        assert_eq!(cluster.validate(), Ok(()));
        cluster.properties.insert("group.id".into(), "g".into());
        let message = cluster.validate().unwrap_err();
        assert!(
            message.contains("\"group.id\"") && message.contains("follows group"),
            "{message}"
        );
    }

    #[test]
    fn sticky_is_refused_on_a_cluster_but_exactly_once_is_not() {
        let mut spec = ProcessorSpec::over(&["in"]);
        spec.cluster = Some(ClusterSpec::at("127.0.0.1:9092"));
        spec.commit = CommitMode::ExactlyOnce;
        assert_eq!(check_spec(&spec), Ok(()));
        spec.assignor = AssignorKind::Sticky;
        assert!(
            check_spec(&spec)
                .unwrap_err()
                .contains("cooperative-sticky")
        );
        spec.assignor = AssignorKind::CooperativeSticky;
        assert_eq!(check_spec(&spec), Ok(()));
    }

    #[test]
    fn an_empty_address_is_refused() {
        let message = ClusterSpec::at(" ").validate().unwrap_err();
        assert!(message.contains("bootstrap_servers"), "{message}");
    }
}
