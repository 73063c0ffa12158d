//! `weir group list|describe|seek`: consumer groups, over [`Admin`] (the data
//! directory, or the server that holds it). `--json` prints the API's shapes.
//! `describe` shows the positions and lag, and the membership the coordinator
//! knows: the live members of the process running them (reached through its
//! API while it holds the data directory), or on a free data directory the
//! static members the group's record keeps, awaiting their instances.

use anyhow::Result;
use clap::Subcommand;

use super::Out;
use super::admin::Admin;
use weir::wire::{GroupLag, GroupMembership, Moved, SeekTo};

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Every group with committed offsets.
    List,
    /// The committed offset, high watermark and lag of every partition, and
    /// the members with their assignment, generation, protocol and assignor.
    Describe { group: String },
    /// Move a stopped group's committed offsets.
    Seek {
        group: String,
        /// earliest, latest, an offset, or the first record at or after a
        /// time: RFC 3339, ts:MILLIS or a duration back from now (-1h).
        #[arg(long, allow_hyphen_values = true)]
        to: SeekTo,
        /// Only this topic (default: every topic the group has committed to).
        #[arg(long)]
        topic: Option<String>,
        /// Only this partition.
        #[arg(long)]
        partition: Option<u32>,
    },
}

pub async fn run(admin: &impl Admin, command: GroupCommand, out: Out) -> Result<()> {
    match command {
        GroupCommand::List => out.print(&admin.groups().await?, |g| list(g)),
        GroupCommand::Describe { group } => out.print(&admin.group(&group).await?, lag_table),
        GroupCommand::Seek {
            group,
            to,
            topic,
            partition,
        } => {
            let moved = admin.seek(&group, to, topic.as_deref(), partition).await?;
            if moved.is_empty() {
                anyhow::bail!("group {group:?} has no committed offsets to move; name a --topic");
            }
            out.print(&moved, |moved| seeked(&group, moved))
        }
    }
}

fn list(groups: &[String]) {
    groups.iter().for_each(|g| println!("{g}"));
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
    if let Some(membership) = &info.membership {
        members_table(membership);
    }
}

fn members_table(m: &GroupMembership) {
    println!(
        "generation {}, protocol {}, assignor {}, {} member(s)",
        m.generation,
        m.protocol,
        m.assignor,
        m.members.len()
    );
    println!(
        "{:<24} {:<20} {:>10}  assignment",
        "member", "instance", "generation"
    );
    for member in &m.members {
        let instance = member.instance_id.as_deref().unwrap_or("-");
        let mut assignment: Vec<String> = member
            .assignment
            .iter()
            .map(|a| format!("{}/{}", a.topic, a.partition))
            .collect();
        if assignment.is_empty() {
            assignment.push("-".to_string());
        }
        let waiting = if member.awaiting_rejoin {
            "  (awaiting rejoin)"
        } else {
            ""
        };
        println!(
            "{:<24} {:<20} {:>10}  {}{waiting}",
            member.member_id,
            instance,
            member.generation,
            assignment.join(",")
        );
    }
}

fn seeked(group: &str, moved: &[Moved]) {
    for m in moved {
        let old = m.from.map_or("-".to_string(), |o| o.to_string());
        println!("{group} {}/{}: {old} -> {}", m.topic, m.partition, m.to);
    }
}
