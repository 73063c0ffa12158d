//! Topic shapes: `Topic` as `GET /topics` and `GET /topics/{topic}` answer it,
//! the body of `POST /topics` (`CreateTopic`, also a `[[topics]]` table of
//! `weir.toml`) and of `PATCH /topics/{topic}` (`TopicSettings`). Unknown
//! fields are refused with their name, so a misspelt setting is never
//! silently ignored.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use crate::log::{CleanupPolicy, Durability, TopicConfig};

/// A topic with the high watermark of each partition and its settings
/// (`Topic` in `docs/api.md`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: u32,
    /// One per partition, in partition order: the next offset it will assign.
    pub high_watermarks: Vec<u64>,
    /// One per partition, in partition order: the first offset still kept
    /// (retention deletes the segments before it).
    #[serde(default)]
    pub log_starts: Vec<u64>,
    /// Every setting, as `topic.json` keeps it.
    pub config: TopicConfig,
}

/// Topic settings to create a topic with or to change, each optional (absent:
/// the default at creation, unchanged afterwards). For the limits that may be
/// off (`retention_ms`, `retention_bytes`, `segment_ms`) `null` means "no
/// limit". `TopicSettings` in `docs/api.md`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TopicSettings {
    /// 1 when absent at creation; later it may grow (never shrink).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention_ms: Option<Option<u64>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub retention_bytes: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_bytes: Option<u64>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Option::is_none"
    )]
    pub segment_ms: Option<Option<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durability: Option<Durability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_policy: Option<CleanupPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_retention_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch_records: Option<u32>,
}

/// A present field, `null` included (`Some(None)`); absent stays `None`.
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

impl TopicSettings {
    /// `config` with these settings applied.
    pub fn apply(&self, config: TopicConfig) -> TopicConfig {
        TopicConfig {
            partitions: self.partitions.unwrap_or(config.partitions),
            segment_bytes: self.segment_bytes.unwrap_or(config.segment_bytes),
            segment_ms: self.segment_ms.unwrap_or(config.segment_ms),
            retention_ms: self.retention_ms.unwrap_or(config.retention_ms),
            retention_bytes: self.retention_bytes.unwrap_or(config.retention_bytes),
            durability: self.durability.unwrap_or(config.durability),
            cleanup_policy: self.cleanup_policy.unwrap_or(config.cleanup_policy),
            delete_retention_ms: self
                .delete_retention_ms
                .unwrap_or(config.delete_retention_ms),
            max_batch_bytes: self.max_batch_bytes.unwrap_or(config.max_batch_bytes),
            max_batch_records: self.max_batch_records.unwrap_or(config.max_batch_records),
        }
    }

    /// The settings of a new topic: these over the defaults (one partition).
    pub fn new_config(&self) -> TopicConfig {
        self.apply(TopicConfig::with_partitions(1))
    }
}

/// The body of `POST /topics` and a `[[topics]]` table of `weir.toml`: a name
/// and [`TopicSettings`], side by side.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CreateTopic {
    pub name: String,
    #[serde(flatten)]
    pub settings: TopicSettings,
}

impl CreateTopic {
    /// A topic of `partitions` partitions and default settings.
    pub fn new(name: &str, partitions: u32) -> CreateTopic {
        CreateTopic {
            name: name.to_string(),
            settings: TopicSettings {
                partitions: Some(partitions),
                ..TopicSettings::default()
            },
        }
    }
}

/// By hand, because serde cannot refuse unknown fields of a flattened struct:
/// the name is taken out and the rest must be [`TopicSettings`] exactly.
impl<'de> Deserialize<'de> for CreateTopic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<CreateTopic, D::Error> {
        let mut fields = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        let name = match fields.remove("name") {
            Some(serde_json::Value::String(name)) => name,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "name: expected a string, got {other}"
                )));
            }
            None => return Err(D::Error::missing_field("name")),
        };
        let settings =
            TopicSettings::deserialize(serde_json::Value::Object(fields.into_iter().collect()))
                .map_err(D::Error::custom)?;
        Ok(CreateTopic { name, settings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_field_is_refused_by_name() {
        let err = serde_json::from_str::<CreateTopic>(r#"{"name":"x","partitons":3}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("partitons"), "{err}");
        let err = serde_json::from_str::<TopicSettings>(r#"{"retention":5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("retention"), "{err}");
    }

    #[test]
    fn null_lifts_a_limit_and_absent_keeps_it() {
        let base = TopicConfig::with_partitions(2).retention(Some(10), Some(20));
        let lift: TopicSettings = serde_json::from_str(r#"{"retention_ms":null}"#).unwrap();
        let config = lift.apply(base);
        assert_eq!(
            (config.retention_ms, config.retention_bytes),
            (None, Some(20))
        );
        let body = r#"{"name":"t","partitions":3,"durability":"always","cleanup_policy":"compact","segment_ms":100}"#;
        let create: CreateTopic = serde_json::from_str(body).unwrap();
        let config = create.settings.new_config();
        assert_eq!(config.partitions, 3);
        assert_eq!(config.durability, Durability::Always);
        assert_eq!(config.cleanup_policy, CleanupPolicy::Compact);
        assert_eq!(config.segment_ms, Some(100));
        let round: CreateTopic =
            serde_json::from_str(&serde_json::to_string(&create).unwrap()).unwrap();
        assert_eq!(round, create);
    }
}
