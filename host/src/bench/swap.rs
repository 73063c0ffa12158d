//! Hot-swap figures: replay throughput (deploy with a rewind to the earliest
//! offset) against the first pass over the same records, and the swap pause,
//! the time between the end of the old version's last batch and the start of
//! the new version's first, for plain swaps and for swaps with a rewind, next
//! to the ordinary gap between two batches of one version (poll and commit)
//! and to a control: the gaps that ticks of the swaps' clock land in, with
//! nothing swapped. Plain swaps are timed twice: with the pipeline running, and with another
//! thread keeping a core busy as well. Every phase starts from a rewind, so
//! the members always have a backlog to work through.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Report;
use crate::broker::{Broker, SeekTo};
use crate::consumer::{PollLimits, Polled};
use crate::demo::DemoError;
use crate::log::TopicConfig;
use crate::processor::{Instances, ProcessorConfig};
use crate::runtime::{Guest, GuestSpec, Handler, Output, Runtime, RuntimeError, StateView};

/// One handled batch: which version, when it started and ended.
type Span = (usize, Instant, Instant);

/// A guest that records when each of its batches ran.
struct Timed {
    guest: Guest,
    id: usize,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Handler for Timed {
    fn handle(&self, batch: &Polled, state: Arc<dyn StateView>) -> Result<Output, RuntimeError> {
        let started = Instant::now();
        let output = self.guest.handle(batch, state);
        let span = (self.id, started, Instant::now());
        self.spans.lock().expect("spans lock").push(span);
        output
    }

    fn version(&self) -> &str {
        self.guest.version()
    }
}

/// Prints the replay and swap-pause figures.
pub async fn figures(
    dir: &Path,
    records: u64,
    swaps: usize,
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    let io = |e: std::io::Error| DemoError::Log(crate::log::LogError::io(dir, e));
    let data = dir.join("swap");
    let broker = Broker::open(&data)?;
    let log = broker.log().clone();
    let runtime = Runtime::new(&data, log.clone())?;
    log.create_topic("in", TopicConfig::with_partitions(1))?;
    log.create_topic("out", TopicConfig::with_partitions(1))?;
    crate::demo::produce_orders(&log, "in", records)?;
    let spans = Arc::new(Mutex::new(Vec::new()));
    let version = |id: usize| -> Result<Arc<dyn Handler>, DemoError> {
        let spec = GuestSpec {
            processor: "swap".into(),
            label: Some(format!("v{id}")),
            config: vec![("output".into(), "out".into())],
            ..GuestSpec::default()
        };
        let guest = runtime.load(crate::guests::PASSTHROUGH, Path::new("passthrough"), spec)?;
        // A deploy probes the new version before it swaps (see
        // `Supervisor::load`), which also warms its instance image.
        guest.probe()?;
        Ok(Arc::new(Timed {
            guest,
            id,
            spans: spans.clone(),
        }))
    };
    let mut config = ProcessorConfig::new("swap", &["in"]);
    config.poll = PollLimits {
        max_records: 100,
        max_wait: Duration::from_millis(10),
        ..PollLimits::default()
    };
    let committed = || {
        broker
            .offsets()
            .get("swap", "in", 0)
            .map_or(0, |c| c.offset)
    };
    let caught_up = || async {
        while committed() < records {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };

    let started = Instant::now();
    let mut instances = Instances::start(config, broker.clone(), version(0)?, 1)?;
    caught_up().await;
    let first = records as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    instances
        .deploy(version(1)?, Some(SeekTo::Earliest))
        .await?;
    caught_up().await;
    let replay = records as f64 / started.elapsed().as_secs_f64();
    report.section(
        "replay",
        format_args!("replay (deploy with --rewind-to earliest), batch 100"),
    )?;
    report.line(format_args!("first pass:  {first:>12.0} rec/s"))?;
    report.line(format_args!("replay:      {replay:>12.0} rec/s"))?;
    report.line(format_args!("ratio:       {:>12.2}", replay / first))?;
    report.figure("first_rec_per_s", first);
    report.figure("replay_rec_per_s", replay);
    report.figure("ratio", replay / first);

    // The control: the same clock as the swaps below, with nothing swapped.
    // A gap that a swap lands in is chosen by the clock, not at random: a
    // long gap (a commit stalled behind the disk, say) is likelier to hold a
    // swap than a short one, so swaps are compared with the gaps that hold a
    // tick of the same clock, not with every gap.
    let steady = version(2)?;
    instances
        .deploy(steady.clone(), Some(SeekTo::Earliest))
        .await?;
    spans.lock().expect("spans lock").clear();
    let mut ticks = Vec::with_capacity(swaps);
    for _ in 0..swaps {
        ticks.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let control = tick_gaps(&spans.lock().expect("spans lock"), &ticks);
    // Plain swaps while the members work through a replayed backlog.
    instances.deploy(steady, Some(SeekTo::Earliest)).await?;
    spans.lock().expect("spans lock").clear();
    // Versions are loaded before the clock matters: loading is off the hot
    // path in a real deploy too (the API loads and probes before swapping).
    let plain_versions = [version(3)?, version(4)?];
    let rewind_versions = [version(5)?, version(6)?];
    for i in 0..swaps {
        instances
            .deploy(plain_versions[i % 2].clone(), None)
            .await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let plain = pauses(&spans.lock().expect("spans lock"));
    // The same swaps with a thread keeping one of the cores busy, over a
    // backlog replayed afresh.
    instances
        .deploy(plain_versions[1].clone(), Some(SeekTo::Earliest))
        .await?;
    spans.lock().expect("spans lock").clear();
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let load = std::thread::spawn({
        let busy = busy.clone();
        move || {
            let mut x = 0u64;
            while busy.load(std::sync::atomic::Ordering::Relaxed) {
                for i in 0..10_000u64 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
            }
        }
    });
    for i in 0..swaps {
        instances
            .deploy(plain_versions[i % 2].clone(), None)
            .await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = load.join();
    let loaded = pauses(&spans.lock().expect("spans lock"));
    // Swaps with a rewind: the members stop at a batch boundary and restart.
    let rewinds = (swaps / 5).max(5);
    spans.lock().expect("spans lock").clear();
    for i in 0..rewinds {
        instances
            .deploy(rewind_versions[i % 2].clone(), Some(SeekTo::Earliest))
            .await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rewound = pauses(&spans.lock().expect("spans lock"));
    instances.stop().await?;
    std::fs::remove_dir_all(&data).map_err(io)?;

    report.section(
        "swap",
        format_args!("swap pause: end of the old version's last batch to the new one's first"),
    )?;
    report.line(format_args!(
        "{:>12}  {:>6}  {:>10}  {:>10}",
        "swap", "count", "p50 us", "p99 us"
    ))?;
    let rows = [
        ("no swap", "none", plain.1),
        ("control", "control", control),
        ("plain", "plain", plain.0),
        ("plain, load", "loaded", loaded.0),
        ("with rewind", "rewind", rewound.0),
    ];
    for (what, key, gaps) in rows {
        let (p50, p99) = (percentile(&gaps, 0.50), percentile(&gaps, 0.99));
        report.line(format_args!(
            "{what:>12}  {:>6}  {p50:>10.0}  {p99:>10.0}",
            gaps.len()
        ))?;
        report.figure(format!("{key}_p50_us"), p50);
        report.figure(format!("{key}_p99_us"), p99);
    }
    Ok(())
}

/// The gaps, in microseconds, between consecutive batches: at every change of
/// version, and (the baseline) between batches of the same version.
fn pauses(spans: &[Span]) -> (Vec<f64>, Vec<f64>) {
    (gaps(spans, true), gaps(spans, false))
}

fn gaps(spans: &[Span], at_change: bool) -> Vec<f64> {
    let mut spans = spans.to_vec();
    spans.sort_by_key(|s| s.1);
    let mut gaps: Vec<f64> = spans
        .windows(2)
        .filter(|w| (w[0].0 != w[1].0) == at_change)
        .map(|w| w[1].1.saturating_duration_since(w[0].2).as_secs_f64() * 1e6)
        .collect();
    gaps.sort_by(f64::total_cmp);
    gaps
}

/// The control's gaps, in microseconds: for each tick, the gap before the
/// first batch that started after it (where a swap at that instant would have
/// shown).
fn tick_gaps(spans: &[Span], ticks: &[Instant]) -> Vec<f64> {
    let mut spans = spans.to_vec();
    spans.sort_by_key(|s| s.1);
    let mut after: Vec<usize> = ticks
        .iter()
        .filter_map(|tick| spans.iter().position(|s| s.1 > *tick))
        .filter(|next| *next > 0)
        .collect();
    after.dedup();
    let mut gaps: Vec<f64> = after
        .into_iter()
        .map(|next| {
            let gap = spans[next].1.saturating_duration_since(spans[next - 1].2);
            gap.as_secs_f64() * 1e6
        })
        .collect();
    gaps.sort_by(f64::total_cmp);
    gaps
}

/// The `q` quantile of sorted values (0 when there are none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_are_measured_only_where_the_version_changes() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let spans = vec![
            (1, at(10), at(12)),
            (0, at(0), at(2)),
            (0, at(3), at(5)),
            (1, at(6), at(9)),
        ];
        assert_eq!(pauses(&spans), (vec![1000.0], vec![1000.0, 1000.0]));
        // Two ticks during the batch at 3..5 count the gap before the batch
        // at 6 once; a tick after the last batch counts none.
        let ticks = [at(4), at(4) + Duration::from_micros(100), at(13)];
        assert_eq!(tick_gaps(&spans, &ticks), vec![1000.0]);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
