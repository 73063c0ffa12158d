//! `weir consume`, over [`Admin`] (the data directory, or a server in the
//! API's binary framing so bytes pass unchanged): every partition of a topic
//! (or `--partition`), from a position (`earliest` by default, any form of
//! [`SeekTo`]), round robin between partitions a fetch at a time, printed as
//! each fetch arrives.
//!
//! Without `--follow` it stops at the high watermarks it found on start (or
//! after `--max` records); with it, it keeps polling for new records until
//! Ctrl-C. Each record is a line of `--format` (kcat's letters: `%t` topic,
//! `%p` partition, `%o` offset, `%T` timestamp, `%k` key, `%v` value, `%h`
//! headers as `k=v,k=v`, `%%`, and `\n` `\t` escapes), or under `--json` the
//! API's record shape with its topic and partition: an array, or with
//! `--follow` one object per line.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;

use super::Out;
use super::admin::Admin;
use weir::log::StoredRecord;
use weir::wire::{FetchedRecord, SeekTo};

/// Records fetched per request at most.
const FETCH_RECORDS: usize = 10_000;

/// How long `--follow` waits before asking again when nothing is new.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// The line printed per record unless `--format` says otherwise.
const DEFAULT_FORMAT: &str = "%p\\t%o\\t%T\\t%k\\t%v\\t%h";

#[derive(clap::Args)]
pub struct ConsumeArgs {
    #[arg(long)]
    pub topic: String,
    /// Only this partition [default: every partition].
    #[arg(long)]
    pub partition: Option<u32>,
    /// Where to start in each partition: earliest, latest, an offset, an
    /// RFC 3339 time, ts:MILLIS, or a duration back from now (-1h, -15m).
    #[arg(long, default_value = "earliest", allow_hyphen_values = true)]
    pub from: SeekTo,
    /// Stop after this many records [default: 100, or no limit with
    /// --follow].
    #[arg(long)]
    pub max: Option<usize>,
    /// Keep polling for new records until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
    /// Each record's line, with %t %p %o %T %k %v %h (topic, partition,
    /// offset, timestamp, key, value, headers), %% and \n \t escapes.
    #[arg(long, default_value = DEFAULT_FORMAT)]
    pub format: String,
}

/// A record under `--json`: the API's shape, with where it came from.
#[derive(Serialize)]
struct Consumed<'a> {
    topic: &'a str,
    partition: u32,
    #[serde(flatten)]
    record: FetchedRecord,
}

pub async fn consume(admin: &impl Admin, args: ConsumeArgs, out: Out) -> Result<()> {
    let topic = args.topic.as_str();
    let info = admin.topic(topic).await?;
    let partitions: Vec<u32> = match args.partition {
        Some(p) if p >= info.partitions => bail!(
            "topic {topic:?} has no partition {p} (it has {}: 0 to {})",
            info.partitions,
            info.partitions - 1
        ),
        Some(p) => vec![p],
        None => (0..info.partitions).collect(),
    };
    let mut ends = info.high_watermarks.clone();
    let mut next = Vec::new();
    for &p in &partitions {
        next.push(
            admin
                .offset_of(topic, p, args.from, ends[p as usize])
                .await?,
        );
    }
    let max = args
        .max
        .unwrap_or(if args.follow { usize::MAX } else { 100 });
    let format = Format::parse(&args.format);
    let mut printer = Printer {
        out,
        follow: args.follow,
        format,
        topic,
        json: Vec::new(),
    };
    let mut printed = 0;
    while printed < max {
        let mut read_any = false;
        for (i, &p) in partitions.iter().enumerate() {
            if printed >= max || next[i] >= ends[p as usize] {
                continue;
            }
            let want = (max - printed).min(FETCH_RECORDS);
            let read = admin.fetch(topic, p, next[i], want).await?;
            let Some(last) = read.last() else { continue };
            next[i] = last.offset + 1;
            printed += read.len();
            read_any = true;
            printer.print(p, &read)?;
        }
        if read_any {
            continue;
        }
        if !args.follow {
            break;
        }
        tokio::time::sleep(FOLLOW_POLL).await;
        ends = admin.topic(topic).await?.high_watermarks;
    }
    printer.finish()
}

/// Prints records as they arrive; under `--json` without `--follow` they are
/// gathered into one array.
struct Printer<'a> {
    out: Out,
    follow: bool,
    format: Format,
    topic: &'a str,
    json: Vec<serde_json::Value>,
}

