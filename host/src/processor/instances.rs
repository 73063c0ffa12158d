//! A processor's instances: `N` members of its group, each its own task with
//! its own consumer and a static instance id `<processor>-<i>`, so a member that
//! restarts (a hot swap, say) rejoins without a rebalance. Changing `N` while
//! running starts new members or stops the highest-numbered ones, which leave the
//! group for good; either way the group rebalances.
//!
//! All members share one version [`Slot`]: [`Instances::deploy`] swaps it (every
//! member picks the new version up at its next batch boundary), or, with a
//! rewind, pauses every member at a batch boundary, resets the group's offsets,
//! swaps, and resumes them. The members rejoin as the same static members, so
//! neither path rebalances the group.
//!
//! What the members processed is counted across their restarts (a rewind, a
//! scale-down): [`Instances::processed`] only grows.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Processor, ProcessorConfig, ProcessorError, Slot, Stats};
use crate::broker::SeekTo;
use crate::consumer::Backend;
use crate::runtime::Handler;

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<Processor, ProcessorError>>,
    stats: Arc<Stats>,
}

/// The running members of one processor.
pub struct Instances {
    config: ProcessorConfig,
    backend: Arc<dyn Backend>,
    slot: Arc<Slot>,
    running: Vec<Running>,
    /// Each member that stops on its own (a failure) says so here.
    failures: (mpsc::UnboundedSender<usize>, mpsc::UnboundedReceiver<usize>),
    /// Records processed by members that have stopped since the start.
    retired: u64,
}

/// What a processor's members have processed, still readable once they stop.
pub struct Processed {
    retired: u64,
    members: Vec<Arc<Stats>>,
}

impl Processed {
    /// Records processed, over every member past and present.
    pub fn total(&self) -> u64 {
        self.retired + self.members.iter().map(|s| s.records()).sum::<u64>()
    }
}

impl Instances {
    /// Starts `count` members.
    pub fn start(
        config: ProcessorConfig,
        backend: Arc<dyn Backend>,
        handler: Arc<dyn Handler>,
        count: usize,
    ) -> Result<Instances, ProcessorError> {
        let mut instances = Instances {
            config,
            backend,
            slot: Slot::new(handler),
            running: Vec::new(),
            failures: mpsc::unbounded_channel(),
            retired: 0,
        };
        instances.grow_to(count)?;
        Ok(instances)
    }

    fn grow_to(&mut self, count: usize) -> Result<(), ProcessorError> {
        while self.running.len() < count {
            let mut config = self.config.clone();
            config.instance_id = Some(format!("{}-{}", config.name, self.running.len()));
            let processor = Processor::with_slot(config, self.backend.as_ref(), self.slot.clone())?;
            let stats = processor.stats();
            let (stop, stopped) = watch::channel(false);
            let (failed, index) = (self.failures.0.clone(), self.running.len());
            let task = tokio::spawn(async move {
                let result = processor.run(stopped).await;
                if result.is_err() {
                    failed.send(index).ok();
                }
                result
            });
            self.running.push(Running { stop, task, stats });
        }
        Ok(())
    }

