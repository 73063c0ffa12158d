//! `weir produce` and `weir consume`, over [`Admin`] (the data directory, or
//! a server in the API's binary framing so bytes pass unchanged).
//!
//! Produce reads lines from stdin (optionally `KEY<sep>VALUE`) or generates
//! orders, and sends them in requests of at most [`REQUEST_RECORDS`] and
//! about [`REQUEST_BYTES`]; where each
//! record goes is the log's one placement rule (keyed records by key, the
//! rest round robin per record), the same on either path. Consume prints
//! `offset<TAB>timestamp<TAB>key<TAB>value` lines, or under `--json` the
//! API's fetch shape.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};

use super::Out;
use super::admin::Admin;
use weir::log::{Record, StoredRecord};
use weir::wire::FetchedRecord;
use weir::workload::Orders;

/// Records sent per request at most.
const REQUEST_RECORDS: usize = 1000;

/// Bytes (as a batch) sent per request, about: the default batch limit.
const REQUEST_BYTES: u64 = weir::log::DEFAULT_MAX_BATCH_BYTES;

/// Records fetched per request at most.
const FETCH_RECORDS: usize = 10_000;

#[derive(clap::Args)]
pub struct ProduceArgs {
    #[arg(long)]
    pub topic: String,
    /// Append N generated orders instead of reading stdin.
    #[arg(long)]
    pub generate: Option<u64>,
    /// Split each line into key and value at the first SEP.
    #[arg(long)]
    pub key_separator: Option<String>,
}

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    pub topic: String,
    #[arg(long, default_value_t = 0)]
    pub partition: u32,
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Stop after this many records.
    #[arg(long, default_value_t = 100)]
    pub max: usize,
}

/// Stdin's lines as records, keyed when `key_separator` splits them.
fn stdin_records(key_separator: Option<String>) -> impl Iterator<Item = Result<Record>> {
    std::io::stdin().lock().lines().map(move |line| {
        let line = line.context("reading stdin")?;
        Ok(
            match key_separator
                .as_deref()
                .and_then(|sep| line.split_once(sep))
            {
                Some((key, value)) => Record::keyed(key, value),
                None => Record::value(line),
            },
        )
    })
}

fn produced(out: Out, topic: &str, count: u64, generated: bool) -> Result<()> {
    let what = if generated {
        "generated orders"
    } else {
        "record(s)"
    };
    out.print(&serde_json::json!({"topic": topic, "count": count}), |_| {
        println!("produced {count} {what} to {topic}")
    })
}

pub async fn produce(admin: &impl Admin, args: ProduceArgs, out: Out) -> Result<()> {
    let topic = &args.topic;
    let info = admin.topic(topic).await?;
    let mut records: Box<dyn Iterator<Item = Result<Record>>> = match args.generate {
        Some(n) => {
            // Order ids continue after the records already there.
            let first_id = info.high_watermarks.iter().sum();
            Box::new(
                Orders::new(0x5EED ^ first_id, first_id)
                    .take(n as usize)
                    .map(Ok),
            )
        }
        None => Box::new(stdin_records(args.key_separator)),
    };
    let mut count = 0;
    loop {
        // At most REQUEST_RECORDS records and about REQUEST_BYTES per request,
        // so a request is never one huge batch (the log splits it further by
        // the topic's batch limits).
        let mut chunk = Vec::new();
        let mut bytes = 0;
        while chunk.len() < REQUEST_RECORDS && bytes < REQUEST_BYTES {
            let Some(record) = records.next().transpose()? else {
                break;
            };
            bytes += weir::log::encoded_len(std::slice::from_ref(&record));
            chunk.push(record);
        }
        if chunk.is_empty() {
            break;
        }
        count += admin.produce(topic, chunk).await?.count as u64;
    }
    produced(out, topic, count, args.generate.is_some())
}

fn print_records(out: Out, records: &[StoredRecord]) -> Result<()> {
    if out.json {
        let json: Vec<FetchedRecord> = records.iter().map(FetchedRecord::from).collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut stdout = std::io::stdout().lock();
    for r in records {
        let key = r.key.as_deref().map_or("-".into(), text);
        writeln!(
            stdout,
            "{}\t{}\t{}\t{}",
            r.offset,
            r.timestamp,
            key,
            text(&r.value)
        )?;
    }
    Ok(())
}

pub async fn consume(admin: &impl Admin, args: ConsumeArgs, out: Out) -> Result<()> {
    let (topic, partition) = (&args.topic, args.partition);
    let end = admin
        .topic(topic)
        .await?
        .high_watermarks
        .get(partition as usize)
        .copied()
        .with_context(|| format!("topic {topic:?} has no partition {partition}"))?;
    let mut records = Vec::new();
    let mut next = args.from;
    while records.len() < args.max && next < end {
        let want = (args.max - records.len()).min(FETCH_RECORDS);
        let read = admin.fetch(topic, partition, next, want).await?;
        let Some(last) = read.last() else { break };
        next = last.offset + 1;
        records.extend(read);
    }
    print_records(out, &records)
}
