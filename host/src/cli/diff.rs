//! `weir diff OLD.wasm NEW.wasm --topic T`: runs both guest versions over the
//! same range of a topic's history and prints what differs ([`DiffReport`]).
//! The records are read over [`Admin`] (the data directory, or a server's
//! fetch API with `--server`), and both versions run here, in a scratch log
//! that mirrors the source's topics so emits are checked as a processor's
//! would be; nothing is committed and nothing reaches the source's log.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::Out;
use super::admin::Admin;
use super::spec::key_value;
use weir::diff::{Change, DiffReport, Differ, Range, Replay};
use weir::log::Log;
use weir::runtime::{GuestSpec, Runtime};
use weir::wire::SeekTo;

/// Records fetched per request at most.
const FETCH_RECORDS: usize = 5_000;

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The version running today.
    pub old: PathBuf,
    /// The candidate.
    pub new: PathBuf,
    /// The input topic both versions read.
    #[arg(long)]
    pub topic: String,
    /// Only this partition [default: every partition].
    #[arg(long)]
    pub partition: Option<u32>,
    /// Where to start in each partition (as `weir consume --from`): earliest,
    /// latest, an offset, an RFC 3339 time, ts:MILLIS, or -1h.
    #[arg(long, default_value = "earliest", allow_hyphen_values = true)]
    pub from: SeekTo,
    /// Where to stop (exclusive), in the same forms [default: the high
    /// watermark when the diff starts].
    #[arg(long, default_value = "latest", allow_hyphen_values = true)]
    pub to: SeekTo,
    /// Guest configuration entry KEY=VALUE given to both versions
    /// (repeatable).
    #[arg(long = "config", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// `text`, or `json` (the whole report; as the global --json).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The most differing records printed as text (the summary counts all).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub async fn diff(admin: &impl Admin, args: DiffArgs, out: Out) -> Result<()> {
    let info = admin.topic(&args.topic).await?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p >= info.partitions => bail!(
            "topic {:?} has no partition {p} (it has {})",
            args.topic,
            info.partitions
        ),
        Some(p) => vec![p],
        None => (0..info.partitions).collect(),
    };
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let log = Arc::new(Log::open(scratch.path()).context("opening the scratch log")?);
    for topic in admin.topics().await? {
        // Emits to a topic the source has pass the runtime's check; others fail
        // as they would in a processor.
        if !topic.name.starts_with("__") {
            log.create_topic(&topic.name, topic.config)
                .with_context(|| format!("mirroring topic {:?}", topic.name))?;
        }
    }
    let runtime = Runtime::new(scratch.path(), log).context("starting the runtime")?;
    let load = |path: &PathBuf, label: &str| {
        let spec = GuestSpec {
            processor: format!("diff-{label}"),
            label: Some(label.to_string()),
            config: args.config.clone(),
            ..GuestSpec::default()
        };
        runtime
            .load_file(path, spec)
            .with_context(|| format!("loading {}", path.display()))
    };
    let mut old = Replay::new(load(&args.old, "old")?);
    let mut new = Replay::new(load(&args.new, "new")?);
    let mut differ = Differ::new(&args.topic, old.version(), new.version());
    for &p in &partitions {
        let hw = info.high_watermarks[p as usize];
        let from = admin.offset_of(&args.topic, p, args.from, hw).await?;
        let to = admin.offset_of(&args.topic, p, args.to, hw).await?;
        differ.range(Range {
            partition: p,
            from,
            to: to.max(from),
        });
        let mut next = from;
        while next < to {
            let want = ((to - next) as usize).min(FETCH_RECORDS);
            let records = admin.fetch(&args.topic, p, next, want).await?;
            let Some(last) = records.last() else { break };
            next = last.offset + 1;
            tokio::task::block_in_place(|| {
                for record in records.iter().filter(|r| r.offset < to) {
                    let a = old.run(&args.topic, p, record);
                    let b = new.run(&args.topic, p, record);
                    differ.record(p, record.offset, record.key.as_deref(), &a, &b);
                }
            });
        }
    }
    let report = differ.finish();
    let out = Out {
        json: out.json || args.format == Format::Json,
    };
    out.print(&report, |r| print_text(r, args.limit))
}

fn print_text(report: &DiffReport, limit: usize) {
    let ranges: Vec<String> = report
        .ranges
        .iter()
        .map(|r| format!("{}:{}..{}", r.partition, r.from, r.to))
        .collect();
    println!(
        "diff of {} over {} (partition:from..to); old {}, new {}; both from empty state",
        report.topic,
        ranges.join(" "),
        report.old_version,
        report.new_version
    );
    for record in report.records.iter().take(limit) {
        let key = record.key.as_deref().unwrap_or("-");
        let at = format!("{}@{} key {key}", record.partition, record.offset);
        for e in &record.emits {
            let to = format!("{} key {}", e.topic, e.key.as_deref().unwrap_or("-"));
            let (old, new) = (
                e.old.as_deref().unwrap_or(""),
                e.new.as_deref().unwrap_or(""),
            );
            match e.change {
                Change::Changed => println!("~ {at}: emit {} to {to}: {old} -> {new}", e.index),
                Change::Added => println!("+ {at}: emit {} to {to}: {new}", e.index),
                Change::Removed => println!("- {at}: emit {} to {to}: {old}", e.index),
            }
        }
        if let Some(f) = &record.failure {
            let show = |f: &Option<String>| f.clone().unwrap_or_else(|| "ok".to_string());
            println!("! {at}: {} -> {}", show(&f.old), show(&f.new));
        }
    }
    if report.records.len() > limit {
        println!(
            "… and {} more records (--limit, or --format json for all)",
            report.records.len() - limit
        );
    }
    let s = &report.summary;
    println!(
        "{} records, {} differ: {} emits changed, {} added, {} removed; {} new failures, {} fixed, {} changed; {} output keys end differently",
        s.records,
        s.records_differing,
        s.emits_changed,
        s.emits_added,
        s.emits_removed,
        s.new_failures,
        s.fixed_failures,
        s.changed_failures,
        s.keys_changed
    );
}
