//! A watch on group `copy`'s committed offsets while a test runs: sampled
//! by a client of its own, failing if one ever goes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::PARTITIONS;

/// Samples the group's committed offsets until stopped, and fails if one
/// ever goes back.
pub(super) struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Watcher {
    pub(super) fn start(bootstrap: u16) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let tansu = TansuRef(bootstrap);
            let mut last = vec![-1i64; PARTITIONS as usize];
            let mut samples = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Some(now) = tansu.committed() {
                    for (p, (&was, &is)) in last.iter().zip(&now).enumerate() {
                        assert!(
                            is >= was,
                            "partition {p}'s committed offset went back: {was} -> {is}"
                        );
                    }
                    last = now;
                    samples += 1;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            samples
        });
        Watcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling; returns how many samples were taken.
    pub(super) fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("running");
        thread.join().expect("committed offsets never went back")
    }
}

/// The committed offsets of group `copy` on `in`, read by a client of its own
/// (a frozen broker makes a read fail: that sample is skipped).
struct TansuRef(u16);

impl TansuRef {
    fn committed(&self) -> Option<Vec<i64>> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{}", self.0))
            .set("group.id", "copy")
            .create()
            .ok()?;
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition("in", p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(2))
            .ok()?;
        Some(
            committed
                .elements()
                .iter()
                .map(|e| match e.offset() {
                    rdkafka::Offset::Offset(o) => o,
                    _ => -1,
                })
                .collect(),
        )
    }
}
