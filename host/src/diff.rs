//! `weir diff`: what a new guest version would change in history it is about
//! to replay. Both versions ([`Replay`]) run over the same input records, each
//! record as its own batch from empty state, and [`Differ`] compares what
//! they did record by record: the emits at each position (same topic and key
//! with another value is a change; anything else is one removed and one
//! added), and the failures (new, fixed, or changed). It also keeps the last
//! value each version emitted per output (topic, key), the table a compacted
//! output topic would become, and reports the keys whose final value differs.
//! Nothing is committed and nothing is appended to any log.

mod replay;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use replay::{Outcome, Replay};

/// What `weir diff` reports: the range compared, the versions, a summary, and
/// every difference (`DiffReport` in `docs/api.md`'s shapes, printed by
/// `weir diff --format json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiffReport {
    pub topic: String,
    pub old_version: String,
    pub new_version: String,
    /// Where both versions' state started: always `empty` (at each range's
    /// first offset).
    pub state: String,
    /// The offsets compared, per partition.
    pub ranges: Vec<Range>,
    pub summary: Summary,
    /// Every input record the versions treated differently, in partition and
    /// offset order.
    pub records: Vec<RecordDiff>,
    /// Every output (topic, key) whose last emitted value differs.
    pub keys: Vec<KeyDiff>,
}

/// The offsets `[from, to)` of one partition that were compared.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Range {
    pub partition: u32,
    pub from: u64,
    pub to: u64,
}

/// The counts of a diff.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    /// Input records both versions ran.
    pub records: u64,
    /// Input records with any difference.
    pub records_differing: u64,
    pub emits_changed: u64,
    /// Emitted by the new version only.
    pub emits_added: u64,
    /// Emitted by the old version only.
    pub emits_removed: u64,
    /// Records that fail (or dead-letter) with the new version only.
    pub new_failures: u64,
    /// Records that failed with the old version only.
    pub fixed_failures: u64,
    /// Records that fail with both, differently.
    pub changed_failures: u64,
    /// Output keys whose last value differs.
    pub keys_changed: u64,
}

impl Summary {
    /// Whether the versions did the same with every record.
    pub fn is_empty(&self) -> bool {
        self.records_differing == 0 && self.keys_changed == 0
    }
}

/// One input record the versions treated differently.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RecordDiff {
    pub partition: u32,
    pub offset: u64,
    /// The input record's key (UTF-8, lossy).
    pub key: Option<String>,
    pub emits: Vec<EmitDiff>,
    /// Set when the failures differ: how each version failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDiff>,
}

/// How an emit at one position differs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Same topic and key, another value.
    Changed,
    /// Only the new version emits it.
    Added,
    /// Only the old version emits it.
    Removed,
}

/// An emit that differs, at position `index` among the record's emits.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmitDiff {
    pub index: usize,
    pub change: Change,
    pub topic: String,
    pub key: Option<String>,
    /// The old version's value (absent when added).
    pub old: Option<String>,
    /// The new version's value (absent when removed).
    pub new: Option<String>,
}

/// Failures of one record that differ (`kind: message`, or none).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FailureDiff {
    pub old: Option<String>,
    pub new: Option<String>,
}

/// An output key whose last value differs (absent: never emitted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyDiff {
    pub topic: String,
    pub key: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

type OutputKey = (String, Option<Vec<u8>>);

/// The last value (old, new) each version emitted under an output key.
type LastValues = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Builds a [`DiffReport`] from the two versions' outcomes, record by record.
#[derive(Debug, Default)]
pub struct Differ {
    report: DiffReport,
    /// The last value each version emitted per output key.
    last: BTreeMap<OutputKey, LastValues>,
}

impl Differ {
    pub fn new(topic: &str, old_version: &str, new_version: &str) -> Differ {
        Differ {
            report: DiffReport {
                topic: topic.to_string(),
                old_version: old_version.to_string(),
                new_version: new_version.to_string(),
                state: "empty".to_string(),
                ..DiffReport::default()
            },
            last: BTreeMap::new(),
        }
    }

    /// Notes the range compared in `partition`.
    pub fn range(&mut self, range: Range) {
        self.report.ranges.push(range);
    }

    /// Compares what both versions did with one input record.
    pub fn record(
        &mut self,
        partition: u32,
        offset: u64,
        key: Option<&[u8]>,
        old: &Outcome,
        new: &Outcome,
    ) {
        let summary = &mut self.report.summary;
        summary.records += 1;
        for (slot, outcome) in [(0, old), (1, new)] {
            for (topic, key, value) in &outcome.emits {
                let last = self.last.entry((topic.clone(), key.clone())).or_default();
                match slot {
                    0 => last.0 = Some(value.clone()),
                    _ => last.1 = Some(value.clone()),
                }
            }
        }
        let mut emits = Vec::new();
        for index in 0..old.emits.len().max(new.emits.len()) {
            emits.extend(emit_diffs(
                index,
                old.emits.get(index),
                new.emits.get(index),
            ));
        }
        let failure = (old.failure != new.failure).then(|| FailureDiff {
            old: old.failure.clone(),
            new: new.failure.clone(),
        });
        if emits.is_empty() && failure.is_none() {
            return;
        }
        summary.records_differing += 1;
        for e in &emits {
            match e.change {
                Change::Changed => summary.emits_changed += 1,
                Change::Added => summary.emits_added += 1,
                Change::Removed => summary.emits_removed += 1,
            }
        }
        if let Some(f) = &failure {
            match (&f.old, &f.new) {
                (None, Some(_)) => summary.new_failures += 1,
                (Some(_), None) => summary.fixed_failures += 1,
                _ => summary.changed_failures += 1,
            }
        }
        self.report.records.push(RecordDiff {
            partition,
            offset,
            key: key.map(text),
            emits,
            failure,
        });
    }

