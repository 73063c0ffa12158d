//! `hostile-oom`: a guest that grows its linear memory forever, a mebibyte at a
//! time and touching every page, until the host's memory limit stops it.

use weir_guest::{Batch, Failure, Processor};

struct Oom;

impl Processor for Oom {
    fn process(_batch: &Batch) -> Result<(), Failure> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![0xAB; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
}

weir_guest::export_processor!(Oom);
