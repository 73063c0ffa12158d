//! Topics and produce as the API offers them, as methods of the [`Broker`]:
//! what `weir serve`'s handlers and the embedded CLI both call, so the two
//! answer the same. Names starting with `__` belong to weir: they cannot be
//! created or written through here.

use super::Broker;
use crate::log::{LogError, Record};
use crate::wire::{CreateTopic, Produced, TopicInfo, TopicSettings};

impl Broker {
    /// A topic with its partitions' high watermarks.
    pub fn topic_info(&self, name: &str) -> Result<TopicInfo, LogError> {
        let partitions = self.log.partition_count(name)?;
        let high_watermarks = (0..partitions)
            .map(|p| self.log.high_watermark(name, p))
            .collect::<Result<_, _>>()?;
        let log_starts = (0..partitions)
            .map(|p| self.log.log_start(name, p))
            .collect::<Result<_, _>>()?;
        Ok(TopicInfo {
            name: name.to_string(),
            partitions,
            high_watermarks,
            log_starts,
            config: self.log.topic_config(name)?,
        })
    }

    /// Every topic, internal ones included, in name order.
    pub fn topic_infos(&self) -> Result<Vec<TopicInfo>, LogError> {
        let names: Vec<String> = self.log.topics().into_iter().map(|(n, _)| n).collect();
        names.iter().map(|n| self.topic_info(n)).collect()
    }

    /// Creates a topic with `partitions` partitions and default settings.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<TopicInfo, LogError> {
        self.create_topic_with(&CreateTopic::new(name, partitions))
    }

    /// Creates a topic with the given settings (defaults for the rest).
    pub fn create_topic_with(&self, topic: &CreateTopic) -> Result<TopicInfo, LogError> {
        refuse_reserved(&topic.name)?;
        self.log
            .create_topic(&topic.name, topic.settings.new_config())?;
        self.topic_info(&topic.name)
    }

    /// Changes a topic's settings (see [`crate::log::Log::alter_topic`]); a
    /// larger partition count grows the topic (see [`Broker::add_partitions`]),
    /// a smaller one is refused.
    pub fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo, LogError> {
        refuse_reserved(name)?;
        let config = self
            .log
            .alter_topic(name, |config| settings.apply(config))?;
        self.grow_changelogs(name, config.partitions)?;
        self.topic_info(name)
    }

    /// Grows `name` to `partitions` partitions (the same count is a no-op, a
    /// smaller one refused), and with it every processor's state changelog
    /// of the topic, which is partitioned like it.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<TopicInfo, LogError> {
        refuse_reserved(name)?;
        self.log.add_partitions(name, partitions)?;
        self.grow_changelogs(name, partitions)?;
        self.topic_info(name)
    }

    /// Grows the state changelogs of `topic` (one per group that keeps
    /// state of it) to `partitions`.
    fn grow_changelogs(&self, topic: &str, partitions: u32) -> Result<(), LogError> {
        for group in self.list_groups() {
            let changelog = crate::state::changelog_topic(&group, topic);
            if self
                .log
                .partition_count(&changelog)
                .is_ok_and(|n| n < partitions)
            {
                self.log.add_partitions(&changelog, partitions)?;
            }
        }
        Ok(())
    }

    /// A topic as `weir.toml` declares it: created if missing, otherwise
    /// given the declared settings (what the file leaves out stays as it is).
    pub fn declare_topic(&self, topic: &CreateTopic) -> Result<TopicInfo, LogError> {
        match self.create_topic_with(topic) {
            Err(LogError::TopicExists(_)) => self.alter_topic(&topic.name, &topic.settings),
            other => other,
        }
    }

    /// Appends `records` (each with the partition it names, if any) by the
    /// log's placement rule ([`crate::log::Placement`]).
    pub fn produce(
        &self,
        topic: &str,
        records: Vec<(Option<u32>, Record)>,
    ) -> Result<Produced, LogError> {
        self.log.partition_count(topic)?;
        refuse_reserved(topic)?;
        let count = records.len();
        let batches = self.log.produce(topic, records)?;
        Ok(Produced { batches, count })
    }
}

fn refuse_reserved(topic: &str) -> Result<(), LogError> {
    if topic.starts_with("__") {
        return Err(LogError::Reserved(topic.to_string()));
    }
    Ok(())
}
