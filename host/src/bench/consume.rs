//! Consume and commit: the end-to-end rate of the passthrough guest with no
//! emits over one partition in batches of 500 (poll, instantiate, process,
//! commit), beside a native handler that does the same in the same run.

use std::path::Path;
use std::sync::Arc;

use super::Report;
use crate::consumer::{CommitMode, Polled};
use crate::demo::DemoError;
use crate::runtime::{Handler, Output, Runtime, RuntimeError, StateView};

/// Records per second through a processor over one partition of `records`
/// orders, at-least-once, in the default batches of 500.
async fn rate(
    dir: &Path,
    label: &str,
    records: u64,
    handler: impl FnOnce(&Runtime) -> Result<Arc<dyn Handler>, RuntimeError>,
) -> Result<f64, DemoError> {
    super::pipeline_in(dir, label, records, (CommitMode::AtLeastOnce, 1), handler).await
}

/// Prints the consume section for `records` generated orders.
pub(super) async fn figures(
    dir: &Path,
    records: u64,
    report: &mut Report<'_>,
) -> Result<(), DemoError> {
    let wasm = rate(dir, "consume-wasm", records, |runtime| {
        super::passthrough(runtime, "consume", &[])
    })
    .await?;
    let native = rate(dir, "consume-native", records, |_| {
        Ok(Arc::new(NativeReader))
    })
    .await?;
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
