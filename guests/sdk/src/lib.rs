//! The Rust SDK for weir guests.
//!
//! The generated bindings for `wit/weir.wit` live in [`bindings`]; everything else
//! here is the friendly layer on top of them: a [`Batch`] whose [`Record`] views
//! resolve the columnar spans for you, [`emit`], [`Emits`] (many records in
//! one host call) and [`log`], and the
//! [`export_processor!`] macro that wires a [`Processor`] implementation up as the
//! component's exports. [`testing`] runs a guest's `process` natively in its
//! unit tests, with `emit`, `log` and state captured in memory.
//!
//! ```ignore
//! struct Upper;
//! impl weir_guest::Processor for Upper {
//!     fn process(batch: &weir_guest::Batch) -> Result<(), weir_guest::Failure> {
//!         for r in batch.records() {
//!             let value = r.value().to_ascii_uppercase();
//!             weir_guest::emit("upper", r.key(), &value, &[])
//!                 .map_err(|e| r.fail(weir_guest::FailureKind::Fatal, e))?;
//!         }
//!         Ok(())
//!     }
//! }
//! weir_guest::export_processor!(Upper);
//! ```

// The generated code names this crate by its external path, from inside it too.
extern crate self as weir_guest;

/// The bindings generated from `wit/weir.wit`. Guest code rarely needs them
/// directly; they are public so that [`export_processor!`] can reach them.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated lifting code for the batch record
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "processor",
        pub_export_macro: true,
        export_macro_name: "__export_processor_world",
        default_bindings_module: "::weir_guest::bindings",
        runtime_path: "::weir_guest::__rt",
    });
}

#[doc(hidden)]
pub use wit_bindgen::rt as __rt;

mod emits;
pub mod state;
// Compiled for wasm too (so a guest's tests type-check there), but only
// native code routes the host imports to its fake.
pub mod testing;

/// The host imports: the real ones in a component, and the in-memory fake
/// of [`testing`] when the guest's unit tests run natively.
mod sys {
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::weir::processor::host::{emit, emit_batch, log};
    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::weir::processor::state::{delete, get, put, scan};
    #[cfg(not(target_arch = "wasm32"))]
    pub use crate::testing::fake::{delete, emit, emit_batch, get, log, put, scan};
}

use bindings::weir::processor::types as wit;

/// The key length that marks a record without a key.
const NO_KEY: u32 = u32::MAX;
const SPAN_WIDTH: usize = 6;
const HEADER_WIDTH: usize = 4;

pub use bindings::weir::processor::types::{Failure, FailureKind, Level};
pub use emits::Emits;

/// What a guest implements. `init` runs once per fresh instance, and the host
/// creates a fresh instance for every batch, so keep nothing in memory between
/// calls: what must last goes in [`state`].
pub trait Processor {
    /// Receives the processor's configuration. The default accepts anything.
    fn init(config: &Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Processes one batch: `Ok` commits all of it; `Err` names the failing record.
    fn process(batch: &Batch) -> Result<(), Failure>;
}

/// The processor's configuration, as given to `init`.
#[derive(Debug, Default, Clone)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    #[doc(hidden)]
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Config { pairs }
    }

    /// The value of `key`, if it was configured.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every key/value pair, in the order the host gave them.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

/// A polled batch: consecutive records from one partition of one topic.
pub struct Batch {
    inner: wit::Batch,
}

impl Batch {
    #[doc(hidden)]
    pub fn new(inner: wit::Batch) -> Self {
        Batch { inner }
    }

    /// The topic the records came from.
    pub fn topic(&self) -> &str {
        &self.inner.topic
    }

    /// The partition the records came from.
    pub fn partition(&self) -> u32 {
        self.inner.partition
    }

    /// The partition's high watermark when the batch was read.
    pub fn high_watermark(&self) -> u64 {
        self.inner.high_watermark
    }

    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.inner.offsets.len()
    }

    /// Whether the batch is empty (the host never sends an empty batch).
    pub fn is_empty(&self) -> bool {
        self.inner.offsets.is_empty()
    }

    /// The records, in offset order.
    pub fn records(&self) -> impl ExactSizeIterator<Item = Record<'_>> + '_ {
        (0..self.len()).map(move |index| Record { batch: self, index })
    }

    fn bytes(&self, start: u32, len: u32) -> &[u8] {
        let start = start as usize;
        &self.inner.data[start..start + len as usize]
    }
}

