//! [`ProcessorSpec`]: every setting of a processor, in one serde type. It is
//! the body of `PUT /processors/{name}`, a `[[processors]]` table of
//! `weir.toml`, the record `weir serve` keeps in its data directory, and what
//! the flags of `weir run` and `weir deploy` build; the README's settings table
//! documents it for all four.
//!
//! Every field is optional (a missing one takes the default documented on it)
//! and an unknown one is refused: a misspelt setting must not silently fall
//! back to its default. [`SpecChanges`] are some of the settings by key, as a
//! deploy over an existing processor gives them: they replace those keys and
//! keep the rest. [`ProcessorSpec::validate`] holds the rules between
//! settings; [`ProcessorSpec::processor_config`] and
//! [`ProcessorSpec::guest_spec`] give the runtime forms.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{
    DEFAULT_BREAKER_THRESHOLD, LagSkip, ProcessorConfig, ProcessorError, RetryPolicy,
    WhenExhausted, WhenTripped,
};
use crate::broker::ResetPolicy;
use crate::cluster::ClusterSpec;
use crate::consumer::{CommitMode, PollLimits};
use crate::group::{AssignorKind, GroupSettings, Protocol};
use crate::log::Log;
use crate::runtime::engine::{MAX_STACK_CEILING, MAX_STACK_FLOOR};
use crate::runtime::{GuestSpec, Limits};

/// The configuration entry that names a processor's output topic: the
/// convention every sample guest (Rust, JavaScript, Python) follows. A guest
/// may emit anywhere, so only this topic can be known before the first emit.
pub const OUTPUT_KEY: &str = "output";

/// The most members one processor may run.
pub const MAX_INSTANCES: usize = 64;
/// The longest per-batch deadline: operations such as pause and shutdown wait
/// for a batch in flight, so it bounds them too.
pub const MAX_DEADLINE: Duration = Duration::from_secs(300);

/// Every setting of a processor but its name and its component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorSpec {
    /// The input topics; a processor needs at least one. Default: none.
    pub topics: Vec<String>,
    /// The consumer group its members join. Default: the processor's name.
    pub group: Option<String>,
    /// Members of the group to run, 1 to [`MAX_INSTANCES`]. Default 1.
    pub instances: usize,
    /// Passed to the guest's `init` as string pairs. Default: empty.
    pub config: BTreeMap<String, String>,
    /// A human label for the guest version, e.g. `v2`, shown in the version
    /// (`v2@<hash>`) on every emit. Default: none.
    pub label: Option<String>,
    /// Where the group starts on a partition without a committed offset:
    /// `earliest`, `latest` or `none` (an error). Default `earliest`.
    pub reset: ResetPolicy,
    /// The most records one poll hands the guest (at least 1). Default 500.
    pub max_records: usize,
    /// About the most bytes one poll reads (at least 1; one whole batch is
    /// always returned). Default 1 MiB.
    pub max_bytes: u64,
    /// How long a poll waits for new records. Default 500.
    pub max_wait_ms: u64,
    /// How the group rebalances: `eager` or `cooperative`. Default
    /// `cooperative`.
    pub protocol: Protocol,
    /// `range`, `roundrobin`, `sticky` or `cooperative-sticky`. Default
    /// `cooperative-sticky`.
    pub assignor: AssignorKind,
    /// A member that sends no heartbeat for this long is evicted. Default
    /// 10000.
    pub session_timeout_ms: u64,
    /// A member that does not poll for this long (a guest stuck in a batch)
    /// is evicted; at least the deadline. Default 60000.
    pub max_poll_interval_ms: u64,
    /// Retries of a failing batch before `when_exhausted` applies. Default 5.
    pub max_retries: u32,
    /// The first backoff between retries; it doubles up to
    /// `max_backoff_ms`. Default 100.
    pub initial_backoff_ms: u64,
    /// The longest backoff between retries. Default 5000.
    pub max_backoff_ms: u64,
    /// What follows exhausted retries: `dead-letter` (isolate the poison
    /// record), `stop` or `pause` (the partition). Default `dead-letter`.
    pub when_exhausted: WhenExhausted,
    /// Memory, deadline, wasm stack and fuel per batch (see
    /// [`Limits`]); the deadline is at most [`MAX_DEADLINE`]. Default: the
    /// defaults of each limit.
    pub limits: Limits,
    /// Give the guest a private read-write directory as `/scratch`. The host
    /// that runs the processor says where: `weir serve` uses
    /// `<data-dir>/scratch/<name>`, `weir run --scratch DIR` uses `DIR`.
    /// Default false: no filesystem.
    pub scratch: bool,
    /// When the offset commits relative to processing: `at-most-once`,
    /// `at-least-once` or `exactly-once` (see the README's "Choosing a commit
    /// strategy"). Default `at-least-once`.
    pub commit: CommitMode,
    /// The most bytes of keys and values the guest's state may hold, over
    /// every partition. Default 1 GiB.
    pub state_budget_bytes: u64,
    /// Lag tolerance: `{"records": N, "age_ms": T}` (either or both); a
    /// partition further behind skips to its latest offset. Default: none.
    pub lag_skip: Option<LagSkip>,
    /// The circuit breaker: this many records dead-lettered in a row by one
    /// member (none processed between them) trip it, as do exhausted retries
    /// of a batch whose instance never started; 0 turns it off. Default 10.
    pub breaker_threshold: u32,
    /// What a tripped breaker does: `pause` the processor (recorded with the
    /// reason, until resumed) or `stop` it as failed. Default `pause`.
    pub when_tripped: WhenTripped,
    /// The Kafka cluster the processor runs against (`{"bootstrap_servers":
    /// "host:port", "instance_id": "...", "properties": {...}}`, see
    /// [`ClusterSpec`]) instead of the embedded log. Default: none (the
    /// embedded log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterSpec>,
}

