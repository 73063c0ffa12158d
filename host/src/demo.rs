//! `weir demo`: the whole data path on an embedded log. It produces generated
//! orders to `orders` (3 partitions) and runs two independent groups over them,
//! `analytics` (the `order-totals` guest) and `fraud` (the `fraud-filter` guest),
//! until both have caught up, then reports what each processed and emitted and
//! where each stands on every partition (as text, or under `--json` the
//! report serialized).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::broker::{Broker, BrokerError};
use crate::log::{Log, LogError, TopicConfig};
use crate::processor::{Processor, ProcessorConfig, ProcessorError};
use crate::runtime::{GuestSpec, Runtime, RuntimeError};
use crate::workload::Orders;

/// Everything that can stop the demo.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Processor(#[from] ProcessorError),
    #[error("writing the benchmark report")]
    Output(#[source] std::io::Error),
}

/// One partition as a group sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartitionReport {
    pub partition: u32,
    pub committed: u64,
    pub high_watermark: u64,
    pub lag: u64,
}

/// What one processor did in this run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessorReport {
    pub name: String,
    pub guest: String,
    pub version: String,
    pub records: u64,
    pub emitted: u64,
    pub output: String,
    pub partitions: Vec<PartitionReport>,
}

/// The demo's results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    pub data_dir: PathBuf,
    pub produced: u64,
    pub processors: Vec<ProcessorReport>,
}

const INPUT: &str = "orders";

/// Runs the demo in `data_dir`, producing `orders` new orders.
pub async fn run(data_dir: &Path, orders: u64) -> Result<DemoReport, DemoError> {
    let broker = Broker::open(data_dir)?;
    let log = broker.log().clone();
    let runtime = Runtime::new(data_dir, log.clone())?;
    log.ensure_topic(INPUT, TopicConfig::with_partitions(3))?;
    log.ensure_topic("alerts", TopicConfig::with_partitions(1))?;
    log.ensure_topic("customer-totals", TopicConfig::with_partitions(3))?;
    let produced = produce_orders(&log, INPUT, orders)?;

    let plan = [
        (
            "analytics",
            "order-totals",
            crate::guests::ORDER_TOTALS,
            "customer-totals",
        ),
        (
            "fraud",
            "fraud-filter",
            crate::guests::FRAUD_FILTER,
            "alerts",
        ),
    ];
    let mut runs = Vec::new();
    for (name, guest_name, wasm, output) in plan {
        let spec = GuestSpec {
            processor: name.to_string(),
            config: vec![("output".to_string(), output.to_string())],
            ..GuestSpec::default()
        };
        let guest = runtime.load(wasm, Path::new(guest_name), spec)?;
        let version = crate::runtime::Handler::version(&guest).to_string();
        let processor = Processor::new(
            ProcessorConfig::new(name, &[INPUT]),
            broker.as_ref(),
            Arc::new(guest),
        )?;
        let task = tokio::spawn(processor.run_until_caught_up());
        runs.push((name, guest_name, version, output, task));
    }

    let mut processors = Vec::new();
    for (name, guest, version, output, task) in runs {
        let processor = task.await.map_err(ProcessorError::Task)??;
        let stats = processor.stats();
        let mut partitions = Vec::new();
        for partition in 0..log.partition_count(INPUT)? {
            let committed = broker
                .offsets()
                .get(name, INPUT, partition)
                .map_or(0, |c| c.offset);
            let high_watermark = log.high_watermark(INPUT, partition)?;
            partitions.push(PartitionReport {
                partition,
                committed,
                high_watermark,
                lag: high_watermark - committed,
            });
        }
        processors.push(ProcessorReport {
            name: name.to_string(),
            guest: guest.to_string(),
            version,
            records: stats.records(),
            emitted: stats.emitted(),
            output: output.to_string(),
            partitions,
        });
    }
    log.sync_all()?;
    Ok(DemoReport {
        data_dir: data_dir.to_path_buf(),
        produced,
        processors,
    })
}

/// Appends `count` generated orders to `topic`, keyed by customer, in batches of
/// up to 500 per partition. Order ids continue after the records already there.
pub fn produce_orders(log: &Log, topic: &str, count: u64) -> Result<u64, LogError> {
    let partitions = log.partition_count(topic)?;
    let mut placement = log.placement(topic)?;
    let first_id = placement.next();
    let mut pending: Vec<Vec<crate::log::Record>> = vec![Vec::new(); partitions as usize];
    for record in Orders::new(0x5EED ^ first_id, first_id).take(count as usize) {
        let p = placement.place(None, record.key.as_deref())?;
        let batch = &mut pending[p as usize];
        batch.push(record);
        if batch.len() == 500 {
            log.append(topic, p, batch)?;
            batch.clear();
        }
    }
    for (p, batch) in pending.iter().enumerate() {
        log.append(topic, p as u32, batch)?;
    }
    Ok(count)
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data directory: {}", self.data_dir.display())?;
        writeln!(f, "produced {} orders to topic {INPUT}", self.produced)?;
        for p in &self.processors {
            writeln!(f)?;
            writeln!(
                f,
                "processor {} (group {}, guest {} {})",
                p.name, p.name, p.guest, p.version
            )?;
            writeln!(f, "  records processed: {}", p.records)?;
            writeln!(f, "  records emitted:   {} (to {})", p.emitted, p.output)?;
            writeln!(f, "  partition  committed  high-watermark  lag")?;
            for part in &p.partitions {
                writeln!(
                    f,
                    "  {:>9}  {:>9}  {:>14}  {:>3}",
                    part.partition, part.committed, part.high_watermark, part.lag
                )?;
            }
        }
        Ok(())
    }
}