/// A view of one record of a [`Batch`].
#[derive(Clone, Copy)]
pub struct Record<'a> {
    batch: &'a Batch,
    index: usize,
}

impl<'a> Record<'a> {
    fn span(&self) -> &'a [u32] {
        &self.batch.inner.spans[self.index * SPAN_WIDTH..(self.index + 1) * SPAN_WIDTH]
    }

    /// The record's position in its batch; a [`Failure`] names it.
    pub fn index(&self) -> u32 {
        self.index as u32
    }

    /// The record's offset in its partition.
    pub fn offset(&self) -> u64 {
        self.batch.inner.offsets[self.index]
    }

    /// Milliseconds since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.batch.inner.timestamps[self.index]
    }

    /// The key, or `None` for a record produced without one.
    pub fn key(&self) -> Option<&'a [u8]> {
        let span = self.span();
        (span[1] != NO_KEY).then(|| self.batch.bytes(span[0], span[1]))
    }

    /// The value.
    pub fn value(&self) -> &'a [u8] {
        let span = self.span();
        self.batch.bytes(span[2], span[3])
    }

    /// The value as UTF-8, or `None` if it is not valid UTF-8.
    pub fn value_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.value()).ok()
    }

    /// The headers, as (name, value) pairs in the order they were produced.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let batch = self.batch;
        let span = self.span();
        let (first, count) = (span[4] as usize, span[5] as usize);
        batch.inner.headers[first * HEADER_WIDTH..(first + count) * HEADER_WIDTH]
            .chunks_exact(HEADER_WIDTH)
            .map(move |h| {
                let name = std::str::from_utf8(batch.bytes(h[0], h[1])).unwrap_or("");
                (name, batch.bytes(h[2], h[3]))
            })
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A [`Failure`] pointing at this record.
    pub fn fail(&self, kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure {
            index: self.index(),
            kind,
            message: message.into(),
        }
    }
}

/// Queues a record for `topic`. It is appended only if the current batch
/// succeeds. Fails when the topic does not exist or the record is too large.
pub fn emit(
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[(&str, &[u8])],
) -> Result<(), String> {
    let headers: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
    sys::emit(topic, key, value, &headers)
}

/// Writes a line to the host's log, tagged with the processor's name.
pub fn log(level: Level, message: &str) {
    sys::log(level, message);
}

/// Exports a [`Processor`] implementation as this component's `init` and
/// `process`. Compiled natively (a guest's unit tests), it exports nothing:
/// tests call the implementation through [`testing::Harness`].
#[macro_export]
macro_rules! export_processor {
    ($processor:ty) => {
        #[cfg(target_arch = "wasm32")]
        struct __WeirExports;

        #[cfg(target_arch = "wasm32")]
        impl $crate::bindings::Guest for __WeirExports {
            fn init(
                config: ::std::vec::Vec<(::std::string::String, ::std::string::String)>,
            ) -> ::std::result::Result<(), ::std::string::String> {
                <$processor as $crate::Processor>::init(&$crate::Config::new(config))
            }

            fn process(
                batch: $crate::bindings::weir::processor::types::Batch,
            ) -> ::std::result::Result<(), $crate::Failure> {
                <$processor as $crate::Processor>::process(&$crate::Batch::new(batch))
            }
        }

        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_processor_world!(__WeirExports);

        // Natively the exports are left out; this keeps the implementation
        // used (no dead-code warnings) for the tests that call it.
        #[cfg(not(target_arch = "wasm32"))]
        const _: (
            fn(&$crate::Config) -> ::std::result::Result<(), ::std::string::String>,
            fn(&$crate::Batch) -> ::std::result::Result<(), $crate::Failure>,
        ) = (
            <$processor as $crate::Processor>::init,
            <$processor as $crate::Processor>::process,
        );
    };
}
