//! weir: a WebAssembly plugin host for consumer logic.
//!
//! # Layout
//!
//! In data-path order, from a producer's append to a guest's commit:
//!
//! - [`name`]: validation of topic, group and processor names (they become
//!   paths and keys).
//! - [`log`]: the partitioned, append-only log on disk: topics, partitions,
//!   segments, the sparse offset index, the CRC32C-checked batch codec, and
//!   recovery of a torn tail on open.
//! - [`offsets`]: committed offsets, kept in the internal topic
//!   `__consumer_offsets` and rebuilt in memory when the log opens.
//! - [`group`]: the in-process group coordinator: membership with heartbeats,
//!   session timeout and max poll interval, generations, the range,
//!   round-robin, sticky and cooperative-sticky assignors, eager and
//!   cooperative rebalancing, static membership, commit fencing, and the
//!   offsets API (reset policy, lag, seek by offset or timestamp).
//! - [`consumer`]: the narrow consumer-side interface the processor loop uses:
//!   follow the group's assignment, poll the assigned partitions (with max
//!   records, bytes and wait), fenced commits, heartbeats, positions and lag.
//! - [`runtime`]: the wasmtime engines (one per stack and fuel setting, one
//!   epoch ticker), the on-disk compiled-component cache, the WIT bindings and
//!   host imports, per-batch stores under per-processor limits (memory,
//!   deadline, wasm stack, fuel) with no ambient authority but an optional
//!   scratch directory, and the [`runtime::Handler`] seam a native processor
//!   also fits.
//! - [`processor`]: the trigger: poll → process → commit for one member, with the
//!   failure kinds (retry, skip, dead-letter, fatal), what follows exhausted
//!   retries (stop, isolate and dead-letter, pause the partition), and the
//!   single commit step;
//!   `Instances` runs N members of a processor and scales them;
//!   `ProcessorSpec` holds every setting of a processor, the one type behind
//!   the `weir run` and `weir deploy` flags, the API's deploy bodies,
//!   `weir.toml` and the deployment record.
//! - [`supervisor`]: the processors a long-running host manages: deploy, swap,
//!   rewind, pause, resume, scale, delete and shadow replays, recorded in the
//!   data directory and restored on start.
//! - [`service`]: `weir serve`, the HTTP API (topics, produce and fetch in
//!   JSON or binary, groups, processors, Prometheus metrics, health) with its
//!   token check, body limits, access log and JSON errors; `docs/api.md`
//!   documents it.
//! - [`client`]: the typed HTTP client of that API, which the CLI uses when
//!   `--server` is set.
//! - [`workload`]: the generated order stream that `weir produce --generate`,
//!   `weir demo` and the benchmarks use.
//! - [`demo`] and [`bench`]: the `weir demo` and `weir bench` commands.
//! - [`guests`]: the sample guest components embedded in the binary.
//!
//! `main.rs` and `cli/` hold the CLI; anyhow is used there and nowhere else.

pub mod bench;
pub mod broker;
pub mod client;
pub mod consumer;
pub mod demo;
pub mod error;
pub mod group;
mod keyword;
pub mod log;
pub mod name;
pub mod offsets;
pub mod processor;
pub mod runtime;
pub mod service;
pub mod supervisor;
pub mod workload;

/// The sample guests built by `host/build.rs` from `guests/`, embedded so that
/// `weir demo` and `weir bench` need no file on disk.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
