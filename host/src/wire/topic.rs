//! Topic shapes: `Topic` as `GET /topics` and `GET /topics/{topic}` answer it,
//! and the body of `POST /topics`.

use serde::{Deserialize, Serialize};

/// A topic with the high watermark of each partition (`Topic` in
/// `docs/api.md`).
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
}

/// The body of `POST /topics`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreateTopic {
    pub name: String,
    /// One partition when absent.
    #[serde(default = "one")]
    pub partitions: u32,
}

fn one() -> u32 {
    1
}
