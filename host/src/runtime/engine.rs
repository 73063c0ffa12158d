//! The wasmtime engines a runtime runs guests on, one per distinct engine-level
//! setting, and the one epoch ticker thread that drives all their deadlines.
//!
//! A wasm stack size and fuel metering are `Config` settings, so processors with
//! different stack limits, or with and without fuel, need different engines.
//! Each is built on first use and kept with its linker (WASI plus the weir host
//! imports). Fuel metering is compiled into the code, so only processors that
//! ask for fuel pay for it. Compiled artifacts stay compatible across engines
//! that differ only in their stack size; the compiled cache keys on wasmtime's
//! compatibility hash, which tells fuel and epoch code apart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::Processor;
use super::host::HostState;
use super::{Limits, RuntimeError};

/// The epoch ticker's period: deadlines are enforced to within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// The largest wasm stack a processor may ask for. Guest code runs on the host
/// thread's native stack (2 MiB for tokio's blocking threads), which must also
/// hold the host functions the guest calls.
pub const MAX_STACK_CEILING: usize = 1 << 20;
/// The smallest wasm stack a processor may ask for.
pub const MAX_STACK_FLOOR: usize = 16 << 10;

/// What makes two engines differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct EngineKey {
    max_stack_bytes: usize,
    fuel: bool,
}

/// An engine and the linker built for it.
pub(super) struct Prepared {
    pub(super) engine: Engine,
    pub(super) linker: Linker<HostState>,
}

/// The engines of one runtime, built lazily.
pub(super) struct Engines {
    /// Whether guests are compiled with epoch checks (always, except for the
    /// benchmark's baseline).
    epochs: bool,
    /// Whether instances come from the pooling allocator (always, except for
    /// the benchmark's baseline).
    pooling: bool,
    built: Mutex<HashMap<EngineKey, Arc<Prepared>>>,
    /// The engines the ticker advances.
    ticking: Arc<Mutex<Vec<Engine>>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Engines {
    /// No engine yet; with `epochs`, a ticker thread that advances every engine
    /// built later; with `pooling`, engines allocate instances from a pool.
    pub(super) fn new(epochs: bool, pooling: bool) -> Result<Engines, RuntimeError> {
        let ticking: Arc<Mutex<Vec<Engine>>> = Arc::default();
        let ticker_stop = Arc::new(AtomicBool::new(false));
        if epochs {
            let (engines, stop) = (ticking.clone(), ticker_stop.clone());
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        for engine in engines.lock().expect("ticker lock").iter() {
                            engine.increment_epoch();
                        }
                    }
                })
                .map_err(|e| RuntimeError::Engine(Box::new(e)))?;
        }
        Ok(Engines {
            epochs,
            pooling,
            built: Mutex::default(),
            ticking,
            ticker_stop,
        })
    }

    /// Whether deadlines are enforced.
    pub(super) fn epochs(&self) -> bool {
        self.epochs
    }

    /// The engine for `limits`, built on first use.
    pub(super) fn get(&self, limits: &Limits) -> Result<Arc<Prepared>, RuntimeError> {
        if !(MAX_STACK_FLOOR..=MAX_STACK_CEILING).contains(&limits.max_stack_bytes) {
            return Err(RuntimeError::Limits(format!(
                "max_stack_bytes is {}, but must be between {MAX_STACK_FLOOR} and {MAX_STACK_CEILING}",
                limits.max_stack_bytes
            )));
        }
        let key = EngineKey {
            max_stack_bytes: limits.max_stack_bytes,
            fuel: limits.fuel.is_some(),
        };
        let mut built = self.built.lock().expect("engines lock");
        if let Some(prepared) = built.get(&key) {
            return Ok(prepared.clone());
        }
        let prepared = Arc::new(self.build(key)?);
        if self.epochs {
            let mut ticking = self.ticking.lock().expect("ticker lock");
            ticking.push(prepared.engine.clone());
        }
        built.insert(key, prepared.clone());
        Ok(prepared)
    }

    fn build(&self, key: EngineKey) -> Result<Prepared, RuntimeError> {
        let engine_error = |e: wasmtime::Error| RuntimeError::Engine(e.into_boxed_dyn_error());
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(self.epochs)
            .consume_fuel(key.fuel)
            .max_wasm_stack(key.max_stack_bytes);
        if self.pooling {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
        }
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
        Processor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(engine_error)?;
        tracing::debug!(
            max_stack_bytes = key.max_stack_bytes,
            fuel = key.fuel,
            epochs = self.epochs,
            "built a wasm engine"
        );
        Ok(Prepared { engine, linker })
    }
}

