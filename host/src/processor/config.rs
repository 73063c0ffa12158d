//! A processor's settings: its input, group, polling bounds, and what it does
//! when a batch keeps failing.

use std::time::Duration;

use crate::broker::ResetPolicy;
use crate::consumer::CommitMode;
use crate::consumer::PollLimits;
use crate::group::GroupSettings;

/// What happens once a batch has failed `max_retries` times over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenExhausted {
    /// Bisect the batch to isolate the poison record, dead-letter it alone,
    /// commit everything else (with its emits) and carry on.
    #[default]
    DeadLetter,
    /// Stop the processor with the last error; nothing past the batch's
    /// committed prefix moves.
    Stop,
    /// Pause the partition: this member stops fetching it (nothing past the
    /// committed prefix moves) and carries on with its other partitions. It
    /// resumes when the members restart (a restart, a deploy with rewind) or
    /// when a new version is swapped in.
    Pause,
}

impl WhenExhausted {
    pub const ALL: [WhenExhausted; 3] = [
        WhenExhausted::DeadLetter,
        WhenExhausted::Stop,
        WhenExhausted::Pause,
    ];

    /// The name in flags, JSON and `weir.toml`.
    pub fn name(self) -> &'static str {
        match self {
            WhenExhausted::DeadLetter => "dead-letter",
            WhenExhausted::Stop => "stop",
            WhenExhausted::Pause => "pause",
        }
    }

    /// The inverse of [`WhenExhausted::name`].
    pub fn parse(s: &str) -> Option<WhenExhausted> {
        Self::ALL.into_iter().find(|w| w.name() == s)
    }
}

crate::keyword::keywords!(WhenExhausted);

/// What a processor does when its circuit breaker trips (a systemic failure:
/// every batch's instance fails to start, or `breaker_threshold` records in a
/// row went to the dead-letter topic), instead of draining its input into the
/// dead-letter topic record by record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenTripped {
    /// Pause the processor, recorded with the reason (across restarts too),
    /// until it is resumed or a new version is swapped in.
    #[default]
    Pause,
    /// Stop it as failed, with the reason; a swap, a resume or a restart of
    /// the host starts it again. (`weir run` exits non-zero either way.)
    Stop,
}

impl WhenTripped {
    pub const ALL: [WhenTripped; 2] = [WhenTripped::Pause, WhenTripped::Stop];

    /// The name in flags, JSON and `weir.toml`.
    pub fn name(self) -> &'static str {
        match self {
            WhenTripped::Pause => "pause",
            WhenTripped::Stop => "stop",
        }
    }

    /// The inverse of [`WhenTripped::name`].
    pub fn parse(s: &str) -> Option<WhenTripped> {
        Self::ALL.into_iter().find(|w| w.name() == s)
    }
}

crate::keyword::keywords!(WhenTripped);

/// The default `breaker_threshold`: dead letters in a row that trip the
/// circuit breaker.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 10;

/// How retries back off, and what follows when they run out.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first before `then` applies.
    pub max_retries: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub then: WhenExhausted,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            then: WhenExhausted::DeadLetter,
        }
    }
}

/// A processor's settings.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub name: String,
    pub topics: Vec<String>,
    /// Defaults to the processor's name.
    pub group: Option<String>,
    pub poll: PollLimits,
    /// Where the group starts on a partition without a committed offset.
    pub reset: ResetPolicy,
    /// The group's protocol, assignor and liveness timeouts.
    pub group_settings: GroupSettings,
    /// A static member id (KIP-345), set per instance by [`Instances`].
    pub instance_id: Option<String>,
    pub retry: RetryPolicy,
    /// When set, records the guest emits to topic `T` go to `T<suffix>`
    /// instead (a shadow's side topics); dead-lettered records are not moved.
    pub emit_suffix: Option<String>,
    /// When the offset commits relative to processing.
    pub commit: CommitMode,
    /// The most bytes of keys and values the processor's state may hold.
    pub state_budget: u64,
    /// When a partition falls this far behind, jump it to the latest offset.
    pub lag_skip: Option<LagSkip>,
    /// The circuit breaker: this many records dead-lettered in a row (no
    /// record processed between them), or retries exhausted on a batch whose
    /// instance never started, stop the member with
    /// [`super::ProcessorError::Tripped`]. 0 turns it off.
    pub breaker_threshold: u32,
}

/// Lag tolerance (the real-time dashboard pattern: fresh data matters more
/// than complete data): a partition whose lag passes either bound skips to
/// its latest offset, and the skipped records are logged and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LagSkip {
    /// Skip when more than this many records wait.
    #[serde(default)]
    pub records: Option<u64>,
    /// Skip when the oldest waiting record is older than this.
    #[serde(default)]
    pub age_ms: Option<u64>,
}

impl LagSkip {
    /// Whether a batch read at `lag` records behind, whose first record is
    /// `age_ms` old, should skip.
    pub fn exceeded(&self, lag: u64, age_ms: i64) -> bool {
        self.records.is_some_and(|n| lag > n) || self.age_ms.is_some_and(|t| age_ms > t as i64)
    }
}

impl ProcessorConfig {
    /// A processor named `name` over `topics` with default settings.
    pub fn new(name: &str, topics: &[&str]) -> ProcessorConfig {
        ProcessorConfig {
            name: name.to_string(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            group: None,
            poll: PollLimits::default(),
            reset: ResetPolicy::Earliest,
            group_settings: GroupSettings::default(),
            instance_id: None,
            retry: RetryPolicy::default(),
            emit_suffix: None,
            commit: CommitMode::default(),
            state_budget: crate::state::DEFAULT_BUDGET_BYTES,
            lag_skip: None,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
        }
    }

    /// The processor's dead-letter topic.
    pub fn dlq_topic(&self) -> String {
        format!("{}.dlq", self.name)
    }
}