impl Default for ProcessorSpec {
    fn default() -> Self {
        let poll = PollLimits::default();
        let group = GroupSettings::default();
        let retry = RetryPolicy::default();
        ProcessorSpec {
            topics: Vec::new(),
            group: None,
            instances: 1,
            config: BTreeMap::new(),
            label: None,
            reset: ResetPolicy::Earliest,
            max_records: poll.max_records,
            max_bytes: poll.max_bytes,
            max_wait_ms: millis(poll.max_wait),
            protocol: group.protocol,
            assignor: group.assignor,
            session_timeout_ms: millis(group.session_timeout),
            max_poll_interval_ms: millis(group.max_poll_interval),
            max_retries: retry.max_retries,
            initial_backoff_ms: millis(retry.initial_backoff),
            max_backoff_ms: millis(retry.max_backoff),
            when_exhausted: retry.then,
            limits: Limits::default(),
            scratch: false,
            commit: CommitMode::default(),
            state_budget_bytes: crate::state::DEFAULT_BUDGET_BYTES,
            lag_skip: None,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            when_tripped: WhenTripped::default(),
            cluster: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

impl ProcessorSpec {
    /// A spec over `topics` with every other setting at its default.
    pub fn over(topics: &[&str]) -> ProcessorSpec {
        ProcessorSpec {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            ..ProcessorSpec::default()
        }
    }

    /// Checks the rules within and between settings; the message names the
    /// setting by its key.
    pub fn validate(&self) -> Result<(), ProcessorError> {
        let invalid = |message: String| Err(ProcessorError::Spec(message));
        if self.topics.is_empty() {
            return invalid("a processor needs at least one topic".into());
        }
        check_instances(self.instances)?;
        if self.max_records == 0 {
            return invalid("max_records must be at least 1".into());
        }
        if self.max_bytes == 0 {
            return invalid("max_bytes must be at least 1".into());
        }
        if self.session_timeout_ms == 0 || self.max_poll_interval_ms == 0 {
            return invalid(
                "session_timeout_ms and max_poll_interval_ms must be at least 1".into(),
            );
        }
        if self.initial_backoff_ms > self.max_backoff_ms {
            return invalid(format!(
                "initial_backoff_ms ({}) is above max_backoff_ms ({})",
                self.initial_backoff_ms, self.max_backoff_ms
            ));
        }
        let deadline = self.limits.deadline;
        if deadline > MAX_DEADLINE {
            return invalid(format!(
                "deadline_ms may be at most {}",
                MAX_DEADLINE.as_millis()
            ));
        }
        if deadline > Duration::from_millis(self.max_poll_interval_ms) {
            return invalid(format!(
                "deadline_ms ({}) is above max_poll_interval_ms ({}): a batch running to its \
                 deadline would lose its partitions first; raise max_poll_interval_ms or lower \
                 the deadline",
                deadline.as_millis(),
                self.max_poll_interval_ms
            ));
        }
        let stack = self.limits.max_stack_bytes;
        if !(MAX_STACK_FLOOR..=MAX_STACK_CEILING).contains(&stack) {
            return invalid(format!(
                "max_stack_bytes is {stack}, but must be between {MAX_STACK_FLOOR} and \
                 {MAX_STACK_CEILING}"
            ));
        }
        crate::cluster::check_spec(self).map_err(ProcessorError::Spec)
    }

    /// Checks that the topics the processor reads and the one its
    /// configuration names as output ([`OUTPUT_KEY`]) exist in `log`, so a
    /// missing one is refused at start with the fix, instead of failing the
    /// first poll or the first commit that emits to it. weir does not create
    /// an output topic: its partitions and settings are the user's to choose.
    pub fn check_topics(&self, log: &Log) -> Result<(), ProcessorError> {
        let inputs = self.topics.iter().map(|t| (t, "input", ""));
        let output = self.config.get(OUTPUT_KEY);
        let wanted = inputs.chain(output.map(|t| (t, "output", " (config output)")));
        for (topic, role, named_by) in wanted {
            if log.partition_count(topic).is_ok() {
                continue;
            }
            let topics = log.topics();
            let names = topics
                .iter()
                .map(|(name, _)| name.as_str())
                .filter(|name| !name.starts_with("__"));
            return Err(ProcessorError::Spec(format!(
                "the {role} topic {topic:?}{named_by} does not exist{}; create it first \
                 (weir topic create {topic})",
                crate::error::did_you_mean(topic, names)
            )));
        }
        Ok(())
    }

    /// The settings of the processor loop for a processor named `name`.
    pub fn processor_config(&self, name: &str) -> ProcessorConfig {
        ProcessorConfig {
            name: name.to_string(),
            topics: self.topics.clone(),
            group: self.group.clone(),
            poll: PollLimits {
                max_records: self.max_records,
                max_bytes: self.max_bytes,
                max_wait: Duration::from_millis(self.max_wait_ms),
            },
            reset: self.reset,
            group_settings: GroupSettings {
                protocol: self.protocol,
                assignor: self.assignor,
                session_timeout: Duration::from_millis(self.session_timeout_ms),
                max_poll_interval: Duration::from_millis(self.max_poll_interval_ms),
            },
            instance_id: None,
            retry: RetryPolicy {
                max_retries: self.max_retries,
                initial_backoff: Duration::from_millis(self.initial_backoff_ms),
                max_backoff: Duration::from_millis(self.max_backoff_ms),
                then: self.when_exhausted,
            },
            emit_suffix: None,
            commit: self.commit,
            state_budget: self.state_budget_bytes,
            lag_skip: self.lag_skip,
            breaker_threshold: self.breaker_threshold,
        }
    }

    /// What the guest of a processor named `name` is loaded with; `scratch`
    /// is where its `/scratch` lives, when [`ProcessorSpec::scratch`] is set
    /// (the caller decides, see there).
    pub fn guest_spec(&self, name: &str, scratch: Option<PathBuf>) -> GuestSpec {
        GuestSpec {
            processor: name.to_string(),
            label: self.label.clone(),
            config: self.config.clone().into_iter().collect(),
            limits: self.limits,
            scratch: scratch.filter(|_| self.scratch),
            logbook: None,
        }
    }

    /// This spec with `changes` applied: each key given replaces this one's
    /// (the keys of `limits` one by one, so `{"limits": {"fuel": 5}}` keeps
    /// the memory cap); the others stay.
    pub fn apply(&self, changes: &SpecChanges) -> Result<ProcessorSpec, ProcessorError> {
        let Value::Object(mut object) = serde_json::to_value(self).expect("a spec serializes")
        else {
            unreachable!("a spec serializes as an object")
        };
        for (key, value) in &changes.0 {
            match (object.get_mut(key), value) {
                (Some(Value::Object(old)), Value::Object(new)) if key == "limits" => {
                    old.extend(new.clone())
                }
                _ => {
                    object.insert(key.clone(), value.clone());
                }
            }
        }
        serde_json::from_value(Value::Object(object)).map_err(ProcessorError::Settings)
    }

    /// Whether `other` runs the same members: the two differ at most in what
    /// travels with the guest version (label, config, limits, scratch), which
    /// a swap applies at the next batch boundary without restarting them, and
    /// in what the supervisor alone reads (`when_tripped`).
    pub fn same_members(&self, other: &ProcessorSpec) -> bool {
        let members = |s: &ProcessorSpec| ProcessorSpec {
            label: None,
            config: BTreeMap::new(),
            limits: Limits::default(),
            scratch: false,
            when_tripped: WhenTripped::default(),
            ..s.clone()
        };
        members(self) == members(other)
    }
}

/// Refuses a member count outside 1 to [`MAX_INSTANCES`].
pub fn check_instances(count: usize) -> Result<(), ProcessorError> {
    if (1..=MAX_INSTANCES).contains(&count) {
        Ok(())
    } else {
        Err(ProcessorError::Spec(format!(
            "instances must be between 1 and {MAX_INSTANCES}, got {count}"
        )))
    }
}

/// Some settings of a [`ProcessorSpec`], by their keys: what a deploy over an
/// existing processor (a swap, `weir deploy`, `weir.toml` at start) gives.
/// Read from JSON or TOML, its keys and values are checked against the spec,
/// so an unknown key is refused there.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SpecChanges(Map<String, Value>);

impl SpecChanges {
    /// Sets `key` (a field of [`ProcessorSpec`]) to `value`.
    pub fn set(&mut self, key: &str, value: impl Serialize) {
        let value = serde_json::to_value(value).expect("a setting serializes");
        self.0.insert(key.to_string(), value);
    }

    /// Whether `key` is given.
    pub fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The keys given, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Changes read from an object, checked against the spec.
    fn checked(object: Map<String, Value>) -> Result<SpecChanges, ProcessorError> {
        let changes = SpecChanges(object);
        ProcessorSpec::default().apply(&changes)?;
        Ok(changes)
    }
}

impl From<&ProcessorSpec> for SpecChanges {
    /// Every setting of `spec`.
    fn from(spec: &ProcessorSpec) -> SpecChanges {
        match serde_json::to_value(spec).expect("a spec serializes") {
            Value::Object(object) => SpecChanges(object),
            _ => unreachable!("a spec serializes as an object"),
        }
    }
}

impl<'de> Deserialize<'de> for SpecChanges {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::read(d, Fields::into_changes)
    }
}

/// A flat JSON or TOML object carrying a spec (or its changes) beside other
/// fields, such as a request's `component` or a record's `name`: those are
/// taken out by name and what is left is the spec, whose unknown keys are
/// refused. (serde's `flatten` cannot refuse unknown keys.)
pub struct Fields(Map<String, Value>);

impl Fields {
    /// Deserializes an object and builds a `T` from its fields.
    pub fn read<'de, D, T>(
        d: D,
        build: impl FnOnce(Fields) -> Result<T, ProcessorError>,
    ) -> Result<T, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        let object = Map::deserialize(d)?;
        build(Fields(object)).map_err(|e| serde::de::Error::custom(crate::error::chain(&e)))
    }

