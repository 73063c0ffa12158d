//! The WebAssembly runtime: the wasmtime engines, the compiled-component cache,
//! and [`Guest`], a loaded component ready to process batches.
//!
//! Loading compiles a component once (or loads it from the on-disk cache), checks
//! that it implements `weir:processor/processor@0.1.0`, and keeps a pre-linked
//! `ProcessorPre` on the engine its limits need (see [`engine`]). Every batch
//! then runs in a fresh `Store` with its own memory cap, epoch deadline, stack
//! and optional fuel, so a guest can neither keep state between batches nor hurt
//! the next one after a trap. One epoch ticker thread drives the deadlines, and
//! [`Runtime::interrupt`] ends every running batch at shutdown.

mod batch;
mod bindings;
mod cache;
pub mod engine;
mod guest;
mod host;
mod limits;
pub mod logbook;
mod overlay;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

pub use bindings::{PACKAGE_VERSION, WORLD};
pub use cache::{Source, content_hash};
pub use engine::EPOCH_TICK;
pub use guest::Guest;
pub use host::{MAX_EMIT_BYTES, SCRATCH_GUEST_PATH};
pub use limits::{Limits, MAX_TABLE_ELEMENTS};
pub use logbook::Logbook;

use crate::consumer::{Emit, Polled};
use crate::log::Log;
use bindings::ProcessorPre;
use engine::Engines;

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
    #[error("invalid limits: {0}")]
    Limits(String),
    #[error("cannot open scratch directory {path}")]
    Scratch {
        path: PathBuf,
        #[source]
        source: BoxError,
    },
    /// The host interrupted the guest (a shutdown past its grace): not the
    /// guest's fault, and its batch is left for the next start.
    #[error("guest interrupted: the host is shutting down")]
    Interrupted,
    /// A batch's fresh instance failed before `process` ran (instantiation,
    /// or `init` trapping or overrunning a limit): no record is to blame.
    #[error("guest could not start an instance for the batch")]
    Start(#[source] Box<RuntimeError>),
    #[error("guest exceeded its {0:?} deadline")]
    Deadline(Duration),
    #[error("guest ran out of fuel (limit {0} per batch)")]
    OutOfFuel(u64),
    #[error("guest overflowed its wasm stack (limit {0} bytes)")]
    StackOverflow(usize),
    #[error(
        "guest exceeded its memory limit: it asked for {requested} bytes, the limit is {limit}"
    )]
    Memory { requested: usize, limit: usize },
    #[error("guest trapped{}", stderr_note(.stderr))]
    Trap {
        /// The end of what the guest wrote to stderr, where a panic message lands.
        stderr: String,
        #[source]
        source: BoxError,
    },
}

impl RuntimeError {
    /// A failure to start a batch's instance, as [`RuntimeError::Start`];
    /// `init` refusing its configuration and an interrupt stay as they are.
    fn started(e: RuntimeError) -> RuntimeError {
        match e {
            e @ (RuntimeError::Init(_) | RuntimeError::Interrupted) => e,
            e => RuntimeError::Start(Box::new(e)),
        }
    }
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!(" (guest stderr: {stderr:?})")
    }
}

/// A failure a guest reported through the WIT `failure` result.
pub type Failure = bindings::weir::processor::types::Failure;
pub use bindings::weir::processor::types::FailureKind;

/// What a processor hands batches to: a WASM guest, or a native implementation
/// (the benchmark's baseline) with the same contract.
pub trait Handler: Send + Sync {
    /// Processes one batch, reading the partition's committed `state`. `Ok`
    /// carries the outcome the guest reported, the records it emitted and its
    /// state changes; `Err` means the guest trapped or overran a limit.
    fn handle(&self, batch: &Polled, state: Arc<dyn StateView>) -> Result<Output, RuntimeError>;
    /// The version that processes records, for logs and dead-letter headers.
    fn version(&self) -> &str;
}

/// A handled batch: what the guest said, what it emitted and how it changed
/// its state.
#[derive(Debug)]
pub struct Output {
    pub outcome: Result<(), Failure>,
    pub emits: Vec<Emit>,
    /// The batch's state changes, one per key, in key order.
    pub state: Vec<crate::state::Change>,
}

/// The committed state of the batch's input partition, as a guest reads it.
pub trait StateView: Send + Sync {
    /// The committed value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String>;
    /// Up to `limit` committed entries whose keys start with `prefix` and
    /// sort after `after`, in key order.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<crate::state::KeyValue>, String>;
    /// How many more bytes of keys and values the processor may store.
    fn headroom(&self) -> u64;
}

/// No committed state: a fresh partition, or a handler run outside a
/// processor.
pub struct NoState;

impl StateView for NoState {
    fn get(&self, _: &[u8]) -> Result<Option<Vec<u8>>, String> {
        Ok(None)
    }

    fn scan(
        &self,
        _: &[u8],
        _: Option<&[u8]>,
        _: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        Ok(Vec::new())
    }

