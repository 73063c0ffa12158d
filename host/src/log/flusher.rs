//! The background flusher behind [`Durability::Interval`]: one thread per
//! [`Log`](super::Log), started with the first interval topic, that fsyncs every
//! registered partition holding unsynced data about every `ms` milliseconds.
//!
//! Invariants: the thread holds only weak references, so it never keeps a
//! partition alive; it stops and is joined when the log is dropped; a failed
//! fsync poisons the partition (through [`Partition::sync`]) and the flusher
//! stops trying it.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use super::config::Durability;
use super::partition::Partition;

#[derive(Debug, Default)]
struct State {
    stop: bool,
    /// Each partition with its interval in milliseconds.
    partitions: Vec<(Weak<Partition>, u64)>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Owns the flusher thread, if one has been needed.
#[derive(Debug, Default)]
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    /// Starts flushing `partition` if its policy is an interval.
    pub fn register(&self, partition: &Arc<Partition>) {
        let Durability::Interval { ms } = partition.durability() else {
            return;
        };
        self.shared
            .state
            .lock()
            .expect("flusher lock")
            .partitions
            .push((Arc::downgrade(partition), ms));
        self.shared.wake.notify_all();
        let mut thread = self.thread.lock().expect("flusher thread lock");
        if thread.is_none() {
            let shared = self.shared.clone();
            let spawned = std::thread::Builder::new()
                .name("weir-flusher".into())
                .spawn(move || run(&shared));
            match spawned {
                Ok(handle) => *thread = Some(handle),
                // Without a flusher, interval topics behave like `never` until
                // the next roll; say so rather than fail the open.
                Err(e) => tracing::error!(error = %e, "could not start the log flusher thread"),
            }
        }
    }
}

fn run(shared: &Shared) {
    let mut state = shared.state.lock().expect("flusher lock");
    loop {
        if state.stop {
            return;
        }
        state.partitions.retain(|(p, _)| p.strong_count() > 0);
        // Half the shortest interval, so no data waits much longer than `ms`.
        let tick = state
            .partitions
            .iter()
            .map(|(_, ms)| (ms / 2).max(1))
            .min()
            .unwrap_or(1000);
        state = shared
            .wake
            .wait_timeout(state, Duration::from_millis(tick))
            .expect("flusher lock")
            .0;
        if state.stop {
            return;
        }
        let due: Vec<Arc<Partition>> = state
            .partitions
            .iter()
            .filter_map(|(p, _)| p.upgrade())
            .collect();
        drop(state);
        for partition in due {
            if partition.is_dirty() && !partition.is_poisoned() {
                // A failure poisons the partition and is logged there.
                let _ = partition.sync();
            }
        }
        state = shared.state.lock().expect("flusher lock");
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.state.lock().expect("flusher lock").stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock().expect("flusher thread lock").take() {
            let _ = thread.join();
        }
    }
}
