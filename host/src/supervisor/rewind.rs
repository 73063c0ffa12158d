//! Where `POST /processors/{name}/rewind` and `weir processor rewind` move a
//! processor's group: one position for every input partition, or one per
//! partition named (the partitions left out stay where they are). One type
//! for the server that reads it and the client that sends it.
//!
//! | form | CLI (`--to`) | JSON (`"to"`) |
//! |---|---|---|
//! | every partition | `earliest`, `latest`, `1234`, `ts:MILLIS` | the same, an offset as a number |
//! | per partition | `0:100,1:latest` | `{"0": 100, "1": "latest"}` |
//! | naming the topic | `orders/0:100,payments/2:earliest` | `{"orders/0": 100}` |
//!
//! The topic may be left out only when the processor reads one topic.

use std::str::FromStr;

use serde_json::{Map, Value};

use super::SupervisorError;
use crate::group::TopicPartition;
use crate::log::LogError;
use crate::wire::{SeekTo, parse_position, position};

/// Where a rewind moves a processor's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewindTo {
    /// Every input partition to this position.
    All(SeekTo),
    /// Each named partition to its own position; the others stay.
    Each(Vec<PartitionTarget>),
}

/// One partition's target in a [`RewindTo::Each`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTarget {
    /// The input topic; `None` for a processor that reads one.
    pub topic: Option<String>,
    pub partition: u32,
    pub to: SeekTo,
}

impl From<SeekTo> for RewindTo {
    fn from(to: SeekTo) -> RewindTo {
        RewindTo::All(to)
    }
}

/// `[TOPIC/]PARTITION` as a target's key, or `None` when `key` is not one
/// (so `ts:…` reads as a position).
fn parse_key(key: &str) -> Option<(Option<String>, u32)> {
    let (topic, partition) = match key.rsplit_once('/') {
        Some((topic, p)) if !topic.is_empty() => (Some(topic.to_string()), p),
        Some(_) => return None,
        None => (None, key),
    };
    let digits = !partition.is_empty() && partition.bytes().all(|b| b.is_ascii_digit());
    Some((topic, partition.parse().ok().filter(|_| digits)?))
}

fn key_of(target: &PartitionTarget) -> String {
    match &target.topic {
        Some(topic) => format!("{topic}/{}", target.partition),
        None => target.partition.to_string(),
    }
}

impl RewindTo {
    /// Targets from `(key, position)` pairs, refusing none and repeats.
    fn each(
        pairs: impl IntoIterator<Item = (String, Result<SeekTo, String>)>,
    ) -> Result<RewindTo, String> {
        let mut targets: Vec<PartitionTarget> = Vec::new();
        for (key, to) in pairs {
            let (topic, partition) = parse_key(&key)
                .ok_or_else(|| format!("expected PARTITION or TOPIC/PARTITION, got {key:?}"))?;
            let target = PartitionTarget {
                topic,
                partition,
                to: to.map_err(|e| format!("{key}: {e}"))?,
            };
            if targets.iter().any(|t| key_of(t) == key_of(&target)) {
                return Err(format!("partition {key} is given twice"));
            }
            targets.push(target);
        }
        if targets.is_empty() {
            return Err("no partition given".to_string());
        }
        Ok(RewindTo::Each(targets))
    }

    /// The JSON form (see the module's table).
    pub fn to_json(&self) -> Value {
        match self {
            RewindTo::All(to) => position(*to),
            RewindTo::Each(targets) => {
                let map: Map<String, Value> = targets
                    .iter()
                    .map(|t| (key_of(t), position(t.to)))
                    .collect();
                Value::Object(map)
            }
        }
    }

    /// Reads the JSON form; a bad one is an error saying why.
    pub fn from_json(value: &Value) -> Result<RewindTo, String> {
        match value {
            Value::Object(map) => RewindTo::each(
                map.iter()
                    .map(|(key, to)| (key.clone(), parse_position(to))),
            ),
            other => parse_position(other).map(RewindTo::All),
        }
    }

