//! `cargo bench -p weir-tests --bench languages`: the same `fraud-filter` guest
//! in Rust, JavaScript and Python, side by side. Reported, never asserted.
//!
//! Per language, measured by hand and printed as one Markdown table:
//! - the component's size, its cold compile (a fresh cache), a cached load and
//!   one instantiation plus `init` (what every batch pays before `process`);
//! - guest ns/record: `process` calls on one instance over a batch of 500
//!   (lowering the columnar batch included, instantiation left out);
//! - batch rec/s: whole batches of 500 the way the processor runs them, each in
//!   a fresh instance;
//! - pipeline rec/s: the real poll → process → emit → commit loop over 20,000
//!   orders in batches of 500.
//!
//! Then criterion samples the two per-batch figures for a statistical view.
//! A language whose toolchain is missing is left out with a loud message.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use weir::consumer::Polled;
use weir::demo::produce_orders;
use weir::log::{Log, TopicConfig};
use weir::runtime::{Guest, GuestSpec, Handler, NoState, Runtime, Source};
use weir_tests::{guests, polyglot};

const BATCH: usize = 500;
const PIPELINE_ORDERS: u64 = 20_000;

fn languages() -> Vec<(&'static str, PathBuf)> {
    let mut all = vec![("Rust", PathBuf::from(guests::FRAUD_FILTER))];
    all.extend(polyglot::js("fraud-filter").map(|p| ("JavaScript", p)));
    all.extend(polyglot::python("fraud-filter").map(|p| ("Python", p)));
    all
}

/// A log with the `alerts` topic the guest emits to, and one batch of orders.
struct Fixture {
    dir: tempfile::TempDir,
    log: Arc<Log>,
    polled: Polled,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = Arc::new(Log::open(dir.path()).expect("open log"));
        for topic in ["orders", "alerts"] {
            log.create_topic(topic, TopicConfig::with_partitions(1))
                .expect("create topic");
        }
        produce_orders(&log, "orders", BATCH as u64).expect("produce");
        let records = log
            .read("orders", 0, 0, BATCH, 16 << 20)
            .expect("read orders");
        assert_eq!(records.len(), BATCH);
        let polled = Polled {
            topic: "orders".into(),
            partition: 0,
            high_watermark: BATCH as u64,
            records,
        };
        Fixture { dir, log, polled }
    }

    fn runtime(&self, cache: &Path) -> Runtime {
        Runtime::new(cache, self.log.clone()).expect("runtime")
    }
}

fn load(runtime: &Runtime, path: &Path) -> Guest {
    let spec = GuestSpec {
        processor: "fraud".into(),
        ..GuestSpec::default()
    };
    runtime.load_file(path, spec).expect("load the guest")
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Repeats `f` until `budget` has passed (at least `min` times); the count and
/// the time taken.
fn repeat(budget: Duration, min: u32, mut f: impl FnMut()) -> (u32, Duration) {
    let started = Instant::now();
    let mut n = 0;
    while n < min || started.elapsed() < budget {
        f();
        n += 1;
    }
    (n, started.elapsed())
}

struct Row {
    language: &'static str,
    size: u64,
    cold_compile: Duration,
    cached_load: Duration,
    instantiate: Duration,
    process_ns_per_record: f64,
    batch_rec_per_s: f64,
    pipeline_rec_per_s: f64,
}

fn measure(fixture: &Fixture, language: &'static str, path: &Path) -> Row {
    let size = std::fs::metadata(path).expect("component size").len();
    let cache = tempfile::tempdir().expect("cache dir");

    let cold = load(&fixture.runtime(cache.path()), path);
    assert_eq!(cold.source(), Source::Compiled);
    let cold_compile = cold.load_time();

    let runtime = fixture.runtime(cache.path());
    let loads: Vec<Duration> = (0..5)
        .map(|_| {
            let guest = load(&runtime, path);
            assert_eq!(guest.source(), Source::Cached);
            guest.load_time()
        })
        .collect();
    let cached_load = median(loads);
    let guest = load(&runtime, path);

    let instantiate = median(
        (0..20)
            .map(|_| {
                let started = Instant::now();
                guest.probe().expect("instantiate");
                started.elapsed()
            })
            .collect(),
    );

    let one = guest
        .time_process_calls(&fixture.polled, 1)
        .expect("process");
    let calls = (Duration::from_secs(2).as_nanos() / one.as_nanos().max(1)).clamp(5, 2000) as u32;
    let elapsed = guest
        .time_process_calls(&fixture.polled, calls)
        .expect("process");
    let process_ns_per_record = elapsed.as_nanos() as f64 / (calls as f64 * BATCH as f64);

    let (batches, elapsed) = repeat(Duration::from_secs(2), 5, || {
        let out = guest
            .handle(&fixture.polled, Arc::new(NoState))
            .expect("handle");
        assert!(out.outcome.is_ok(), "{:?}", out.outcome);
    });
    let batch_rec_per_s = batches as f64 * BATCH as f64 / elapsed.as_secs_f64();

    let pipeline_rec_per_s = pipeline(cache.path(), path);
    Row {
        language,
        size,
        cold_compile,
        cached_load,
        instantiate,
        process_ns_per_record,
        batch_rec_per_s,
        pipeline_rec_per_s,
    }
}

/// Records per second through the real processor loop.
fn pipeline(cache: &Path, path: &Path) -> f64 {
    let host = weir_tests::Host::new();
    host.topic("orders", 1);
    host.topic("alerts", 1);
    produce_orders(&host.log, "orders", PIPELINE_ORDERS).expect("produce");
    let runtime = Runtime::new(cache, host.log.clone()).expect("runtime");
    let guest = load(&runtime, path);
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let started = Instant::now();
    let processor = tokio
        .block_on(host.run("fraud", &["orders"], guest, BATCH))
        .expect("pipeline");
    let elapsed = started.elapsed();
    assert_eq!(processor.stats().records(), PIPELINE_ORDERS);
    PIPELINE_ORDERS as f64 / elapsed.as_secs_f64()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| fraud-filter, batch of {BATCH} | component | cold compile | cached load | instantiate + init | guest ns/record | batch rec/s (fresh instance) | pipeline rec/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.1} MB | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
            r.language,
            r.size as f64 / 1e6,
            ms(r.cold_compile),
            ms(r.cached_load),
            ms(r.instantiate),
            r.process_ns_per_record,
            r.batch_rec_per_s,
            r.pipeline_rec_per_s,
        );
    }
    println!();
}

fn main() {
    let languages = languages();
    let fixture = Fixture::new();
    let rows: Vec<Row> = languages
        .iter()
        .map(|(language, path)| measure(&fixture, language, path))
        .collect();
    print_table(&rows);

    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let runtime = fixture.runtime(&polyglot::shared_cache_dir());
    let mut group = criterion.benchmark_group(format!("fraud-filter-{BATCH}"));
    group.throughput(Throughput::Elements(BATCH as u64));
    for (language, path) in &languages {
        let guest = load(&runtime, path);
        group.bench_function(BenchmarkId::new("process", language), |b| {
            b.iter_custom(|iters| {
                guest
                    .time_process_calls(&fixture.polled, iters as u32)
                    .expect("process")
            })
        });
        group.bench_function(BenchmarkId::new("fresh-instance-batch", language), |b| {
            b.iter(|| {
                guest
                    .handle(&fixture.polled, Arc::new(NoState))
                    .expect("handle")
            })
        });
    }
    group.finish();
    criterion.final_summary();
    drop(fixture.dir);
}