/// The instance pool of an engine. A batch's instance takes a slot and gives
/// it back when the batch ends; the slot's linear memory is reset to the
/// component's initial image (copy-on-write, so only the pages the last batch
/// dirtied are reset: wasmtime finds them with the kernel's page map where it
/// can), so no batch sees what the one before it left. Reusing mappings instead
/// of creating and faulting in fresh ones per batch is what makes an instance
/// cheap.
///
/// The sizes bound the instances alive at once across all processors of an
/// engine (one per member with a batch in flight, plus probes): beyond them an
/// instantiation fails like any other and is retried. The reservations are
/// address space, not memory: 2,000 linear memories of up to 4 GiB each.
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(POOL_INSTANCES)
        // Components built by componentize-py and componentize-js hold several
        // core instances, memories and tables each.
        .total_core_instances(POOL_INSTANCES * 8)
        .total_memories(POOL_INSTANCES * 2)
        .total_tables(POOL_INSTANCES * 4)
        .max_core_instance_size(4 << 20)
        .max_component_instance_size(4 << 20)
        .table_elements(POOL_TABLE_ELEMENTS)
        .max_tables_per_module(4)
        .max_memories_per_module(1)
        .linear_memory_keep_resident(POOL_KEEP_RESIDENT)
        .table_keep_resident(256 << 10)
        // Bounds the memory idle slots keep resident (2 MiB each at most).
        .max_unused_warm_slots(32);
    pool
}

/// Component instances alive at once per engine.
const POOL_INSTANCES: u32 = 1000;
/// The largest table a guest may declare (interpreters' function tables run to
/// tens of thousands of entries).
const POOL_TABLE_ELEMENTS: usize = 100_000;
/// How much of a freed memory slot is reset in place rather than given back
/// to the kernel, which would make the next batch fault it in again. Only the
/// pages the slot has written are reset (memset, or copied from the image), so
/// the cost follows the memory a batch touches, up to this bound; a batch of
/// 500 small records touches a few hundred KiB.
const POOL_KEEP_RESIDENT: usize = 2 << 20;

impl Drop for Engines {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processors_share_an_engine_unless_their_stack_or_fuel_setting_differs() {
        let engines = Engines::new(true, true).unwrap();
        let limits = |max_stack_bytes, fuel| Limits {
            max_stack_bytes,
            fuel,
            ..Limits::default()
        };
        let plain = engines.get(&Limits::default()).unwrap();
        let other_memory = Limits {
            memory_bytes: 1 << 20,
            deadline: Duration::from_millis(1),
            ..Limits::default()
        };
        assert!(Arc::ptr_eq(&plain, &engines.get(&other_memory).unwrap()));
        let fueled = engines.get(&limits(1 << 20, Some(10))).unwrap();
        assert!(!Arc::ptr_eq(&plain, &fueled));
        assert!(Arc::ptr_eq(
            &fueled,
            &engines.get(&limits(1 << 20, Some(99))).unwrap()
        ));
        let shallow = engines.get(&limits(64 << 10, None)).unwrap();
        assert!(!Arc::ptr_eq(&plain, &shallow));
        assert_eq!(engines.ticking.lock().unwrap().len(), 3, "all ticked");

        // Only the processors that ask for fuel get metered code.
        let mut store = wasmtime::Store::new(&plain.engine, ());
        assert!(store.set_fuel(1).is_err());
        let mut store = wasmtime::Store::new(&fueled.engine, ());
        assert!(store.set_fuel(1).is_ok());
    }
}
