//! Changing a topic's settings after creation (growing its partitions too), and the log's maintenance
//! (rolls by age, retention, compaction) on demand or on a schedule.

use std::sync::{Arc, RwLock};

use super::{Log, Topic, durable, name};
use super::{LogError, META_FILE, Retained, TopicConfig};

impl Log {
    /// Changes an existing topic's settings: `change` gets the current ones
    /// and returns the new. The partition count can grow, never shrink
    /// ([`LogError::PartitionCountFixed`]). The new settings are validated,
    /// the new partitions' directories created (and made durable), and then
    /// `topic.json` is written (durably, whole): a crash before that leaves
    /// the topic as it was, the unused directories being replaced by the
    /// next growth. Every partition follows the settings from its next
    /// append, roll or maintenance pass. Returns the new settings.
    pub fn alter_topic(
        &self,
        name: &str,
        change: impl FnOnce(TopicConfig) -> TopicConfig,
    ) -> Result<TopicConfig, LogError> {
        name::validate("topic", name)?;
        // The map's write lock keeps two changes from crossing.
        let mut topics = self.topics.write().expect("topic map lock");
        let topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        let old = topic.config();
        let new = change(old);
        if new.partitions < old.partitions {
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
        let added = self.open_new_partitions(name, old.partitions..new.partitions, new)?;
        let meta = self.dir.join(name).join(META_FILE);
        let json = serde_json::to_vec_pretty(&new).expect("config serializes");
        durable::replace(&meta, &json).map_err(|e| LogError::io(&meta, e))?;
        *topic.config.write().expect("topic config lock") = new;
        for partition in &topic.partitions {
            partition.set_config(new);
        }
        if !added.is_empty() {
            let mut partitions = topic.partitions.clone();
            partitions.extend(added);
            let grown = Topic {
                config: RwLock::new(new),
                id: topic.id,
                partitions,
            };
            topics.insert(name.to_string(), Arc::new(grown));
            drop(topics);
            // Long polls waiting on the topic look at its partitions again.
            self.appended.notify_waiters();
        }
        tracing::debug!(topic = name, ?new, "topic settings changed");
        Ok(new)
    }

    /// Grows `name` to `partitions` partitions (see [`Log::alter_topic`]);
    /// the same count is a no-op, a smaller one refused.
    pub fn add_partitions(&self, name: &str, partitions: u32) -> Result<TopicConfig, LogError> {
        self.alter_topic(name, |config| TopicConfig {
            partitions,
            ..config
        })
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
