//! `hostile-trap`: a guest that executes `unreachable` on its first record (a
//! guest bug the host must survive without committing).

use weir_guest::{Batch, Failure, Processor};

struct Trap;

impl Processor for Trap {
    fn process(batch: &Batch) -> Result<(), Failure> {
        if !batch.is_empty() {
            core::arch::wasm32::unreachable();
        }
        Ok(())
    }
}

weir_guest::export_processor!(Trap);
