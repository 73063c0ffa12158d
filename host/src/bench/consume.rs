//! Consume and commit: the end-to-end rate of the passthrough guest with no
//! emits over one partition in batches of 500 (poll, instantiate, process,
//! commit), beside a native handler that does the same in the same run.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::Report;
use crate::broker::Broker;
use crate::consumer::Polled;
use crate::demo::DemoError;
use crate::log::TopicConfig;
use crate::processor::{Processor, ProcessorConfig};
use crate::runtime::{GuestSpec, Handler, Output, Runtime, RuntimeError, StateView};

/// Prints the consume section for `records` generated orders.
pub(super) async fn figures(
    dir: &Path,
    records: u64,
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    let wasm = rate(dir, "wasm", records, |runtime| {
        let spec = GuestSpec {
            processor: "consume".into(),
            ..GuestSpec::default()
        };
        Ok(Arc::new(runtime.load(
            crate::guests::PASSTHROUGH,
            Path::new("passthrough"),
            spec,
        )?))
    })
    .await?;
    let native = rate(dir, "native", records, |_| Ok(Arc::new(NativeReader))).await?;
    report.section(
        "consume",
        format_args!(
            "consume + commit: passthrough without emits, 1 partition, batch 500, {records} records"
        ),
    )?;
    report.line(format_args!("wasm passthrough:   {wasm:>12.0} rec/s"))?;
    report.line(format_args!("native reader:      {native:>12.0} rec/s"))?;
    report.line(format_args!("ratio wasm/native:  {:>12.2}", wasm / native))?;
    report.figure("wasm_rec_per_s", wasm);
    report.figure("native_rec_per_s", native);
    report.figure("ratio", wasm / native);
    Ok(())
}

/// Records per second through a processor over one partition of `records`
/// orders, at-least-once, batches of 500.
async fn rate(
    dir: &Path,
    label: &str,
    records: u64,
    handler: impl FnOnce(&Runtime) -> Result<Arc<dyn Handler>, RuntimeError>,
) -> Result<f64, DemoError> {
    let data = dir.join(format!("consume-{label}"));
    let broker = Broker::open(&data)?;
    let log = broker.log();
    let runtime = Runtime::new(&data, log.clone())?;
    log.create_topic("in", TopicConfig::with_partitions(1))?;
    crate::demo::produce_orders(log, "in", records)?;
    // The default poll: batches of up to 500 records.
    let config = ProcessorConfig::new("consume", &["in"]);
    let processor = Processor::new(config, broker.as_ref(), handler(&runtime)?)?;
    let started = Instant::now();
    let processor = processor.run_until_caught_up().await?;
    let elapsed = started.elapsed().as_secs_f64();
    let done = processor.stats().records() as f64;
    drop(processor);
    drop(runtime);
    std::fs::remove_dir_all(&data).map_err(|e| crate::log::LogError::io(&data, e))?;
    Ok(done / elapsed)
}

/// The native baseline: reads every key and value, as `passthrough` does
/// without an output.
struct NativeReader;

impl Handler for NativeReader {
    fn handle(&self, batch: &Polled, _: Arc<dyn StateView>) -> Result<Output, RuntimeError> {
        let bytes: usize = batch
            .records
            .iter()
            .map(|r| r.key.as_ref().map_or(0, |k| k.len()) + r.value.len())
            .sum();
        std::hint::black_box(bytes);
        Ok(Output {
            outcome: Ok(()),
            emits: Vec::new(),
            state: Vec::new(),
        })
    }

    fn version(&self) -> &str {
        "native"
    }
}
