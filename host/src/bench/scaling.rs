//! Scaling: the pipeline with 1, 2, 4 and 8 partitions and as many members,
//! and the resident memory the processor adds, in total and per member.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Report;
use crate::broker::Broker;
use crate::demo::DemoError;
use crate::log::TopicConfig;
use crate::processor::{Instances, ProcessorConfig};
use crate::runtime::Runtime;

/// Records per width at the least, so that every member has batches to run
/// after the group settles.
const MIN_RECORDS: u64 = 200_000;

/// Prints the scaling section: `records` through the passthrough guest
/// (emitting every record) for each width.
pub(super) async fn figures(
    dir: &Path,
    records: u64,
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    report.section(
        "scaling",
        format_args!("scaling: pipeline with N partitions and N members (passthrough, batch 500)"),
    )?;
    report.line(format_args!(
        "{:>7}  {:>12}  {:>14}  {:>15}",
        "members", "rec/s", "RSS added MB", "MB per member"
    ))?;
    for members in [1usize, 2, 4, 8] {
        let (rate, added) = width(dir, records.max(MIN_RECORDS), members).await?;
        let mb = added as f64 / 1e6;
        report.line(format_args!(
            "{members:>7}  {rate:>12.0}  {mb:>14.1}  {:>15.1}",
            mb / members as f64
        ))?;
        report.figure(format!("rec_per_s_{members}"), rate);
        report.figure(format!("rss_added_mb_{members}"), mb);
    }
    Ok(())
}

/// Records per second with `members` members over as many partitions, and the
/// resident bytes the running processor added.
async fn width(dir: &Path, records: u64, members: usize) -> Result<(f64, u64), DemoError> {
    let data = dir.join(format!("scaling-{members}"));
    let broker = Broker::open(&data)?;
    let log = broker.log().clone();
    let partitions = TopicConfig::with_partitions(members as u32);
    log.create_topic("in", partitions)?;
    log.create_topic("out", partitions)?;
    crate::demo::produce_orders(&log, "in", records)?;
    let runtime = Runtime::new(&data, log.clone())?;
    let guest = super::passthrough(&runtime, "scaling", &[("output", "out")])?;
    let before = resident_bytes();
    let config = ProcessorConfig::new("scaling", &["in"]);
    let instances = Instances::start(config, broker.clone(), guest, members)?;
    let committed = || {
        (0..members as u32)
            .filter_map(|p| broker.offsets().get("scaling", "in", p))
            .map(|c| c.offset)
            .sum::<u64>()
    };
    // The clock starts once every member has a partition and has processed a
    // batch, so the figure is the steady rate, not the joins and rebalances.
    let stats = instances.stats();
    while stats.iter().any(|s| s.records() == 0) && committed() < records {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (started, from) = (Instant::now(), committed());
    let mut peak = before;
    while committed() < records {
        peak = peak.max(resident_bytes());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = (records - from) as f64 / started.elapsed().as_secs_f64();
    peak = peak.max(resident_bytes());
    instances.stop().await?;
    drop(runtime);
    std::fs::remove_dir_all(&data).map_err(|e| crate::log::LogError::io(&data, e))?;
    Ok((rate, peak.saturating_sub(before)))
}

/// This process's resident set, from `/proc/self/statm` (0 where there is
/// none).
fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