    /// The report, with the output keys whose last values differ.
    pub fn finish(mut self) -> DiffReport {
        for ((topic, key), (old, new)) in self.last {
            if old != new {
                self.report.keys.push(KeyDiff {
                    topic,
                    key: key.as_deref().map(text),
                    old: old.as_deref().map(text),
                    new: new.as_deref().map(text),
                });
            }
        }
        self.report.summary.keys_changed = self.report.keys.len() as u64;
        self.report
    }
}

type Emitted = (String, Option<Vec<u8>>, Vec<u8>);

/// The differences between the emits at one position: none, one change, or
/// a removal and an addition when topic or key differ.
fn emit_diffs(index: usize, old: Option<&Emitted>, new: Option<&Emitted>) -> Vec<EmitDiff> {
    let diff = |change, (topic, key, _): &Emitted, old: Option<&Emitted>, new: Option<&Emitted>| {
        EmitDiff {
            index,
            change,
            topic: topic.clone(),
            key: key.as_deref().map(text),
            old: old.map(|e| text(&e.2)),
            new: new.map(|e| text(&e.2)),
        }
    };
    match (old, new) {
        (Some(o), Some(n)) if o == n => Vec::new(),
        (Some(o), Some(n)) if o.0 == n.0 && o.1 == n.1 => {
            vec![diff(Change::Changed, n, Some(o), Some(n))]
        }
        (Some(o), Some(n)) => vec![
            diff(Change::Removed, o, Some(o), None),
            diff(Change::Added, n, None, Some(n)),
        ],
        (Some(o), None) => vec![diff(Change::Removed, o, Some(o), None)],
        (None, Some(n)) => vec![diff(Change::Added, n, None, Some(n))],
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emits(list: &[(&str, &str, &str)]) -> Outcome {
        Outcome {
            emits: list
                .iter()
                .map(|(t, k, v)| {
                    (
                        t.to_string(),
                        Some(k.as_bytes().to_vec()),
                        v.as_bytes().to_vec(),
                    )
                })
                .collect(),
            failure: None,
        }
    }

    fn failed(message: &str) -> Outcome {
        Outcome {
            emits: Vec::new(),
            failure: Some(message.to_string()),
        }
    }

    #[test]
    fn identical_outcomes_report_nothing() {
        let mut differ = Differ::new("in", "a", "b");
        let same = emits(&[("out", "1", "x")]);
        differ.record(0, 0, Some(b"k"), &same, &same);
        differ.record(
            0,
            1,
            None,
            &failed("dead-letter: bad"),
            &failed("dead-letter: bad"),
        );
        let report = differ.finish();
        assert_eq!(report.summary.records, 2);
        assert!(report.summary.is_empty());
        assert!(report.records.is_empty() && report.keys.is_empty());
    }

    #[test]
    fn a_value_change_a_new_emit_and_a_moved_key_are_told_apart() {
        let mut differ = Differ::new("in", "a", "b");
        let old = emits(&[("out", "1", "x"), ("out", "2", "y")]);
        let new = emits(&[("out", "1", "X"), ("out", "9", "y"), ("side", "3", "z")]);
        differ.record(2, 7, Some(b"k"), &old, &new);
        let report = differ.finish();
        let changes: Vec<(usize, Change, &str)> = report.records[0]
            .emits
            .iter()
            .map(|e| (e.index, e.change, e.topic.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                (0, Change::Changed, "out"),
                (1, Change::Removed, "out"),
                (1, Change::Added, "out"),
                (2, Change::Added, "side"),
            ]
        );
        let s = &report.summary;
        assert_eq!((s.emits_changed, s.emits_added, s.emits_removed), (1, 2, 1));
        assert_eq!(
            (report.records[0].partition, report.records[0].offset),
            (2, 7)
        );
        // out/1 changed value, out/2 lost its only value, out/9 and side/3 are new.
        assert_eq!(s.keys_changed, 4);
    }

    #[test]
    fn failures_are_new_fixed_or_changed() {
        let mut differ = Differ::new("in", "a", "b");
        let ok = emits(&[]);
        differ.record(0, 0, None, &ok, &failed("dead-letter: new"));
        differ.record(0, 1, None, &failed("trap: old"), &ok);
        differ.record(0, 2, None, &failed("skip: a"), &failed("skip: b"));
        let s = differ.finish().summary;
        assert_eq!(
            (s.new_failures, s.fixed_failures, s.changed_failures),
            (1, 1, 1)
        );
        assert_eq!(s.records_differing, 3);
    }

    #[test]
    fn keys_report_the_last_value_of_each_version() {
        let mut differ = Differ::new("in", "a", "b");
        differ.record(
            0,
            0,
            None,
            &emits(&[("t", "k", "1")]),
            &emits(&[("t", "k", "2")]),
        );
        differ.record(
            0,
            1,
            None,
            &emits(&[("t", "k", "3")]),
            &emits(&[("t", "k", "3")]),
        );
        let report = differ.finish();
        assert_eq!(report.summary.records_differing, 1);
        assert!(
            report.keys.is_empty(),
            "the last values agree: {:?}",
            report.keys
        );
    }
}
