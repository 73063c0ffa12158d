//! The Kafka listener (placeholder until the listener's branch is merged).

pub mod groups;
