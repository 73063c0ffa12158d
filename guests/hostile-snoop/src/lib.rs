//! `hostile-snoop`: a guest that looks for what an earlier instance left in its
//! memory. Each batch it emits (to the `output` topic) the bytes it finds in a
//! static buffer, then writes a secret there. If the host ever reused an
//! instance's memory for the next batch, the second batch would emit the secret
//! instead of zeros.

use weir_guest::{Batch, Config, Failure, FailureKind, Processor};

/// The secret written after each look.
pub const SECRET: &[u8; 32] = b"weir-snoop-secret-0123456789abcd";

static mut BUFFER: [u8; 32] = [0; 32];

struct Snoop;

impl Processor for Snoop {
    fn init(config: &Config) -> Result<(), String> {
        orders::configure_output(config, "");
        Ok(())
    }

    fn process(batch: &Batch) -> Result<(), Failure> {
        let Some(first) = batch.records().next() else {
            return Ok(());
        };
        // SAFETY: the guest is single-threaded and nothing else holds the
        // buffer; volatile accesses keep the read and the write from being
        // optimized away.
        let found = unsafe { std::ptr::read_volatile(&raw const BUFFER) };
        unsafe { std::ptr::write_volatile(&raw mut BUFFER, *SECRET) };
        weir_guest::emit(&orders::output_topic(), None, &found, &[])
            .map_err(|e| first.fail(FailureKind::Fatal, e))
    }
}

weir_guest::export_processor!(Snoop);
