//! [`Guest`]: a loaded, validated component that runs each batch in a fresh
//! `Store` under its processor's limits (memory, deadline, stack, fuel), so a
//! guest can neither keep state between batches nor hurt the next one after a
//! trap. A trap is translated into the limit it hit, when it hit one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Engine, Store};

use super::bindings::{Processor, ProcessorPre};
use super::host::HostState;
use super::limits::Limiter;
use super::{
    EmitTopics, Handler, Limits, Logbook, NoState, Output, RuntimeError, Source, StateView, batch,
};
use crate::consumer::Polled;

use super::engine::{EPOCH_TICK, Ticker};

/// A validated component, ready to run batches. Cheap to share.
pub struct Guest {
    pub(super) pre: ProcessorPre<HostState>,
    pub(super) engine: Engine,
    /// Whether the engine checks epochs (only the benchmark's baseline doesn't).
    pub(super) epochs: bool,
    /// Keeps the epoch ticker alive while this guest may run, and says when
    /// the host interrupted every guest (shutdown).
    pub(super) ticker: Arc<Ticker>,
    /// Where emits may go: checked at each emit.
    pub(super) topics: Arc<dyn EmitTopics>,
    pub(super) processor: Arc<str>,
    /// `label@hash` or `sha256:hash`: names the code that processed a record.
    pub(super) version: Arc<str>,
    pub(super) config: Vec<(String, String)>,
    pub(super) limits: Limits,
    /// The host directory preopened as `/scratch`, if any.
    pub(super) scratch: Option<PathBuf>,
    /// Keeps the guest's log lines and stdio for `weir logs`, if set.
    pub(super) logbook: Option<Arc<Logbook>>,
    pub(super) source: Source,
    pub(super) load_time: Duration,
}

impl Guest {
    /// Whether loading compiled the component or found it in the cache.
    pub fn source(&self) -> Source {
        self.source
    }

    /// How long loading took.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// This guest with its emits checked against `topics` (a Kafka
    /// cluster's) instead of the runtime's log.
    pub fn emitting_to(mut self, topics: Arc<dyn EmitTopics>) -> Guest {
        self.topics = topics;
        self
    }

    /// The limits each batch runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A fresh store with this guest's limits, deadline and fuel set, for a
    /// batch of input `partition` (none: a probe or a benchmark).
    fn store(
        &self,
        state: Arc<dyn StateView>,
        partition: Option<u32>,
    ) -> Result<Store<HostState>, RuntimeError> {
        let state = HostState::new(
            self.topics.clone(),
            self.processor.clone(),
            self.version.clone(),
            Limiter::new(self.limits.memory_bytes),
            self.scratch.as_deref(),
            state,
        )
        .map(|s| s.with_logbook(self.logbook.clone(), partition))
        .map_err(|e| RuntimeError::Scratch {
            path: self.scratch.clone().unwrap_or_default(),
            source: e.into_boxed_dyn_error(),
        })?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        self.arm(&mut store)?;
        Ok(store)
    }

    /// Sets the per-batch budgets: the epoch deadline and the fuel.
    fn arm(&self, store: &mut Store<HostState>) -> Result<(), RuntimeError> {
        if self.epochs {
            let ticks = self.deadline_ticks();
            self.ticker.armed(ticks);
            store.set_epoch_deadline(ticks);
        }
        if let Some(fuel) = self.limits.fuel {
            store
                .set_fuel(fuel)
                .map_err(|e| RuntimeError::Engine(e.into_boxed_dyn_error()))?;
        }
        Ok(())
    }

    /// Creates a fresh instance and runs `init` on it, returning the store and
    /// instance for one batch.
    fn instantiate(
        &self,
        state: Arc<dyn StateView>,
        partition: Option<u32>,
    ) -> Result<(Store<HostState>, Processor), RuntimeError> {
        let mut store = self.store(state, partition)?;
        let instance = match self.pre.instantiate(&mut store) {
            Ok(instance) => instance,
            Err(e) => return Err(self.fault(e, &store)),
        };
        match instance.call_init(&mut store, &self.config) {
            Ok(Ok(())) => Ok((store, instance)),
            Ok(Err(message)) => {
                store.data().forward_stdio();
                Err(RuntimeError::Init(message))
            }
            Err(e) => Err(self.fault(e, &store)),
        }
    }

    /// Names the limit a trap hit, or keeps the trap (with the guest's stderr,
    /// where a panic message lands) when it hit none.
    fn fault(&self, e: wasmtime::Error, store: &Store<HostState>) -> RuntimeError {
        let state = store.data();
        state.forward_stdio();
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) if self.ticker.interrupted() => {
                RuntimeError::Interrupted
            }
            Some(wasmtime::Trap::Interrupt) => RuntimeError::Deadline(self.limits.deadline),
            Some(wasmtime::Trap::OutOfFuel) => {
                RuntimeError::OutOfFuel(self.limits.fuel.unwrap_or_default())
            }
            Some(wasmtime::Trap::StackOverflow) => {
                RuntimeError::StackOverflow(self.limits.max_stack_bytes)
            }
            _ => match state.limiter.refused {
                Some(requested) => RuntimeError::Memory {
                    requested,
                    limit: self.limits.memory_bytes,
                },
                None => RuntimeError::Trap {
                    stderr: state.stderr_tail(),
                    source: e.into_boxed_dyn_error(),
                },
            },
        }
    }

    /// Times `calls` `process` calls on one instance (building the columnar
    /// batch each time, as a real call does, and dropping the emits after
    /// each), leaving out instantiation: the guest-boundary and CPU-bound
    /// benchmarks.
    pub fn time_process_calls(
        &self,
        polled: &Polled,
        calls: u32,
    ) -> Result<Duration, RuntimeError> {
        let (mut store, instance) = self.instantiate(Arc::new(NoState), None)?;
        let started = Instant::now();
        for _ in 0..calls {
            self.arm(&mut store)?;
            let batch = batch::columnar(polled);
            let result = instance.call_process(&mut store, &batch);
            store.data_mut().clear_emits();
            match result {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => return Err(RuntimeError::Failed(failure.message)),
                Err(e) => return Err(self.fault(e, &store)),
            }
        }
        Ok(started.elapsed())
    }

    fn deadline_ticks(&self) -> u64 {
        self.limits
            .deadline
            .as_millis()
            .div_ceil(EPOCH_TICK.as_millis())
            .max(1) as u64
    }

    /// Instantiates and initializes the guest once, without processing: the
    /// check a deploy runs before taking a new version into service.
    pub fn probe(&self) -> Result<(), RuntimeError> {
        self.instantiate(Arc::new(NoState), None).map(|_| ())
    }
}

impl Handler for Guest {
    fn handle(&self, polled: &Polled, state: Arc<dyn StateView>) -> Result<Output, RuntimeError> {
        if self.ticker.interrupted() {
            return Err(RuntimeError::Interrupted);
        }
        let (mut store, instance) = self
            .instantiate(state, Some(polled.partition))
            .map_err(RuntimeError::started)?;
        let batch = batch::columnar(polled);
        let outcome = match instance.call_process(&mut store, &batch) {
            Ok(outcome) => outcome,
            Err(e) => return Err(self.fault(e, &store)),
        };
        store.data().forward_stdio();
        let data = store.data_mut();
        Ok(Output {
            outcome,
            emits: std::mem::take(&mut data.emits),
            state: data.state.take(),
        })
    }

    fn version(&self) -> &str {
        &self.version
    }
}
