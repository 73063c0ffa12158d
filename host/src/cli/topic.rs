//! `weir topic create|list|describe|delete`, over [`Admin`] (the data
//! directory or a server): text, or under `--json` the API's topic shape.

use anyhow::Result;
use clap::Subcommand;

use super::Out;
use super::admin::Admin;
use weir::wire::TopicInfo;

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

pub async fn run(admin: &impl Admin, command: TopicCommand, out: Out) -> Result<()> {
    match command {
        TopicCommand::Create { name, partitions } => {
            out.print(&admin.create_topic(&name, partitions).await?, created)
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
