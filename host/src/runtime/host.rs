//! The per-batch store data: the host imports a guest may call (`emit`,
//! `emit-batch`, `log`, `state`),
//! its WASI context and its resource limits.
//!
//! The WASI context grants nothing ambient: no environment, no arguments, no
//! sockets, no name lookups, and no directory except an optional scratch
//! directory, preopened (through cap-std, which wasmtime-wasi uses) as
//! `/scratch`; paths that would leave it (`..`, absolute symlinks) fail.
//!
//! Emits are only buffered here; the processor appends them after the batch
//! succeeds. Each emit is checked at once (topic exists, size within bounds) so
//! the guest gets an error it can act on instead of a failure at commit time.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

use super::bindings::weir::processor::{host, state, types};
use super::limits::Limiter;
use super::overlay::StateOverlay;
use super::{Logbook, StateView};
use crate::consumer::Emit;
use crate::log::Record;

/// The largest single emitted record (key + value + headers).
pub const MAX_EMIT_BYTES: usize = 1 << 20;
/// The most bytes one batch may emit in total.
pub const MAX_BATCH_EMIT_BYTES: usize = 64 << 20;
/// What each emitted record counts toward [`MAX_BATCH_EMIT_BYTES`] besides
/// its key, value and headers: about what the host holds per record, so a
/// batch may emit at most a million empty records.
pub const RECORD_OVERHEAD: usize = 64;
/// How much a guest may print to stdout or stderr per batch.
pub const STDIO_CAPACITY: usize = 64 << 10;
/// Where a processor's scratch directory appears inside the guest.
pub const SCRATCH_GUEST_PATH: &str = "/scratch";

/// The data of one batch's `Store`.
pub struct HostState {
    pub(super) limiter: Limiter,
    pub(super) emits: Vec<Emit>,
    emitted_bytes: usize,
    /// The batch's state reads and writes.
    pub(super) state: StateOverlay,
    topics: Arc<dyn super::EmitTopics>,
    /// The topics this batch's emits were already checked against, so a
    /// guest emitting every record to one topic pays for one check.
    checked: HashSet<String>,
    /// Tags guest log lines.
    processor: Arc<str>,
    version: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) stdout: MemoryOutputPipe,
    pub(super) stderr: MemoryOutputPipe,
    /// Where log lines and stdio go besides tracing, and the batch's input
    /// partition they are tagged with.
    logbook: Option<Arc<Logbook>>,
    partition: Option<u32>,
}

impl HostState {
    /// State for one batch: no environment, no arguments, no sockets and no
    /// name lookups; stdio is captured; `scratch`, when given, is the only
    /// directory, read-write at [`SCRATCH_GUEST_PATH`].
    pub(super) fn new(
        topics: Arc<dyn super::EmitTopics>,
        processor: Arc<str>,
        version: Arc<str>,
        limiter: Limiter,
        scratch: Option<&Path>,
        state: Arc<dyn StateView>,
    ) -> wasmtime::Result<Self> {
        let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(dir) = scratch {
            wasi.preopened_dir(dir, SCRATCH_GUEST_PATH, FsPerms::ReadWrite)?;
        }
        let wasi = wasi.build();
        Ok(HostState {
            limiter,
            emits: Vec::new(),
            emitted_bytes: 0,
            state: StateOverlay::new(state),
            topics,
            checked: HashSet::new(),
            processor,
            version,
            wasi,
            table: ResourceTable::new(),
            stdout,
            stderr,
            logbook: None,
            partition: None,
        })
    }

    /// This state, with log lines and stdio also kept in `logbook`, tagged
    /// with the batch's input `partition`.
    pub(super) fn with_logbook(
        mut self,
        logbook: Option<Arc<Logbook>>,
        partition: Option<u32>,
    ) -> Self {
        self.logbook = logbook;
        self.partition = partition;
        self
    }

    /// Sends whatever the guest printed to tracing, a line per event.
    pub(super) fn forward_stdio(&self) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                tracing::info!(processor = %self.processor, version = %self.version, stream, "{line}");
                if let Some(book) = &self.logbook {
                    let level = if stream == "stderr" { "warn" } else { "info" };
                    book.push(&self.version, self.partition, stream, level, line);
                }
            }
        }
    }
}

impl HostState {
    /// Drops the emits of a call whose output nobody commits (benchmarks).
    pub(super) fn clear_emits(&mut self) {
        self.emits.clear();
        self.emitted_bytes = 0;
    }

