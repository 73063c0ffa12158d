//! Record shapes of produce and fetch in JSON (`Produce`, `Produced`,
//! `Record` in `docs/api.md`) and their query strings. In JSON, keys, values
//! and header values are UTF-8 strings; a fetched byte string that is not
//! UTF-8 is shown lossily (the binary [`super::frame`] carries bytes as they
//! are).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::log::{Record, StoredRecord};

/// The JSON body of `POST /topics/{topic}/records`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Produce {
    pub records: Vec<ProduceRecord>,
}

/// One record of a JSON produce.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProduceRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Where this record goes; absent, the placement rule of
    /// [`crate::log::Placement`] decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

impl ProduceRecord {
    /// The record to append, with the partition it names (if any).
    pub fn into_record(self) -> (Option<u32>, Record) {
        let record = Record {
            key: self.key.map(String::into_bytes),
            value: self.value.into_bytes(),
            headers: self
                .headers
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect(),
            timestamp: None,
            nulls: Default::default(),
        };
        (self.partition, record)
    }
}

/// The query string of a produce.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProduceQuery {
    /// The partition of every record that names none (by the placement rule
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<u32>,
}

/// What a produce appended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Produced {
    /// (partition, first offset) of each appended batch, in partition order:
    /// one per partition, or more where the records were over the topic's
    /// batch limits.
    pub batches: Vec<(u32, u64)>,
    pub count: usize,
}

/// The query string of a fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FetchQuery {
    /// The first offset to read (the log start or later).
    #[serde(default)]
    pub offset: u64,
    #[serde(default = "default_max_records")]
    pub max_records: usize,
    /// About this many bytes, but always at least one whole batch.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

impl Default for FetchQuery {
    fn default() -> FetchQuery {
        FetchQuery {
            offset: 0,
            max_records: default_max_records(),
            max_bytes: default_max_bytes(),
        }
    }
}

fn default_max_records() -> usize {
    100
}

fn default_max_bytes() -> u64 {
    1 << 20
}

/// A fetched record in JSON (`Record` in `docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedRecord {
    pub offset: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    pub key: Option<String>,
    pub value: String,
    pub headers: BTreeMap<String, String>,
}

impl From<&StoredRecord> for FetchedRecord {
    fn from(r: &StoredRecord) -> FetchedRecord {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        FetchedRecord {
            offset: r.offset,
            timestamp: r.timestamp,
            key: r.key.as_deref().map(text),
            value: text(&r.value),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), text(v)))
                .collect(),
        }
    }
}
