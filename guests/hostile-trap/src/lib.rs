//! `hostile-trap`: a guest that executes `unreachable` on its first record (a
//! guest bug the host must survive without committing).

use weir_guest::{Batch, Failure, Processor};

struct Trap;

impl Processor for Trap {
    fn process(batch: &Batch) -> Result<(), Failure> {
        if !batch.is_empty() {
            #[cfg(target_arch = "wasm32")]
            core::arch::wasm32::unreachable();
            // Natively (the workspace's unit-test build) a panic stands in.
            #[cfg(not(target_arch = "wasm32"))]
            unreachable!("hostile-trap");
        }
        Ok(())
    }
}

weir_guest::export_processor!(Trap);
