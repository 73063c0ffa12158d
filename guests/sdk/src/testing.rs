//! A native test harness for guests: a guest's unit tests (`cargo test`,
//! compiled for the machine, not for wasm) run its [`Processor`] on a batch
//! built by hand, with `emit`, `log` and [`crate::state`] answered by an
//! in-memory fake instead of the host.
//!
//! ```ignore
//! use weir_guest::testing::{Harness, TestBatch};
//!
//! #[test]
//! fn upper_cases_every_value() {
//!     let mut harness = Harness::new().config("output", "upper");
//!     let run = harness.run::<Upper>(&TestBatch::new().keyed("k", "hi"));
//!     assert!(run.result.is_ok());
//!     assert_eq!(run.emits[0].value, b"HI");
//! }
//! ```
//!
//! One [`Harness::run`] is one host call: `init` with the configuration,
//! then `process`. As on the host, the state changes of a call that returns
//! `Ok` are kept for the next run and those of a failed call are dropped;
//! the emits of every call are returned as the guest made them (the host
//! appends them only when the call succeeds). Each test thread has its own
//! fake, so tests run in parallel. (In a wasm build the imports are the
//! host's, so the harness is for native tests only.)

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::bindings::weir::processor::types as wit;
use crate::{Batch, Config, Failure, Level, Processor};

/// A record for a [`TestBatch`].
#[derive(Debug, Clone, Default)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Defaults to the one after the previous record's (0 for the first).
    pub offset: Option<u64>,
}

impl TestRecord {
    /// A record without a key.
    pub fn new(value: impl AsRef<[u8]>) -> TestRecord {
        TestRecord {
            value: value.as_ref().to_vec(),
            ..TestRecord::default()
        }
    }

    pub fn key(mut self, key: impl AsRef<[u8]>) -> TestRecord {
        self.key = Some(key.as_ref().to_vec());
        self
    }

    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> TestRecord {
        self.headers
            .push((name.to_string(), value.as_ref().to_vec()));
        self
    }

    pub fn timestamp(mut self, ms: i64) -> TestRecord {
        self.timestamp = ms;
        self
    }

    pub fn offset(mut self, offset: u64) -> TestRecord {
        self.offset = Some(offset);
        self
    }
}

/// A batch built by hand: records of one partition of one topic (`input`,
/// partition 0 unless set).
#[derive(Debug, Clone)]
pub struct TestBatch {
    topic: String,
    partition: u32,
    records: Vec<TestRecord>,
}

impl Default for TestBatch {
    fn default() -> Self {
        TestBatch::new()
    }
}

impl TestBatch {
    pub fn new() -> TestBatch {
        TestBatch {
            topic: "input".into(),
            partition: 0,
            records: Vec::new(),
        }
    }

    pub fn topic(mut self, topic: &str) -> TestBatch {
        self.topic = topic.to_string();
        self
    }

    pub fn partition(mut self, partition: u32) -> TestBatch {
        self.partition = partition;
        self
    }

    pub fn record(mut self, record: TestRecord) -> TestBatch {
        self.records.push(record);
        self
    }

    /// Adds a record with this key and value.
    pub fn keyed(self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> TestBatch {
        self.record(TestRecord::new(value).key(key))
    }

    /// Adds a record with this value and no key.
    pub fn value(self, value: impl AsRef<[u8]>) -> TestBatch {
        self.record(TestRecord::new(value))
    }

    /// The columnar batch the host would send.
    fn columnar(&self) -> Batch {
        let mut batch = wit::Batch {
            topic: self.topic.clone(),
            partition: self.partition,
            high_watermark: 0,
            offsets: Vec::new(),
            timestamps: Vec::new(),
            spans: Vec::new(),
            headers: Vec::new(),
            data: Vec::new(),
        };
        let push = |data: &mut Vec<u8>, bytes: &[u8]| {
            let start = data.len() as u32;
            data.extend_from_slice(bytes);
            [start, bytes.len() as u32]
        };
        let mut next = 0;
        for r in &self.records {
            let offset = r.offset.unwrap_or(next);
            next = offset + 1;
            batch.offsets.push(offset);
            batch.timestamps.push(r.timestamp);
            let key = match &r.key {
                Some(key) => push(&mut batch.data, key),
                None => [0, crate::NO_KEY],
            };
            let value = push(&mut batch.data, &r.value);
            let first_header = (batch.headers.len() / crate::HEADER_WIDTH) as u32;
            for (name, v) in &r.headers {
                let name = push(&mut batch.data, name.as_bytes());
                let v = push(&mut batch.data, v);
                batch.headers.extend(name.into_iter().chain(v));
            }
            batch.spans.extend(key.into_iter().chain(value));
            batch.spans.extend([first_header, r.headers.len() as u32]);
        }
        batch.high_watermark = next;
        Batch::new(batch)
    }
}

/// A record the guest emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Emitted {
    /// The value as UTF-8 (lossy), for assertions.
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// What one [`Harness::run`] did.
#[derive(Debug)]
pub struct Run {
    /// `init`'s refusal, as the host would stop the processor with it.
    pub init: Result<(), String>,
    /// What `process` returned (`Ok` when `init` failed and it never ran).
    pub result: Result<(), Failure>,
    /// Every record the guest emitted, in order.
    pub emits: Vec<Emitted>,
    /// Every line the guest logged.
    pub logs: Vec<(Level, String)>,
}

/// Runs a guest natively against an in-memory host; keeps its configuration
/// and its committed state between runs.
#[derive(Debug, Default)]
pub struct Harness {
    config: Vec<(String, String)>,
    state: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::default()
    }

    /// Adds a configuration entry for `init`.
    pub fn config(mut self, key: &str, value: &str) -> Harness {
        self.config.push((key.to_string(), value.to_string()));
        self
    }

