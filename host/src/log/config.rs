//! A topic's settings ([`TopicConfig`]) and the durability policy of its appends
//! ([`Durability`]), kept in the topic's `topic.json`.
//!
//! Every field added after the first release has a serde default, so a
//! `topic.json` written by an older weir still opens, with the documented
//! defaults.

use serde::{Deserialize, Serialize};

use super::LogError;

/// The most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 1024;

/// The flush interval of the default policy, [`Durability::Interval`].
pub const DEFAULT_INTERVAL_MS: u64 = 1000;

/// When an append is acknowledged, relative to its bytes reaching stable storage.
///
/// Every policy acknowledges an append only after its batch is wholly written
/// to the segment file; they differ in what a *power loss or kernel crash* (not
/// a process crash: the page cache survives that) may take with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// An append returns only after an `fdatasync` that covers it. Concurrent
    /// appends to a partition share one fsync (group commit), and readers see a
    /// batch only once it is durable: nothing acknowledged or read can be lost.
    Always,
    /// Appends return once written; a background flusher fsyncs every partition
    /// with unsynced data about every `ms` milliseconds. A power loss can take
    /// the last ~`ms` of acknowledged appends.
    Interval { ms: u64 },
    /// Appends return once written; the log fsyncs only when a segment is sealed
    /// and on [`super::Log::sync_all`]. A power loss can take everything since.
    Never,
}

/// The default is `interval(1000 ms)`. The slice fsynced only on segment roll
/// (that is `never`), which leaves an unbounded window of acknowledged data a
/// power loss can take; `interval` bounds it to about a second at the cost of
/// one background fsync per partition per second, so unsynced append speed is
/// unchanged. Topics that must not lose an acknowledged record ask for `always`.
impl Default for Durability {
    fn default() -> Durability {
        Durability::Interval {
            ms: DEFAULT_INTERVAL_MS,
        }
    }
}

/// A topic's settings, fixed at creation and kept in its `topic.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    pub partitions: u32,
    /// A segment is rolled once it would grow past this many bytes.
    pub segment_bytes: u64,
    /// A non-empty segment is rolled once its first batch is this old, so
    /// retention by time can delete it even when traffic is light.
    #[serde(default)]
    pub segment_ms: Option<u64>,
    /// Sealed segments whose newest record is older than this are deleted.
    #[serde(default)]
    pub retention_ms: Option<u64>,
    /// The oldest sealed segments are deleted while a partition is larger.
    #[serde(default)]
    pub retention_bytes: Option<u64>,
    #[serde(default)]
    pub durability: Durability,
}

impl TopicConfig {
    /// `partitions` partitions with the default 64 MiB segments, no retention
    /// and the default durability.
    pub fn with_partitions(partitions: u32) -> TopicConfig {
        TopicConfig {
            partitions,
            segment_bytes: 64 << 20,
            segment_ms: None,
            retention_ms: None,
            retention_bytes: None,
            durability: Durability::default(),
        }
    }

    /// The same settings with another durability policy.
    pub fn durability(self, durability: Durability) -> TopicConfig {
        TopicConfig { durability, ..self }
    }

    /// The same settings with another segment size.
    pub fn segment_bytes(self, segment_bytes: u64) -> TopicConfig {
        TopicConfig {
            segment_bytes,
            ..self
        }
    }

    /// The same settings with retention by time and/or size.
    pub fn retention(self, ms: Option<u64>, bytes: Option<u64>) -> TopicConfig {
        TopicConfig {
            retention_ms: ms,
            retention_bytes: bytes,
            ..self
        }
    }

    /// Checks the settings a topic cannot work with.
    pub fn validate(&self) -> Result<(), LogError> {
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(LogError::BadPartitionCount {
                partitions: self.partitions,
            });
        }
        if self.segment_bytes == 0 {
            return Err(LogError::BadConfig {
                what: "segment_bytes must be at least 1",
            });
        }
        if matches!(self.durability, Durability::Interval { ms: 0 }) {
            return Err(LogError::BadConfig {
                what: "a durability interval must be at least 1 ms",
            });
        }
        if self.segment_ms == Some(0) {
            return Err(LogError::BadConfig {
                what: "segment_ms must be at least 1",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_topic_json_loads_with_the_documented_defaults() {
        let old = r#"{ "partitions": 3, "segment_bytes": 1024 }"#;
        let config: TopicConfig = serde_json::from_str(old).unwrap();
        assert_eq!(config.durability, Durability::Interval { ms: 1000 });
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.retention_bytes, None);
        assert_eq!(config.segment_ms, None);
    }

    #[test]
    fn durability_round_trips_through_json() {
        for d in [
            Durability::Always,
            Durability::Never,
            Durability::Interval { ms: 5 },
        ] {
            let config = TopicConfig::with_partitions(1).durability(d);
            let json = serde_json::to_string(&config).unwrap();
            assert_eq!(serde_json::from_str::<TopicConfig>(&json).unwrap(), config);
        }
        let json = r#"{"partitions":1,"segment_bytes":9,"durability":"always"}"#;
        let config: TopicConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.durability, Durability::Always);
    }
}