impl Printer<'_> {
    fn print(&mut self, partition: u32, records: &[StoredRecord]) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        for r in records {
            if self.out.json {
                let consumed = Consumed {
                    topic: self.topic,
                    partition,
                    record: FetchedRecord::from(r),
                };
                if self.follow {
                    serde_json::to_writer(&mut stdout, &consumed)?;
                    writeln!(stdout)?;
                } else {
                    self.json.push(serde_json::to_value(consumed)?);
                }
            } else {
                stdout.write_all(&self.format.render(self.topic, partition, r))?;
            }
        }
        // A follower's reader sees each fetch as it arrives.
        Ok(stdout.flush()?)
    }

    fn finish(self) -> Result<()> {
        if self.out.json && !self.follow {
            let mut stdout = std::io::stdout().lock();
            writeln!(stdout, "{}", serde_json::to_string_pretty(&self.json)?)?;
        }
        Ok(())
    }
}

/// A parsed `--format`: literal text and the fields between it.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
}

#[derive(Debug)]
struct Format(Vec<Piece>);

impl Format {
    /// Reads `%x` fields and `\n`, `\t`, `\\` escapes; anything else stays
    /// as written. A newline ends each record unless the format ends in one.
    fn parse(spec: &str) -> Format {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = spec.chars().peekable();
        while let Some(c) = chars.next() {
            let field = match (c, chars.peek().copied()) {
                ('%', Some('t')) => Some(Piece::Topic),
                ('%', Some('p')) => Some(Piece::Partition),
                ('%', Some('o')) => Some(Piece::Offset),
                ('%', Some('T')) => Some(Piece::Timestamp),
                ('%', Some('k')) => Some(Piece::Key),
                ('%', Some('v')) => Some(Piece::Value),
                ('%', Some('h')) => Some(Piece::Headers),
                ('%', Some('%')) => Some(Piece::Text("%".into())),
                ('\\', Some('n')) => Some(Piece::Text("\n".into())),
                ('\\', Some('t')) => Some(Piece::Text("\t".into())),
                ('\\', Some('\\')) => Some(Piece::Text("\\".into())),
                _ => None,
            };
            match field {
                Some(Piece::Text(t)) => {
                    chars.next();
                    text.push_str(&t);
                }
                Some(field) => {
                    chars.next();
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(field);
                }
                None => text.push(c),
            }
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        pieces.push(Piece::Text(text));
        Format(pieces)
    }

    /// One record's line; keys, values and headers as they are (an absent
    /// key is empty).
    fn render(&self, topic: &str, partition: u32, r: &StoredRecord) -> Vec<u8> {
        let mut line = Vec::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => line.extend_from_slice(t.as_bytes()),
                Piece::Topic => line.extend_from_slice(topic.as_bytes()),
                Piece::Partition => line.extend_from_slice(partition.to_string().as_bytes()),
                Piece::Offset => line.extend_from_slice(r.offset.to_string().as_bytes()),
                Piece::Timestamp => line.extend_from_slice(r.timestamp.to_string().as_bytes()),
                Piece::Key => line.extend_from_slice(r.key.as_deref().unwrap_or_default()),
                Piece::Value => line.extend_from_slice(&r.value),
                Piece::Headers => {
                    for (i, (k, v)) in r.headers.iter().enumerate() {
                        if i > 0 {
                            line.push(b',');
                        }
                        line.extend_from_slice(k.as_bytes());
                        line.push(b'=');
                        line.extend_from_slice(v);
                    }
                }
            }
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StoredRecord {
        StoredRecord {
            offset: 7,
            timestamp: 1_700_000_000_000,
            key: Some(b"k1".to_vec().into()),
            value: b"hello".to_vec().into(),
            headers: vec![("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
            nulls: Default::default(),
        }
    }

    fn render(spec: &str) -> String {
        String::from_utf8(Format::parse(spec).render("orders", 2, &record())).unwrap()
    }

    #[test]
    fn a_format_names_every_field_like_kcat() {
        assert_eq!(render("%t %p %o %k %v %h"), "orders 2 7 k1 hello a=1,b=2\n");
        assert_eq!(render("%T|%v\\n"), "1700000000000|hello\n");
        assert_eq!(render("100%% %v"), "100% hello\n");
        assert_eq!(render("%x%v"), "%xhello\n");
        assert_eq!(
            render(DEFAULT_FORMAT),
            "2\t7\t1700000000000\tk1\thello\ta=1,b=2\n"
        );
    }

    #[test]
    fn an_absent_key_and_no_headers_print_empty() {
        let r = StoredRecord {
            key: None,
            headers: Vec::new(),
            ..record()
        };
        let line = Format::parse("[%k][%h]").render("t", 0, &r);
        assert_eq!(line, b"[][]\n");
    }
}