    /// Sets a committed state entry, as an earlier batch would have left it.
    pub fn with_state(mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Harness {
        self.state
            .insert(key.as_ref().to_vec(), value.as_ref().to_vec());
        self
    }

    /// The committed state.
    pub fn state(&self) -> &BTreeMap<Vec<u8>, Vec<u8>> {
        &self.state
    }

    /// The committed value under `key`, as UTF-8 (lossy).
    pub fn state_str(&self, key: impl AsRef<[u8]>) -> Option<String> {
        self.state
            .get(key.as_ref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// One host call of `P` on `batch`: `init`, then `process`.
    pub fn run<P: Processor>(&mut self, batch: &TestBatch) -> Run {
        fake::begin(self.state.clone());
        let init = P::init(&Config::new(self.config.clone()));
        let result = match init {
            Ok(()) => P::process(&batch.columnar()),
            Err(_) => Ok(()),
        };
        let (emits, logs, state) = fake::end();
        if init.is_ok() && result.is_ok() {
            self.state = state;
        }
        Run {
            init,
            result,
            emits,
            logs,
        }
    }
}

/// The in-memory host the SDK's imports call natively.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) mod fake {
    use super::*;

    /// The largest emitted record, as on the host.
    const MAX_EMIT_BYTES: usize = 1 << 20;

    #[derive(Default)]
    struct Fake {
        emits: Vec<Emitted>,
        logs: Vec<(Level, String)>,
        state: BTreeMap<Vec<u8>, Vec<u8>>,
    }

    thread_local! {
        static FAKE: RefCell<Option<Fake>> = const { RefCell::new(None) };
    }

    fn with<T>(f: impl FnOnce(&mut Fake) -> T) -> T {
        FAKE.with(|fake| {
            let mut fake = fake.borrow_mut();
            let fake = fake.as_mut().expect(
                "the weir host imports are only available inside weir_guest::testing::Harness::run \
                 when a guest runs natively",
            );
            f(fake)
        })
    }

    pub(super) fn begin(state: BTreeMap<Vec<u8>, Vec<u8>>) {
        FAKE.with(|fake| {
            *fake.borrow_mut() = Some(Fake {
                state,
                ..Fake::default()
            })
        });
    }

    #[allow(clippy::type_complexity)]
    pub(super) fn end() -> (
        Vec<Emitted>,
        Vec<(Level, String)>,
        BTreeMap<Vec<u8>, Vec<u8>>,
    ) {
        let fake = FAKE
            .with(|fake| fake.borrow_mut().take())
            .unwrap_or_default();
        (fake.emits, fake.logs, fake.state)
    }

    /// Names the host accepts for topics.
    fn valid_topic(topic: &str) -> bool {
        !topic.is_empty()
            && topic.len() <= 200
            && topic != "."
            && topic != ".."
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    }

    /// What the host refuses in an emitted record.
    fn refusal(topic: &str, size: usize) -> Option<String> {
        if !valid_topic(topic) {
            return Some(format!("invalid topic name {topic:?}"));
        }
        (size > MAX_EMIT_BYTES)
            .then(|| format!("record of {size} bytes exceeds the {MAX_EMIT_BYTES}-byte limit"))
    }

    pub fn emit(
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), String> {
        let size = key.map_or(0, <[u8]>::len)
            + value.len()
            + headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>();
        if let Some(why) = refusal(topic, size) {
            return Err(why);
        }
        with(|f| {
            f.emits.push(Emitted {
                topic: topic.to_string(),
                key: key.map(<[u8]>::to_vec),
                value: value.to_vec(),
                headers: headers.to_vec(),
            })
        });
        Ok(())
    }

    /// The host's `emit-batch`: every record, or none.
    pub fn emit_batch(emits: &wit::Emits) -> Result<(), String> {
        if !valid_topic(&emits.topic) {
            return Err(format!("invalid topic name {:?}", emits.topic));
        }
        let bytes = |start: u32, len: u32| &emits.data[start as usize..(start + len) as usize];
        let mut records = Vec::new();
        for (index, span) in emits.spans.chunks_exact(crate::SPAN_WIDTH).enumerate() {
            let key = (span[1] != crate::NO_KEY).then(|| bytes(span[0], span[1]).to_vec());
            let (first, count) = (span[4] as usize, span[5] as usize);
            let headers: Vec<(String, Vec<u8>)> = emits.headers
                [first * crate::HEADER_WIDTH..(first + count) * crate::HEADER_WIDTH]
                .chunks_exact(crate::HEADER_WIDTH)
                .map(|h| {
                    let name = String::from_utf8_lossy(bytes(h[0], h[1])).into_owned();
                    (name, bytes(h[2], h[3]).to_vec())
                })
                .collect();
            let value = bytes(span[2], span[3]).to_vec();
            let size = key.as_ref().map_or(0, Vec::len)
                + value.len()
                + headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>();
            if let Some(why) = refusal(&emits.topic, size) {
                return Err(format!("record {index}: {why}"));
            }
            records.push(Emitted {
                topic: emits.topic.clone(),
                key,
                value,
                headers,
            });
        }
        with(|f| f.emits.extend(records));
        Ok(())
    }

    pub fn log(level: Level, message: &str) {
        with(|f| f.logs.push((level, message.to_string())));
    }

    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        with(|f| f.state.get(key).cloned())
    }

    pub fn put(key: &[u8], value: &[u8]) -> Result<(), String> {
        with(|f| f.state.insert(key.to_vec(), value.to_vec()));
        Ok(())
    }

    pub fn delete(key: &[u8]) {
        with(|f| f.state.remove(key));
    }

    pub fn scan(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
        with(|f| {
            f.state
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}