    fn headroom(&self) -> u64 {
        crate::state::DEFAULT_BUDGET_BYTES
    }
}

/// Where a guest's emits may go: an emit to a topic that does not exist fails
/// the call at once, with the message the guest sees.
pub trait EmitTopics: Send + Sync {
    fn check(&self, topic: &str) -> Result<(), String>;
}

impl EmitTopics for Log {
    fn check(&self, topic: &str) -> Result<(), String> {
        self.partition_count(topic)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The engines and linkers (one per engine setting the processors' limits
/// need), the compiled-component cache, and the log guests emit to.
pub struct Runtime {
    engines: Engines,
    cache_dir: PathBuf,
    /// What guests' emits are checked against: the log, or any name.
    topics: Arc<dyn EmitTopics>,
}

/// Any validly named topic: `weir test`, which runs guests with no log and
/// only reports what they emit.
struct AnyTopic;

impl EmitTopics for AnyTopic {
    fn check(&self, topic: &str) -> Result<(), String> {
        crate::name::validate("topic", topic).map_err(|e| e.to_string())
    }
}

impl Runtime {
    /// A runtime whose compiled components are cached under `data_dir`.
    pub fn new(data_dir: &Path, log: Arc<Log>) -> Result<Runtime, RuntimeError> {
        Runtime::build(data_dir, log, Engines::new(true, true)?)
    }

    /// A runtime whose guests are compiled without epoch checks, so their
    /// deadlines are not enforced: the baseline `weir bench` measures the cost
    /// of epoch interruption against. Never use it to run processors.
    pub fn without_epoch_interruption(
        data_dir: &Path,
        log: Arc<Log>,
    ) -> Result<Runtime, RuntimeError> {
        Runtime::build(data_dir, log, Engines::new(false, true)?)
    }

    /// A runtime whose instances are allocated afresh for every batch (new
    /// mappings, faulted in page by page) instead of taken from a pool: the
    /// baseline `weir bench` measures instantiation against.
    pub fn with_on_demand_instances(
        data_dir: &Path,
        log: Arc<Log>,
    ) -> Result<Runtime, RuntimeError> {
        Runtime::build(data_dir, log, Engines::new(true, false)?)
    }

    /// A runtime with no log, for `weir test`: emits to any validly named
    /// topic are accepted (and only reported), and compiled components are
    /// cached under `cache_dir`.
    pub fn detached(cache_dir: &Path) -> Result<Runtime, RuntimeError> {
        Ok(Runtime {
            engines: Engines::new(true, true)?,
            cache_dir: cache_dir.join("compiled"),
            topics: Arc::new(AnyTopic),
        })
    }

    fn build(data_dir: &Path, log: Arc<Log>, engines: Engines) -> Result<Runtime, RuntimeError> {
        Ok(Runtime {
            engines,
            cache_dir: data_dir.join("compiled"),
            topics: log,
        })
    }

    /// Interrupts every guest still running (each batch traps with
    /// [`RuntimeError::Interrupted`] within a tick) and refuses new batches:
    /// the end of a shutdown's grace.
    pub fn interrupt(&self) {
        self.engines.ticker().interrupt();
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
    /// for the file in errors. A scratch directory is created if missing.
    pub fn load(&self, wasm: &[u8], name: &Path, spec: GuestSpec) -> Result<Guest, RuntimeError> {
        let started = Instant::now();
        let prepared = self.engines.get(&spec.limits)?;
        if let Some(dir) = &spec.scratch {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Scratch {
                path: dir.clone(),
                source: Box::new(e),
            })?;
        }
        let hash = content_hash(wasm);
        let (component, source) =
            cache::load_or_compile(&prepared.engine, &self.cache_dir, wasm, &hash, name)?;
        check_package_version(&component, &prepared.engine, name)?;
        let incompatible = |e: wasmtime::Error| RuntimeError::Incompatible {
            path: name.to_path_buf(),
            reason: format!("{e:#}"),
        };
        let instance_pre = prepared
            .linker
            .instantiate_pre(&component)
            .map_err(incompatible)?;
        let pre = ProcessorPre::new(instance_pre).map_err(incompatible)?;
        let version: Arc<str> = version_id(&hash, spec.label.as_deref()).into();
        Ok(Guest {
            pre,
            engine: prepared.engine.clone(),
            epochs: self.engines.epochs(),
            ticker: self.engines.ticker(),
            topics: self.topics.clone(),
            processor: spec.processor.into(),
            version,
            config: spec.config,
            limits: spec.limits,
            scratch: spec.scratch,
            logbook: spec.logbook,
            source,
            load_time: started.elapsed(),
        })
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
    /// A host directory (created if missing) the guest may read and write as
    /// `/scratch`, shared by all its instances; the guest's only filesystem
    /// access. `None`: no filesystem at all.
    pub scratch: Option<PathBuf>,
    /// Where the guest's log lines and stdio go besides tracing (`weir
    /// logs`); `None`: tracing only.
    pub logbook: Option<Arc<Logbook>>,
}
