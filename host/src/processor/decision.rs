//! The one decision the loop makes after each guest call: from the batch and
//! what the handler returned, what to commit, what to call again, what to
//! dead-letter, and when to stop. It is pure (no I/O, no clock), so the loop
//! and the poison-record isolation share it and it is tested on its own.

use super::{Attempt, ProcessorError};
use crate::consumer::{Emit, Polled};
use crate::log::Record;
use crate::runtime::{FailureKind, Output, RuntimeError};
use crate::state::Change;

/// Headers weir adds: `VERSION` on every emitted and dead-lettered record (the
/// guest version that produced it), the rest on dead-lettered records.
pub mod dlq_headers {
    pub const SOURCE_TOPIC: &str = "weir.source.topic";
    pub const SOURCE_PARTITION: &str = "weir.source.partition";
    pub const SOURCE_OFFSET: &str = "weir.source.offset";
    pub const ERROR: &str = "weir.error";
    pub const VERSION: &str = "weir.version";
    /// On emits: the emit's place among its batch's emits.
    pub const SOURCE_SEQ: &str = "weir.source.seq";
}

/// What a committed step did with the records it moves past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The guest processed them.
    Processed,
    /// The guest asked to skip the front record.
    Skipped(String),
    /// The front record goes to the dead-letter topic.
    DeadLettered,
}

/// What one step commits: the emits to append, the state changes and the
/// next offset.
#[derive(Debug)]
pub struct Step {
    pub emits: Vec<Emit>,
    pub state: Vec<Change>,
    pub next: u64,
    pub handled: Handled,
}

/// What the loop does next with a batch.
#[derive(Debug)]
pub enum Decision {
    /// Commit this step.
    Commit(Step),
    /// Run the batch's first `len` records again on their own, so they commit
    /// with their own emits (a call's emits cannot be split by record).
    Prefix(usize),
    /// Back off and call again; when the retries run out, the exhausted
    /// policy applies.
    Retry(Attempt),
    /// Stop the processor.
    Stop(ProcessorError),
}

/// Decides what follows a call of the guest `version` on `batch`; a
/// dead-lettered record is bound for `dlq`.
pub fn decide(
    batch: &Polled,
    result: Result<Output, RuntimeError>,
    dlq: &str,
    version: &str,
) -> Decision {
    let first = batch.records[0].offset;
    let output = match result {
        Ok(output) => output,
        Err(RuntimeError::Init(message)) => {
            return Decision::Stop(ProcessorError::Guest(RuntimeError::Init(message)));
        }
        Err(fault) => return Decision::Retry(Attempt::Fault(fault)),
    };
    let failure = match output.outcome {
        Ok(()) => {
            return Decision::Commit(Step {
                emits: output.emits,
                state: output.state,
                next: batch.next_offset(),
                handled: Handled::Processed,
            });
        }
        Err(f) => f,
    };
    let index = failure.index as usize;
    if index >= batch.records.len() {
        return Decision::Stop(ProcessorError::BadFailureIndex {
            index: failure.index,
            len: batch.records.len(),
        });
    }
    if index > 0 {
        return Decision::Prefix(index);
    }
    match failure.kind {
        FailureKind::Retry => Decision::Retry(Attempt::Retry(failure.message)),
        FailureKind::Skip => Decision::Commit(Step {
            emits: Vec::new(),
            state: Vec::new(),
            next: first + 1,
            handled: Handled::Skipped(failure.message),
        }),
        FailureKind::DeadLetter => {
            Decision::Commit(dead_letter(batch, &failure.message, dlq, version))
        }
        FailureKind::Fatal => Decision::Stop(ProcessorError::Fatal {
            topic: batch.topic.clone(),
            partition: batch.partition,
            offset: first,
            message: failure.message,
        }),
    }
}

