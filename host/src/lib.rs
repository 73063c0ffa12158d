//! weir: a WebAssembly plugin host for consumer logic.
//!
//! # Layout
//!
//! In data-path order, from a producer's append to a guest's commit:
//!
//! - [`name`]: validation of topic, group and processor names (they become
//!   paths and keys).
//! - [`durable`]: whole-file replacement that survives a crash (temporary
//!   file, fsync, rename, fsync of the directory), for `topic.json`,
//!   deployment records, stored components and compiled artifacts.
//! - [`log`]: the partitioned, append-only log on disk: topics and their
//!   settings, partitions, segments, the sparse offset index, the
//!   CRC32C-checked batch codec with its size limits, recovery of a torn tail
//!   on open, the background thread (interval fsync, retention, compaction),
//!   and the one placement rule for records that name no partition (by key,
//!   else round robin per record).
//! - [`offsets`]: committed offsets, kept in the internal topic
//!   `__consumer_offsets` and rebuilt in memory when the log opens.
//! - [`group`]: the in-process group coordinator: membership with heartbeats,
//!   session timeout and max poll interval, generations, the range,
//!   round-robin, sticky and cooperative-sticky assignors, eager and
//!   cooperative rebalancing, static membership and commit fencing; each
//!   group's record (generation, settings, static members and their
//!   assignment) kept in `__consumer_offsets` and restored on open.
//! - [`broker`]: the one handle over a data directory's log, offsets and
//!   groups, opened in one place, with the admin operations as its methods
//!   (reset policy and committing a latest start, lag for every group with
//!   commits or members, group description with membership, seek by offset
//!   or timestamp, group listing, topic deletion with its offsets), and the
//!   embedded side of the consumer seam.
//! - [`consumer`]: the seam under the processor loop: a [`consumer::Backend`]
//!   lets members join and moves a stopped group; a [`consumer::Consumer`]
//!   follows the assignment, polls (max records, bytes and wait), commits a
//!   batch's emits, state changes and next offset as one fenced unit in the
//!   processor's commit mode (at-most-once, at-least-once, exactly-once), and
//!   seeks. The embedded broker implements it (writing and recovering the
//!   units, and rewinding state with offsets), and so does [`cluster`].
//! - [`cluster`]: the Kafka-cluster side of the seam, through librdkafka: a
//!   processor whose spec names a cluster (bootstrap servers, a host id for
//!   static membership, passed-through properties) joins the cluster's group,
//!   polls with the seam's limits, produces its emits and flushes them before
//!   committing its offset; dead letters, topic checks and lag from the
//!   cluster's metadata and high watermarks; exactly-once (and every commit of
//!   a group with state) as one Kafka transaction per batch, and guest state
//!   in a compacted changelog topic restored when a partition is assigned;
//!   rewinds (offsets, times via `offsets_for_times`, per partition)
//!   committed through the group while its members are stopped, and a
//!   shadow's side topics created like their source. What it cannot do
//!   (rewinding a stateful group, topic settings) is refused with a clear
//!   error.
//! - [`state`]: guest state: keyed values per group and input partition, kept
//!   as units of an internal changelog topic (`__state.<group>.<topic>`; a
//!   unit is the commit point of a batch: state changes, exactly-once emits
//!   and the input position) and materialized in a redb store with a
//!   checkpoint; the changelog's record formats and how units replay.
//! - [`runtime`]: the wasmtime engines (one per stack and fuel setting, one
//!   epoch ticker), the on-disk compiled-component cache, the WIT bindings and
//!   host imports, per-batch stores (their instances from a pooling
//!   allocator with copy-on-write images) under per-processor limits (memory,
//!   deadline, wasm stack, fuel) with no ambient authority but an optional
//!   scratch directory, the [`runtime::Handler`] seam a native processor
//!   also fits, and the interrupt that ends every running guest at shutdown;
//!   the [`runtime::Logbook`], a processor's bounded ring of what its guests
//!   logged and printed (`weir logs`).
//! - [`processor`]: the trigger: poll → process → commit for one member over
//!   the seam (the guest call runs on the member's own thread, a pacemaker
//!   task heartbeating for it meanwhile), with one pure decision per guest
//!   call (commit, rerun a prefix, retry, stop) shared with the
//!   poison-record isolation, the failure kinds
//!   (retry, skip, dead-letter, fatal), what follows exhausted retries (stop,
//!   isolate and dead-letter, pause the partition), the circuit breaker for
//!   systemic failures, lag tolerance, the single
//!   commit step with emit routing, and the version slot a hot swap replaces;
//!   `Instances` runs N members of a processor and scales them;
//!   `ProcessorSpec` holds every setting of a processor (the commit mode
//!   among them), the one type behind the `weir run` and `weir deploy` flags,
//!   the API's deploy bodies, `weir.toml` and the deployment record.
//! - [`supervisor`]: the processors a long-running host manages: deploy, swap,
//!   rewind (one position, or one per partition), pause, resume, scale,
//!   delete and shadow replays, each under its processor's own lock, recorded
//!   in the data directory and restored on start, with a bounded shutdown;
//!   what a removed processor or shadow leaves behind (group offsets,
//!   dead-letter and side topics) goes with it, and one `weir.toml` no longer
//!   declares is removed; each processor's logbook, and a bounded in-memory
//!   history of what was done to the processors (`GET /history`).
//! - [`wire`]: the API's request and response shapes (topics, produce,
//!   fetch, groups, positions, guest log lines) defined once with serde, and the binary
//!   framing of records; the service and the client both speak through it,
//!   and it depends on nothing above the log's record types.
//! - [`service`]: `weir serve`, the HTTP API (topics, produce and fetch in
//!   JSON or binary, groups, processors, Prometheus metrics with process
//!   figures, health and readiness, guest logs with a long poll, the
//!   history, and the `/ui` dashboard page) with its token check, body
//!   limits, access log and JSON errors; `docs/api.md` documents it.
//! - [`kafka`]: `weir serve --kafka-listen`: the Kafka wire protocol over the
//!   same broker (framing, the API version table and dispatcher, Metadata
//!   with topic ids, Produce with the idempotent producer (its sequences
//!   rebuilt from tags in the log after a restart), Fetch with long
//!   polling, ListOffsets, CreateTopics, DeleteTopics, DescribeConfigs,
//!   CreatePartitions, AlterConfigs, IncrementalAlterConfigs and
//!   DescribeCluster; v2 record batches whose records (null values, null and
//!   repeated headers) `kafka::records` codes itself;
//!   SASL PLAIN and SCRAM-SHA-256/512 against the token, the SCRAM exchange
//!   as a pure state machine; TLS through rustls), codecs from the
//!   `kafka-protocol` crate; `kafka::groups`: Kafka
//!   clients' consumer groups (the classic JoinGroup/SyncGroup protocol as a
//!   pure state machine with its join barrier, static members and session
//!   timeouts; OffsetCommit and OffsetFetch in weir's own offsets; the
//!   coordinator look-up and the group listings); `kafka::groups::consumer`:
//!   the KIP-848 consumer protocol (ConsumerGroupHeartbeat,
//!   ConsumerGroupDescribe), each Kafka member a member of [`group`]'s
//!   coordinator, its epoch the generation it converged at;
//!   `kafka::transactions`:
//!   Kafka transactions (a pure coordinator state machine; records and
//!   offsets held until EndTxn, then written as one durable unit through the
//!   internal topic `__transactions` and finished on open after a crash;
//!   transactional ids' owners saved in `__transaction_ids`).
//! - [`client`]: the typed HTTP client of that API, which the CLI uses when
//!   `--server` is set (the embedded broker serves the same commands
//!   otherwise).
//! - [`workload`]: the generated order stream that `weir produce --generate`,
//!   `weir demo` and the benchmarks use.
//! - [`diff`]: `weir diff`: two guest versions run over the same records
//!   (each record its own batch, state from empty, in memory; nothing
//!   committed or appended) and what they did compared record by record and
//!   per output key.
//! - [`demo`] and [`bench`]: the `weir demo` and `weir bench` commands (the
//!   benchmark reports as text tables or, with `--json`, one JSON object).
//! - [`error`]: helpers every subsystem's error type shares (an error chain
//!   on one line, the "did you mean" of a mistyped name); `keyword`
//!   (private): the macro that gives the keyword enums of the settings
//!   (`reset`, `protocol`, `assignor`, `when_exhausted`) their `FromStr`,
//!   `Display` and serde forms.
//! - [`guests`]: the sample guest components embedded in the binary.
//! - [`fixture`]: `weir test`: a guest run over fixture records (JSON Lines)
//!   with no data directory, through the processor's own decisions (retries,
//!   skip, dead-letter, isolation, the breaker), its report (emits, failures,
//!   dead letters, final state) and the comparison with an expected file.
//! - [`scaffold`]: `weir new` and `weir build`: guest projects of one's own in
//!   Rust (with the SDK vendored), JavaScript or Python, from templates and
//!   repository files embedded in the binary, built with their own tools.
//!
//! `main.rs` and `cli/` hold the CLI; anyhow is used there and nowhere else.

pub mod bench;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod consumer;
pub mod demo;
pub mod diff;
pub mod durable;
pub mod error;
pub mod fixture;
pub mod group;
pub mod kafka;
mod keyword;
pub mod log;
pub mod name;
pub mod offsets;
pub mod processor;
pub mod runtime;
pub mod scaffold;
pub mod service;
pub mod state;
pub mod supervisor;
pub mod wire;
pub mod workload;

/// The sample guests built by `host/build.rs` from `guests/`, embedded so that
/// `weir demo` and `weir bench` need no file on disk.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}
