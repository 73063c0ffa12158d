//! The one interface the data commands (`topic`, `produce`, `consume`,
//! `group`) run over, and its two implementations: the embedded [`Broker`] of
//! a locked data directory, and the HTTP [`Client`] of a `weir serve`.
//! `main.rs` picks one; each command is written once against [`Admin`], so it
//! behaves and prints the same embedded and remote. Both sides call the same
//! broker methods in the end (the server's handlers call them too), so rules
//! such as record placement and reserved names hold on either path.
//!
//! A data directory held by a `weir run` or `weir serve` is reached through
//! that process's API: while it serves, it advertises its address (and token)
//! in `<data-dir>/api.json` ([`Advertised`]), and a command that finds the
//! directory locked reads it ([`holder`]) and runs as a client. The file counts
//! only when it names the process holding the lock, so one left behind by a
//! killed process is ignored.
//!
//! A topic or group that does not exist is an error that names the closest
//! existing one ("did you mean"), on either path.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use weir::broker::{Broker, GroupLag, Moved, SeekTo};
use weir::client::Client;
use weir::group::GroupError;
use weir::log::LogError;
use weir::log::{Record, StoredRecord};
use weir::wire::{CreateTopic, Produced, TopicInfo, TopicSettings};

/// The most bytes one fetch reads (about; at least one whole batch).
const FETCH_BYTES: u64 = 1 << 20;

/// The file in a data directory that advertises its holder's API.
pub const API_FILE: &str = "api.json";

/// What `api.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct ApiFile {
    /// `http://HOST:PORT`.
    url: String,
    /// The process serving it, which holds the data directory's lock.
    pid: u32,
    /// The bearer token the API requires, if any (the file is 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// `api.json`, written while this process serves the API over its data
/// directory, and removed when dropped (a clean exit).
pub struct Advertised {
    path: PathBuf,
}

impl Advertised {
    /// Writes `dir/api.json` (atomically, mode 0600) naming `addr` (a wildcard
    /// address is reached on loopback) and `token`.
    pub fn write(dir: &Path, addr: SocketAddr, token: Option<&str>) -> Result<Advertised> {
        let ip = match addr.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
            ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let file = ApiFile {
            url: format!("http://{}", SocketAddr::new(ip, addr.port())),
            pid: std::process::id(),
            token: token.map(str::to_string),
        };
        let path = dir.join(API_FILE);
        let bytes = serde_json::to_vec_pretty(&file)?;
        weir::durable::replace_with_mode(&path, &bytes, 0o600)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Advertised { path })
    }
}

impl Drop for Advertised {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the API file");
        }
    }
}

/// A client of the API that the live process holding `dir` advertises, if it
/// does: `api.json` must name the pid in the lock file (a file left by a
/// killed process names another). `token` is used when the file has none.
pub fn holder(dir: &Path, token: Option<String>) -> Option<Client> {
    let text = std::fs::read_to_string(dir.join(API_FILE)).ok()?;
    let file: ApiFile = serde_json::from_str(&text).ok()?;
    let locked_by = std::fs::read_to_string(dir.join("LOCK")).ok()?;
    if locked_by.trim() != file.pid.to_string() {
        return None;
    }
    Client::new(&file.url, file.token.or(token)).ok()
}

