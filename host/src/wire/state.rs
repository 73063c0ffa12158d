//! The shapes of reading a processor's state for debugging.

use serde::{Deserialize, Serialize};

/// `GET /processors/{name}/state/{key}`'s query: the partition to read
/// (default: the first input partition that has the key).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateQuery {
    pub partition: Option<u32>,
}

/// A committed state entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEntry {
    pub topic: String,
    pub partition: u32,
    pub key: String,
    /// The value as UTF-8 (lossy).
    pub value: String,
    /// The value's bytes in hexadecimal, for values that are not text.
    pub value_hex: String,
}

impl StateEntry {
    pub fn new(topic: &str, partition: u32, key: &str, value: &[u8]) -> StateEntry {
        StateEntry {
            topic: topic.to_string(),
            partition,
            key: key.to_string(),
            value: String::from_utf8_lossy(value).into_owned(),
            value_hex: value.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}
