//! The commit step: the one place where a batch's outcome leaves the
//! processor. Emits are routed here (every record stamped with the guest
//! version that produced it; a shadow's emits redirected to its side topics,
//! its dead letters left in place), then the emits and the next offset go to
//! the backend as one [`Commit`], fenced by the group generation.

use super::decision::{Step, dlq_headers};
use super::{Processor, ProcessorError};
use crate::consumer::{Commit, CommitMode, Emit, Polled};

impl Processor {
    /// Commits `step` for `batch`. Returns `false` when the group fenced the
    /// commit (this member is a zombie: the partition moved on while the
    /// batch ran, its new owner processes the batch again, nothing was
    /// written). The breaker's verdict on the step comes after the commit: an
    /// error here means the step committed and the member must stop.
    pub(super) fn commit(
        &mut self,
        batch: &Polled,
        step: Step,
        version: &str,
    ) -> Result<bool, ProcessorError> {
        let started = std::time::Instant::now();
        let processed = step.next - batch.records[0].offset;
        let emitted = step.emits.len() as u64;
        let handled = step.handled.clone();
        let dead_letter = match handled {
            super::decision::Handled::DeadLettered => step.emits.clone(),
            _ => Vec::new(),
        };
        let dlq = self.config.dlq_topic();
        let suffix = self.config.emit_suffix.as_deref();
        let (mut emits, create_like) = route(step.emits, version, suffix, &dlq);
        stamp_source(&mut emits, batch);
        let mode = self.config.commit;
        // At-most-once committed the batch's end before the call: never
        // move the offset back.
        let next = match mode {
            CommitMode::AtMostOnce => step.next.max(batch.next_offset()),
            _ => step.next,
        };
        let commit = Commit {
            source: batch.source(),
            next,
            emits,
            create_like,
            state: step.state,
            mode,
        };
        match self.consumer.commit(commit) {
            Err(e) if e.is_fenced() => {
                tracing::warn!(processor = %self.config.name, error = %e, "batch abandoned");
                self.stats.record_fenced();
                return Ok(false);
            }
            other => other?,
        }
        self.stats.record_batch(processed, version);
        self.stats.record_emitted(emitted, version);
        let seconds = started.elapsed().as_secs_f64();
        self.stats
            .record_latency("weir_commit_seconds", version, seconds);
        self.stats.clear_attempts();
        self.count_for_breaker(batch, &handled, &dead_letter)?;
        Ok(true)
    }
}

/// Names the source of every emit (`weir.source.topic`, `.partition`,
/// `.offset`: the batch's first record, and `weir.source.seq`: the emit's
/// place among the batch's emits), unless the guest named one, so an
/// at-least-once reader can drop the repeats of a redelivered batch.
fn stamp_source(emits: &mut [Emit], batch: &Polled) {
    let first = batch.records[0].offset.to_string();
    let partition = batch.partition.to_string();
    for (seq, emit) in emits.iter_mut().enumerate() {
        let headers = &mut emit.record.headers;
        if headers.iter().any(|(n, _)| n == dlq_headers::SOURCE_TOPIC) {
            continue;
        }
        headers.extend([
            (
                dlq_headers::SOURCE_TOPIC.to_string(),
                batch.topic.as_bytes().to_vec(),
            ),
            (
                dlq_headers::SOURCE_PARTITION.to_string(),
                partition.as_bytes().to_vec(),
            ),
            (
                dlq_headers::SOURCE_OFFSET.to_string(),
                first.as_bytes().to_vec(),
            ),
            (
                dlq_headers::SOURCE_SEQ.to_string(),
                seq.to_string().into_bytes(),
            ),
        ]);
    }
}

/// Stamps every emit with `version` (unless the guest set the header), and
/// with a shadow's `suffix` sends each to `<topic><suffix>` except those bound
/// for `dlq`. Returns the emits and the side topics to create like their
/// source (so the source's partitioner places the records), each once.
fn route(
    mut emits: Vec<Emit>,
    version: &str,
    suffix: Option<&str>,
    dlq: &str,
) -> (Vec<Emit>, Vec<(String, String)>) {
    let mut sides: Vec<(String, String)> = Vec::new();
    for emit in &mut emits {
        let headers = &mut emit.record.headers;
        if !headers.iter().any(|(n, _)| n == dlq_headers::VERSION) {
            // Room for the version and the four source headers at once.
            headers.reserve(5);
            headers.push((dlq_headers::VERSION.to_string(), version.into()));
        }
        if let Some(suffix) = suffix
            && emit.topic != dlq
        {
            let side = format!("{}{suffix}", emit.topic);
            if !sides.iter().any(|(s, _)| *s == side) {
                sides.push((side.clone(), emit.topic.clone()));
            }
            emit.topic = side;
        }
    }
    (emits, sides)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Record;

    fn emit(topic: &str) -> Emit {
        Emit {
            topic: topic.into(),
            record: Record::keyed(b"k".to_vec(), b"v".to_vec()),
        }
    }

    #[test]
    fn every_emit_carries_the_version_unless_the_guest_set_one() {
        let mut own = emit("out");
        own.record
            .headers
            .push((dlq_headers::VERSION.into(), b"mine".to_vec()));
        let (routed, sides) = route(vec![emit("out"), own], "v2", None, "p.dlq");
        let versions: Vec<&[u8]> = routed
            .iter()
            .map(|e| {
                let all: Vec<_> = e
                    .record
                    .headers
                    .iter()
                    .filter(|(n, _)| n == dlq_headers::VERSION)
                    .collect();
                assert_eq!(all.len(), 1, "one version header");
                all[0].1.as_slice()
            })
            .collect();
        assert_eq!(versions, [b"v2".as_slice(), b"mine".as_slice()]);
        assert!(sides.is_empty());
    }

    #[test]
    fn a_shadow_redirects_emits_to_side_topics_but_not_its_dead_letters() {
        let (routed, sides) = route(
            vec![emit("out"), emit("p.dlq"), emit("out"), emit("other")],
            "v2",
            Some(".shadow"),
            "p.dlq",
        );
        let topics: Vec<&str> = routed.iter().map(|e| e.topic.as_str()).collect();
        assert_eq!(
            topics,
            ["out.shadow", "p.dlq", "out.shadow", "other.shadow"]
        );
        assert_eq!(
            sides,
            [
                ("out.shadow".to_string(), "out".to_string()),
                ("other.shadow".to_string(), "other".to_string())
            ]
        );
    }
}