    /// Changes the number of members; the group rebalances. A scale-down
    /// stops the highest-numbered members all the way to `count`, even past
    /// one that had failed (it is going away; its error is logged).
    pub async fn scale(&mut self, count: usize) -> Result<(), ProcessorError> {
        while self.running.len() > count {
            let member = self.running.pop().expect("more members than the target");
            member.stop.send(true).ok();
            let stopped = member.task.await.map_err(ProcessorError::Task);
            self.retired += member.stats.records();
            match stopped {
                Ok(Ok(processor)) => processor.leave(),
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(processor = %self.config.name, error = %crate::error::chain(&e), "a member stopped by the scale-down had failed")
                }
            }
        }
        // A failure of a member now gone is no longer news.
        while self.failures.1.try_recv().is_ok() {}
        self.grow_to(count)
    }

    /// Waits until some member stops with an error; [`Instances::stop`] then
    /// returns that error.
    pub async fn failed(&mut self) {
        self.failures.1.recv().await;
    }

    /// Whether some member has stopped with an error since the last call
    /// (without waiting); [`Instances::stop`] then returns that error.
    pub fn has_failed(&mut self) -> bool {
        // A member task that ended without being asked to (an error, or a
        // panic, which never reaches the channel) has failed.
        let ended = self
            .running
            .iter()
            .any(|m| m.task.is_finished() && !*m.stop.borrow());
        self.failures.1.try_recv().is_ok() || ended
    }

    /// The version slot the members share (a file watcher swaps through it).
    pub fn slot(&self) -> Arc<Slot> {
        self.slot.clone()
    }

    /// Deploys a new version. Without `rewind` it is swapped in at each
    /// member's next batch boundary and nothing pauses. With `rewind`, every
    /// member first finishes its batch in flight and stops, the group's offsets
    /// on the processor's topics are reset, the version is swapped and the
    /// members resume: records from the rewind point on are processed by the new
    /// version only. If the reset fails, the old version keeps running and no
    /// offset moves.
    pub async fn deploy(
        &mut self,
        handler: Arc<dyn Handler>,
        rewind: Option<SeekTo>,
    ) -> Result<(), ProcessorError> {
        let Some(to) = rewind else {
            self.slot.swap(handler);
            return Ok(());
        };
        let (backend, slot) = (self.backend.clone(), self.slot.clone());
        let group = self
            .config
            .group
            .clone()
            .unwrap_or_else(|| self.config.name.clone());
        let topics = self.config.topics.clone();
        let moved = self
            .pause_while(|| {
                let moved = backend.reset(&group, &topics, to)?;
                slot.swap(handler);
                Ok(moved)
            })
            .await?;
        tracing::info!(group, partitions = moved.len(), "rewound and deployed");
        Ok(())
    }

    /// Stops every member after its batch in flight, runs `between` (a reset
    /// of the group's offsets, say), and starts them again as the same static
    /// members whatever it returned; returns that.
    pub async fn pause_while<T>(
        &mut self,
        between: impl FnOnce() -> Result<T, ProcessorError>,
    ) -> Result<T, ProcessorError> {
        let count = self.running.len();
        for member in &self.running {
            member.stop.send(true).ok();
        }
        for member in std::mem::take(&mut self.running) {
            // A member that failed did so on the old version or position,
            // which what follows may well fix: it does not stop the change.
            match member.task.await.map_err(ProcessorError::Task) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %crate::error::chain(&e), "a member had failed before the change")
                }
            }
            self.retired += member.stats.records();
        }
        while self.failures.1.try_recv().is_ok() {}
        let result = between();
        self.grow_to(count)?;
        result
    }

    /// How many members run.
    pub fn count(&self) -> usize {
        self.running.len()
    }

    /// What the members processed, past and present (readable after they
    /// stop).
    pub fn processed(&self) -> Processed {
        Processed {
            retired: self.retired,
            members: self.stats(),
        }
    }

    /// Each member's counters, by instance number.
    pub fn stats(&self) -> Vec<Arc<Stats>> {
        self.running.iter().map(|r| r.stats.clone()).collect()
    }

    /// Stops every member after its batch in flight. Static members stay in the
    /// group until their session times out, so a restart is rebalance-free.
    /// Every member is stopped even when one has failed; the first failure is
    /// returned.
    pub async fn stop(self) -> Result<Vec<Processor>, ProcessorError> {
        self.halt().await
    }

    /// Stops every member after its batch in flight and has each leave the
    /// group for good (a deleted processor). Returns the first failure.
    pub async fn retire(self) -> Result<(), ProcessorError> {
        for processor in self.halt().await? {
            processor.leave();
        }
        Ok(())
    }

    async fn halt(mut self) -> Result<Vec<Processor>, ProcessorError> {
        for member in &self.running {
            member.stop.send(true).ok();
        }
        let mut stopped = Vec::new();
        let mut first_error = None;
        for member in self.running.drain(..) {
            match member.task.await.map_err(ProcessorError::Task) {
                Ok(Ok(processor)) => stopped.push(processor),
                Ok(Err(e)) | Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        first_error.map_or(Ok(stopped), Err)
    }
}
