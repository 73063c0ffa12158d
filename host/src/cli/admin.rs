//! The one interface the data commands (`topic`, `produce`, `consume`,
//! `group`) run over, and its two implementations: the embedded [`Broker`] of
//! a locked data directory, and the HTTP [`Client`] of a `weir serve`.
//! `main.rs` picks one; each command is written once against [`Admin`], so it
//! behaves and prints the same embedded and remote. Both sides call the same
//! broker methods in the end (the server's handlers call them too), so rules
//! such as record placement and reserved names hold on either path.

use anyhow::Result;

use weir::broker::{Broker, GroupLag, Moved, SeekTo};
use weir::client::Client;
use weir::log::{Record, StoredRecord};
use weir::wire::{CreateTopic, Produced, TopicInfo, TopicSettings};

/// The most bytes one fetch reads (about; at least one whole batch).
const FETCH_BYTES: u64 = 1 << 20;

/// Topics, records and groups, wherever they live.
pub trait Admin {
    async fn topics(&self) -> Result<Vec<TopicInfo>>;
    async fn topic(&self, name: &str) -> Result<TopicInfo>;
    async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicInfo>;
    /// Changes a topic's settings.
    async fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo>;
    /// Deletes the topic, its records and every group's offsets on it.
    async fn delete_topic(&self, name: &str) -> Result<()>;
    /// Appends records by the log's placement rule (none names a partition).
    async fn produce(&self, topic: &str, records: Vec<Record>) -> Result<Produced>;
    /// At most `max_records` records of one partition from `offset`.
    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>>;
    async fn groups(&self) -> Result<Vec<String>>;
    /// A group's committed offsets and lag; an error without any.
    async fn group(&self, name: &str) -> Result<GroupLag>;
    /// Moves a stopped group's committed offsets.
    async fn seek(
        &self,
        group: &str,
        to: SeekTo,
        topic: Option<&str>,
        partition: Option<u32>,
    ) -> Result<Vec<Moved>>;
    /// Makes what the command wrote durable before the process exits.
    async fn finish(&self) -> Result<()>;
}

impl Admin for Broker {
    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        Ok(self.topic_infos()?)
    }

    async fn topic(&self, name: &str) -> Result<TopicInfo> {
        Ok(self.topic_info(name)?)
    }

    async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicInfo> {
        Ok(self.create_topic_with(topic)?)
    }

    async fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo> {
        Ok(Broker::alter_topic(self, name, settings)?)
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        Ok(Broker::delete_topic(self, name)?)
    }

    async fn produce(&self, topic: &str, records: Vec<Record>) -> Result<Produced> {
        let records = records.into_iter().map(|r| (None, r)).collect();
        Ok(Broker::produce(self, topic, records)?)
    }

    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>> {
        Ok(self
            .log()
            .read(topic, partition, offset, max_records, FETCH_BYTES)?)
    }

    async fn groups(&self) -> Result<Vec<String>> {
        Ok(self.list_groups())
    }

    async fn group(&self, name: &str) -> Result<GroupLag> {
        Ok(self.describe_group(name)?)
    }

    async fn seek(
        &self,
        group: &str,
        to: SeekTo,
        topic: Option<&str>,
        partition: Option<u32>,
    ) -> Result<Vec<Moved>> {
        let topics: Vec<String> = topic.map(str::to_string).into_iter().collect();
        Ok(Broker::seek(self, group, &topics, partition, to)?)
    }

    async fn finish(&self) -> Result<()> {
        Ok(self.log().sync_all()?)
    }
}

impl Admin for Client {
    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        Ok(Client::topics(self).await?)
    }

    async fn topic(&self, name: &str) -> Result<TopicInfo> {
        Ok(Client::topic(self, name).await?)
    }

    async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicInfo> {
        Ok(self.create_topic_with(topic).await?)
    }

    async fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo> {
        Ok(Client::alter_topic(self, name, settings).await?)
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        Ok(Client::delete_topic(self, name).await?)
    }

    async fn produce(&self, topic: &str, records: Vec<Record>) -> Result<Produced> {
        Ok(Client::produce(self, topic, None, &records).await?)
    }

    async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_records: usize,
    ) -> Result<Vec<StoredRecord>> {
        Ok(Client::fetch(self, topic, partition, offset, max_records, FETCH_BYTES).await?)
    }

    async fn groups(&self) -> Result<Vec<String>> {
        Ok(Client::groups(self).await?)
    }

    async fn group(&self, name: &str) -> Result<GroupLag> {
        Ok(Client::group(self, name).await?)
    }

    async fn seek(
        &self,
        group: &str,
        to: SeekTo,
        topic: Option<&str>,
        partition: Option<u32>,
    ) -> Result<Vec<Moved>> {
        Ok(Client::seek(self, group, to, topic, partition).await?)
    }

    /// The server decides durability by each topic's policy.
    async fn finish(&self) -> Result<()> {
        Ok(())
    }
}
