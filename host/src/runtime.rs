//! The WebAssembly runtime: one wasmtime `Engine`, the compiled-component cache,
//! and [`Guest`], a loaded component ready to process batches.
//!
//! Loading compiles a component once (or loads it from the on-disk cache), checks
//! that it implements `weir:processor/processor@0.1.0`, and keeps a pre-linked
//! `ProcessorPre`. Every batch then runs in a fresh `Store` with its own memory
//! cap and epoch deadline, so a guest can neither keep state between batches nor
//! hurt the next one after a trap. An epoch ticker thread drives the deadlines.

mod batch;
mod bindings;
mod cache;
mod host;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

pub use bindings::{PACKAGE_VERSION, WORLD};
pub use cache::{Source, content_hash};
pub use host::{Emit, MAX_EMIT_BYTES};

use crate::consumer::Polled;
use crate::log::Log;
use bindings::{Processor, ProcessorPre};
use host::HostState;

/// A boxed error from wasmtime, keeping its chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong loading or running a guest.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot read component {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid WebAssembly component (expected one implementing world {WORLD})"
    )]
    Compile {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    #[error("{path} does not implement world {WORLD}: {reason}")]
    Incompatible { path: PathBuf, reason: String },
    #[error("cannot write compiled artifact {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("wasmtime engine configuration")]
    Engine(#[source] BoxError),
    #[error("guest init rejected its configuration: {0}")]
    Init(String),
    #[error("guest reported a failure outside the processor loop: {0}")]
    Failed(String),
    #[error("guest exceeded its {0:?} deadline")]
    Deadline(Duration),
    #[error("guest trapped{}", stderr_note(.stderr))]
    Trap {
        /// The end of what the guest wrote to stderr, where a panic message lands.
        stderr: String,
        #[source]
        source: BoxError,
    },
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" (guest stderr: {stderr:?})")
    }
}

/// Per-processor resource limits for each batch's store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest linear memory a guest may grow to.
    pub memory_bytes: usize,
    /// Wall-clock budget for instantiating, initializing and processing a batch.
    pub deadline: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            deadline: Duration::from_secs(10),
        }
    }
}

/// The epoch ticker's period: deadlines are enforced to within one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// The wasm stack each guest call may use.
pub const MAX_WASM_STACK: usize = 1 << 20;

/// A failure a guest reported through the WIT `failure` result.
pub type Failure = bindings::weir::processor::types::Failure;
pub use bindings::weir::processor::types::FailureKind;

/// What a processor hands batches to: a WASM guest, or a native implementation
/// (the benchmark's baseline) with the same contract.
pub trait Handler: Send + Sync {
    /// Processes one batch. `Ok` carries the outcome the guest reported and the
    /// records it emitted; `Err` means the guest trapped or overran a limit.
    fn handle(&self, batch: &Polled) -> Result<Output, RuntimeError>;
    /// The version that processes records, for logs and dead-letter headers.
    fn version(&self) -> &str;
}

/// The version a processor runs, swappable while its members run. Each batch
/// takes the version that is current when it starts, so every record is
/// processed by exactly one version, and a swap neither waits for nor interrupts
/// a batch in flight: members pick the new version up at their next batch.
pub struct Slot {
    current: std::sync::RwLock<Arc<dyn Handler>>,
}

impl Slot {
    /// A slot holding `handler`.
    pub fn new(handler: Arc<dyn Handler>) -> Arc<Slot> {
        Arc::new(Slot {
            current: std::sync::RwLock::new(handler),
        })
    }

    /// The version to use for the next batch.
    pub fn current(&self) -> Arc<dyn Handler> {
        self.current.read().expect("slot lock").clone()
    }

    /// Installs `handler` for every batch that starts from now on; returns the
    /// version it replaced.
    pub fn swap(&self, handler: Arc<dyn Handler>) -> Arc<dyn Handler> {
        let mut current = self.current.write().expect("slot lock");
        tracing::info!(
            from = current.version(),
            to = handler.version(),
            "swapping guest version"
        );
        std::mem::replace(&mut current, handler)
    }
}

/// A handled batch: what the guest said and what it emitted.
#[derive(Debug)]
pub struct Output {
    pub outcome: Result<(), Failure>,
    pub emits: Vec<Emit>,
}

/// The shared engine and linker, plus the ticker that drives deadlines.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: PathBuf,
    log: Arc<Log>,
    ticker_stop: Arc<AtomicBool>,
}