    /// Every partition this rewind moves, with its position, on a processor
    /// reading `topics` (`partitions` counts a topic's partitions). A named
    /// topic must be one of them; an unnamed one needs a single input topic.
    pub fn targets(
        &self,
        topics: &[String],
        partitions: impl Fn(&str) -> Result<u32, LogError>,
    ) -> Result<Vec<(TopicPartition, SeekTo)>, SupervisorError> {
        let mut out = Vec::new();
        match self {
            RewindTo::All(to) => {
                for topic in topics {
                    for p in 0..partitions(topic)? {
                        out.push((TopicPartition::new(topic.clone(), p), *to));
                    }
                }
            }
            RewindTo::Each(targets) => {
                for target in targets {
                    let topic = match (&target.topic, topics) {
                        (Some(t), _) if topics.contains(t) => t.clone(),
                        (Some(t), _) => {
                            return Err(SupervisorError::Invalid(format!(
                                "{t:?} is not an input topic of the processor (it reads {topics:?})"
                            )));
                        }
                        (None, [only]) => only.clone(),
                        (None, _) => {
                            return Err(SupervisorError::Invalid(format!(
                                "the processor reads {topics:?}: name the topic, as TOPIC/{}:POSITION",
                                target.partition
                            )));
                        }
                    };
                    out.push((TopicPartition::new(topic, target.partition), target.to));
                }
            }
        }
        Ok(out)
    }
}

impl FromStr for RewindTo {
    type Err = String;

    /// A position, or `[TOPIC/]PARTITION:POSITION` entries separated by commas.
    fn from_str(s: &str) -> Result<RewindTo, String> {
        let per_partition = s
            .split(',')
            .next()
            .and_then(|first| first.split_once(':'))
            .is_some_and(|(key, _)| parse_key(key).is_some());
        if !per_partition {
            return s.parse().map(RewindTo::All);
        }
        RewindTo::each(s.split(',').map(|entry| match entry.split_once(':') {
            Some((key, to)) => (key.to_string(), to.parse()),
            None => (
                entry.to_string(),
                Err("expected PARTITION:POSITION".to_string()),
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(topic: Option<&str>, partition: u32, to: SeekTo) -> PartitionTarget {
        PartitionTarget {
            topic: topic.map(str::to_string),
            partition,
            to,
        }
    }

    #[test]
    fn a_rewind_is_one_position_or_one_per_partition_in_both_forms() {
        let all: RewindTo = "ts:1700000000000".parse().unwrap();
        assert_eq!(all, RewindTo::All(SeekTo::Timestamp(1_700_000_000_000)));
        assert_eq!("42".parse(), Ok(RewindTo::All(SeekTo::Offset(42))));
        let each: RewindTo = "0:100,orders/1:latest,2:ts:5".parse().unwrap();
        assert_eq!(
            each,
            RewindTo::Each(vec![
                target(None, 0, SeekTo::Offset(100)),
                target(Some("orders"), 1, SeekTo::Latest),
                target(None, 2, SeekTo::Timestamp(5)),
            ])
        );
        let json = each.to_json();
        assert_eq!(
            json,
            serde_json::json!({"0": 100, "orders/1": "latest", "2": "ts:5"})
        );
        let back = RewindTo::from_json(&json).unwrap();
        let RewindTo::Each(mut back) = back else {
            panic!("an object is per partition")
        };
        back.sort_by_key(|t| t.partition);
        assert_eq!(RewindTo::Each(back), each);
        assert_eq!(RewindTo::from_json(&all.to_json()), Ok(all));
    }

    #[test]
    fn bad_targets_are_refused_saying_why() {
        for (bad, why) in [
            ("0:100,0:5", "given twice"),
            ("0:100,x", "got \"x\""),
            ("0:soon", "0: expected"),
            ("0:1,x:2", "TOPIC/PARTITION"),
        ] {
            let err = bad.parse::<RewindTo>().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(RewindTo::from_json(&serde_json::json!({})).is_err());
        let topics = ["a".to_string(), "b".to_string()];
        let two = |_: &str| Ok(2);
        let unnamed = RewindTo::Each(vec![target(None, 0, SeekTo::Earliest)]);
        let err = unnamed.targets(&topics, two).unwrap_err().to_string();
        assert!(err.contains("name the topic"), "{err}");
        let foreign = RewindTo::Each(vec![target(Some("c"), 0, SeekTo::Earliest)]);
        assert!(foreign.targets(&topics, two).is_err());
        let all = RewindTo::All(SeekTo::Latest).targets(&topics, two).unwrap();
        assert_eq!(all.len(), 4, "every partition of every input topic");
    }
}
