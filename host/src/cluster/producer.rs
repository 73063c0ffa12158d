//! The emits of one member: produced to the cluster's topics (placed by
//! librdkafka's partitioner: by the key's hash, unkeyed records spread), then
//! flushed, and every delivery checked, before the batch's offset commits.
//! A transactional producer (`transaction.rs`) is the same type, made with a
//! `transactional.id`.

use std::collections::HashMap;
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
    /// The highest offset delivered per (topic, partition): where a
    /// changelog's last record landed.
    delivered: Mutex<HashMap<(String, i32), i64>>,
}

impl Deliveries {
    /// The highest offset delivered to `topic`/`partition` so far.
    pub fn last_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let delivered = self.delivered.lock().expect("deliveries lock");
        delivered.get(&(topic.to_string(), partition)).copied()
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        use rdkafka::Message;
        if let Ok(message) = result {
            let mut delivered = self.delivered.lock().expect("deliveries lock");
            let at = (message.topic().to_string(), message.partition());
            let offset = delivered.entry(at).or_insert(-1);
            *offset = (*offset).max(message.offset());
        }
        if let Err((error, message)) = result {
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
        Emitter::with(spec, None)
    }

    /// A producer with `transactional_id` (transactions are initialized by
    /// the caller), or an idempotent one without.
    pub fn with(
        spec: &ClusterSpec,
        transactional_id: Option<&str>,
    ) -> Result<Emitter, ClusterError> {
        let mut config = spec.client_config();
        // Retries cannot reorder or duplicate within a partition.
        config.set("enable.idempotence", "true");
        config.set("linger.ms", "5");
        if let Some(id) = transactional_id {
            config.set("transactional.id", id);
        }
        let producer = config
            .create_with_context(Deliveries::default())
            .map_err(ClusterError::Client)?;
        Ok(Emitter { producer })
    }

    pub fn producer(&self) -> &BaseProducer<Deliveries> {
        &self.producer
    }

    /// Produces `emits` in order and waits until the cluster has acknowledged
    /// every one; the first failed delivery is the error.
    pub fn send_all(&self, emits: &[Emit]) -> Result<(), ClusterError> {
        if emits.is_empty() {
            return Ok(());
        }
        self.enqueue(emits)?;
        self.settle(&emits[0].topic)
    }

    /// Hands `emits` to librdkafka in order (waiting while its queue is full).
    pub fn enqueue(&self, emits: &[Emit]) -> Result<(), ClusterError> {
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
            self.send(record, &emit.topic)?;
        }
        Ok(())
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    pub fn send(
        &self,
        mut record: BaseRecord<'_, [u8], [u8]>,
        topic: &str,
    ) -> Result<(), ClusterError> {
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
                        topic: topic.to_string(),
                        reason: e.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Waits until the cluster has acknowledged everything handed over; the
    /// first failed delivery is the error (`topic` names the batch's first).
    pub fn settle(&self, topic: &str) -> Result<(), ClusterError> {
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| ClusterError::Produce {
                topic: topic.to_string(),
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
