//! `weir bench`: the performance figures, each measured side by side with its
//! baseline in the same run and printed, never asserted.
//!
//! 1. Append throughput at 100 B and 1 KB records (unsynced), against raw
//!    sequential `write`s of the same bytes to a file in the same directory.
//! 2. Guest-boundary cost per record for the `passthrough` guest at batch sizes
//!    1, 100, 500 and 5,000: the `process` call alone (lowering the columnar
//!    batch included), and the whole per-batch cost with a fresh instance.
//! 3. The end-to-end pipeline (poll → process → emit → commit) with the
//!    `passthrough` guest, against the same pipeline with a native handler;
//!    and consume + commit with no emits over one partition (see
//!    [`consume`]), the scaling with members (see [`scaling`]).
//! 4. The cost of the sandbox's CPU bounds: `process` calls of `passthrough`
//!    and `fraud-filter` compiled with epoch interruption, with fuel, and with
//!    both, against neither.
//! 5. Cold start: loading the largest embedded guest with an empty compiled
//!    cache against loading it from the cache.
//! 6. Replay throughput and the hot-swap pause (see [`swap`]).
//! 7. Commit modes and guest state (see [`state`]): the pipeline in each
//!    mode, state operations from a guest, and restoring a million keys.

mod boundary;
mod consume;
mod report;
mod scaling;
mod state;
mod swap;

pub use report::Report;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::Broker;
use crate::consumer::{CommitMode, Emit, Polled};
use crate::demo::DemoError;
use crate::log::{Durability, Log, Record, StoredRecord, TopicConfig};
use crate::processor::{Processor, ProcessorConfig};
use crate::runtime::{GuestSpec, Handler, Output, Runtime, RuntimeError, Source, StateView};

/// How much work each figure does; `quick` is for smoke runs.
#[derive(Debug, Clone, Copy)]
pub struct BenchSize {
    /// Bytes appended per append measurement.
    pub append_bytes: u64,
    /// Records per pipeline run.
    pub pipeline_records: u64,
    /// Records pushed through the boundary per batch size.
    pub boundary_records: u64,
    /// Plain hot swaps timed (a fifth as many swaps with a rewind).
    pub swaps: usize,
}

impl BenchSize {
    pub const FULL: BenchSize = BenchSize {
        append_bytes: 512 << 20,
        pipeline_records: 500_000,
        boundary_records: 2_000_000,
        swaps: 100,
    };
    pub const QUICK: BenchSize = BenchSize {
        append_bytes: 16 << 20,
        pipeline_records: 20_000,
        boundary_records: 50_000,
        swaps: 10,
    };
}

/// The sections `weir bench --only` can pick, in the order they run.
pub const SECTIONS: [&str; 8] = [
    "append",
    "boundary",
    "pipeline",
    "consume",
    "scaling",
    "cold_start",
    "swap",
    "state",
];

/// Runs the benchmarks in a scratch directory under `dir`, reporting as it
/// goes: every section, or those named in `only`.
pub async fn run(
    dir: &Path,
    size: BenchSize,
    only: &[String],
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    let wants = |section: &str| only.is_empty() || only.iter().any(|o| o == section);
    if wants("append") {
        append_section(dir, size, report)?;
    }
    if wants("boundary") {
        boundary::figures(dir, size, report)?;
    }
    if wants("pipeline") {
        pipeline_section(dir, size, report).await?;
    }
    if wants("consume") {
        consume::figures(dir, size.pipeline_records * 4, report).await?;
    }
    if wants("scaling") {
        scaling::figures(dir, size.pipeline_records, report).await?;
    }
    if wants("cold_start") {
        cold_start_section(dir, report)?;
    }
    if wants("swap") {
        swap::figures(dir, size.pipeline_records, size.swaps, report).await?;
    }
    if wants("state") {
        state::figures(dir, size, report).await?;
    }
    Ok(())
}

fn append_section(dir: &Path, size: BenchSize, report: &mut Report<'_>) -> Result<(), DemoError> {
    report.section(
        "append",
        format_args!("append (unsynced), against raw sequential writes in the same run"),
    )?;
    report.line(format_args!(
        "{:>7}  {:>12}  {:>10}  {:>10}  {:>6}",
        "record", "appends/s", "MB/s", "raw MB/s", "ratio"
    ))?;
    for record_size in [100usize, 1024] {
        let (rate, mbps, raw) = append_figures(dir, record_size, size.append_bytes)?;
        report.line(format_args!(
            "{record_size:>6}B  {rate:>12.0}  {mbps:>10.1}  {raw:>10.1}  {:>6.2}",
            mbps / raw
        ))?;
        report.figure(format!("appends_per_s_{record_size}"), rate);
        report.figure(format!("mb_per_s_{record_size}"), mbps);
        report.figure(format!("raw_mb_per_s_{record_size}"), raw);
        report.figure(format!("ratio_{record_size}"), mbps / raw);
    }
    Ok(())
}

