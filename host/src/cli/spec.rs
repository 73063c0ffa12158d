//! The processor settings as flags, shared by `weir run` and `weir deploy`
//! (flattened into both). Every flag is optional and gives one key of a
//! [`ProcessorSpec`]; a flag not given leaves its setting alone (its default
//! for a new processor, the recorded value for a deployed one). The defaults
//! live in the spec, and the README's settings table lists them.

use serde_json::{Map, Value};

use weir::broker::ResetPolicy;
use weir::consumer::CommitMode;
use weir::group::{AssignorKind, Protocol};
use weir::processor::{SpecChanges, WhenExhausted, WhenTripped};

#[derive(clap::Args, Debug, Default)]
pub struct SpecArgs {
    /// Input topic (repeatable).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Consumer group [default: the processor's name].
    #[arg(long)]
    pub group: Option<String>,
    /// Members of the group to run, each a static member `<name>-<i>`
    /// [default: 1].
    #[arg(long)]
    pub instances: Option<usize>,
    /// Guest configuration entry KEY=VALUE (repeatable; the entries given
    /// replace the whole map).
    #[arg(long = "config", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// A label for this guest version, e.g. v2.
    #[arg(long)]
    pub label: Option<String>,
    /// Where the group starts on a partition it has no committed offset for:
    /// earliest, latest or none [default: earliest].
    #[arg(long)]
    pub reset: Option<ResetPolicy>,
    /// eager or cooperative [default: cooperative].
    #[arg(long)]
    pub protocol: Option<Protocol>,
    /// range, roundrobin, sticky or cooperative-sticky [default:
    /// cooperative-sticky].
    #[arg(long)]
    pub assignor: Option<AssignorKind>,
    /// [default: 10000]
    #[arg(long)]
    pub session_timeout_ms: Option<u64>,
    /// At least the deadline [default: 60000].
    #[arg(long)]
    pub max_poll_interval_ms: Option<u64>,
    /// [default: 500]
    #[arg(long)]
    pub max_records: Option<usize>,
    /// [default: 1048576]
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// [default: 500]
    #[arg(long)]
    pub max_wait_ms: Option<u64>,
    /// Per-batch deadline, at most 300000 [default: 10000].
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// Guest memory cap [default: 128].
    #[arg(long)]
    pub memory_mb: Option<usize>,
    /// Guest wasm stack (16 to 1024 KiB); deeper recursion traps [default:
    /// 1024].
    #[arg(long)]
    pub max_stack_kb: Option<usize>,
    /// Fuel per batch (roughly, wasm instructions) [default: unmetered].
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Retries (with exponential backoff) before --when-exhausted applies
    /// [default: 5].
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// [default: 100]
    #[arg(long)]
    pub initial_backoff_ms: Option<u64>,
    /// [default: 5000]
    #[arg(long)]
    pub max_backoff_ms: Option<u64>,
    /// After the retries: bisect and dead-letter the poison record, stop, or
    /// pause the partition (the others go on): dead-letter, stop or pause
    /// [default: dead-letter].
    #[arg(long)]
    pub when_exhausted: Option<WhenExhausted>,
    /// When the offset commits: at-most-once, at-least-once or exactly-once
    /// [default: at-least-once].
    #[arg(long)]
    pub commit: Option<CommitMode>,
    /// The guest state's budget [default: 1024].
    #[arg(long)]
    pub state_budget_mb: Option<u64>,
    /// Lag tolerance: skip a partition more than this many records behind
    /// to its latest offset [default: never].
    #[arg(long)]
    pub lag_skip_records: Option<u64>,
    /// Lag tolerance: skip a partition whose oldest waiting record is older
    /// than this to its latest offset [default: never].
    #[arg(long)]
    pub lag_skip_age_ms: Option<u64>,
    /// Circuit breaker: records dead-lettered in a row that stop the
    /// processor (0: never) [default: 10].
    #[arg(long)]
    pub breaker_threshold: Option<u32>,
    /// What a tripped breaker does under `weir serve`: pause or stop
    /// [default: pause]. (`weir run` exits non-zero either way.)
    #[arg(long)]
    pub when_tripped: Option<WhenTripped>,
    /// Run against this Kafka cluster (host:port[,host:port...]) instead of
    /// the embedded log.
    #[arg(long, value_name = "SERVERS")]
    pub bootstrap_servers: Option<String>,
    /// With --bootstrap-servers: this host's id for static membership (each
    /// host sharing the processor needs its own) [default: dynamic members].
    #[arg(long, requires = "bootstrap_servers")]
    pub cluster_instance_id: Option<String>,
    /// With --bootstrap-servers: a librdkafka property KEY=VALUE passed
    /// through, e.g. security.protocol=ssl (repeatable).
    #[arg(long = "kafka-property", value_parser = key_value, requires = "bootstrap_servers")]
    pub kafka_properties: Vec<(String, String)>,
}

