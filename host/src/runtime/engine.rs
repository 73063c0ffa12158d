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
//!
//! The ticker lives as long as the runtime or any guest loaded from it, so a
//! guest still running while its host shuts down stays interruptible; and
//! [`Ticker::interrupt`] ends every running batch at once (shutdown after its
//! grace), by moving the epoch past the longest deadline ever armed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

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

/// The engines the ticker advances, and the shutdown interrupt.
#[derive(Default)]
pub(super) struct Ticker {
    engines: Mutex<Vec<Engine>>,
    /// Set once by [`Ticker::interrupt`]: every batch still running traps, and
    /// no new one starts.
    interrupted: AtomicBool,
    /// The longest deadline armed so far, in ticks: how far an interrupt must
    /// move the epoch to reach every running store's deadline.
    longest: AtomicU64,
}

impl Ticker {
    /// With `epochs`, a thread advances every engine added later, every
    /// [`EPOCH_TICK`], until the last handle on the ticker is dropped.
    fn start(epochs: bool) -> Result<Arc<Ticker>, RuntimeError> {
        let ticker = Arc::new(Ticker::default());
        if epochs {
            let weak: Weak<Ticker> = Arc::downgrade(&ticker);
            std::thread::Builder::new()
                .name("weir-epoch".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(EPOCH_TICK);
                        let Some(ticker) = weak.upgrade() else {
                            return;
                        };
                        for engine in ticker.engines.lock().expect("ticker lock").iter() {
                            engine.increment_epoch();
                        }
                    }
                })
                .map_err(|e| RuntimeError::Engine(Box::new(e)))?;
        }
        Ok(ticker)
    }

    /// Notes a store armed with a deadline of `ticks`.
    pub(super) fn armed(&self, ticks: u64) {
        self.longest.fetch_max(ticks, Ordering::Relaxed);
    }

    /// Whether [`Ticker::interrupt`] was called.
    pub(super) fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Relaxed)
    }

    /// Ends every batch running on these engines now (each traps at its next
    /// epoch check, as if its deadline had passed) and refuses new ones: what
    /// a shutdown does once its grace is over.
    pub(super) fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Relaxed);
        let ticks = self.longest.load(Ordering::Relaxed) + 1;
        for engine in self.engines.lock().expect("ticker lock").iter() {
            for _ in 0..ticks {
                engine.increment_epoch();
            }
        }
    }
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
    ticker: Arc<Ticker>,
}

impl Engines {
    /// No engine yet; with `epochs`, a ticker thread that advances every engine
    /// built later; with `pooling`, engines allocate instances from a pool.
    pub(super) fn new(epochs: bool, pooling: bool) -> Result<Engines, RuntimeError> {
        Ok(Engines {
            epochs,
            pooling,
            built: Mutex::default(),
            ticker: Ticker::start(epochs)?,
        })
    }

    /// The ticker, which every guest holds on to.
    pub(super) fn ticker(&self) -> Arc<Ticker> {
        self.ticker.clone()
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
            let mut ticking = self.ticker.engines.lock().expect("ticker lock");
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
        // With the PAGEMAP_SCAN ioctl (Linux 6.7+) only the pages a batch
        // dirtied are reset; without it the whole kept-resident prefix is
        // memset after every batch (2 MiB, an eighth of a batch's cost).
        .pagemap_scan(Enabled::Auto)
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
/// to the kernel, which would make the next batch fault it in again. Where
/// the kernel has PAGEMAP_SCAN only the pages the slot has written are reset
/// (memset, or copied from the image), so the cost follows the memory a batch
/// touches, up to this bound; a batch of 500 small records touches a few
/// hundred KiB.
const POOL_KEEP_RESIDENT: usize = 2 << 20;

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
        assert_eq!(
            engines.ticker.engines.lock().unwrap().len(),
            3,
            "all ticked"
        );

        // Only the processors that ask for fuel get metered code.
        let mut store = wasmtime::Store::new(&plain.engine, ());
        assert!(store.set_fuel(1).is_err());
        let mut store = wasmtime::Store::new(&fueled.engine, ());
        assert!(store.set_fuel(1).is_ok());
    }
}
