//! `weir produce`, over [`Admin`] (the data directory, or a server in the
//! API's binary framing so bytes pass unchanged); `weir consume` is in
//! `consume.rs`.
//!
//! Produce reads lines from stdin (optionally `KEY<sep>VALUE`) or generates
//! orders, with the `--header`s on every record, and sends them in requests
//! of at most [`REQUEST_RECORDS`] and about [`REQUEST_BYTES`]; each goes to
//! `--partition`, or by the log's one placement rule (keyed records by key,
//! the rest round robin per record), the same on either path.

use std::io::BufRead;

use anyhow::{Context, Result};

use super::Out;
use super::admin::Admin;
use weir::log::Record;
use weir::workload::Orders;

/// Records sent per request at most.
const REQUEST_RECORDS: usize = 1000;

/// Bytes (as a batch) sent per request, about: the default batch limit.
const REQUEST_BYTES: u64 = weir::log::DEFAULT_MAX_BATCH_BYTES;

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
    /// Append every record to this partition [default: by key, else round
    /// robin].
    #[arg(long)]
    pub partition: Option<u32>,
    /// A header KEY=VALUE on every record (repeatable).
    #[arg(long = "header", value_parser = super::spec::key_value)]
    pub headers: Vec<(String, String)>,
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
    let records: Box<dyn Iterator<Item = Result<Record>>> = match args.generate {
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
    if let Some(p) = args.partition
        && p >= info.partitions
    {
        anyhow::bail!(
            "topic {topic:?} has no partition {p} (it has {}: 0 to {})",
            info.partitions,
            info.partitions - 1
        );
    }
    let headers: Vec<(String, Vec<u8>)> = args
        .headers
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    let mut records = records.map(move |r| {
        r.map(|mut r| {
            r.headers.extend(headers.iter().cloned());
            r
        })
    });
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
        count += admin.produce(topic, args.partition, chunk).await?.count as u64;
    }
    produced(out, topic, count, args.generate.is_some())
}
