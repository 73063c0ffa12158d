//! Commit modes and guest state, each against its baseline in the same run:
//! the pipeline (poll → process → commit) with `passthrough` and
//! `running-totals` in the three commit modes (exactly-once against
//! at-least-once), state writes and reads from a Rust guest against a call
//! that touches no state, and restoring a changelog of many keys into a new
//! owner's store, after a crash (a checkpoint a tenth behind) and after a
//! clean restart (nothing to replay).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{BenchSize, Report, pipeline_in, synthetic_batch};
use crate::consumer::{CommitMode, Polled};
use crate::demo::DemoError;
use crate::group::TopicPartition;
use crate::log::{Log, Record, StoredRecord, TopicConfig};
use crate::runtime::{GuestSpec, Handler, NoState, Runtime, StateView};
use crate::state::changelog::{self, Marker};
use crate::state::{PartitionView, StateError, StateStore};

const MODES: [CommitMode; 3] = [
    CommitMode::AtMostOnce,
    CommitMode::AtLeastOnce,
    CommitMode::ExactlyOnce,
];

/// Prints the commit-mode and state figures.
pub async fn figures(
    dir: &Path,
    size: BenchSize,
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    report.section(
        "commit_modes",
        format_args!("commit modes: pipeline rec/s, 4 partitions, batch 500"),
    )?;
    report.line(format_args!(
        "{:<15}  {:>13}  {:>13}  {:>13}  {:>9}",
        "guest", "at-most-once", "at-least-once", "exactly-once", "eo/alo"
    ))?;
    let guests: [(&str, &[u8], &str); 2] = [
        ("passthrough", crate::guests::PASSTHROUGH, "out"),
        ("running-totals", crate::guests::RUNNING_TOTALS, "out"),
    ];
    for (name, wasm, output) in guests {
        let mut rates = Vec::new();
        for mode in MODES {
            let label = format!("{name}-{mode}");
            let rate = pipeline_in(dir, &label, size.pipeline_records, (mode, 4), |runtime| {
                let spec = GuestSpec {
                    processor: "pipeline".into(),
                    config: vec![("output".into(), output.into())],
                    ..GuestSpec::default()
                };
                Ok(Arc::new(runtime.load(wasm, Path::new(name), spec)?))
            })
            .await?;
            report.figure(format!("{name}_{mode}_rec_per_s"), rate);
            rates.push(rate);
        }
        report.line(format_args!(
            "{name:<15}  {:>13.0}  {:>13.0}  {:>13.0}  {:>9.2}",
            rates[0],
            rates[1],
            rates[2],
            rates[2] / rates[1]
        ))?;
    }

    let (put, get, none) = op_figures(dir)?;
    report.section(
        "state_ops",
        format_args!("state from a Rust guest (scripted), 10,000 keys of 100 bytes, ns/op"),
    )?;
    report.line(format_args!("put (batch overlay):        {put:>8.0}"))?;
    report.line(format_args!("get (committed, redb):      {get:>8.0}"))?;
    report.line(format_args!(
        "call touching no state:     {none:>8.0} ns per call"
    ))?;
    report.figure("put_ns", put);
    report.figure("get_ns", get);
    report.figure("no_state_call_ns", none);

    let keys = (size.pipeline_records * 2).min(1_000_000);
    let (fresh, crash, clean) = restore_figures(dir, keys)?;
    report.section(
        "state_restore",
        format_args!("state restore, {keys} keys of 100 bytes in units of 1,000"),
    )?;
    report.line(format_args!(
        "new owner (full replay):    {:>8.0} ms",
        ms(fresh)
    ))?;
    report.line(format_args!(
        "crash (checkpoint 10% back):{:>8.0} ms",
        ms(crash)
    ))?;
    report.line(format_args!(
        "clean restart (checkpoint): {:>8.1} ms",
        ms(clean)
    ))?;
    report.figure("keys", keys as f64);
    report.figure("full_replay_ms", ms(fresh));
    report.figure("crash_ms", ms(crash));
    report.figure("clean_restart_ms", ms(clean));
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// ns per state put and per committed get from the `scripted` guest, and the
/// time of a call that touches no state.
fn op_figures(dir: &Path) -> Result<(f64, f64, f64), DemoError> {
    const N: u64 = 10_000;
    let data = dir.join("state-ops");
    let log = Arc::new(Log::open(&data)?);
    let runtime = Runtime::new(&data, log.clone())?;
    let guest = runtime.load(
        crate::guests::SCRIPTED,
        Path::new("scripted"),
        GuestSpec::default(),
    )?;
    let store = Arc::new(StateStore::open(&data.join("state.redb")).map_err(state_error)?);
    let tp = TopicPartition::new("in", 0);
    let view = || -> Result<Arc<dyn StateView>, DemoError> {
        let view = PartitionView::new(store.clone(), tp.clone(), u64::MAX).map_err(state_error)?;
        Ok(Arc::new(view))
    };
    let one = |value: &str| Polled {
        records: vec![StoredRecord {
            offset: 0,
            timestamp: 0,
            key: None,
            value: value.as_bytes().to_vec().into(),
            headers: Vec::new(),
            nulls: Default::default(),
        }],
        ..synthetic_batch(1)
    };
    let time = |batch: &Polled, state: Arc<dyn StateView>| -> Result<(Duration, _), DemoError> {
        let started = Instant::now();
        let output = guest.handle(batch, state)?;
        Ok((started.elapsed(), output))
    };
    let (baseline, _) = time(&one("nothing"), Arc::new(NoState))?;
    let (put, output) = time(&one(&format!("state-put:{N}")), view()?)?;
    let unit = changelog::Unit {
        changes: output.state,
        emits: Vec::new(),
        marker: Marker::Commit {
            position: 1,
            dests: Vec::new(),
        },
        marker_offset: 0,
    };
    store.apply(&tp, &unit, 1).map_err(state_error)?;
    let (get, _) = time(&one(&format!("state-get:{N}")), view()?)?;
    let per = |d: Duration| (d.saturating_sub(baseline)).as_nanos() as f64 / N as f64;
    Ok((per(put), per(get), baseline.as_nanos() as f64))
}

fn state_error(e: StateError) -> DemoError {
    match e {
        StateError::Log(e) => DemoError::Log(e),
        other => DemoError::Log(crate::log::LogError::io(
            Path::new("state"),
            std::io::Error::other(crate::error::chain(&other)),
        )),
    }
}

/// Replays a changelog of `keys` keys into a store with no checkpoint, with
/// a checkpoint a tenth of the units back, and with an up-to-date one.
fn restore_figures(dir: &Path, keys: u64) -> Result<(Duration, Duration, Duration), DemoError> {
    const UNIT: u64 = 1_000;
    let data = dir.join("state-restore");
    let log = Arc::new(Log::open(&data)?);
    let changelog = "__state.bench.in";
    log.create_topic(changelog, TopicConfig::with_partitions(1))?;
    let value = vec![7u8; 100];
    let units = keys.div_ceil(UNIT);
    for u in 0..units {
        let mut records: Vec<Record> = (u * UNIT..((u + 1) * UNIT).min(keys))
            .map(|k| {
                changelog::change_record(&(format!("key-{k:08}").into_bytes(), Some(value.clone())))
            })
            .collect();
        records.push(changelog::marker_record(&Marker::Commit {
            position: u + 1,
            dests: Vec::new(),
        }));
        log.append(changelog, 0, &records)?;
    }
    let tp = TopicPartition::new("in", 0);
    let read = |from: u64| -> Result<Vec<StoredRecord>, StateError> {
        if from >= log.high_watermark(changelog, 0)? {
            return Ok(Vec::new());
        }
        Ok(log.read(changelog, 0, from, 10_000, 16 << 20)?)
    };
    let restore = |store: &StateStore| -> Result<Duration, DemoError> {
        let started = Instant::now();
        store.catch_up(&tp, changelog, read).map_err(state_error)?;
        Ok(started.elapsed())
    };

    let fresh_path = data.join("fresh.redb");
    let fresh = restore(&StateStore::open(&fresh_path).map_err(state_error)?)?;

    // A store whose last durable checkpoint is a tenth of the units back: the
    // first nine tenths replayed and persisted, then a reopen.
    let crash_path = data.join("crash.redb");
    {
        let store = StateStore::open(&crash_path).map_err(state_error)?;
        let cut = log.high_watermark(changelog, 0)? * 9 / 10;
        store
            .catch_up(&tp, changelog, |from| {
                let records = read(from)?;
                Ok(records.into_iter().filter(|r| r.offset < cut).collect())
            })
            .map_err(state_error)?;
        store.persist().map_err(state_error)?;
    }
    let crash = restore(&StateStore::open(&crash_path).map_err(state_error)?)?;

    {
        let store = StateStore::open(&fresh_path).map_err(state_error)?;
        store.persist().map_err(state_error)?;
    }
    let clean = restore(&StateStore::open(&fresh_path).map_err(state_error)?)?;
    Ok((fresh, crash, clean))
}
