//! `weir group list|describe|seek`: consumer groups as committed offsets (and,
//! in a process that runs members, live membership), on the data directory or
//! through a server. `--json` prints the API's shapes.

use std::path::Path;

use anyhow::Result;
use clap::Subcommand;

use super::Out;
use weir::broker::{GroupLag, Moved, SeekTo};
use weir::client::Client;
use weir::group::Groups;

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Every group with committed offsets.
    List,
    /// Members, assignment, and the committed offset, high watermark and lag of
    /// every partition.
    Describe { group: String },
    /// Move a stopped group's committed offsets.
    Seek {
        group: String,
        /// earliest, latest, an offset, or ts:MILLIS (first record at or after).
        #[arg(long)]
        to: SeekTo,
        /// Only this topic (default: every topic the group has committed to).
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
    },
}

pub fn run(dir: &Path, command: GroupCommand, out: Out) -> Result<()> {
    let broker = super::open_broker(dir)?;
    match command {
        GroupCommand::List => out.print(&broker.list_groups(), |g| list(g)),
        GroupCommand::Describe { group } => {
            let lags = broker.lag(&group, &[])?;
            if lags.is_empty() {
                anyhow::bail!("group {group:?} has no committed offsets");
            }
            let info = GroupLag::new(&group, lags);
            out.print(&info, |info| {
                members(broker.groups(), &group);
                lag_table(info);
            })
        }
        GroupCommand::Seek {
            group,
            to,
            topic,
            partition,
        } => {
            let topics: Vec<String> = topic.into_iter().collect();
            let moved = broker.seek(&group, &topics, partition, to)?;
            if moved.is_empty() {
                anyhow::bail!("group {group:?} has no committed offsets to move; name a --topic");
            }
            broker.log().sync_all()?;
            out.print(&moved, |moved| seeked(&group, moved))
        }
    }
}

pub async fn remote(client: &Client, command: GroupCommand, out: Out) -> Result<()> {
    match command {
        GroupCommand::List => out.print(&client.groups().await?, |g| list(g)),
        GroupCommand::Describe { group } => out.print(&client.group(&group).await?, lag_table),
        GroupCommand::Seek {
            group,
            to,
            topic,
            partition,
        } => {
            let moved = client.seek(&group, to, topic.as_deref(), partition).await?;
            out.print(&moved, |moved| seeked(&group, moved))
        }
    }
}

fn list(groups: &[String]) {
    groups.iter().for_each(|g| println!("{g}"));
}

/// Live members, which only a process that runs them knows.
fn members(groups: &Groups, group: &str) {
    match groups.describe(group) {
        Some(d) => {
            println!(
                "group {group}: generation {}, {:?} protocol, {} assignor",
                d.generation,
                d.protocol,
                d.assignor.name()
            );
            for m in d.members {
                let parts: Vec<String> = m
                    .assigned
                    .iter()
                    .map(|tp| format!("{}/{}", tp.topic, tp.partition))
                    .collect();
                println!(
                    "  member {} ({}) epoch {}: {}",
                    m.member,
                    m.instance_id.as_deref().unwrap_or("dynamic"),
                    m.epoch,
                    parts.join(" ")
                );
            }
        }
        None => println!("group {group}: no active members in this process"),
    }
}

fn lag_table(info: &GroupLag) {
    println!(
        "{:<24} {:>9} {:>10} {:>10} {:>14} {:>8}",
        "topic", "partition", "committed", "log-start", "high-watermark", "lag"
    );
    for l in &info.partitions {
        let committed = l.committed.map_or("-".to_string(), |c| c.to_string());
        println!(
            "{:<24} {:>9} {:>10} {:>10} {:>14} {:>8}",
            l.topic, l.partition, committed, l.log_start, l.high_watermark, l.lag
        );
    }
    println!("total lag {}", info.total_lag);
}

fn seeked(group: &str, moved: &[Moved]) {
    for m in moved {
        let old = m.from.map_or("-".to_string(), |o| o.to_string());
        println!("{group} {}/{}: {old} -> {}", m.topic, m.partition, m.to);
    }
}
