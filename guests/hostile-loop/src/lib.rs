//! `hostile-loop`: a guest that never returns. Every batch spins in a loop that
//! only the host's deadline (or its fuel) can stop.

use weir_guest::{Batch, Failure, Processor};

struct Loop;

impl Processor for Loop {
    fn process(batch: &Batch) -> Result<(), Failure> {
        let mut n = batch.len() as u64;
        loop {
            n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

weir_guest::export_processor!(Loop);
