//! `weir group list|describe|seek`: consumer groups as committed offsets (and,
//! in a process that runs members, live membership).

use std::path::Path;

use anyhow::{Context, Result};
use clap::Subcommand;

use weir::group::Groups;
use weir::group::admin::{self, SeekTo};
use weir::offsets::Offsets;

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

pub fn run(dir: &Path, command: GroupCommand) -> Result<()> {
    let log = super::open_log(dir)?;
    let offsets = Offsets::open(log.clone()).context("loading committed offsets")?;
    let groups = Groups::new(log.clone());
    match command {
        GroupCommand::List => {
            for group in admin::list(&offsets, &groups) {
                println!("{group}");
            }
        }
        GroupCommand::Describe { group } => {
            let lags = admin::lag(&log, &offsets, &group, &[])?;
            if lags.is_empty() {
                anyhow::bail!("group {group:?} has no committed offsets");
            }
            match groups.describe(&group) {
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
            println!(
                "{:<24} {:>9} {:>10} {:>10} {:>14} {:>8}",
                "topic", "partition", "committed", "log-start", "high-watermark", "lag"
            );
            let mut total = 0;
            for l in lags {
                let committed = l.committed.map_or("-".to_string(), |c| c.to_string());
                println!(
                    "{:<24} {:>9} {:>10} {:>10} {:>14} {:>8}",
                    l.topic, l.partition, committed, l.log_start, l.high_watermark, l.lag
                );
                total += l.lag;
            }
            println!("total lag {total}");
        }
        GroupCommand::Seek {
            group,
            to,
            topic,
            partition,
        } => {
            let topics: Vec<String> = topic.into_iter().collect();
            let moved = admin::seek(&log, &offsets, &groups, &group, &topics, partition, to)?;
            if moved.is_empty() {
                anyhow::bail!("group {group:?} has no committed offsets to move; name a --topic");
            }
            for (topic, p, old, new) in moved {
                let old = old.map_or("-".to_string(), |o| o.to_string());
                println!("{group} {topic}/{p}: {old} -> {new}");
            }
            log.sync_all()?;
        }
    }
    Ok(())
}
