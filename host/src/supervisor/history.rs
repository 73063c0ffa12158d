//! The history of what was done to the processors while this host runs
//! (deploys, swaps, rewinds, pauses, resumes, scales, shadows, deletions):
//! the last [`HISTORY_EVENTS`] events in memory, for the dashboard and
//! `GET /history`. It is a view for people, not a record: the deployment
//! records in the data directory are the truth, and the history starts empty
//! at every start.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{Status, Supervisor};

/// Events kept.
pub const HISTORY_EVENTS: usize = 500;

/// One thing done to a processor (`Event` in `docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When it was done, in milliseconds since the epoch.
    pub at_ms: i64,
    pub processor: String,
    /// `deploy`, `swap`, `rewind`, `pause`, `resume`, `scale`, `shadow`,
    /// `promote` or `delete`.
    pub action: String,
    /// The version running after it (none after a delete).
    pub version: Option<String>,
    /// What the action was given: a rewind's target, a scale's count.
    pub detail: Option<String>,
}

/// The bounded list of events, oldest first.
#[derive(Debug, Default)]
pub struct History(Mutex<VecDeque<Event>>);

impl History {
    fn push(&self, event: Event) {
        let mut events = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if events.len() == HISTORY_EVENTS {
            events.pop_front();
        }
        events.push_back(event);
    }
}

impl Supervisor {
    /// Every event kept, oldest first.
    pub fn history(&self) -> Vec<Event> {
        let events = self.history.0.lock().unwrap_or_else(|e| e.into_inner());
        events.iter().cloned().collect()
    }

    /// Notes `action` on `processor`.
    pub(super) fn note(
        &self,
        processor: &str,
        action: &str,
        version: Option<&str>,
        detail: Option<String>,
    ) {
        self.history.push(Event {
            at_ms: crate::log::now_ms(),
            processor: processor.to_string(),
            action: action.to_string(),
            version: version.map(str::to_string),
            detail,
        });
    }

    /// Notes `action` on the processor `status` describes, and returns it.
    pub(super) fn noted(&self, action: &str, detail: Option<String>, status: Status) -> Status {
        self.note(&status.name, action, Some(&status.version), detail);
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_keeps_the_newest_events() {
        let history = History::default();
        for i in 0..HISTORY_EVENTS + 3 {
            history.push(Event {
                at_ms: i as i64,
                processor: "p".into(),
                action: "scale".into(),
                version: None,
                detail: Some(i.to_string()),
            });
        }
        let events = history.0.lock().unwrap();
        assert_eq!(events.len(), HISTORY_EVENTS);
        assert_eq!(events[0].at_ms, 3);
    }
}
