//! A processor's instances: `N` members of its group, each its own task with
//! its own consumer and a static instance id `<processor>-<i>`, so a member that
//! restarts (a hot swap, say) rejoins without a rebalance. Changing `N` while
//! running starts new members or stops the highest-numbered ones, which leave the
//! group for good; either way the group rebalances.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Processor, ProcessorConfig, ProcessorError, Stats};
use crate::group::Groups;
use crate::log::Log;
use crate::offsets::Offsets;
use crate::runtime::Handler;

struct Running {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<Processor, ProcessorError>>,
    stats: Arc<Stats>,
}

/// The running members of one processor.
pub struct Instances {
    config: ProcessorConfig,
    log: Arc<Log>,
    offsets: Arc<Offsets>,
    groups: Arc<Groups>,
    handler: Arc<dyn Handler>,
    running: Vec<Running>,
    /// Each member that stops on its own (a failure) says so here.
    failures: (mpsc::UnboundedSender<usize>, mpsc::UnboundedReceiver<usize>),
}

impl Instances {
    /// Starts `count` members.
    pub fn start(
        config: ProcessorConfig,
        log: Arc<Log>,
        offsets: Arc<Offsets>,
        groups: Arc<Groups>,
        handler: Arc<dyn Handler>,
        count: usize,
    ) -> Result<Instances, ProcessorError> {
        let mut instances = Instances {
            config,
            log,
            offsets,
            groups,
            handler,
            running: Vec::new(),
            failures: mpsc::unbounded_channel(),
        };
        instances.grow_to(count)?;
        Ok(instances)
    }

    fn grow_to(&mut self, count: usize) -> Result<(), ProcessorError> {
        while self.running.len() < count {
            let mut config = self.config.clone();
            config.instance_id = Some(format!("{}-{}", config.name, self.running.len()));
            let processor = Processor::new(
                config,
                self.log.clone(),
                self.offsets.clone(),
                self.groups.clone(),
                self.handler.clone(),
            )?;
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

    /// Changes the number of members; the group rebalances.
    pub async fn scale(&mut self, count: usize) -> Result<(), ProcessorError> {
        while self.running.len() > count {
            let member = self.running.pop().expect("more members than the target");
            member.stop.send(true).ok();
            let processor = member.task.await.map_err(ProcessorError::Task)??;
            processor.leave();
        }
        self.grow_to(count)
    }

    /// Waits until some member stops with an error; [`Instances::stop`] then
    /// returns that error.
    pub async fn failed(&mut self) {
        self.failures.1.recv().await;
    }

    /// How many members run.
    pub fn count(&self) -> usize {
        self.running.len()
    }

    /// Each member's counters, by instance number.
    pub fn stats(&self) -> Vec<Arc<Stats>> {
        self.running.iter().map(|r| r.stats.clone()).collect()
    }

    /// Stops every member after its batch in flight. Static members stay in the
    /// group until their session times out, so a restart is rebalance-free.
    pub async fn stop(self) -> Result<Vec<Processor>, ProcessorError> {
        for member in &self.running {
            member.stop.send(true).ok();
        }
        let mut stopped = Vec::new();
        for member in self.running {
            stopped.push(member.task.await.map_err(ProcessorError::Task)??);
        }
        Ok(stopped)
    }
}
