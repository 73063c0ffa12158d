//! Changing a topic's settings after creation, and the log's maintenance
//! (rolls by age, retention, compaction) on demand or on a schedule.

use super::{Log, durable, name};
use super::{LogError, META_FILE, Retained, TopicConfig};

impl Log {
    /// Changes an existing topic's settings: `change` gets the current ones
    /// and returns the new. The partition count cannot change. The new
    /// settings are validated, written to `topic.json` (durably, whole) and
    /// then followed by every partition from its next append, roll or
    /// maintenance pass. Returns the new settings.
    pub fn alter_topic(
        &self,
        name: &str,
        change: impl FnOnce(TopicConfig) -> TopicConfig,
    ) -> Result<TopicConfig, LogError> {
        name::validate("topic", name)?;
        // The map's write lock keeps two changes from crossing.
        let topics = self.topics.write().expect("topic map lock");
        let topic = topics
            .get(name)
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        let old = topic.config();
        let new = change(old);
        if new.partitions != old.partitions {
            return Err(LogError::PartitionCountFixed {
                topic: name.to_string(),
                partitions: old.partitions,
                asked: new.partitions,
            });
        }
        new.validate()?;
        if new == old {
            return Ok(new);
        }
        let meta = self.dir.join(name).join(META_FILE);
        let json = serde_json::to_vec_pretty(&new).expect("config serializes");
        durable::replace(&meta, &json).map_err(|e| LogError::io(&meta, e))?;
        *topic.config.write().expect("topic config lock") = new;
        for partition in &topic.partitions {
            partition.set_config(new);
        }
        tracing::debug!(topic = name, ?new, "topic settings changed");
        Ok(new)
    }

    /// The settings of `topic`.
    pub fn topic_config(&self, topic: &str) -> Result<TopicConfig, LogError> {
        Ok(self.topic(topic)?.config())
    }

    /// Changes how often the background thread rolls aged segments and
    /// applies retention (`None`: only when asked).
    pub fn maintain_every(&self, every: Option<std::time::Duration>) {
        self.flusher.set_maintenance(every);
    }

    /// One maintenance pass over every partition now, as the background
    /// thread runs it (see `log/flusher.rs`): rolls due active segments,
    /// applies retention and compacts `compact` topics. Returns what
    /// retention deleted.
    pub fn maintain(&self) -> Result<Vec<Retained>, LogError> {
        self.sweep(|partition, now| partition.maintain(now))
    }
}
