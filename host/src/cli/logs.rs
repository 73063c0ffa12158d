//! `weir logs PROCESSOR`: what a processor's guests logged (the `log`
//! import) and printed (stdout, stderr), from the server's bounded logbook
//! (client-only). A line per entry: time, version, input partition, level,
//! stream and message; under `--json` the API's line shape, one per line.
//! `--follow` keeps asking (a long poll) until Ctrl-C.

use anyhow::Result;
use jiff::Timestamp;

use super::Out;
use weir::client::Client;
use weir::wire::{LogLine, LogQuery};

#[derive(clap::Args)]
pub struct LogsArgs {
    pub processor: String,
    /// Keep printing new lines until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// Only lines from this time on: an RFC 3339 time, ts:MILLIS or a
    /// duration back from now (-5m).
    #[arg(long, allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Only lines this version wrote (`label@hash`, as `processor status`
    /// shows).
    #[arg(long)]
    pub version: Option<String>,
    /// Only lines written while processing this input partition.
    #[arg(long)]
    pub partition: Option<u32>,
}

pub async fn logs(client: &Client, args: LogsArgs, out: Out) -> Result<()> {
    let mut query = LogQuery {
        from: None,
        since: args.since,
        version: args.version,
        partition: args.partition,
        follow: false,
        limit: None,
    };
    loop {
        let page = client.logs(&args.processor, &query).await?;
        for line in &page.lines {
            print(line, out)?;
        }
        let more = page.next > query.from.unwrap_or(0) && !page.lines.is_empty();
        query.from = Some(page.next);
        if !more {
            if !args.follow {
                return Ok(());
            }
            query.follow = true;
        }
    }
}

fn print(line: &LogLine, out: Out) -> Result<()> {
    if out.json {
        println!("{}", serde_json::to_string(line)?);
        return Ok(());
    }
    let at = Timestamp::from_millisecond(line.at_ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| line.at_ms.to_string());
    let partition = line
        .partition
        .map_or_else(|| "-".to_string(), |p| p.to_string());
    println!(
        "{at} {} p{partition} {:5} {:6} {}",
        line.version, line.level, line.stream, line.message
    );
    Ok(())
}
