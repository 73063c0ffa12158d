//! `weir bench`: the performance figures, each measured side by side with its
//! baseline in the same run and printed, never asserted.
//!
//! 1. Append throughput at 100 B and 1 KB records (unsynced), against raw
//!    sequential `write`s of the same bytes to a file in the same directory.
//! 2. Guest-boundary cost per record for the `passthrough` guest at batch sizes
//!    1, 100, 500 and 5,000: the `process` call alone (lowering the columnar
//!    batch included), and the whole per-batch cost with a fresh instance.
//! 3. The end-to-end pipeline (poll → process → emit → commit) with the
//!    `passthrough` guest, against the same pipeline with a native handler.
//! 4. The cost of the sandbox's CPU bounds: `process` calls of `passthrough`
//!    and `fraud-filter` compiled with epoch interruption, with fuel, and with
//!    both, against neither.
//! 5. Cold start: loading the largest embedded guest with an empty compiled
//!    cache against loading it from the cache.
//! 6. Replay throughput and the hot-swap pause (see [`swap`]).

mod swap;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::broker::Broker;
use crate::consumer::{Emit, Polled};
use crate::demo::DemoError;
use crate::log::{Durability, Log, Record, StoredRecord, TopicConfig};
use crate::processor::{Processor, ProcessorConfig};
use crate::runtime::{
    GuestSpec, Handler, Limits, NoState, Output, Runtime, RuntimeError, Source, StateView,
};
use crate::workload::Orders;

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