impl Runtime {
    /// Builds the engine; compiled components are cached under `data_dir`.
    pub fn new(data_dir: &Path, log: Arc<Log>) -> Result<Runtime, RuntimeError> {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK);
        let engine =
            Engine::new(&config).map_err(|e| RuntimeError::Engine(e.into_boxed_dyn_error()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| RuntimeError::Engine(e.into_boxed_dyn_error()))?;
        Processor::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Engine(e.into_boxed_dyn_error()))?;
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), ticker_stop.clone());
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| RuntimeError::Engine(Box::new(e)))?;
        Ok(Runtime {
            engine,
            linker,
            cache_dir: data_dir.join("compiled"),
            log,
            ticker_stop,
        })
    }

    /// Reads, compiles (or loads from cache) and validates the component at
    /// `path` for processor `processor`.
    pub fn load_file(&self, path: &Path, spec: GuestSpec) -> Result<Guest, RuntimeError> {
        let wasm = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load(&wasm, path, spec)
    }

    /// Like [`Runtime::load_file`] for bytes already in memory; `name` stands in
    /// for the file in errors.
    pub fn load(&self, wasm: &[u8], name: &Path, spec: GuestSpec) -> Result<Guest, RuntimeError> {
        let started = Instant::now();
        let hash = content_hash(wasm);
        let (component, source) =
            cache::load_or_compile(&self.engine, &self.cache_dir, wasm, &hash, name)?;
        check_package_version(&component, &self.engine, name)?;
        let incompatible = |e: wasmtime::Error| RuntimeError::Incompatible {
            path: name.to_path_buf(),
            reason: format!("{e:#}"),
        };
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(incompatible)?;
        let pre = ProcessorPre::new(instance_pre).map_err(incompatible)?;
        let version: Arc<str> = version_id(&hash, spec.label.as_deref()).into();
        Ok(Guest {
            pre,
            engine: self.engine.clone(),
            log: self.log.clone(),
            processor: spec.processor.into(),
            version,
            config: spec.config,
            limits: spec.limits,
            source,
            load_time: started.elapsed(),
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// A version's id from its content hash and optional label: `label@hash12`
/// or `sha256:hash12`.
pub fn version_id(hash: &str, label: Option<&str>) -> String {
    let short = &hash[..hash.len().min(12)];
    match label {
        Some(label) => format!("{label}@{short}"),
        None => format!("sha256:{short}"),
    }
}

/// Refuses a component built against another version of the weir package, with
/// a message naming both versions.
fn check_package_version(
    component: &Component,
    engine: &Engine,
    name: &Path,
) -> Result<(), RuntimeError> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(n, _)| n.to_string());
    let names = names.chain(ty.exports(engine).map(|(n, _)| n.to_string()));
    for item in names {
        if let Some(rest) = item.strip_prefix("weir:processor/")
            && let Some((_, version)) = rest.split_once('@')
            && version != PACKAGE_VERSION
        {
            return Err(RuntimeError::Incompatible {
                path: name.to_path_buf(),
                reason: format!(
                    "it was built against weir:processor@{version}, but this host speaks @{PACKAGE_VERSION}"
                ),
            });
        }
    }
    Ok(())
}

/// What a guest is loaded for.
#[derive(Debug, Clone, Default)]
pub struct GuestSpec {
    /// The processor's name: tags logs and guest output.
    pub processor: String,
    /// An optional human label for the version, e.g. `v2`.
    pub label: Option<String>,
    /// Passed to the guest's `init`.
    pub config: Vec<(String, String)>,
    pub limits: Limits,
}

/// A validated component, ready to run batches. Cheap to share.
pub struct Guest {
    pre: ProcessorPre<HostState>,
    engine: Engine,
    log: Arc<Log>,
    processor: Arc<str>,
    /// `label@hash` or `sha256:hash`: names the code that processed a record.
    version: Arc<str>,
    config: Vec<(String, String)>,
    limits: Limits,
    source: Source,
    load_time: Duration,
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

    /// Creates a fresh instance and runs `init` on it, returning the store and
    /// instance for one batch.
    fn instantiate(&self) -> Result<(Store<HostState>, Processor), RuntimeError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .build();
        let state = HostState::new(
            self.log.clone(),
            self.processor.clone(),
            self.version.clone(),
            limits,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.fault(e))?;
        match instance.call_init(&mut store, &self.config) {
            Ok(Ok(())) => Ok((store, instance)),
            Ok(Err(message)) => Err(RuntimeError::Init(message)),
            Err(e) => Err(self.fault(e)),
        }
    }

    fn fault(&self, e: wasmtime::Error) -> RuntimeError {
        if let Some(wasmtime::Trap::Interrupt) = e.downcast_ref::<wasmtime::Trap>() {
            RuntimeError::Deadline(self.limits.deadline)
        } else {
            RuntimeError::Trap {
                stderr: String::new(),
                source: e.into_boxed_dyn_error(),
            }
        }
    }

    /// Times `calls` `process` calls on one instance (building the columnar
    /// batch each time, as a real call does), leaving out instantiation: the
    /// guest-boundary benchmark.
    pub fn time_process_calls(
        &self,
        polled: &Polled,
        calls: u32,
    ) -> Result<Duration, RuntimeError> {
        let (mut store, instance) = self.instantiate()?;
        let ticks = self.deadline_ticks();
        let started = Instant::now();
        for _ in 0..calls {
            store.set_epoch_deadline(ticks);
            let batch = batch::columnar(polled);
            match instance.call_process(&mut store, &batch) {
                Ok(Ok(())) => {}
                Ok(Err(failure)) => return Err(RuntimeError::Failed(failure.message)),
                Err(e) => return Err(self.fault(e)),
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
        self.instantiate().map(|_| ())
    }
}

impl Handler for Guest {
    fn handle(&self, polled: &Polled) -> Result<Output, RuntimeError> {
        let (mut store, instance) = self.instantiate()?;
        let batch = batch::columnar(polled);
        let result = instance.call_process(&mut store, &batch);
        store.data().forward_stdio();
        let outcome = result.map_err(|e| match self.fault(e) {
            RuntimeError::Trap { source, .. } => RuntimeError::Trap {
                stderr: store.data().stderr_tail(),
                source,
            },
            other => other,
        })?;
        Ok(Output {
            outcome,
            emits: std::mem::take(&mut store.data_mut().emits),
        })
    }

    fn version(&self) -> &str {
        &self.version
    }
}
