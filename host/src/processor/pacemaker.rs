//! Liveness while a guest runs. A batch's guest call runs on the member's own
//! thread (no hand-off to a pool thread and back per batch, which cost two
//! wake-ups on the hot path and most of the swap pause's tail), so a companion
//! task reports the member alive to its group while a call is in flight:
//! a long batch is not mistaken for a dead member, and the max poll interval
//! still bounds it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::consumer::Beat;

/// The companion task of one member; it stops when dropped.
pub struct Pacemaker {
    /// The member id a call is in flight for, if one is.
    in_call: Arc<Mutex<Option<Arc<str>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Pacemaker {
    /// Starts beating every `interval` for as long as a call is in flight.
    /// Needs a tokio runtime.
    pub fn start(processor: &str, beat: Beat, interval: Duration) -> Pacemaker {
        let in_call: Arc<Mutex<Option<Arc<str>>>> = Arc::default();
        let processor = processor.to_owned();
        let task = tokio::spawn({
            let in_call = in_call.clone();
            async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let member = in_call.lock().expect("pacemaker lock").clone();
                    if let Some(member) = member
                        && let Err(e) = beat(&member)
                    {
                        tracing::warn!(processor, error = %e, "heartbeat refused");
                    }
                }
            }
        });
        Pacemaker { in_call, task }
    }

    /// Marks a call in flight for `member` until the guard is dropped.
    pub fn beating(&self, member: &str) -> Beating<'_> {
        *self.in_call.lock().expect("pacemaker lock") = Some(member.into());
        Beating(self)
    }
}

impl Drop for Pacemaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A call in flight; the beats stop when it is dropped.
pub struct Beating<'a>(&'a Pacemaker);

impl Drop for Beating<'_> {
    fn drop(&mut self) {
        *self.0.in_call.lock().expect("pacemaker lock") = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn beats_only_while_a_call_is_in_flight_and_for_its_member() {
        let beats = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let beat: Beat = Arc::new({
            let (beats, count) = (beats.clone(), count.clone());
            move |member: &str| {
                beats.lock().unwrap().push(member.to_owned());
                count.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
        let pacemaker = Pacemaker::start("p", beat, Duration::from_millis(20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count.load(Ordering::SeqCst), 0, "no call, no beat");
        {
            let _call = pacemaker.beating("m-1");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let during = count.load(Ordering::SeqCst);
        assert!(during >= 2, "{during} beats in a 200 ms call at 20 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(count.load(Ordering::SeqCst), during, "none after the call");
        assert!(beats.lock().unwrap().iter().all(|m| m == "m-1"));
        drop(pacemaker);
    }
}