pub fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

impl SpecArgs {
    /// The settings the flags give, by their spec keys.
    pub fn changes(&self) -> SpecChanges {
        let mut changes = SpecChanges::default();
        if !self.topics.is_empty() {
            changes.set("topics", &self.topics);
        }
        if !self.config.is_empty() {
            let config: Map<String, Value> = self
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            changes.set("config", config);
        }
        let mut set = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                changes.set(key, value);
            }
        };
        let json = |v: Option<String>| v.map(Value::from);
        set("group", json(self.group.clone()));
        set("instances", self.instances.map(Value::from));
        set("label", json(self.label.clone()));
        set("reset", json(self.reset.map(|r| r.to_string())));
        set("protocol", json(self.protocol.map(|p| p.to_string())));
        set("assignor", json(self.assignor.map(|a| a.to_string())));
        set(
            "session_timeout_ms",
            self.session_timeout_ms.map(Value::from),
        );
        set(
            "max_poll_interval_ms",
            self.max_poll_interval_ms.map(Value::from),
        );
        set("max_records", self.max_records.map(Value::from));
        set("max_bytes", self.max_bytes.map(Value::from));
        set("max_wait_ms", self.max_wait_ms.map(Value::from));
        set("max_retries", self.max_retries.map(Value::from));
        set(
            "initial_backoff_ms",
            self.initial_backoff_ms.map(Value::from),
        );
        set("max_backoff_ms", self.max_backoff_ms.map(Value::from));
        set(
            "when_exhausted",
            json(self.when_exhausted.map(|w| w.to_string())),
        );
        set("commit", json(self.commit.map(|c| c.to_string())));
        set("breaker_threshold", self.breaker_threshold.map(Value::from));
        set(
            "when_tripped",
            json(self.when_tripped.map(|w| w.to_string())),
        );
        set(
            "state_budget_bytes",
            self.state_budget_mb.map(|mb| Value::from(mb << 20)),
        );
        if self.lag_skip_records.is_some() || self.lag_skip_age_ms.is_some() {
            let lag_skip = serde_json::json!({
                "records": self.lag_skip_records,
                "age_ms": self.lag_skip_age_ms,
            });
            set("lag_skip", Some(lag_skip));
        }
        if let Some(servers) = &self.bootstrap_servers {
            let properties: Map<String, Value> = self
                .kafka_properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone().into()))
                .collect();
            let mut cluster = serde_json::json!({
                "bootstrap_servers": servers,
                "properties": properties,
            });
            if let Some(id) = &self.cluster_instance_id {
                cluster["instance_id"] = id.clone().into();
            }
            changes.set("cluster", cluster);
        }
        let mut limits = Map::new();
        let mut limit = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                limits.insert(key.to_string(), value);
            }
        };
        limit(
            "memory_bytes",
            self.memory_mb.map(|mb| Value::from(mb << 20)),
        );
        limit("deadline_ms", self.deadline_ms.map(Value::from));
        limit(
            "max_stack_bytes",
            self.max_stack_kb.map(|kb| Value::from(kb << 10)),
        );
        limit("fuel", self.fuel.map(Value::from));
        if !limits.is_empty() {
            changes.set("limits", limits);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use weir::processor::ProcessorSpec;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        spec: SpecArgs,
    }

    fn spec(args: &[&str]) -> ProcessorSpec {
        let cli = Cli::try_parse_from(std::iter::once("weir").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        ProcessorSpec::default().apply(&cli.spec.changes()).unwrap()
    }

    #[test]
    fn no_flags_give_the_spec_defaults() {
        assert_eq!(spec(&[]), ProcessorSpec::default());
    }

    #[test]
    fn every_flag_reaches_its_setting() {
        let all = spec(&[
            "--topic",
            "a",
            "--topic",
            "b",
            "--group",
            "g",
            "--instances",
            "3",
            "--config",
            "k=v",
            "--label",
            "v2",
            "--reset",
            "latest",
            "--protocol",
            "eager",
            "--assignor",
            "round-robin",
            "--session-timeout-ms",
            "7000",
            "--max-poll-interval-ms",
            "90000",
            "--max-records",
            "7",
            "--max-bytes",
            "4096",
            "--max-wait-ms",
            "20",
            "--deadline-ms",
            "1500",
            "--memory-mb",
            "16",
            "--max-stack-kb",
            "64",
            "--fuel",
            "99",
            "--max-retries",
            "2",
            "--initial-backoff-ms",
            "10",
            "--max-backoff-ms",
            "40",
            "--when-exhausted",
            "pause",
            "--commit",
            "exactly-once",
            "--state-budget-mb",
            "2",
            "--breaker-threshold",
            "4",
            "--when-tripped",
            "stop",
            "--lag-skip-records",
            "1000",
            "--lag-skip-age-ms",
            "60000",
        ]);
        let expected = ProcessorSpec {
            topics: vec!["a".into(), "b".into()],
            group: Some("g".into()),
            instances: 3,
            config: [("k".to_string(), "v".to_string())].into(),
            label: Some("v2".into()),
            reset: ResetPolicy::Latest,
            max_records: 7,
            max_bytes: 4096,
            max_wait_ms: 20,
            protocol: Protocol::Eager,
            assignor: AssignorKind::RoundRobin,
            session_timeout_ms: 7000,
            max_poll_interval_ms: 90_000,
            max_retries: 2,
            initial_backoff_ms: 10,
            max_backoff_ms: 40,
            when_exhausted: WhenExhausted::Pause,
            limits: weir::runtime::Limits {
                memory_bytes: 16 << 20,
                deadline: std::time::Duration::from_millis(1500),
                max_stack_bytes: 64 << 10,
                fuel: Some(99),
            },
            scratch: false,
            commit: CommitMode::ExactlyOnce,
            state_budget_bytes: 2 << 20,
            lag_skip: Some(weir::processor::LagSkip {
                records: Some(1000),
                age_ms: Some(60_000),
            }),
            breaker_threshold: 4,
            when_tripped: WhenTripped::Stop,
            cluster: None,
        };
        assert_eq!(all, expected);
        all.validate().unwrap();
    }

    #[test]
    fn a_bad_keyword_is_refused_naming_the_choices() {
        let err = Cli::try_parse_from(["weir", "--when-exhausted", "explode"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("dead-letter, stop, pause"), "{err}");
    }

    #[test]
    fn the_cluster_flags_give_the_cluster_table() {
        let spec = spec(&[
            "--bootstrap-servers",
            "k1:9092,k2:9092",
            "--cluster-instance-id",
            "host-a",
            "--kafka-property",
            "security.protocol=ssl",
        ]);
        let cluster = spec.cluster.expect("a cluster");
        assert_eq!(cluster.bootstrap_servers, "k1:9092,k2:9092");
        assert_eq!(cluster.instance_id.as_deref(), Some("host-a"));
        assert_eq!(
            cluster.properties,
            [("security.protocol".to_string(), "ssl".to_string())].into()
        );
        let alone = Cli::try_parse_from(["weir", "--kafka-property", "a=b"]);
        assert!(alone.is_err(), "a property needs --bootstrap-servers");
    }
}
