//! `passthrough`: the benchmark guest. With an `output` configuration key it
//! emits every record, unchanged, to that topic; without one it only reads every
//! key and value (so the boundary benchmark measures the call, not the emits).

use weir_guest::{Batch, Config, Failure, FailureKind, Processor};

struct Passthrough;

impl Processor for Passthrough {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "");
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let topic = orders::output_topic();
        let mut bytes = 0usize;
        for record in batch.records() {
            bytes += record.key().map_or(0, <[u8]>::len) + record.value().len();
            if !topic.is_empty() {
                weir_guest::emit(&topic, record.key(), record.value(), &[])
                    .map_err(|e| record.fail(FailureKind::Fatal, e))?;
            }
        }
        std::hint::black_box(bytes);
        Ok(())
    }
}

weir_guest::export_processor!(Passthrough);
