//! Long-running group consumers for the consumer-group tests: each is a
//! process of `tests/kafka/group_consumer.py` (confluent-kafka or
//! kafka-python, from the venv that [`crate::kafka_clients`] installs),
//! whose JSON events (assignments, revocations, records, commits) are
//! collected as they come.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::kafka_clients::{KafkaServe, clients, hex};

/// One consumer process, killed when dropped.
pub struct GroupConsumer {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The venv's python, once the clients are installed (`None`: skipped, as
/// [`crate::kafka_clients::clients`] says why).
pub fn python() -> Option<PathBuf> {
    crate::kafka_clients::clients()?;
    let venv = crate::polyglot::out_root().with_file_name("kafka-clients");
    Some(venv.join("venv/bin/python"))
}

impl GroupConsumer {
    /// Starts a consumer with `config` (see the script's docstring).
    pub fn start(python: &Path, config: &Value) -> GroupConsumer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/group_consumer.py");
        let mut child = Command::new(python)
            .arg(script)
            .arg(config.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start group_consumer.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("group_consumer.py printed {line:?}: {e}"));
                sink.lock().unwrap().push(event);
            }
        });
        GroupConsumer {
            child,
            events,
            reader: Some(reader),
        }
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for `done` to hold over the events.
    pub fn wait_for(&self, timeout: Duration, done: impl Fn(&[Value]) -> bool) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if done(&self.events.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Asks it to commit, leave and exit; its events.
    pub fn stop(mut self) -> Vec<Value> {
        if let Some(stdin) = self.child.stdin.as_mut() {
            let _ = stdin.write_all(b"stop\n");
        }
        self.wait_exit(Duration::from_secs(60))
    }

    /// Waits for it to exit by itself (`stop_after`); its events.
    pub fn wait_exit(&mut self, timeout: Duration) -> Vec<Value> {
        let started = Instant::now();
        loop {
            if self.child.try_wait().expect("poll the consumer").is_some() {
                break;
            }
            assert!(started.elapsed() < timeout, "the consumer did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the event reader");
        }
        self.events()
    }

    /// SIGKILL: no LeaveGroup, no last commit.
    pub fn kill(mut self) -> Vec<Value> {
        self.child.kill().ok();
        self.child.wait().ok();
        self.events()
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The events of one kind.
pub fn of<'a>(events: &'a [Value], kind: &str) -> impl Iterator<Item = &'a Value> {
    let kind = kind.to_string();
    events.iter().filter(move |e| e["event"] == kind.as_str())
}

/// The (partition, offset) of every record consumed.
pub fn consumed(events: &[Value]) -> Vec<(u64, u64)> {
    of(events, "record")
        .map(|e| {
            (
                e["partition"].as_u64().unwrap(),
                e["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The partitions a consumer owns after its events (assignments minus
/// revocations and losses; incremental or eager alike, since an eager
/// consumer revokes everything before each assignment).
pub fn owned(events: &[Value]) -> Vec<u64> {
    let mut owned = std::collections::BTreeSet::new();
    for e in events {
        let partitions = e["partitions"].as_array().into_iter().flatten();
        let numbers = partitions.map(|p| p[1].as_u64().unwrap());
        match e["event"].as_str() {
            Some("assigned") => owned.extend(numbers),
            Some("revoked" | "lost") => numbers.for_each(|p| {
                owned.remove(&p);
            }),
            _ => {}
        }
    }
    owned.into_iter().collect()
}

/// Each partition's ownership intervals (start, end; end `f64::MAX` while
/// still owned) by one consumer, from its events' times.
pub fn ownership(events: &[Value]) -> Vec<(u64, f64, f64)> {
    let mut open: std::collections::BTreeMap<u64, f64> = Default::default();
    let mut out = Vec::new();
    for e in events {
        let Some(time) = e["time"].as_f64() else {
            continue;
        };
        let partitions = e["partitions"].as_array().into_iter().flatten();
        for p in partitions.map(|p| p[1].as_u64().unwrap()) {
            match e["event"].as_str() {
                Some("assigned") => {
                    open.insert(p, time);
                }
                _ => {
                    if let Some(start) = open.remove(&p) {
                        out.push((p, start, time));
                    }
                }
            }
        }
    }
    out.extend(open.into_iter().map(|(p, start)| (p, start, f64::MAX)));
    out
}

/// Produces `per_partition` records to each of `partitions` partitions of
/// `topic` (values `p<partition>-<tag>-<i>`), through confluent-kafka.
pub fn produce(serve: &KafkaServe, topic: &str, partitions: u32, per_partition: usize, tag: &str) {
    let records: Vec<Value> = (0..partitions)
        .flat_map(|p| {
            (0..per_partition).map(move |i| {
                let value = hex(format!("p{p}-{tag}-{i}").as_bytes());
                json!({"partition": p, "key": null, "value": value})
            })
        })
        .collect();
    let answer = clients().unwrap().python(json!({
        "op": "produce", "client": "confluent", "bootstrap": serve.kafka,
        "topic": topic, "codec": "none", "records": records,
    }));
    assert!(answer.get("error").is_none(), "producing: {answer}");
}

/// Creates `topic` with `partitions` partitions through CreateTopics.
pub fn create(serve: &KafkaServe, topic: &str, partitions: u32) {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::{CreateTopicsRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut wire = crate::kafka_wire::Wire::connect(serve.kafka.parse().unwrap());
    let answer = wire.call(
        5,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_num_partitions(partitions as i32)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(answer.topics[0].error_code, 0, "creating {topic}");
}