async fn pipeline_section(
    dir: &Path,
    size: BenchSize,
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    report.section(
        "pipeline",
        format_args!("pipeline: poll -> process (emit every record) -> commit, batch 500"),
    )?;
    let passthrough = |emit: &'static str| {
        move |runtime: &Runtime| {
            passthrough(runtime, "pipeline", &[("output", "out"), ("emit", emit)])
        }
    };
    let wasm = pipeline(dir, "wasm", size.pipeline_records, passthrough("each")).await?;
    let batched = pipeline(dir, "batched", size.pipeline_records, passthrough("batch")).await?;
    let native = pipeline(dir, "native", size.pipeline_records, |_| {
        Ok(Arc::new(NativePassthrough {
            output: "out".into(),
        }))
    })
    .await?;
    report.line(format_args!(
        "wasm passthrough, emit per record: {wasm:>10.0} rec/s"
    ))?;
    report.line(format_args!(
        "wasm passthrough, emit-batch:      {batched:>10.0} rec/s"
    ))?;
    report.line(format_args!(
        "native passthrough:                {native:>10.0} rec/s"
    ))?;
    report.line(format_args!(
        "ratio wasm/native, emit per record: {:>9.2}",
        wasm / native
    ))?;
    report.line(format_args!(
        "ratio wasm/native, emit-batch:      {:>9.2}",
        batched / native
    ))?;
    report.figure("wasm_rec_per_s", wasm);
    report.figure("wasm_batched_rec_per_s", batched);
    report.figure("native_rec_per_s", native);
    report.figure("ratio", wasm / native);
    report.figure("ratio_batched", batched / native);
    Ok(())
}

fn cold_start_section(dir: &Path, report: &mut Report<'_>) -> Result<(), DemoError> {
    let (name, bytes, uncached, cached) = cold_start_figures(dir)?;
    report.section(
        "cold_start",
        format_args!(
            "cold start: load {name} ({} KB), median of {COLD_STARTS}",
            bytes / 1000
        ),
    )?;
    report.line(format_args!("uncached (compile): {:>8.1} ms", ms(uncached)))?;
    report.line(format_args!("cached:             {:>8.1} ms", ms(cached)))?;
    report.figure("uncached_ms", ms(uncached));
    report.figure("cached_ms", ms(cached));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// How many loads each cold-start figure is the median of.
const COLD_STARTS: usize = 5;

/// The largest embedded guest's name and size, and the median time to load
/// it into a fresh runtime with an empty compiled cache and with a warm one.
fn cold_start_figures(dir: &Path) -> Result<(&'static str, usize, Duration, Duration), DemoError> {
    let (name, wasm) = [
        ("fraud-filter", crate::guests::FRAUD_FILTER),
        ("order-totals", crate::guests::ORDER_TOTALS),
        ("passthrough", crate::guests::PASSTHROUGH),
    ]
    .into_iter()
    .max_by_key(|(_, wasm)| wasm.len())
    .expect("embedded guests");
    let data = dir.join("cold-start");
    let log = Arc::new(Log::open(&data)?);
    let load = |cache: &Path, expected: Source| -> Result<Duration, DemoError> {
        let runtime = Runtime::new(cache, log.clone())?;
        let guest = runtime.load(wasm, Path::new(name), GuestSpec::default())?;
        assert_eq!(guest.source(), expected, "{name} in {}", cache.display());
        Ok(guest.load_time())
    };
    let median = |mut times: Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let mut uncached = Vec::new();
    for i in 0..COLD_STARTS {
        uncached.push(load(&data.join(format!("empty-{i}")), Source::Compiled)?);
    }
    let mut cached = Vec::new();
    for _ in 0..COLD_STARTS {
        cached.push(load(&data.join("empty-0"), Source::Cached)?);
    }
    Ok((name, wasm.len(), median(uncached), median(cached)))
}

/// How many turns the log and the raw file take in the append figure.
const ROUNDS: u64 = 8;

/// (records/s, MB/s) appending `total` bytes of `record_size`-byte records in
/// batches of about 64 KiB, and the MB/s of raw writes of the same chunks.
fn append_figures(
    dir: &Path,
    record_size: usize,
    total: u64,
) -> Result<(f64, f64, f64), DemoError> {
    let log_dir = dir.join(format!("append-{record_size}"));
    let log = Log::open(&log_dir)?;
    // Unsynced, like the raw writes it is measured against.
    log.create_topic(
        "bench",
        TopicConfig::with_partitions(1)
            .durability(Durability::Never)
            .segment_bytes(1 << 30),
    )?;
    let per_batch = (64 << 10) / record_size;
    let batch: Vec<Record> = (0..per_batch)
        .map(|_| Record::value(vec![7u8; record_size]))
        .collect();
    let batches = (total / (per_batch * record_size) as u64).max(ROUNDS) / ROUNDS * ROUNDS;
    let bytes = (batches * (per_batch * record_size) as u64) as f64;
    let raw_path = log_dir.join("raw.bin");
    let chunk = vec![7u8; per_batch * record_size];
    let io = |e| DemoError::Log(crate::log::LogError::io(&raw_path, e));
    let mut file = std::fs::File::create(&raw_path).map_err(io)?;
    // The log and the raw file take turns, so that neither gets the machine
    // in a better state (page cache, writeback, other load) than the other.
    let (mut elapsed, mut raw_elapsed) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..batches / ROUNDS {
            log.append("bench", 0, &batch)?;
        }
        elapsed += started.elapsed().as_secs_f64();
        let started = Instant::now();
        for _ in 0..batches / ROUNDS {
            file.write_all(&chunk).map_err(io)?;
        }
        raw_elapsed += started.elapsed().as_secs_f64();
    }
    drop(file);
    drop(log);
    std::fs::remove_dir_all(&log_dir).map_err(io)?;
    let mb = |b: f64, s: f64| b / s / 1e6;
    Ok((
        (batches * per_batch as u64) as f64 / elapsed,
        mb(bytes, elapsed),
        mb(bytes, raw_elapsed),
    ))
}