    /// Takes the required field `key`.
    pub fn take<T: serde::de::DeserializeOwned>(
        &mut self,
        key: &'static str,
    ) -> Result<T, ProcessorError> {
        let value = self
            .0
            .remove(key)
            .ok_or(ProcessorError::MissingField(key))?;
        serde_json::from_value(value).map_err(|source| ProcessorError::Field { key, source })
    }

    /// Takes the optional field `key` (its default when missing or null).
    pub fn take_or_default<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        key: &'static str,
    ) -> Result<T, ProcessorError> {
        match self.0.get(key) {
            None | Some(Value::Null) => {
                self.0.remove(key);
                Ok(T::default())
            }
            Some(_) => self.take(key),
        }
    }

    /// What is left, as a whole spec (missing settings at their defaults).
    pub fn into_spec(self) -> Result<ProcessorSpec, ProcessorError> {
        ProcessorSpec::default().apply(&SpecChanges(self.0))
    }

    /// What is left, as changes.
    pub fn into_changes(self) -> Result<SpecChanges, ProcessorError> {
        SpecChanges::checked(self.0)
    }

    /// `head` (an object's other fields) and `spec` as one flat object.
    pub fn merge(head: impl Serialize, spec: &impl Serialize) -> Map<String, Value> {
        let object = |v: Value| match v {
            Value::Object(o) => o,
            _ => unreachable!("both serialize as objects"),
        };
        let mut merged = object(serde_json::to_value(head).expect("serializes"));
        merged.extend(object(serde_json::to_value(spec).expect("serializes")));
        merged
    }
}

#[cfg(test)]
mod tests;
