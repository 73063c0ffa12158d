//! `hostile-stack`: a guest that recurses without end until the host's wasm
//! stack limit stops it.
//!
//! The recursive call goes through a function pointer read with a volatile load,
//! so the optimizer can neither inline it nor turn it into a loop, and the call
//! is not in tail position. No local has its address taken, so every frame lives
//! on the wasm stack the host bounds, not on the guest's own shadow stack.

use weir_guest::{Batch, Failure, Processor};

static DESCEND: fn(u64) -> u64 = descend;

fn descend(depth: u64) -> u64 {
    // SAFETY: reading a plain `fn` static.
    let next = unsafe { std::ptr::read_volatile(&raw const DESCEND) };
    next(depth + 1).wrapping_mul(31).wrapping_add(depth)
}

struct Stack;

impl Processor for Stack {
    fn process(batch: &Batch) -> Result<(), Failure> {
        let total = descend(batch.len() as u64);
        weir_guest::log(weir_guest::Level::Info, &format!("bottom reached: {total}"));
        Ok(())
    }
}

weir_guest::export_processor!(Stack);