fn synthetic_batch(n: usize) -> Polled {
    Polled {
        topic: "bench".into(),
        partition: 0,
        high_watermark: n as u64,
        records: (0..n as u64)
            .map(|offset| StoredRecord {
                offset,
                timestamp: 0,
                key: Some(format!("key-{offset}").into()),
                value: vec![b'x'; 100].into(),
                headers: Vec::new(),
                nulls: Default::default(),
            })
            .collect(),
    }
}

/// The `passthrough` guest loaded as `processor` with `config`.
fn passthrough(
    runtime: &Runtime,
    processor: &str,
    config: &[(&str, &str)],
) -> Result<Arc<dyn Handler>, RuntimeError> {
    let spec = GuestSpec {
        processor: processor.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..GuestSpec::default()
    };
    Ok(Arc::new(runtime.load(
        crate::guests::PASSTHROUGH,
        Path::new("passthrough"),
        spec,
    )?))
}

/// Records per second through a whole processor with `handler`, committing
/// at-least-once.
async fn pipeline(
    dir: &Path,
    label: &str,
    records: u64,
    handler: impl FnOnce(&Runtime) -> Result<Arc<dyn Handler>, RuntimeError>,
) -> Result<f64, DemoError> {
    pipeline_in(dir, label, records, (CommitMode::AtLeastOnce, 4), handler).await
}

/// Records per second through a whole processor with `handler` in `mode`
/// over `partitions` partitions (batches of 500, output topic `out`).
async fn pipeline_in(
    dir: &Path,
    label: &str,
    records: u64,
    (mode, partitions): (CommitMode, u32),
    handler: impl FnOnce(&Runtime) -> Result<Arc<dyn Handler>, RuntimeError>,
) -> Result<f64, DemoError> {
    let data = dir.join(format!("pipeline-{label}"));
    let broker = Broker::open(&data)?;
    let log = broker.log();
    let runtime = Runtime::new(&data, log.clone())?;
    log.create_topic("in", TopicConfig::with_partitions(partitions))?;
    log.create_topic("out", TopicConfig::with_partitions(partitions))?;
    crate::demo::produce_orders(log, "in", records)?;
    let mut config = ProcessorConfig::new("pipeline", &["in"]);
    config.commit = mode;
    let processor = Processor::new(config, broker.as_ref(), handler(&runtime)?)?;
    let started = Instant::now();
    let processor = processor.run_until_caught_up().await?;
    let elapsed = started.elapsed().as_secs_f64();
    Ok(processor.stats().records() as f64 / elapsed)
}

/// The native baseline: what `passthrough` does, as plain Rust.
struct NativePassthrough {
    output: String,
}

impl Handler for NativePassthrough {
    fn handle(&self, batch: &Polled, _: Arc<dyn StateView>) -> Result<Output, RuntimeError> {
        let emits = batch
            .records
            .iter()
            .map(|r| Emit {
                topic: self.output.clone(),
                record: Record {
                    key: r.key.as_deref().map(<[u8]>::to_vec),
                    value: r.value.to_vec(),
                    headers: Vec::new(),
                    timestamp: None,
                    nulls: Default::default(),
                },
            })
            .collect();
        Ok(Output {
            outcome: Ok(()),
            emits,
            state: Vec::new(),
        })
    }

    fn version(&self) -> &str {
        "native"
    }
}
