//! Topic lifecycle: creating, deleting and listing topics, and opening one
//! topic's partitions from its directory.

use std::path::Path;
use std::sync::{Arc, RwLock};

use super::partition::Partition;
use super::{DELETED_MARK, Log, LogError, META_FILE, Topic, TopicConfig, topic_id};
use crate::durable;
use crate::name;

impl Log {
    /// Creates a topic; fails if it exists or the name or settings are invalid.
    pub fn create_topic(&self, name: &str, config: TopicConfig) -> Result<(), LogError> {
        name::validate("topic", name)?;
        config.validate()?;
        let mut topics = self.topics.write().expect("topic map lock");
        if topics.contains_key(name) {
            return Err(LogError::TopicExists(name.to_string()));
        }
        let dir = self.dir.join(name);
        let mut topic = self.open_topic(&dir, config)?;
        // A fresh id even where a half-created topic left one behind.
        topic.id = topic_id::create(&dir)?;
        let meta = dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(&config).expect("config serializes");
        // The topic exists once `topic.json` does, so it is written whole and durably.
        durable::replace(&meta, &json).map_err(|e| LogError::io(&meta, e))?;
        topics.insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    /// Deletes a topic and every record in it. Internal topics (`__…`) are
    /// refused. The directory is renamed away first (one atomic step, made
    /// durable), then every partition's writer is retired, so a caller that
    /// still holds the old topic fails to append instead of writing into a
    /// topic created later under the same name; readers that already hold
    /// open segments finish reading them (the files are unlinked, not
    /// truncated). A new topic of the same name starts empty.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        name::validate("topic", name)?;
        if name.starts_with("__") {
            return Err(LogError::Internal(name.to_string()));
        }
        self.remove_topic(name)
    }

    /// Deletes an internal topic (a deleted processor's state changelog):
    /// only weir itself removes those.
    pub(crate) fn delete_internal_topic(&self, name: &str) -> Result<(), LogError> {
        name::validate("topic", name)?;
        self.remove_topic(name)
    }

    fn remove_topic(&self, name: &str) -> Result<(), LogError> {
        let mut topics = self.topics.write().expect("topic map lock");
        let topic = topics
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_string()))?;
        let dir = self.dir.join(name);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let doomed = self.dir.join(format!("{name}{DELETED_MARK}{nanos}"));
        std::fs::rename(&dir, &doomed).map_err(|e| LogError::io(&dir, e))?;
        // The rename must stick: after a crash the topic is gone, not back.
        self.options
            .storage
            .sync_dir(&self.dir)
            .map_err(|e| LogError::io(&self.dir, e))?;
        for partition in &topic.partitions {
            partition.retire();
        }
        topics.remove(name);
        drop(topics);
        // The topic is gone already; leftovers are removed on the next open.
        if let Err(e) = std::fs::remove_dir_all(&doomed) {
            tracing::warn!(dir = %doomed.display(), error = %e, "could not remove a deleted topic's files yet");
        }
        Ok(())
    }

    /// Creates the topic unless it exists already.
    pub fn ensure_topic(&self, name: &str, config: TopicConfig) -> Result<(), LogError> {
        match self.create_topic(name, config) {
            Err(LogError::TopicExists(_)) | Ok(()) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every topic with its settings, by name.
    pub fn topics(&self) -> Vec<(String, TopicConfig)> {
        let topics = self.topics.read().expect("topic map lock");
        topics
            .iter()
            .map(|(n, t)| (n.clone(), t.config()))
            .collect()
    }

    /// The topic's id, a UUID given at creation (see `log/topic_id.rs`).
    pub fn topic_id(&self, topic: &str) -> Result<uuid::Uuid, LogError> {
        Ok(self.topic(topic)?.id)
    }

    /// The name of the topic with id `id`, if one exists.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<String> {
        let topics = self.topics.read().expect("topic map lock");
        topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone())
    }

    /// Creates and opens partitions `new` of topic `name` (with `config`,
    /// which already counts them), registered with the flusher; their
    /// directories are durable when this returns. A directory already there
    /// was left by a growth that crashed before its `topic.json`, so nothing
    /// was ever appended to it: it is replaced.
    pub(super) fn open_new_partitions(
        &self,
        name: &str,
        new: std::ops::Range<u32>,
        config: TopicConfig,
    ) -> Result<Vec<Arc<Partition>>, LogError> {
        let dir = self.dir.join(name);
        let now = (self.options.clock)();
        let mut added = Vec::new();
        for p in new {
            let path = dir.join(p.to_string());
            if path.exists() {
                std::fs::remove_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
            }
            let storage = self.options.storage.clone();
            let partition = Arc::new(Partition::open(&path, config, storage, now)?);
            self.flusher.register(&partition);
            added.push(partition);
        }
        if !added.is_empty() {
            // The new directories must outlive a crash once topic.json counts them.
            self.options
                .storage
                .sync_dir(&dir)
                .map_err(|e| LogError::io(&dir, e))?;
        }
        Ok(added)
    }

    pub(super) fn open_topic(&self, dir: &Path, config: TopicConfig) -> Result<Topic, LogError> {
        let now = (self.options.clock)();
        let partitions = (0..config.partitions)
            .map(|p| {
                let storage = self.options.storage.clone();
                let partition = Partition::open(&dir.join(p.to_string()), config, storage, now)?;
                let partition = Arc::new(partition);
                self.flusher.register(&partition);
                Ok(partition)
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        Ok(Topic {
            config: RwLock::new(config),
            id: topic_id::load_or_create(dir)?,
            partitions,
        })
    }
}