    /// The last 2 KiB the guest wrote to stderr, trimmed.
    pub(super) fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let tail = &bytes[bytes.len().saturating_sub(2048)..];
        String::from_utf8_lossy(tail).trim().to_string()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl HostState {
    /// Whether the batch may emit to `topic`, checked once per topic.
    fn check_topic(&mut self, topic: &str) -> Result<(), String> {
        if !self.checked.contains(topic) {
            self.topics.check(topic)?;
            self.checked.insert(topic.to_string());
        }
        Ok(())
    }

    /// Refuses a record of `size` bytes over the per-record limit, or one that
    /// would take the batch's emits, with `pending` bytes not yet counted,
    /// over the per-batch limit. Every record counts [`RECORD_OVERHEAD`]
    /// bytes besides its own toward the batch, so a batch of empty records
    /// is bounded too.
    fn admit(&self, pending: usize, size: usize) -> Result<(), String> {
        if size > MAX_EMIT_BYTES {
            return Err(format!(
                "record of {size} bytes exceeds the {MAX_EMIT_BYTES}-byte limit"
            ));
        }
        if self.emitted_bytes + pending + size + RECORD_OVERHEAD > MAX_BATCH_EMIT_BYTES {
            return Err(format!(
                "batch emits exceed the {MAX_BATCH_EMIT_BYTES}-byte limit"
            ));
        }
        Ok(())
    }
}

impl host::Host for HostState {
    fn emit(
        &mut self,
        topic: String,
        key: Option<Vec<u8>>,
        value: Vec<u8>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        self.check_topic(&topic)?;
        let size = key.as_ref().map_or(0, Vec::len)
            + value.len()
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        self.admit(0, size)?;
        self.emitted_bytes += size + RECORD_OVERHEAD;
        self.emits.push(Emit {
            topic,
            record: Record {
                key,
                value,
                headers,
                timestamp: None,
                nulls: Default::default(),
            },
        });
        Ok(())
    }

    fn emit_batch(&mut self, emits: types::Emits) -> Result<(), String> {
        self.check_topic(&emits.topic)?;
        let mut pending = 0;
        let records = super::batch::records(&emits, |size| {
            self.admit(pending, size)?;
            pending += size + RECORD_OVERHEAD;
            Ok(())
        })?;
        self.emitted_bytes += pending;
        self.emits.extend(records.into_iter().map(|record| Emit {
            topic: emits.topic.clone(),
            record,
        }));
        Ok(())
    }

    fn log(&mut self, level: types::Level, message: String) {
        let (processor, version) = (&*self.processor, &*self.version);
        match level {
            types::Level::Trace => tracing::trace!(processor, version, "{message}"),
            types::Level::Debug => tracing::debug!(processor, version, "{message}"),
            types::Level::Info => tracing::info!(processor, version, "{message}"),
            types::Level::Warn => tracing::warn!(processor, version, "{message}"),
            types::Level::Error => tracing::error!(processor, version, "{message}"),
        }
        if let Some(book) = &self.logbook {
            let level = match level {
                types::Level::Trace => "trace",
                types::Level::Debug => "debug",
                types::Level::Info => "info",
                types::Level::Warn => "warn",
                types::Level::Error => "error",
            };
            book.push(version, self.partition, "log", level, &message);
        }
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: Vec<u8>) -> Option<Vec<u8>> {
        self.state.get(&key)
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.state.put(key, value)
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.state.delete(key)
    }

    fn scan(
        &mut self,
        prefix: Vec<u8>,
        after: Option<Vec<u8>>,
        limit: u32,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.state.scan(&prefix, after.as_deref(), limit as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::batch::NO_KEY;

    fn state() -> HostState {
        HostState::new(
            Arc::new(super::super::AnyTopic),
            "p".into(),
            "v1".into(),
            Limiter::new(1 << 20),
            None,
            Arc::new(super::super::NoState),
        )
        .unwrap()
    }

    /// `count` records whose values all point at the same `len` bytes.
    fn overlapping(count: usize, len: u32) -> types::Emits {
        types::Emits {
            topic: "out".into(),
            spans: (0..count).flat_map(|_| [0, NO_KEY, 0, len, 0, 0]).collect(),
            headers: Vec::new(),
            data: vec![7; len as usize],
        }
    }

    #[test]
    fn an_emit_batch_over_the_batch_limit_queues_nothing_and_names_the_record() {
        use host::Host as _;
        let mut state = state();
        // 100 records over one shared MiB: 64 MiB of copies were the limit
        // not applied before copying; the 64th is the first over it.
        let err = state.emit_batch(overlapping(100, 1 << 20)).unwrap_err();
        assert_eq!(
            err,
            format!("record 63: batch emits exceed the {MAX_BATCH_EMIT_BYTES}-byte limit")
        );
        assert!(state.emits.is_empty());
        assert_eq!(state.emitted_bytes, 0);

        // A record over the per-record limit, after one that fits.
        let mut two = overlapping(1, 10);
        two.data = vec![7; MAX_EMIT_BYTES + 1];
        two.spans
            .extend([0, NO_KEY, 0, MAX_EMIT_BYTES as u32 + 1, 0, 0]);
        let err = state.emit_batch(two).unwrap_err();
        assert!(
            err.starts_with("record 1: record of 1048577 bytes"),
            "{err}"
        );
        assert!(state.emits.is_empty());

        // What fits is queued, each record counting its overhead too.
        state.emit_batch(overlapping(3, 10)).unwrap();
        assert_eq!(state.emits.len(), 3);
        assert_eq!(state.emitted_bytes, 3 * (10 + RECORD_OVERHEAD));
        assert_eq!(state.emits[2].record.value, vec![7; 10]);
        assert_eq!(state.emits[2].topic, "out");
        let err = state
            .emit_batch(types::Emits {
                topic: "bad/name".into(),
                ..overlapping(1, 1)
            })
            .unwrap_err();
        assert!(err.starts_with("invalid topic name \"bad/name\""), "{err}");
        assert_eq!(state.emits.len(), 3);
    }
}
