//! The `weir` command line: embedded log, processors and tools over a local data
//! directory. Start-up code, so errors are `anyhow` with context here.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod cli;

use weir::log::{Record, TopicConfig};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A WebAssembly plugin host for consumer logic"
)]
struct Cli {
    /// Where the log, offsets and compiled components live.
    #[arg(
        long,
        global = true,
        env = "WEIR_DATA_DIR",
        default_value = "weir-data"
    )]
    data_dir: PathBuf,
    /// Log format on stderr (filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Produce generated orders and run two guests over them as independent groups.
    Demo {
        /// How many orders to produce.
        #[arg(long, default_value_t = 10_000)]
        orders: u64,
    },
    /// Create or list topics.
    Topic {
        #[command(subcommand)]
        command: TopicCommand,
    },
    /// Append records: lines from stdin, or generated orders.
    Produce {
        #[arg(long)]
        topic: String,
        /// Append N generated orders instead of reading stdin.
        #[arg(long)]
        generate: Option<u64>,
        /// Split each line into key and value at the first SEP.
        #[arg(long)]
        key_separator: Option<String>,
    },
    /// Print records of one partition.
    Consume {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 0)]
        partition: u32,
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Stop after this many records.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Run a processor in the foreground until Ctrl-C or SIGTERM.
    Run(Box<cli::run::RunArgs>),
    /// List, describe and seek consumer groups.
    Group {
        #[command(subcommand)]
        command: cli::group::GroupCommand,
    },
    /// Serve the HTTP API (topics, produce, fetch, groups, metrics).
    Serve(cli::serve::ServeArgs),
    /// Measure append, guest-boundary, pipeline, CPU-bound and cold-start costs.
    Bench {
        /// A short smoke run instead of the full measurement.
        #[arg(long)]
        quick: bool,
    },
}

#[derive(Subcommand)]
enum TopicCommand {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
    },
    /// List topics with their partitions and high watermarks.
    List,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().init(),
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<()> {
    let dir = cli.data_dir;
    cli::lock_data_dir(&dir)?;
    match cli.command {
        Command::Demo { orders } => {
            let report = weir::demo::run(&dir, orders).await.context("demo failed")?;
            print!("{report}");
            Ok(())
        }
        Command::Topic { command } => topic(&dir, command),
        Command::Produce {
            topic,
            generate,
            key_separator,
        } => produce(&dir, &topic, generate, key_separator.as_deref()),
        Command::Consume {
            topic,
            partition,
            from,
            max,
        } => consume(&dir, &topic, partition, from, max),
        Command::Run(args) => cli::run::run(&dir, *args).await,
        Command::Serve(args) => cli::serve::serve(&dir, args).await,
        Command::Group { command } => cli::group::run(&dir, command),
        Command::Bench { quick } => {
            let scratch = tempfile_dir(&dir)?;
            let size = if quick {
                weir::bench::BenchSize::QUICK
            } else {
                weir::bench::BenchSize::FULL
            };
            let result = weir::bench::run(&scratch, size, &mut std::io::stdout()).await;
            std::fs::remove_dir_all(&scratch).ok();
            result.context("benchmark failed")
        }
    }
}

fn topic(dir: &Path, command: TopicCommand) -> Result<()> {
    let log = cli::open_log(dir)?;
    match command {
        TopicCommand::Create { name, partitions } => {
            log.create_topic(&name, TopicConfig::with_partitions(partitions))?;
            println!("created topic {name} with {partitions} partition(s)");
        }
        TopicCommand::List => {
            for (name, config) in log.topics() {
                let mut hws = Vec::new();
                for p in 0..config.partitions {
                    hws.push(log.high_watermark(&name, p)?.to_string());
                }
                println!(
                    "{name}\tpartitions={}\thigh-watermarks=[{}]",
                    config.partitions,
                    hws.join(",")
                );
            }
        }
    }
    Ok(())
}

fn produce(
    dir: &Path,
    topic: &str,
    generate: Option<u64>,
    key_separator: Option<&str>,
) -> Result<()> {
    let log = cli::open_log(dir)?;
    if let Some(n) = generate {
        weir::demo::produce_orders(&log, topic, n)?;
        println!("produced {n} generated orders to {topic}");
        return Ok(());
    }
    let partitions = log.partition_count(topic)?;
    let mut pending: Vec<Vec<Record>> = vec![Vec::new(); partitions as usize];
    let mut count = 0u64;
    let mut round_robin = 0u32;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading stdin")?;
        let record = match key_separator.and_then(|sep| line.split_once(sep)) {
            Some((key, value)) => Record::keyed(key, value),
            None => Record::value(line),
        };
        let partition = match &record.key {
            Some(key) => log.partition_for(topic, Some(key))?,
            None => {
                round_robin = (round_robin + 1) % partitions;
                round_robin
            }
        };
        pending[partition as usize].push(record);
        count += 1;
    }
    for (p, records) in pending.iter().enumerate() {
        log.append(topic, p as u32, records)?;
    }
    log.sync_all()?;
    println!("produced {count} record(s) to {topic}");
    Ok(())
}

fn consume(dir: &Path, topic: &str, partition: u32, from: u64, max: usize) -> Result<()> {
    let log = cli::open_log(dir)?;
    let mut out = std::io::stdout().lock();
    let mut next = from;
    let mut printed = 0;
    while printed < max && next < log.high_watermark(topic, partition)? {
        let records = log.read(topic, partition, next, max - printed, 1 << 20)?;
        for r in &records {
            let key = r.key.as_deref().map_or("-".into(), String::from_utf8_lossy);
            writeln!(
                out,
                "{}\t{}\t{}\t{}",
                r.offset,
                r.timestamp,
                key,
                String::from_utf8_lossy(&r.value)
            )?;
        }
        printed += records.len();
        next = records.last().map_or(next, |r| r.offset + 1);
    }
    Ok(())
}

fn tempfile_dir(base: &Path) -> Result<PathBuf> {
    let dir = base.join(format!("bench-{}", std::process::id()));
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