/// Topics, records and groups, wherever they live.
pub trait Admin {
    async fn topics(&self) -> Result<Vec<TopicInfo>>;
    async fn topic(&self, name: &str) -> Result<TopicInfo>;
    async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicInfo>;
    /// Changes a topic's settings.
    async fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo>;
    /// Deletes the topic, its records and every group's offsets on it.
    async fn delete_topic(&self, name: &str) -> Result<()>;
    /// Appends records to `partition`, or by the log's placement rule.
    async fn produce(
        &self,
        topic: &str,
        partition: Option<u32>,
        records: Vec<Record>,
    ) -> Result<Produced>;
    /// The offset of `partition` that `at` names: its log start, its high
    /// watermark (`high_watermark`), an offset, or the first record at or
    /// after a time (the high watermark when every record is older).
    async fn offset_of(
        &self,
        topic: &str,
        partition: u32,
        at: SeekTo,
        high_watermark: u64,
    ) -> Result<u64>;
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
        match self.topic_info(name) {
            Err(e @ LogError::UnknownTopic(_)) => {
                Err(unknown(e.into(), name, topic_names(self.topic_infos()?)))
            }
            found => Ok(found?),
        }
    }

    async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicInfo> {
        Ok(self.create_topic_with(topic)?)
    }

    async fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo> {
        Ok(Broker::alter_topic(self, name, settings)?)
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        Admin::topic(self, name).await?;
        Ok(Broker::delete_topic(self, name)?)
    }

    async fn produce(
        &self,
        topic: &str,
        partition: Option<u32>,
        records: Vec<Record>,
    ) -> Result<Produced> {
        let records = records.into_iter().map(|r| (partition, r)).collect();
        Ok(Broker::produce(self, topic, records)?)
    }

    async fn offset_of(
        &self,
        topic: &str,
        partition: u32,
        at: SeekTo,
        high_watermark: u64,
    ) -> Result<u64> {
        let log = self.log();
        Ok(match at {
            SeekTo::Earliest => log.log_start(topic, partition)?,
            SeekTo::Latest => high_watermark,
            SeekTo::Offset(offset) => offset,
            SeekTo::Timestamp(ms) => log
                .offset_for_timestamp(topic, partition, ms)?
                .unwrap_or(high_watermark),
        })
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
        match self.describe_group(name) {
            Err(e @ GroupError::NoCommits(_)) => Err(unknown(e.into(), name, self.list_groups())),
            found => Ok(found?),
        }
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
        match Client::topic(self, name).await {
            Err(e) if e.status() == Some(404) => Err(unknown(
                e.into(),
                name,
                topic_names(Client::topics(self).await?),
            )),
            found => Ok(found?),
        }
    }

    async fn create_topic(&self, topic: &CreateTopic) -> Result<TopicInfo> {
        Ok(self.create_topic_with(topic).await?)
    }

    async fn alter_topic(&self, name: &str, settings: &TopicSettings) -> Result<TopicInfo> {
        Ok(Client::alter_topic(self, name, settings).await?)
    }

    async fn delete_topic(&self, name: &str) -> Result<()> {
        match Client::delete_topic(self, name).await {
            Err(e) if e.status() == Some(404) => Err(unknown(
                e.into(),
                name,
                topic_names(Client::topics(self).await?),
            )),
            deleted => Ok(deleted?),
        }
    }

    async fn produce(
        &self,
        topic: &str,
        partition: Option<u32>,
        records: Vec<Record>,
    ) -> Result<Produced> {
        Ok(Client::produce(self, topic, partition, &records).await?)
    }

    /// A time is found by reading forward from the log start (the API has no
    /// time index route), in fetches of [`FETCH_BYTES`].
    async fn offset_of(
        &self,
        topic: &str,
        partition: u32,
        at: SeekTo,
        high_watermark: u64,
    ) -> Result<u64> {
        let log_start = || async {
            let info = Client::topic(self, topic).await?;
            Ok::<_, anyhow::Error>(
                info.log_starts
                    .get(partition as usize)
                    .copied()
                    .unwrap_or(0),
            )
        };
        match at {
            SeekTo::Earliest => log_start().await,
            SeekTo::Latest => Ok(high_watermark),
            SeekTo::Offset(offset) => Ok(offset),
            SeekTo::Timestamp(ms) => {
                let mut next = log_start().await?;
                while next < high_watermark {
                    let read = Admin::fetch(self, topic, partition, next, 10_000).await?;
                    if let Some(found) = read.iter().find(|r| r.timestamp >= ms) {
                        return Ok(found.offset);
                    }
                    let Some(last) = read.last() else { break };
                    next = last.offset + 1;
                }
                Ok(high_watermark)
            }
        }
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
        match Client::group(self, name).await {
            Err(e) if e.status() == Some(404) => {
                Err(unknown(e.into(), name, Client::groups(self).await?))
            }
            found => Ok(found?),
        }
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

fn topic_names(topics: Vec<TopicInfo>) -> Vec<String> {
    topics.into_iter().map(|t| t.name).collect()
}

/// An error about a name that does not exist, and the existing name it is
/// closest to. The error's own chain is part of the message (so it reads
/// "unknown topic "ordrs" (did you mean `orders`?)"), and the error is kept.
#[derive(Debug, thiserror::Error)]
#[error("{} (did you mean `{close}`?)", weir::error::chain(error.as_ref()))]
pub struct DidYouMean {
    error: anyhow::Error,
    close: String,
}

/// `e` for a `name` that does not exist, with the closest of `names` as a
/// hint when one is close.
pub fn unknown(e: anyhow::Error, name: &str, names: Vec<String>) -> anyhow::Error {
    match weir::error::closest(name, names.iter().map(String::as_str)) {
        Some(close) => DidYouMean {
            error: e,
            close: close.to_string(),
        }
        .into(),
        None => e,
    }
}
