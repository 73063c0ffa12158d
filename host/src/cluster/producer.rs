//! The emits of one member: produced to the cluster's topics (placed by
//! librdkafka's partitioner: by the key's hash, unkeyed records spread), then
//! flushed, and every delivery checked, before the batch's offset commits.

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use super::{ClusterError, ClusterSpec};
use crate::consumer::Emit;

/// How long a flush may wait for the cluster to acknowledge a batch's emits.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Collects the failed deliveries of the emits in flight.
#[derive(Default)]
pub(super) struct Deliveries {
    failed: Mutex<Vec<(String, String)>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            use rdkafka::Message;
            let topic = message.topic().to_string();
            self.failed
                .lock()
                .expect("deliveries lock")
                .push((topic, error.to_string()));
        }
    }
}

/// One member's producer.
pub(super) struct Emitter {
    producer: BaseProducer<Deliveries>,
}

impl Emitter {
    pub fn new(spec: &ClusterSpec) -> Result<Emitter, ClusterError> {
        let mut config = spec.client_config();
        // Retries cannot reorder or duplicate within a partition.
        config.set("enable.idempotence", "true");
        config.set("linger.ms", "5");
        let producer = config
            .create_with_context(Deliveries::default())
            .map_err(ClusterError::Client)?;
        Ok(Emitter { producer })
    }

    /// Produces `emits` in order and waits until the cluster has acknowledged
    /// every one; the first failed delivery is the error.
    pub fn send_all(&self, emits: &[Emit]) -> Result<(), ClusterError> {
        if emits.is_empty() {
            return Ok(());
        }
        for emit in emits {
            let mut headers = OwnedHeaders::new_with_capacity(emit.record.headers.len());
            for (name, value) in &emit.record.headers {
                headers = headers.insert(Header {
                    key: name,
                    value: Some(value),
                });
            }
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&emit.topic)
                .payload(emit.record.value.as_slice())
                .headers(headers);
            if let Some(key) = &emit.record.key {
                record = record.key(key.as_slice());
            }
            if let Some(ts) = emit.record.timestamp {
                record = record.timestamp(ts);
            }
            loop {
                match self.producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: let deliveries drain.
                        self.producer.poll(Duration::from_millis(50));
                        record = back;
                    }
                    Err((e, _)) => {
                        return Err(ClusterError::Produce {
                            topic: emit.topic.clone(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
        }
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| ClusterError::Produce {
                topic: emits[0].topic.clone(),
                reason: format!("not acknowledged in {FLUSH_TIMEOUT:?}: {e}"),
            })?;
        let mut failed = self
            .producer
            .context()
            .failed
            .lock()
            .expect("deliveries lock");
        match failed.drain(..).next() {
            Some((topic, reason)) => Err(ClusterError::Produce { topic, reason }),
            None => Ok(()),
        }
    }
}
