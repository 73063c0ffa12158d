//! A crash-test seam, compiled only with the `crash-seam` feature (the
//! integration tests turn it on): with `WEIR_CRASH_BEFORE_COMMIT=N` set, the
//! process aborts, as a kill would, when its Nth commit is about to be made,
//! after the batch was processed and before anything of it is written.

use crate::broker::SeekTo;
use crate::consumer::{Beat, Commit, Consumer, ConsumerError, PollFuture, PollLimits, Polled};
use crate::group::TopicPartition;

/// `consumer`, aborting before the Nth commit when the variable is set.
pub fn wrap(consumer: Box<dyn Consumer>) -> Box<dyn Consumer> {
    match std::env::var("WEIR_CRASH_BEFORE_COMMIT")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(limit) => Box::new(Crashing {
            inner: consumer,
            commits: 0,
            limit,
        }),
        None => consumer,
    }
}

struct Crashing {
    inner: Box<dyn Consumer>,
    commits: u64,
    limit: u64,
}

impl Consumer for Crashing {
    fn group(&self) -> &str {
        self.inner.group()
    }
    fn member(&self) -> &str {
        self.inner.member()
    }
    fn beat(&self) -> Option<Beat> {
        self.inner.beat()
    }
    fn sync(&mut self) -> Result<(), ConsumerError> {
        self.inner.sync()
    }
    fn poll(&mut self, limits: PollLimits) -> PollFuture<'_> {
        self.inner.poll(limits)
    }
    fn try_poll(&mut self, limits: PollLimits) -> Result<Option<Polled>, ConsumerError> {
        self.inner.try_poll(limits)
    }
    fn commit(&mut self, commit: Commit) -> Result<(), ConsumerError> {
        self.commits += 1;
        if self.commits >= self.limit {
            tracing::error!("crash-test seam: aborting between process and commit");
            std::process::abort();
        }
        self.inner.commit(commit)
    }
    fn seek(&mut self, tp: &TopicPartition, to: SeekTo) -> Result<u64, ConsumerError> {
        self.inner.seek(tp, to)
    }
    fn pause(&mut self, tp: &TopicPartition) {
        self.inner.pause(tp)
    }
    fn resume_all(&mut self) {
        self.inner.resume_all()
    }
    fn paused(&self) -> Vec<TopicPartition> {
        self.inner.paused()
    }
    fn positions(&self) -> Vec<(TopicPartition, u64)> {
        self.inner.positions()
    }
    fn lag(&self) -> Result<u64, ConsumerError> {
        self.inner.lag()
    }
    fn leave(&self) {
        self.inner.leave()
    }
}
