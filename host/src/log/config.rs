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

/// The default most bytes of one batch ([`TopicConfig::max_batch_bytes`]).
pub const DEFAULT_MAX_BATCH_BYTES: u64 = 1 << 20;

/// The default most records of one batch ([`TopicConfig::max_batch_records`]).
pub const DEFAULT_MAX_BATCH_RECORDS: u32 = 10_000;

/// When an append is acknowledged, relative to its bytes reaching stable storage.
///
/// Its text form (the CLI's, the API's and `topic.json`'s) is `always`,
/// `never`, `interval` (every [`DEFAULT_INTERVAL_MS`]) or `interval:MS`; a
/// `topic.json` written before that form (`{"interval":{"ms":N}}`) still
/// loads.
///
/// Every policy acknowledges an append only after its batch is wholly written
/// to the segment file; they differ in what a *power loss or kernel crash* (not
/// a process crash: the page cache survives that) may take with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "DurabilityForm")]
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

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Durability::Always => f.write_str("always"),
            Durability::Never => f.write_str("never"),
            Durability::Interval { ms } => write!(f, "interval:{ms}"),
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Durability, String> {
        let bad =
            || format!("unknown durability {s:?}: expected always, never, interval or interval:MS");
        match s.split_once(':') {
            None if s == "always" => Ok(Durability::Always),
            None if s == "never" => Ok(Durability::Never),
            None if s == "interval" => Ok(Durability::default()),
            Some(("interval", ms)) => ms
                .trim_end_matches("ms")
                .parse()
                .map(|ms| Durability::Interval { ms })
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl Serialize for Durability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What a durability may be written as: the text form, or the tagged form of
/// `topic.json` files from before it.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurabilityForm {
    Text(String),
    Tagged(TaggedDurability),
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum TaggedDurability {
    Always,
    Interval { ms: u64 },
    Never,
}

impl TryFrom<DurabilityForm> for Durability {
    type Error = String;

    fn try_from(form: DurabilityForm) -> Result<Durability, String> {
        match form {
            DurabilityForm::Text(text) => text.parse(),
            DurabilityForm::Tagged(TaggedDurability::Always) => Ok(Durability::Always),
            DurabilityForm::Tagged(TaggedDurability::Never) => Ok(Durability::Never),
            DurabilityForm::Tagged(TaggedDurability::Interval { ms }) => {
                Ok(Durability::Interval { ms })
            }
        }
    }
}

/// What happens to a topic's old records besides retention: `delete` only
/// drops whole segments past the retention limits; `compact` also rewrites
/// sealed segments to keep only the latest record of each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    #[default]
    Delete,
    Compact,
}

impl CleanupPolicy {
    pub const ALL: [CleanupPolicy; 2] = [CleanupPolicy::Delete, CleanupPolicy::Compact];

    pub fn name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }

    pub fn parse(s: &str) -> Option<CleanupPolicy> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

crate::keyword::keywords!(CleanupPolicy);

/// A topic's settings, kept in its `topic.json`. They may change later
/// ([`super::Log::alter_topic`]); the partition count only grows.
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
    #[serde(default)]
    pub cleanup_policy: CleanupPolicy,
    /// Under `compact`, how long a tombstone (a keyed record with an empty
    /// value) is kept after its timestamp before compaction drops it.
    #[serde(default = "default_delete_retention_ms")]
    pub delete_retention_ms: u64,
    /// The most bytes one batch may take on disk; larger appends are refused
    /// and producers split their records below it.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: u64,
    /// The most records one batch may hold.
    #[serde(default = "default_max_batch_records")]
    pub max_batch_records: u32,
}

/// A day, as Kafka's `delete.retention.ms`.
pub const DEFAULT_DELETE_RETENTION_MS: u64 = 24 * 60 * 60 * 1000;

fn default_delete_retention_ms() -> u64 {
    DEFAULT_DELETE_RETENTION_MS
}

fn default_max_batch_bytes() -> u64 {
    DEFAULT_MAX_BATCH_BYTES
}

fn default_max_batch_records() -> u32 {
    DEFAULT_MAX_BATCH_RECORDS
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
            cleanup_policy: CleanupPolicy::Delete,
            delete_retention_ms: DEFAULT_DELETE_RETENTION_MS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_batch_records: DEFAULT_MAX_BATCH_RECORDS,
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
        if self.max_batch_records == 0 {
            return Err(LogError::BadConfig {
                what: "max_batch_records must be at least 1",
            });
        }
        if self.max_batch_bytes < 64 {
            return Err(LogError::BadConfig {
                what: "max_batch_bytes must be at least 64",
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
        assert_eq!(config.cleanup_policy, CleanupPolicy::Delete);
        assert_eq!(config.max_batch_bytes, DEFAULT_MAX_BATCH_BYTES);
        assert_eq!(config.max_batch_records, DEFAULT_MAX_BATCH_RECORDS);
        let tagged = r#"{"partitions":1,"segment_bytes":9,"durability":{"interval":{"ms":7}}}"#;
        let config: TopicConfig = serde_json::from_str(tagged).unwrap();
        assert_eq!(config.durability, Durability::Interval { ms: 7 });
    }

    #[test]
    fn durability_has_a_text_form() {
        for (text, d) in [
            ("always", Durability::Always),
            ("never", Durability::Never),
            ("interval", Durability::Interval { ms: 1000 }),
            ("interval:250", Durability::Interval { ms: 250 }),
        ] {
            assert_eq!(text.parse::<Durability>().unwrap(), d);
        }
        assert_eq!(Durability::Interval { ms: 5 }.to_string(), "interval:5");
        let err = "sometimes".parse::<Durability>().unwrap_err();
        assert!(
            err.contains("sometimes") && err.contains("interval:MS"),
            "{err}"
        );
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
