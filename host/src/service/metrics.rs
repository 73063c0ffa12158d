//! The Prometheus endpoint. The `metrics` facade's global recorder is a
//! Prometheus recorder, installed once per process; series are written where
//! things happen (the processor loop, produce) and lag is computed at scrape
//! time from committed offsets and high watermarks.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::broker::Broker;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// A handle on the process's Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the recorder the first time; later calls share it.
    pub fn install() -> Metrics {
        let handle = HANDLE.get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness, say):
            // then the endpoint still renders, just without these series.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        });
        Metrics {
            handle: handle.clone(),
        }
    }

    /// The exposition text, with lag gauges refreshed first.
    pub fn render(&self, broker: &Broker) -> String {
        for (group, lags) in broker.group_lags() {
            for l in lags {
                metrics::gauge!("weir_consumer_lag", "group" => group.clone(), "topic" => l.topic.clone(), "partition" => l.partition.to_string())
                    .set(l.lag as f64);
            }
        }
        for (group, store) in broker.state_stores() {
            let Ok((keys, bytes)) = store.totals() else {
                continue;
            };
            metrics::gauge!("weir_state_keys", "group" => group.clone()).set(keys as f64);
            metrics::gauge!("weir_state_bytes", "group" => group).set(bytes as f64);
        }
        self.handle.render()
    }
}