/// The step that sends the record at the front of `batch` to `dlq` with its
/// source and `error` in headers, and moves past it.
pub fn dead_letter(batch: &Polled, error: &str, dlq: &str, version: &str) -> Step {
    let source = &batch.records[0];
    let mut headers = source.headers.clone();
    headers.extend([
        (
            dlq_headers::SOURCE_TOPIC.to_string(),
            batch.topic.clone().into_bytes(),
        ),
        (
            dlq_headers::SOURCE_PARTITION.to_string(),
            batch.partition.to_string().into_bytes(),
        ),
        (
            dlq_headers::SOURCE_OFFSET.to_string(),
            source.offset.to_string().into_bytes(),
        ),
        (dlq_headers::ERROR.to_string(), error.as_bytes().to_vec()),
        (
            dlq_headers::VERSION.to_string(),
            version.as_bytes().to_vec(),
        ),
    ]);
    Step {
        emits: vec![Emit {
            topic: dlq.to_string(),
            record: Record {
                key: source.key.as_deref().map(<[u8]>::to_vec),
                value: source.value.to_vec(),
                headers,
                timestamp: Some(source.timestamp),
                nulls: Default::default(),
            },
        }],
        state: Vec::new(),
        next: source.offset + 1,
        handled: Handled::DeadLettered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::StoredRecord;
    use crate::runtime::Failure;

    fn batch(first: u64, n: u64) -> Polled {
        Polled {
            topic: "in".into(),
            partition: 2,
            high_watermark: first + n,
            records: (first..first + n)
                .map(|offset| StoredRecord {
                    offset,
                    timestamp: 7,
                    key: Some(b"k".to_vec().into()),
                    value: format!("v{offset}").into(),
                    headers: Vec::new(),
                    nulls: Default::default(),
                })
                .collect(),
        }
    }

    fn failed(index: u32, kind: FailureKind) -> Result<Output, RuntimeError> {
        Ok(Output {
            outcome: Err(Failure {
                index,
                kind,
                message: "bad".into(),
            }),
            emits: vec![Emit {
                topic: "out".into(),
                record: Record::keyed(b"k".to_vec(), b"x".to_vec()),
            }],
            state: vec![(b"k".to_vec(), Some(b"1".to_vec()))],
        })
    }

    fn decide_on(result: Result<Output, RuntimeError>) -> Decision {
        decide(&batch(10, 5), result, "p.dlq", "v1")
    }

    #[test]
    fn a_success_commits_the_whole_batch_with_its_emits() {
        let ok = Ok(Output {
            outcome: Ok(()),
            emits: Vec::new(),
            state: vec![(b"k".to_vec(), None)],
        });
        let Decision::Commit(step) = decide_on(ok) else {
            panic!("a success commits")
        };
        assert_eq!((step.next, step.handled), (15, Handled::Processed));
        assert_eq!(step.state.len(), 1, "a success commits its state changes");
    }

    #[test]
    fn a_failure_past_the_front_reruns_the_prefix_and_drops_the_emits() {
        assert!(matches!(
            decide_on(failed(3, FailureKind::DeadLetter)),
            Decision::Prefix(3)
        ));
    }

    #[test]
    fn a_failure_at_the_front_applies_its_kind() {
        let Decision::Commit(skip) = decide_on(failed(0, FailureKind::Skip)) else {
            panic!("skip commits")
        };
        assert_eq!(skip.next, 11);
        assert!(skip.emits.is_empty(), "a skipped record emits nothing");
        assert!(
            skip.state.is_empty(),
            "a failed call's state changes are dropped"
        );
        assert_eq!(skip.handled, Handled::Skipped("bad".into()));

        let Decision::Commit(dead) = decide_on(failed(0, FailureKind::DeadLetter)) else {
            panic!("dead-letter commits")
        };
        assert_eq!(dead.next, 11);
        assert_eq!(dead.emits.len(), 1);
        assert_eq!(dead.emits[0].topic, "p.dlq");
        let header = |name: &str| {
            let h = dead.emits[0].record.headers.iter().find(|(n, _)| n == name);
            h.map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header(dlq_headers::SOURCE_OFFSET).as_deref(), Some("10"));
        assert_eq!(header(dlq_headers::SOURCE_PARTITION).as_deref(), Some("2"));
        assert_eq!(header(dlq_headers::ERROR).as_deref(), Some("bad"));
        assert_eq!(header(dlq_headers::VERSION).as_deref(), Some("v1"));

        assert!(matches!(
            decide_on(failed(0, FailureKind::Retry)),
            Decision::Retry(Attempt::Retry(_))
        ));
        assert!(matches!(
            decide_on(failed(0, FailureKind::Fatal)),
            Decision::Stop(ProcessorError::Fatal { offset: 10, .. })
        ));
    }

    #[test]
    fn a_bad_index_or_a_failed_init_stops_and_a_fault_retries() {
        assert!(matches!(
            decide_on(failed(5, FailureKind::Skip)),
            Decision::Stop(ProcessorError::BadFailureIndex { index: 5, len: 5 })
        ));
        let init = Err(RuntimeError::Init("no".into()));
        assert!(matches!(
            decide_on(init),
            Decision::Stop(ProcessorError::Guest(RuntimeError::Init(_)))
        ));
        let deadline = Err(RuntimeError::Deadline(std::time::Duration::from_millis(5)));
        assert!(matches!(
            decide_on(deadline),
            Decision::Retry(Attempt::Fault(RuntimeError::Deadline(_)))
        ));
    }
}
