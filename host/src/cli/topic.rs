//! `weir topic create|alter|list|describe|delete`, over [`Admin`] (the data
//! directory or a server): text, or under `--json` the API's topic shape.
//! Settings are flags named like the API's fields (`--retention-ms`,
//! `--cleanup-policy`, ...); a limit that may be off takes `none`.

use anyhow::Result;
use clap::Subcommand;

use super::Out;
use super::admin::Admin;
use weir::log::{CleanupPolicy, Durability, TopicConfig};
use weir::wire::{CreateTopic, TopicInfo, TopicSettings};

#[derive(Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        #[command(flatten)]
        settings: SettingArgs,
    },
    /// Change a topic's settings (the partition count can only grow).
    Alter {
        name: String,
        /// Grow the topic to this many partitions.
        #[arg(long)]
        partitions: Option<u32>,
        #[command(flatten)]
        settings: SettingArgs,
    },
    /// List topics with their partitions and high watermarks.
    List,
    /// One topic's partitions, high watermarks and settings.
    Describe { name: String },
    /// Delete a topic, its records and every group's committed offsets on it.
    Delete { name: String },
}

/// A limit that may be off: a number, or `none`.
#[derive(Debug, Clone, Copy)]
pub struct Limit(Option<u64>);

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Limit, String> {
        match s {
            "none" | "-1" => Ok(Limit(None)),
            _ => s
                .parse()
                .map(|n| Limit(Some(n)))
                .map_err(|_| format!("expected a number or none, got {s:?}")),
        }
    }
}

/// The settings flags of `create` and `alter`; absent ones keep the default
/// (create) or the current value (alter).
#[derive(clap::Args)]
pub struct SettingArgs {
    /// Delete sealed segments whose newest record is older than this (ms, or none).
    #[arg(long)]
    retention_ms: Option<Limit>,
    /// Delete the oldest sealed segments while a partition is larger (bytes, or none).
    #[arg(long)]
    retention_bytes: Option<Limit>,
    /// Roll a segment once it would grow past this many bytes.
    #[arg(long)]
    segment_bytes: Option<u64>,
    /// Roll a segment once its first record is this old (ms, or none).
    #[arg(long)]
    segment_ms: Option<Limit>,
    /// always, never, interval or interval:MS.
    #[arg(long)]
    durability: Option<Durability>,
    /// delete, or compact (keep the latest record of each key).
    #[arg(long)]
    cleanup_policy: Option<CleanupPolicy>,
    /// Under compact, how long tombstones (keyed, empty value) stay (ms).
    #[arg(long)]
    delete_retention_ms: Option<u64>,
    /// The most bytes of one batch; larger appends are refused.
    #[arg(long)]
    max_batch_bytes: Option<u64>,
    /// The most records of one batch.
    #[arg(long)]
    max_batch_records: Option<u32>,
}

impl SettingArgs {
    fn settings(&self, partitions: Option<u32>) -> TopicSettings {
        TopicSettings {
            partitions,
            retention_ms: self.retention_ms.map(|l| l.0),
            retention_bytes: self.retention_bytes.map(|l| l.0),
            segment_bytes: self.segment_bytes,
            segment_ms: self.segment_ms.map(|l| l.0),
            durability: self.durability,
            cleanup_policy: self.cleanup_policy,
            delete_retention_ms: self.delete_retention_ms,
            max_batch_bytes: self.max_batch_bytes,
            max_batch_records: self.max_batch_records,
        }
    }
}

fn line(t: &TopicInfo) {
    let hws: Vec<String> = t.high_watermarks.iter().map(u64::to_string).collect();
    println!(
        "{}\tpartitions={}\thigh-watermarks=[{}]",
        t.name,
        t.partitions,
        hws.join(",")
    );
}

fn limit(value: Option<u64>) -> String {
    value.map_or("none".to_string(), |v| v.to_string())
}

fn settings(c: &TopicConfig) {
    println!("  retention.ms={}", limit(c.retention_ms));
    println!("  retention.bytes={}", limit(c.retention_bytes));
    println!("  segment.bytes={}", c.segment_bytes);
    println!("  segment.ms={}", limit(c.segment_ms));
    println!("  durability={}", c.durability);
    println!("  cleanup.policy={}", c.cleanup_policy);
    println!("  delete.retention.ms={}", c.delete_retention_ms);
    println!("  max.batch.bytes={}", c.max_batch_bytes);
    println!("  max.batch.records={}", c.max_batch_records);
}

fn describe(t: &TopicInfo) {
    println!("topic {} ({} partition(s))", t.name, t.partitions);
    settings(&t.config);
    println!("{:>9} {:>14}", "partition", "high-watermark");
    for (p, hw) in t.high_watermarks.iter().enumerate() {
        println!("{p:>9} {hw:>14}");
    }
}

fn created(t: &TopicInfo) {
    println!(
        "created topic {} with {} partition(s)",
        t.name, t.partitions
    );
}

fn altered(t: &TopicInfo) {
    println!(
        "topic {} now has {} partition(s) and:",
        t.name, t.partitions
    );
    settings(&t.config);
}

fn deleted(out: Out, name: &str) -> Result<()> {
    out.print(&serde_json::json!({"deleted": name}), |_| {
        println!("deleted topic {name}")
    })
}

pub async fn run(admin: &impl Admin, command: TopicCommand, out: Out) -> Result<()> {
    match command {
        TopicCommand::Create {
            name,
            partitions,
            settings,
        } => {
            let topic = CreateTopic {
                name,
                settings: settings.settings(Some(partitions)),
            };
            out.print(&admin.create_topic(&topic).await?, created)
        }
        TopicCommand::Alter {
            name,
            partitions,
            settings,
        } => {
            let settings = settings.settings(partitions);
            out.print(&admin.alter_topic(&name, &settings).await?, altered)
        }
        TopicCommand::List => out.print(&admin.topics().await?, |topics| {
            topics.iter().for_each(line)
        }),
        TopicCommand::Describe { name } => out.print(&admin.topic(&name).await?, describe),
        TopicCommand::Delete { name } => {
            admin.delete_topic(&name).await?;
            deleted(out, &name)
        }
    }
}
