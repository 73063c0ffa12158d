//! `passthrough`: the benchmark guest. With an `output` configuration key it
//! emits every record, unchanged, to that topic: one `emit` call per record,
//! or, with `emit = batch`, all of them in one `emit-batch` call. Without
//! `output` it only reads every key and value (so the boundary benchmark
//! measures the call, not the emits).

use std::sync::atomic::{AtomicBool, Ordering};

use weir_guest::{Batch, Config, Emits, Failure, FailureKind, Processor};

struct Passthrough;

/// Whether the emits go in one `emit-batch` call.
static BATCHED: AtomicBool = AtomicBool::new(false);

impl Processor for Passthrough {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "");
        match config.get("emit") {
            None | Some("each") => BATCHED.store(false, Ordering::Relaxed),
            Some("batch") => BATCHED.store(true, Ordering::Relaxed),
            Some(other) => return Err(format!("emit must be each or batch, not {other:?}")),
        }
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        let mut batched =
            (!topic.is_empty() && BATCHED.load(Ordering::Relaxed)).then(|| Emits::new(&topic));
        let mut bytes = 0usize;
        for record in batch.records() {
            bytes += record.key().map_or(0, <[u8]>::len) + record.value().len();
            if let Some(out) = &mut batched {
                out.push(record.key(), record.value(), &[]);
            } else if !topic.is_empty() {
                weir_guest::emit(&topic, record.key(), record.value(), &[])
                    .map_err(|e| record.fail(FailureKind::Fatal, e))?;
            }
        }
        if let Some(out) = batched {
            let first = batch
                .records()
                .next()
                .expect("the host never sends an empty batch");
            out.send().map_err(|e| first.fail(FailureKind::Fatal, e))?;
        }
        std::hint::black_box(bytes);
        Ok(())
    }
}

weir_guest::export_processor!(Passthrough);
