//! [`Emits`]: many records for one topic, queued with a single host call.

use crate::bindings::weir::processor::types as wit;
use crate::{HEADER_WIDTH, NO_KEY, sys};

/// Records for one topic, queued by one host call ([`Emits::send`]): what
/// [`crate::emit`] does for each record, for the cost of a single crossing of
/// the boundary instead of one per record. The records are laid out in the
/// columnar form the host reads batches in (one byte arena, integer spans),
/// so building them costs no allocation per record either.
///
/// ```ignore
/// let first = batch.records().next().expect("a batch is never empty");
/// let mut out = weir_guest::Emits::new("upper");
/// for r in batch.records() {
///     out.push(r.key(), &r.value().to_ascii_uppercase(), &[]);
/// }
/// // A refusal fails the batch as a whole: no record is to blame.
/// out.send().map_err(|e| first.fail(FailureKind::Fatal, e))?;
/// ```
pub struct Emits {
    inner: wit::Emits,
}

/// Appends `bytes` to the arena; returns their start and length.
fn arena(data: &mut Vec<u8>, bytes: &[u8]) -> [u32; 2] {
    let start = data.len() as u32;
    data.extend_from_slice(bytes);
    [start, bytes.len() as u32]
}

impl Emits {
    /// No records yet, bound for `topic`.
    pub fn new(topic: &str) -> Emits {
        Emits {
            inner: wit::Emits {
                topic: topic.to_string(),
                spans: Vec::new(),
                headers: Vec::new(),
                data: Vec::new(),
            },
        }
    }

    /// Adds a record. Nothing reaches the host until [`Emits::send`].
    pub fn push(&mut self, key: Option<&[u8]>, value: &[u8], headers: &[(&str, &[u8])]) {
        let inner = &mut self.inner;
        let first = (inner.headers.len() / HEADER_WIDTH) as u32;
        let key = match key {
            Some(k) => arena(&mut inner.data, k),
            None => [0, NO_KEY],
        };
        let value = arena(&mut inner.data, value);
        for (name, v) in headers {
            inner
                .headers
                .extend(arena(&mut inner.data, name.as_bytes()));
            inner.headers.extend(arena(&mut inner.data, v));
        }
        inner.spans.extend([
            key[0],
            key[1],
            value[0],
            value[1],
            first,
            headers.len() as u32,
        ]);
    }

    /// How many records were pushed.
    pub fn len(&self) -> usize {
        self.inner.spans.len() / crate::SPAN_WIDTH
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.inner.spans.is_empty()
    }

    /// Queues every record, in order, to be appended if the current batch
    /// succeeds. All or nothing: when the topic does not exist or a record is
    /// too large, nothing is queued and the error names the first refused
    /// record (`record <index>: ...`).
    pub fn send(self) -> Result<(), String> {
        if self.is_empty() {
            return Ok(());
        }
        sys::emit_batch(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, TestBatch, TestRecord};
    use crate::{Batch, Failure, FailureKind, Processor};

    /// Copies every record to the topic `to` with one `Emits`, adding a
    /// header, and records how many it pushed.
    struct Copy;

    impl Processor for Copy {
        fn process(batch: &Batch) -> Result<(), Failure> {
            let first = batch.records().next().unwrap();
            let topic = batch.topic().replace("in", "out");
            let mut out = Emits::new(&topic);
            assert!(out.is_empty());
            for r in batch.records() {
                out.push(r.key(), r.value(), &[("seen", b"1"), ("from", b"in")]);
            }
            assert_eq!(out.len(), batch.len());
            out.send().map_err(|e| first.fail(FailureKind::Fatal, e))
        }
    }

    #[test]
    fn every_pushed_record_is_emitted_in_order_with_its_key_and_headers() {
        let batch = TestBatch::new()
            .topic("in")
            .keyed("k1", "one")
            .value("two")
            .record(TestRecord::new("").key(""));
        let run = Harness::new().run::<Copy>(&batch);
        assert!(run.result.is_ok(), "{:?}", run.result);
        let got: Vec<_> = run
            .emits
            .iter()
            .map(|e| (e.topic.as_str(), e.key.clone(), e.value_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("out", Some(b"k1".to_vec()), "one".to_string()),
                ("out", None, "two".to_string()),
                ("out", Some(Vec::new()), String::new()),
            ]
        );
        for e in &run.emits {
            assert_eq!(e.header("seen"), Some(&b"1"[..]));
            assert_eq!(e.header("from"), Some(&b"in"[..]));
        }
    }

    #[test]
    fn a_refused_record_queues_nothing_and_is_named() {
        let batch = TestBatch::new()
            .topic("in")
            .value("small")
            .value(vec![b'x'; (1 << 20) + 1]);
        let run = Harness::new().run::<Copy>(&batch);
        let failure = run.result.unwrap_err();
        assert!(
            failure.message.starts_with("record 1: record of"),
            "{}",
            failure.message
        );
        assert!(
            run.emits.is_empty(),
            "all or nothing: {:?}",
            run.emits.len()
        );
    }
}
