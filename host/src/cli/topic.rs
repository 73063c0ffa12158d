//! `weir topic create|list|describe|delete`, on the data directory or through
//! a server. Both print the same text, and under `--json` the API's topic shape.

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;

use super::Out;
use weir::client::{Client, TopicInfo};
use weir::log::{Log, TopicConfig};

#[derive(Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
    },
    /// List topics with their partitions and high watermarks.
    List,
    /// One topic's partitions and high watermarks.
    Describe { name: String },
    /// Delete a topic, its records and every group's committed offsets on it.
    Delete { name: String },
}

fn info(log: &Log, name: &str) -> Result<TopicInfo> {
    let partitions = log.partition_count(name)?;
    let high_watermarks = (0..partitions)
        .map(|p| log.high_watermark(name, p))
        .collect::<Result<_, _>>()?;
    Ok(TopicInfo {
        name: name.to_string(),
        partitions,
        high_watermarks,
    })
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

fn describe(t: &TopicInfo) {
    println!("topic {} ({} partition(s))", t.name, t.partitions);
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

fn deleted(out: Out, name: &str) -> Result<()> {
    out.print(&serde_json::json!({"deleted": name}), |_| {
        println!("deleted topic {name}")
    })
}

pub fn embedded(dir: &Path, command: TopicCommand, out: Out) -> Result<()> {
    let log = super::open_log(dir)?;
    match command {
        TopicCommand::Create { name, partitions } => {
            log.create_topic(&name, TopicConfig::with_partitions(partitions))?;
            out.print(&info(&log, &name)?, created)
        }
        TopicCommand::List => {
            let topics = log
                .topics()
                .into_iter()
                .map(|(name, _)| info(&log, &name))
                .collect::<Result<Vec<_>>>()?;
            out.print(&topics, |topics| topics.iter().for_each(line))
        }
        TopicCommand::Describe { name } => out.print(&info(&log, &name)?, describe),
        TopicCommand::Delete { name } => {
            weir::broker::Broker::over(log.clone())?.delete_topic(&name)?;
            deleted(out, &name)
        }
    }
}

pub async fn remote(client: &Client, command: TopicCommand, out: Out) -> Result<()> {
    match command {
        TopicCommand::Create { name, partitions } => {
            out.print(&client.create_topic(&name, partitions).await?, created)
        }
        TopicCommand::List => out.print(&client.topics().await?, |topics| {
            topics.iter().for_each(line)
        }),
        TopicCommand::Describe { name } => out.print(&client.topic(&name).await?, describe),
        TopicCommand::Delete { name } => {
            client.delete_topic(&name).await?;
            deleted(out, &name)
        }
    }
}
