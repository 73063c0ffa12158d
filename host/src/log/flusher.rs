//! The log's background thread: one per [`Log`](super::Log), started with its
//! first partition. It does two jobs:
//! - the fsync behind [`Durability::Interval`]: every partition holding
//!   unsynced data under that policy is fsynced about every `ms`
//!   milliseconds;
//! - maintenance, every [`LogOptions::maintenance`](super::LogOptions)
//!   interval when set: each partition rolls an active segment that is due
//!   (older than `segment_ms`, or holding only records past `retention_ms`),
//!   deletes the sealed segments past its retention and, under the `compact`
//!   cleanup policy, compacts its sealed segments ([`Partition::maintain`]).
//!
//! Invariants: the thread holds only weak references, so it never keeps a
//! partition alive; it stops and is joined when the log is dropped; a failed
//! fsync poisons the partition (through [`Partition::sync`]) and the flusher
//! stops trying it; a failed maintenance pass is logged and tried again at
//! the next interval. Settings are read from each partition at every tick, so
//! a topic whose settings change is followed without registering again.

use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Clock;
use super::config::Durability;
use super::partition::Partition;

#[derive(Debug, Default)]
struct State {
    stop: bool,
    partitions: Vec<Weak<Partition>>,
    /// How often maintenance runs; never when `None`.
    maintenance: Option<Duration>,
    last_maintenance: Option<Instant>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    clock: Clock,
}

/// Owns the background thread, once one has been needed.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").finish_non_exhaustive()
    }
}

impl Flusher {
    pub fn new(clock: Clock, maintenance: Option<Duration>) -> Flusher {
        Flusher {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    maintenance,
                    last_maintenance: Some(Instant::now()),
                    ..State::default()
                }),
                wake: Condvar::new(),
                clock,
            }),
            thread: Mutex::new(None),
        }
    }

    /// Changes how often maintenance runs (`None`: never).
    pub fn set_maintenance(&self, every: Option<Duration>) {
        self.shared.state.lock().expect("flusher lock").maintenance = every;
        self.shared.wake.notify_all();
    }

    /// Looks after `partition` from now on.
    pub fn register(&self, partition: &Arc<Partition>) {
        self.shared
            .state
            .lock()
            .expect("flusher lock")
            .partitions
            .push(Arc::downgrade(partition));
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
                // the next roll, and retention waits for an explicit call; say
                // so rather than fail the open.
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
        state.partitions.retain(|p| p.strong_count() > 0);
        let live: Vec<Arc<Partition>> = state.partitions.iter().filter_map(Weak::upgrade).collect();
        // Half the shortest interval, so no data waits much longer than `ms`.
        let flush_tick = live
            .iter()
            .filter_map(|p| match p.durability() {
                Durability::Interval { ms } => Some(Duration::from_millis((ms / 2).max(1))),
                _ => None,
            })
            .min()
            .unwrap_or(Duration::from_secs(1));
        drop(live);
        let tick = state.maintenance.map_or(flush_tick, |m| flush_tick.min(m));
        state = shared
            .wake
            .wait_timeout(state, tick)
            .expect("flusher lock")
            .0;
        if state.stop {
            return;
        }
        let due: Vec<Arc<Partition>> = state.partitions.iter().filter_map(Weak::upgrade).collect();
        let maintain = match (state.maintenance, state.last_maintenance) {
            (Some(every), Some(last)) => last.elapsed() >= every,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if maintain {
            state.last_maintenance = Some(Instant::now());
        }
        drop(state);
        for partition in &due {
            let interval = matches!(partition.durability(), Durability::Interval { .. });
            if interval && partition.is_dirty() && !partition.is_poisoned() {
                // A failure poisons the partition and is logged there.
                let _ = partition.sync();
            }
        }
        if maintain {
            let now = (shared.clock)();
            for partition in &due {
                if let Err(e) = partition.maintain(now) {
                    tracing::warn!(error = %crate::error::chain(&e), "log maintenance");
                }
            }
        }
        drop(due);
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