/// Runs every benchmark in a scratch directory under `dir`, printing as it goes.
pub async fn run(dir: &Path, size: BenchSize, out: &mut impl Write) -> Result<(), DemoError> {
    let io = |e: std::io::Error| DemoError::Log(crate::log::LogError::io(dir, e));
    writeln!(
        out,
        "## append (unsynced), against raw sequential writes in the same run"
    )
    .map_err(io)?;
    writeln!(
        out,
        "{:>7}  {:>12}  {:>10}  {:>10}  {:>6}",
        "record", "appends/s", "MB/s", "raw MB/s", "ratio"
    )
    .map_err(io)?;
    for record_size in [100usize, 1024] {
        let (rate, mbps, raw) = append_figures(dir, record_size, size.append_bytes)?;
        writeln!(
            out,
            "{record_size:>6}B  {rate:>12.0}  {mbps:>10.1}  {raw:>10.1}  {:>6.2}",
            mbps / raw
        )
        .map_err(io)?;
    }

    let log = Arc::new(Log::open(&dir.join("boundary"))?);
    let runtime = Runtime::new(&dir.join("boundary"), log.clone())?;
    let guest = runtime.load(
        crate::guests::PASSTHROUGH,
        Path::new("passthrough"),
        GuestSpec::default(),
    )?;
    writeln!(
        out,
        "\n## guest boundary, passthrough guest, 100-byte values"
    )
    .map_err(io)?;
    writeln!(
        out,
        "{:>6}  {:>14}  {:>22}",
        "batch", "call ns/rec", "fresh-instance ns/rec"
    )
    .map_err(io)?;
    for batch_size in [1usize, 100, 500, 5000] {
        let polled = synthetic_batch(batch_size);
        let calls = (size.boundary_records / batch_size as u64).clamp(20, 200_000) as u32;
        let call = guest.time_process_calls(&polled, calls)?;
        let fresh_calls = calls.min(20_000);
        let started = Instant::now();
        for _ in 0..fresh_calls {
            guest.handle(&polled, Arc::new(NoState))?;
        }
        let fresh = started.elapsed();
        let per = |d: Duration, n: u32| d.as_nanos() as f64 / (n as f64 * batch_size as f64);
        writeln!(
            out,
            "{batch_size:>6}  {:>14.1}  {:>22.1}",
            per(call, calls),
            per(fresh, fresh_calls)
        )
        .map_err(io)?;
    }

    writeln!(
        out,
        "\n## pipeline: poll -> process (emit every record) -> commit, batch 500"
    )
    .map_err(io)?;
    let wasm = pipeline(dir, "wasm", size.pipeline_records, |runtime| {
        let spec = GuestSpec {
            processor: "pipeline".into(),
            config: vec![("output".into(), "out".into())],
            ..GuestSpec::default()
        };
        Ok(Arc::new(runtime.load(
            crate::guests::PASSTHROUGH,
            Path::new("passthrough"),
            spec,
        )?))
    })
    .await?;
    let native = pipeline(dir, "native", size.pipeline_records, |_| {
        Ok(Arc::new(NativePassthrough {
            output: "out".into(),
        }))
    })
    .await?;
    writeln!(out, "wasm passthrough:   {wasm:>12.0} rec/s").map_err(io)?;
    writeln!(out, "native passthrough: {native:>12.0} rec/s").map_err(io)?;
    writeln!(out, "ratio wasm/native:  {:>12.2}", wasm / native).map_err(io)?;

    writeln!(
        out,
        "\n## CPU bounds: process calls on one instance, batch 500, ns/record (best of 5 rounds)"
    )
    .map_err(io)?;
    writeln!(
        out,
        "{:<13}  {:>8}  {:>8}  {:>8}  {:>10}  {:>7}  {:>7}",
        "guest", "neither", "epoch", "fuel", "epoch+fuel", "epoch %", "fuel %"
    )
    .map_err(io)?;
    for (name, [neither, epoch, fuel, both]) in interruption_figures(dir, size)? {
        let pct = |x: f64| (x / neither - 1.0) * 100.0;
        writeln!(
            out,
            "{name:<13}  {neither:>8.1}  {epoch:>8.1}  {fuel:>8.1}  {both:>10.1}  {:>+7.1}  {:>+7.1}",
            pct(epoch),
            pct(fuel)
        )
        .map_err(io)?;
    }

    let (name, bytes, uncached, cached) = cold_start_figures(dir)?;
    writeln!(
        out,
        "\n## cold start: load {name} ({} KB), median of {COLD_STARTS}",
        bytes / 1000
    )
    .map_err(io)?;
    writeln!(out, "uncached (compile): {:>8.1} ms", ms(uncached)).map_err(io)?;
    writeln!(out, "cached:             {:>8.1} ms", ms(cached)).map_err(io)?;
    swap::figures(dir, size.pipeline_records.min(200_000), size.swaps, out).await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Per guest, ns/record of `process` calls compiled with neither CPU bound,
/// with epoch interruption, with fuel, and with both.
fn interruption_figures(
    dir: &Path,
    size: BenchSize,
) -> Result<Vec<(&'static str, [f64; 4])>, DemoError> {
    const BATCH: usize = 500;
    let data = dir.join("interruption");
    let log = Arc::new(Log::open(&data)?);
    log.ensure_topic("alerts", TopicConfig::with_partitions(1))?;
    let plain = Runtime::without_epoch_interruption(&data, log.clone())?;
    let epochs = Runtime::new(&data, log.clone())?;
    let orders = Polled {
        records: Orders::new(7, 0)
            .take(BATCH)
            .enumerate()
            .map(|(i, r)| StoredRecord {
                offset: i as u64,
                timestamp: 0,
                key: r.key,
                value: r.value,
                headers: r.headers,
            })
            .collect(),
        ..synthetic_batch(BATCH)
    };
    let guests: [(&'static str, &[u8], Polled); 2] = [
        (
            "passthrough",
            crate::guests::PASSTHROUGH,
            synthetic_batch(BATCH),
        ),
        ("fraud-filter", crate::guests::FRAUD_FILTER, orders),
    ];
    // Rounds interleave the four setups, and each keeps its best round, so
    // load from elsewhere on the machine skews no setup more than another.
    const ROUNDS: u32 = 5;
    let calls = (size.boundary_records / BATCH as u64 / ROUNDS as u64).clamp(10, 1000) as u32;
    let setups = [
        (&plain, None),
        (&epochs, None),
        (&plain, Some(u64::MAX)),
        (&epochs, Some(u64::MAX)),
    ];
    let mut figures = Vec::new();
    for (name, wasm, polled) in guests {
        let mut loaded = Vec::new();
        for (runtime, fuel) in setups {
            let spec = GuestSpec {
                limits: Limits {
                    fuel,
                    ..Limits::default()
                },
                ..GuestSpec::default()
            };
            let guest = runtime.load(wasm, Path::new(name), spec)?;
            guest.time_process_calls(&polled, 5)?;
            loaded.push(guest);
        }
        let mut row = [f64::INFINITY; 4];
        for _ in 0..ROUNDS {
            for (best, guest) in row.iter_mut().zip(&loaded) {
                let elapsed = guest.time_process_calls(&polled, calls)?;
                let per = elapsed.as_nanos() as f64 / (calls as f64 * BATCH as f64);
                *best = best.min(per);
            }
        }
        figures.push((name, row));
    }
    Ok(figures)
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
    let batches = (total / (per_batch * record_size) as u64).max(1);
    let started = Instant::now();
    for _ in 0..batches {
        log.append("bench", 0, &batch)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = (batches * (per_batch * record_size) as u64) as f64;

    let raw_path = log_dir.join("raw.bin");
    let chunk = vec![7u8; per_batch * record_size];
    let io = |e| DemoError::Log(crate::log::LogError::io(&raw_path, e));
    let mut file = std::fs::File::create(&raw_path).map_err(io)?;
    let raw_started = Instant::now();
    for _ in 0..batches {
        file.write_all(&chunk).map_err(io)?;
    }
    let raw_elapsed = raw_started.elapsed().as_secs_f64();
    drop(file);
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
                key: Some(format!("key-{offset}").into_bytes()),
                value: vec![b'x'; 100],
                headers: Vec::new(),
            })
            .collect(),
    }
}

/// Records per second through a whole processor with `handler`.
async fn pipeline(
    dir: &Path,
    label: &str,
    records: u64,
    handler: impl FnOnce(&Runtime) -> Result<Arc<dyn Handler>, RuntimeError>,
) -> Result<f64, DemoError> {
    let data = dir.join(format!("pipeline-{label}"));
    let broker = Broker::open(&data)?;
    let log = broker.log();
    let runtime = Runtime::new(&data, log.clone())?;
    log.create_topic("in", TopicConfig::with_partitions(4))?;
    log.create_topic("out", TopicConfig::with_partitions(4))?;
    crate::demo::produce_orders(log, "in", records)?;
    let processor = Processor::new(
        ProcessorConfig::new("pipeline", &["in"]),
        broker.as_ref(),
        handler(&runtime)?,
    )?;
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
                    key: r.key.clone(),
                    value: r.value.clone(),
                    headers: Vec::new(),
                    timestamp: None,
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
