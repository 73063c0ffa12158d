//! Retries, and what follows when they run out: the poison-record hunt.
//!
//! A batch that keeps failing (a trap, a blown limit, or the guest asking to
//! retry) is retried with exponential backoff. After `max_retries`, either the
//! processor stops, or the batch is bisected: each half runs once; a half that
//! succeeds is committed with its own emits, a failing half is split again, until
//! the failing record stands alone and is dead-lettered with its error. Every
//! record is thus either committed after a successful run or dead-lettered, and
//! a single poison record costs O(log n) extra calls, not a stuck partition.
//! What each call leads to is the loop's own decision (`decision.rs`): a
//! record the guest skips or dead-letters is handled as its kind says, and a
//! fatal failure stops the processor, during isolation as outside it.
//! With the pause policy, the member instead stops fetching the partition and
//! goes on with the others, leaving the record for a fix or an operator.

use std::sync::Arc;

use tokio::sync::watch;

use super::decision::{Decision, dead_letter, decide};
use super::{Attempt, Processor, ProcessorError, WhenExhausted};
use crate::consumer::Polled;
use crate::runtime::Handler;

impl Processor {
    /// Backs off before the next attempt, or, once retries ran out, applies
    /// the exhausted policy. Returns `true` when the batch is finished with
    /// (isolated, or shutdown requested) and `false` to call again.
    pub(super) async fn retry_or_isolate(
        &mut self,
        handler: &Arc<dyn Handler>,
        batch: &Polled,
        attempts: u32,
        last: Attempt,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<bool, ProcessorError> {
        let policy = self.config.retry;
        if attempts > policy.max_retries
            && let Some(tripped) = self.never_started(attempts, &last)
        {
            return Err(tripped);
        }
        if attempts <= policy.max_retries {
            self.stats.record_retry();
            let factor = 2u32.saturating_pow(attempts - 1);
            let delay = policy
                .initial_backoff
                .saturating_mul(factor)
                .min(policy.max_backoff);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => {}
            }
            return Ok(*shutdown.borrow());
        }
        match policy.then {
            WhenExhausted::Stop => Err(ProcessorError::Exhausted {
                topic: batch.topic.clone(),
                partition: batch.partition,
                offset: batch.records[0].offset,
                attempts,
                last: Box::new(last),
            }),
            WhenExhausted::Pause => {
                tracing::warn!(processor = %self.config.name, topic = %batch.topic, partition = batch.partition, offset = batch.records[0].offset, error = %last, "retries exhausted; pausing the partition");
                self.consumer.pause(&batch.source());
                self.paused_by = Some(handler.version().to_string());
                self.stats.set_paused(self.consumer.paused());
                self.stats.clear_attempts();
                Ok(true)
            }
            WhenExhausted::DeadLetter => {
                tracing::warn!(processor = %self.config.name, offset = batch.records[0].offset, error = %last, "retries exhausted; isolating the poison record");
                self.isolate(handler, batch.clone(), shutdown).await?;
                Ok(true)
            }
        }
    }

    /// Bisects `batch` until every record is committed or dead-lettered.
    async fn isolate(
        &mut self,
        handler: &Arc<dyn Handler>,
        batch: Polled,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), ProcessorError> {
        let dlq = self.config.dlq_topic();
        let mut pending = batch.records.clone();
        let mut window = (pending.len() / 2).max(1);
        while !pending.is_empty() && !*shutdown.borrow() {
            let take = window.min(pending.len());
            let part = Polled {
                records: pending[..take].to_vec(),
                ..batch.clone()
            };
            let (part, result) = self.call(handler, part).await?;
            let first = part.records[0].offset;
            let version = handler.version();
            let step = match decide(&part, result, &dlq, version) {
                Decision::Commit(step) => {
                    self.note(&step.handled, version, first);
                    step
                }
                Decision::Stop(e) => return Err(e),
                Decision::Prefix(len) => {
                    window = len;
                    continue;
                }
                Decision::Retry(failed) if take == 1 => {
                    if let Some(tripped) = self.never_started(1, &failed) {
                        return Err(tripped);
                    }
                    let error = match failed {
                        Attempt::Retry(message) => message,
                        Attempt::Fault(fault) => crate::error::chain(&fault),
                    };
                    tracing::warn!(processor = %self.config.name, offset = first, %error, "dead-lettering the poison record");
                    self.stats.record_dead_letter(version);
                    dead_letter(&part, &error, &dlq, version)
                }
                Decision::Retry(_) => {
                    window = take / 2;
                    continue;
                }
            };
            let moved = (step.next - first) as usize;
            if !self.commit(&part, step, version)? {
                tracing::warn!(processor = %self.config.name, "isolation abandoned");
                return Ok(());
            }
            pending.drain(..moved);
            window = pending.len();
        }
        Ok(())
    }
}
