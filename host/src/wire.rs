//! The API's wire shapes: every request and response body of the topic,
//! produce, fetch and group routes and of a processor's logs, defined once with serde, and the binary
//! framing of records. The server ([`crate::service`]) decodes requests and
//! encodes responses with these types; the client ([`crate::client`]) does the
//! opposite with the same types, so the two cannot drift. `docs/api.md`
//! documents each shape under the name given here.
//!
//! This module depends on the log's record types and nothing above them: not
//! on `service`, not on `client`. Processor shapes (deploy, status) live with
//! the processor spec.

pub mod frame;
mod group;
mod logs;
mod position;
mod records;
mod state;
mod topic;

pub use frame::{FrameError, OCTET_STREAM};
pub use group::{
    Assigned, GroupLag, GroupMember, GroupMembership, Moved, PartitionLag, Seek, Seeked,
};
pub use logs::{LogLine, LogPage, LogQuery};
pub use position::{SeekTo, parse_position, position};
pub use records::{FetchQuery, FetchedRecord, Produce, ProduceQuery, ProduceRecord, Produced};
pub use state::{StateEntry, StateQuery};
pub use topic::{CreateTopic, TopicInfo, TopicSettings};
