//! `weir produce` and `weir consume`, on the data directory or through a
//! server (in the API's binary framing, so bytes pass unchanged).
//!
//! Produce reads lines from stdin (optionally `KEY<sep>VALUE`) or generates
//! orders; keyed records go to their key's partition, unkeyed ones round-robin.
//! Consume prints `offset<TAB>timestamp<TAB>key<TAB>value` lines, or under
//! `--json` the API's fetch shape.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, Result};

use super::Out;
use weir::client::Client;
use weir::log::{Record, StoredRecord};
use weir::workload::Orders;

/// Records sent per request in server mode.
const REQUEST_RECORDS: usize = 1000;

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

/// Stdin's lines as records, spread over `partitions` (keyed records by
/// `partition_for`, the rest round-robin).
fn read_stdin(
    partitions: u32,
    key_separator: Option<&str>,
    partition_for: impl Fn(&[u8]) -> Result<u32>,
) -> Result<Vec<Vec<Record>>> {
    let mut pending: Vec<Vec<Record>> = vec![Vec::new(); partitions as usize];
    let mut round_robin = 0u32;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading stdin")?;
        let record = match key_separator.and_then(|sep| line.split_once(sep)) {
            Some((key, value)) => Record::keyed(key, value),
            None => Record::value(line),
        };
        let partition = match &record.key {
            Some(key) => partition_for(key)?,
            None => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        pending[partition as usize].push(record);
    }
    Ok(pending)
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

pub fn produce(dir: &Path, args: ProduceArgs, out: Out) -> Result<()> {
    let log = super::open_log(dir)?;
    let topic = &args.topic;
    if let Some(n) = args.generate {
        weir::demo::produce_orders(&log, topic, n)?;
        return produced(out, topic, n, true);
    }
    let partitions = log.partition_count(topic)?;
    let pending = read_stdin(partitions, args.key_separator.as_deref(), |key| {
        Ok(log.partition_for(topic, Some(key))?)
    })?;
    let mut count = 0;
    for (p, records) in pending.iter().enumerate() {
        log.append(topic, p as u32, records)?;
        count += records.len() as u64;
    }
    log.sync_all()?;
    produced(out, topic, count, false)
}

pub async fn produce_remote(client: &Client, args: ProduceArgs, out: Out) -> Result<()> {
    let topic = &args.topic;
    let info = client.topic(topic).await?;
    let (records, generated): (Vec<Record>, bool) = match args.generate {
        Some(n) => {
            let first_id = info.high_watermarks.iter().sum();
            let orders = Orders::new(0x5EED ^ first_id, first_id).take(n as usize);
            (orders.collect(), true)
        }
        None => {
            // Keyed records are placed by the server; the rest round-robin here.
            let pending = read_stdin(info.partitions, args.key_separator.as_deref(), |_| Ok(0))?;
            (pending.into_iter().flatten().collect(), false)
        }
    };
    let mut count = 0;
    let mut unkeyed = 0u32;
    for chunk in records.chunks(REQUEST_RECORDS) {
        let (keyed, plain): (Vec<Record>, Vec<Record>) =
            chunk.iter().cloned().partition(|r| r.key.is_some());
        if !keyed.is_empty() {
            count += client.produce(topic, None, &keyed).await?.count as u64;
        }
        if !plain.is_empty() {
            unkeyed = (unkeyed + 1) % info.partitions;
            count += client.produce(topic, Some(unkeyed), &plain).await?.count as u64;
        }
    }
    produced(out, topic, count, generated)
}

fn print_records(out: Out, records: &[StoredRecord]) -> Result<()> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if out.json {
        let json: Vec<serde_json::Value> = records
            .iter()
            .map(|r| {
                let headers: serde_json::Map<String, serde_json::Value> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), text(v).into()))
                    .collect();
                serde_json::json!({
                    "offset": r.offset,
                    "timestamp": r.timestamp,
                    "key": r.key.as_deref().map(text),
                    "value": text(&r.value),
                    "headers": headers,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
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

pub fn consume(dir: &Path, args: ConsumeArgs, out: Out) -> Result<()> {
    let log = super::open_log(dir)?;
    let (topic, partition) = (&args.topic, args.partition);
    let mut records = Vec::new();
    let mut next = args.from;
    while records.len() < args.max && next < log.high_watermark(topic, partition)? {
        let read = log.read(topic, partition, next, args.max - records.len(), 1 << 20)?;
        next = read.last().map_or(next, |r| r.offset + 1);
        records.extend(read);
    }
    print_records(out, &records)
}

pub async fn consume_remote(client: &Client, args: ConsumeArgs, out: Out) -> Result<()> {
    let (topic, partition) = (&args.topic, args.partition);
    let end = client
        .topic(topic)
        .await?
        .high_watermarks
        .get(partition as usize)
        .copied()
        .with_context(|| format!("topic {topic:?} has no partition {partition}"))?;
    let mut records = Vec::new();
    let mut next = args.from;
    while records.len() < args.max && next < end {
        let want = (args.max - records.len()).min(10_000);
        let read = client.fetch(topic, partition, next, want, 1 << 20).await?;
        let Some(last) = read.last() else { break };
        next = last.offset + 1;
        records.extend(read);
    }
    print_records(out, &records)
}
