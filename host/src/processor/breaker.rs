//! The circuit breaker: tells a systemic failure from a poison record, so a
//! broken deployment (no memory for an instance, a dependency gone, a bug
//! that fails every record) stops the member with the reason instead of
//! draining the input into the dead-letter topic one record at a time.
//!
//! It trips when `breaker_threshold` records in a row went to the dead-letter
//! topic with no record processed between them (the count survives across
//! batches; a processed record resets it, a skipped one leaves it), or when a
//! batch's retries ran out and its instance never even started (no record is
//! to blame, so isolating one would only dead-letter innocent records). The
//! member then stops with [`ProcessorError::Tripped`]; what follows (pause
//! or stop) is the `when_tripped` setting, applied by whoever runs the
//! members. Each trip is logged and counted (`weir_breaker_trips_total`).

use super::decision::{Handled, dlq_headers};
use super::{Attempt, Processor, ProcessorError};
use crate::consumer::{Emit, Polled};
use crate::runtime::RuntimeError;

impl Processor {
    /// Counts what a committed step did with `batch`'s front record; trips
    /// the breaker when the dead letters in a row reach the threshold.
    pub(super) fn count_for_breaker(
        &mut self,
        batch: &Polled,
        handled: &Handled,
        emits: &[Emit],
    ) -> Result<(), ProcessorError> {
        match handled {
            Handled::Processed => self.dead_letters_in_row = 0,
            Handled::Skipped(_) => {}
            Handled::DeadLettered => self.dead_letters_in_row += 1,
        }
        let threshold = self.config.breaker_threshold;
        if threshold == 0 || self.dead_letters_in_row < threshold {
            return Ok(());
        }
        let error = emits
            .iter()
            .flat_map(|e| &e.record.headers)
            .find(|(name, _)| name == dlq_headers::ERROR)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        Err(self.trip(format!(
            "{} records in a row went to {}, the last at {}/{} offset {}: {error}",
            self.dead_letters_in_row,
            self.config.dlq_topic(),
            batch.topic,
            batch.partition,
            batch.records[0].offset,
        )))
    }

    /// The breaker's verdict on a batch whose `attempts` all failed, the last
    /// with `last`: tripped when its instance never started.
    pub(super) fn never_started(&self, attempts: u32, last: &Attempt) -> Option<ProcessorError> {
        match last {
            Attempt::Fault(fault @ RuntimeError::Start(_)) if self.config.breaker_threshold > 0 => {
                Some(self.trip(format!(
                    "the guest could not start an instance in {attempts} attempt(s): {}",
                    crate::error::chain(fault)
                )))
            }
            _ => None,
        }
    }

    fn trip(&self, reason: String) -> ProcessorError {
        tracing::error!(processor = %self.config.name, %reason, "circuit breaker tripped");
        self.stats.record_trip();
        ProcessorError::Tripped { reason }
    }
}
