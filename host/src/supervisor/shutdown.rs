//! Graceful shutdown: every processor stops after its batches in flight,
//! within the shutdown grace; then the guests still running are interrupted
//! (their batches are not committed, and come again on the next start), so
//! the host exits within the grace plus [`INTERRUPT_BOUND`] whatever a guest
//! does.

use std::sync::Arc;

use tokio::sync::Mutex;

use super::{INTERRUPT_BOUND, Managed, Run, Supervisor};
use crate::error::chain as error_chain;
use crate::processor::ProcessorError;

/// How a processor's members stopped.
type Stopped = std::result::Result<Vec<crate::processor::Processor>, ProcessorError>;

impl Supervisor {
    /// Stops every processor after its batches in flight (graceful shutdown),
    /// all at once, waiting at most the shutdown grace; then interrupts the
    /// guests still running and waits at most [`INTERRUPT_BOUND`] more. A
    /// batch cut off is not committed, and is redelivered on the next start.
    /// The records stay, so the next start runs every processor again.
    pub async fn stop_all(&self) {
        let all: Vec<(String, Arc<Mutex<Managed>>)> = {
            let processors = self.processors.lock().await;
            let all = processors.iter();
            all.map(|(n, e)| (n.clone(), e.managed.clone())).collect()
        };
        let mut stopping = tokio::task::JoinSet::new();
        for (name, managed) in all {
            // Each waits for its own processor's lock, inside the grace: an
            // operation in flight there (a pause waiting for a batch) is cut
            // off with the rest.
            stopping.spawn(async move {
                let mut managed = managed.lock_owned().await;
                let stopped = managed.stop(Run::Paused).await;
                (name, stopped)
            });
        }
        if tokio::time::timeout(self.shutdown_grace, stopped(&mut stopping))
            .await
            .is_err()
        {
            tracing::warn!(grace = ?self.shutdown_grace, "batches still running after the shutdown grace: interrupting them; they will be redelivered");
            self.runtime.interrupt();
            if tokio::time::timeout(INTERRUPT_BOUND, stopped(&mut stopping))
                .await
                .is_err()
            {
                tracing::error!("some members did not stop after the interrupt; exiting anyway");
            }
        }
    }
}

/// Waits for every stopping processor, logging how each stopped.
async fn stopped(stopping: &mut tokio::task::JoinSet<(String, Option<Stopped>)>) {
    while let Some(done) = stopping.join_next().await {
        match done {
            Ok((name, Some(Err(e)))) => {
                tracing::error!(processor = %name, error = %error_chain(&e), "stopped with an error")
            }
            Ok((name, _)) => tracing::info!(processor = %name, "stopped"),
            Err(e) => tracing::error!(error = %e, "stopping a processor"),
        }
    }
}
