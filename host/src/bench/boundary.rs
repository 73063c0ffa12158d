//! The guest boundary: what a `process` call costs per record, what a fresh
//! instance per batch adds (from the instance pool, against on-demand
//! allocation as the baseline), and what the sandbox's CPU bounds (epoch
//! interruption, fuel) cost.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BenchSize, Report, synthetic_batch};
use crate::consumer::Polled;
use crate::demo::DemoError;
use crate::log::{Log, StoredRecord, TopicConfig};
use crate::runtime::{Guest, GuestSpec, Handler, Limits, NoState, Runtime, RuntimeError};
use crate::workload::Orders;

/// Instantiations timed for the fresh-instance figure.
const INSTANTIATIONS: u32 = 5_000;

/// Prints the boundary, fresh-instance and CPU-bound sections.
pub(super) fn figures(dir: &Path, size: BenchSize, report: &mut Report) -> Result<(), DemoError> {
    let data = dir.join("boundary");
    let log = Arc::new(Log::open(&data)?);
    let load = |runtime: Runtime| {
        runtime.load(
            crate::guests::PASSTHROUGH,
            Path::new("passthrough"),
            GuestSpec::default(),
        )
    };
    let pooled = load(Runtime::new(&data, log.clone())?)?;
    let on_demand = load(Runtime::with_on_demand_instances(&data, log)?)?;

    // First, while the pool's slots hold only what `init` touches.
    let (fresh, base) = (instantiation_us(&pooled)?, instantiation_us(&on_demand)?);
    report.section(
        "instance",
        format_args!("a fresh instance: instantiate + init, passthrough guest, µs"),
    )?;
    report.line(format_args!("pooled:                {fresh:>8.1}"))?;
    report.line(format_args!("on demand (baseline):  {base:>8.1}"))?;
    report.figure("pooled_us", fresh);
    report.figure("on_demand_us", base);

    report.section(
        "boundary",
        format_args!("guest boundary, passthrough guest, 100-byte values, ns/record"),
    )?;
    report.line(format_args!(
        "{:>6}  {:>8}  {:>21}  {:>24}",
        "batch", "call", "fresh instance, pooled", "on demand (baseline)"
    ))?;
    for batch_size in [1usize, 100, 500, 5000] {
        let polled = synthetic_batch(batch_size);
        let calls = (size.boundary_records / batch_size as u64).clamp(20, 200_000) as u32;
        let call = pooled.time_process_calls(&polled, calls)?;
        let fresh_calls = calls.min(20_000);
        let (fresh, base) = (
            time_fresh(&pooled, &polled, fresh_calls)?,
            time_fresh(&on_demand, &polled, fresh_calls)?,
        );
        let per = |d: Duration, n: u32| d.as_nanos() as f64 / (n as f64 * batch_size as f64);
        let (call, fresh, base) = (
            per(call, calls),
            per(fresh, fresh_calls),
            per(base, fresh_calls),
        );
        report.line(format_args!(
            "{batch_size:>6}  {call:>8.1}  {fresh:>21.1}  {base:>24.1}"
        ))?;
        report.figure(format!("call_ns_per_record_{batch_size}"), call);
        report.figure(format!("fresh_ns_per_record_{batch_size}"), fresh);
        report.figure(format!("on_demand_ns_per_record_{batch_size}"), base);
    }

    report.section(
        "cpu_bounds",
        format_args!(
            "CPU bounds: process calls on one instance, batch 500, ns/record (best of 5 rounds)"
        ),
    )?;
    report.line(format_args!(
        "{:<13}  {:>8}  {:>8}  {:>8}  {:>10}  {:>7}  {:>7}",
        "guest", "neither", "epoch", "fuel", "epoch+fuel", "epoch %", "fuel %"
    ))?;
    for (name, [neither, epoch, fuel, both]) in interruption_figures(dir, size)? {
        let pct = |x: f64| (x / neither - 1.0) * 100.0;
        report.line(format_args!(
            "{name:<13}  {neither:>8.1}  {epoch:>8.1}  {fuel:>8.1}  {both:>10.1}  {:>+7.1}  {:>+7.1}",
            pct(epoch),
            pct(fuel)
        ))?;
        for (setup, value) in [
            ("neither", neither),
            ("epoch", epoch),
            ("fuel", fuel),
            ("both", both),
        ] {
            report.figure(format!("{name}_{setup}_ns_per_record"), value);
        }
    }
    Ok(())
}

/// `calls` batches, each in a fresh instance, as a processor runs them.
fn time_fresh(guest: &Guest, polled: &Polled, calls: u32) -> Result<Duration, RuntimeError> {
    let started = Instant::now();
    for _ in 0..calls {
        guest.handle(polled, Arc::new(NoState))?;
    }
    Ok(started.elapsed())
}

/// µs per instantiation and `init`, the instance dropped after each.
fn instantiation_us(guest: &Guest) -> Result<f64, RuntimeError> {
    // Warm the pool's slots (and the allocator's caches) first.
    for _ in 0..INSTANTIATIONS / 10 {
        guest.probe()?;
    }
    let started = Instant::now();
    for _ in 0..INSTANTIATIONS {
        guest.probe()?;
    }
    Ok(started.elapsed().as_nanos() as f64 / INSTANTIATIONS as f64 / 1e3)
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
                key: r.key.map(Into::into),
                value: r.value.into(),
                headers: r.headers,
                nulls: Default::default(),
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
