//! The Prometheus endpoint. The `metrics` facade's global recorder is a
//! Prometheus recorder, installed once per process; series are written where
//! things happen (the processor loop, produce).
//!
//! Conventions kept: every series has `# HELP` and `# TYPE` (the facade's
//! series are described once, at install, from [`SERIES`]); the latency
//! series are histograms with [`SECONDS_BUCKETS`]; a processor's counters
//! exist at 0 from its start ([`crate::processor::stats::register`]);
//! `weir_build_info` is 1 with the version as a label.
//!
//! What describes the present rather than counts events is rendered at scrape
//! time and never kept in the recorder, so nothing stale outlives what it
//! describes (the recorder never forgets a series): the lag of every group
//! (a deleted processor's or topic's lag goes with it), the state stores'
//! sizes (of groups that still exist), and the process's own figures (see
//! [`process`]). Counters stay until the process ends, as Prometheus expects
//! of counters, also for a deleted processor or topic.

mod process;

use std::fmt::Write as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::broker::Broker;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The bucket bounds of every latency histogram, in seconds: from 100 µs (a
/// small guest call) to 30 s (the shutdown grace).
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

/// The kind of a series, as its `# TYPE` line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every series written through the `metrics` facade, with its help text.
pub const SERIES: &[(&str, Kind, &str)] = &[
    (
        "weir_appended_records_total",
        Kind::Counter,
        "Records appended through the API, by topic.",
    ),
    (
        "weir_records_processed_total",
        Kind::Counter,
        "Records committed past (processed, skipped or dead-lettered), by processor and guest version.",
    ),
    (
        "weir_batches_total",
        Kind::Counter,
        "Batches committed, by processor and guest version.",
    ),
    (
        "weir_emitted_records_total",
        Kind::Counter,
        "Records emitted by committed batches, by processor and guest version.",
    ),
    (
        "weir_failures_total",
        Kind::Counter,
        "Guest failures, by processor, guest version and kind (trap, skip, dead-letter).",
    ),
    (
        "weir_dlq_records_total",
        Kind::Counter,
        "Records sent to the dead-letter topic, by processor and guest version.",
    ),
    (
        "weir_records_lost_total",
        Kind::Counter,
        "Records an at-most-once processor lost to a failure, by processor and guest version.",
    ),
    (
        "weir_lag_skipped_records_total",
        Kind::Counter,
        "Records skipped by lag tolerance, by processor.",
    ),
    (
        "weir_breaker_trips_total",
        Kind::Counter,
        "Times the circuit breaker stopped a processor on a systemic failure, by processor.",
    ),
    (
        "weir_paused_partitions",
        Kind::Gauge,
        "Partitions paused after a batch kept failing, by processor.",
    ),
    (
        "weir_guest_process_seconds",
        Kind::Histogram,
        "Latency of the guest's process call per batch, by processor and guest version.",
    ),
    (
        "weir_commit_seconds",
        Kind::Histogram,
        "Latency of a batch's commit step, by processor and guest version.",
    ),
    (
        "weir_state_restore_seconds",
        Kind::Histogram,
        "Time to restore a group's state store from its changelog, by group.",
    ),
    (
        "weir_build_info",
        Kind::Gauge,
        "Always 1; the weir version as a label.",
    ),
];

/// A handle on the process's Prometheus recorder, and how the endpoint is
/// served.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// Whether `/metrics` answers without the API token.
    public: bool,
}

impl Metrics {
    /// Installs the recorder the first time (describing every series and
    /// setting `weir_build_info`); later calls share it. The endpoint needs
    /// the token, if the server has one, unless [`Metrics::public`] says not.
    pub fn install() -> Metrics {
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&SECONDS_BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness, say):
            // then the endpoint still renders, just without these series.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe();
            metrics::gauge!("weir_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        });
        Metrics {
            handle: handle.clone(),
            public: false,
        }
    }

    /// This endpoint, reachable without the API token when `public`.
    pub fn public(self, public: bool) -> Metrics {
        Metrics { public, ..self }
    }

    /// Whether `/metrics` answers without the API token.
    pub fn is_public(&self) -> bool {
        self.public
    }

    /// The exposition text: the recorder's series, then lag, state and
    /// process figures as they are now.
    pub fn render(&self, broker: &Broker) -> String {
        // Every topic's append counter exists from the first scrape on.
        for (topic, _) in broker.log().topics() {
            if !topic.starts_with("__") {
                metrics::counter!("weir_appended_records_total", "topic" => topic).increment(0);
            }
        }
        let mut out = self.handle.render();
        render_lag(broker, &mut out);
        render_state(broker, &mut out);
        process::render(&mut out);
        out
    }
}

/// Describes every facade series once, so each renders with `# HELP`.
fn describe() {
    for &(name, kind, help) in SERIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

fn render_lag(broker: &Broker, out: &mut String) {
    family(
        out,
        "weir_consumer_lag",
        "gauge",
        "Records between a group's committed offset and the high watermark, by group, topic and partition.",
    );
    // Every group with a committed offset or a member.
    for (group, lags) in broker.group_lags() {
        for l in lags {
            let labels = [
                ("group", group.as_str()),
                ("topic", &l.topic),
                ("partition", &l.partition.to_string()),
            ];
            sample(out, "weir_consumer_lag", &labels, l.lag as f64);
        }
    }
}

/// The state stores of groups that exist (with offsets or members): a
/// deleted processor's store may still be open, but is not reported.
fn render_state(broker: &Broker, out: &mut String) {
    let groups = broker.list_groups();
    let stores = broker.state_stores().into_iter();
    let stores = stores.filter(|(group, _)| groups.contains(group));
    family(
        out,
        "weir_state_keys",
        "gauge",
        "Keys in a group's state store.",
    );
    let mut bytes = Vec::new();
    for (group, store) in stores {
        let Ok((keys, size)) = store.totals() else {
            continue;
        };
        sample(out, "weir_state_keys", &[("group", &group)], keys as f64);
        bytes.push((group, size));
    }
    family(
        out,
        "weir_state_bytes",
        "gauge",
        "Bytes of keys and values in a group's state store.",
    );
    for (group, size) in bytes {
        sample(out, "weir_state_bytes", &[("group", &group)], size as f64);
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes one sample line, label values escaped as the text format wants.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, "{k}=\"{v}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_escapes_its_label_values() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\"y\\z\n"), ("b", "1")], 2.0);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\n\",b=\"1\"} 2\n");
    }
}
