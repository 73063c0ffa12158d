//! The changelog's records and how they group into committed units.
//!
//! Records of a changelog partition, in order, are state changes
//! (`weir.state: put|del`), emits held for exactly-once (`weir.dest` names the
//! topic and `weir.dest.partition` the partition chosen at commit time), and
//! markers (`weir.marker: commit|reset`, value: the input position, then for a
//! commit the high watermark of every destination partition before its emits
//! were appended). A marker closes a unit: a commit applies the unit's changes
//! on top of the state; a reset replaces the state with them (a snapshot).
//! Records after the last marker belong to no unit and are ignored.
//!
//! Replaying every unit from the start gives the current state; the state at
//! input position X on the current timeline is the state after the last unit
//! whose position is at most X (every later unit has passed X without coming
//! back, so that unit is on the path the current timeline took).

use super::{Change, StateError};
use crate::log::{Record, StoredRecord};

/// Header of a state change: `put` or `del`.
pub const STATE: &str = "weir.state";
/// Header of an emit held in the changelog: its destination topic.
pub const DEST: &str = "weir.dest";
/// Header of an emit held in the changelog: its destination partition.
pub const DEST_PARTITION: &str = "weir.dest.partition";
/// Header of a marker: `commit` or `reset`.
pub const MARKER: &str = "weir.marker";
/// Header on every record an exactly-once commit appended to its destination:
/// `<changelog topic>/<partition>/<marker offset>`, so recovery can tell
/// whether a destination already has them.
pub const TXN: &str = "weir.txn";

/// The changelog of `group`'s state for input `topic`.
pub fn changelog_topic(group: &str, topic: &str) -> String {
    format!("__state.{group}.{topic}")
}

/// What closes a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// The unit's changes move the state to input `position`; its emits went
    /// to `dests` (topic, partition, high watermark before them).
    Commit {
        position: u64,
        dests: Vec<(String, u32, u64)>,
    },
    /// The unit is the whole state at input `position`.
    Reset { position: u64 },
}

impl Marker {
    /// The input position the group reaches with this unit.
    pub fn position(&self) -> u64 {
        match self {
            Marker::Commit { position, .. } | Marker::Reset { position } => *position,
        }
    }
}

/// One changelog record, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Change(Change),
    Emit {
        topic: String,
        partition: u32,
        record: Record,
    },
    Marker(Marker),
}

/// The record of a state change.
pub fn change_record((key, value): &Change) -> Record {
    let (kind, value) = match value {
        Some(v) => (&b"put"[..], v.clone()),
        None => (&b"del"[..], Vec::new()),
    };
    Record {
        key: Some(key.clone()),
        value,
        headers: vec![(STATE.to_string(), kind.to_vec())],
        timestamp: None,
        nulls: Default::default(),
    }
}

/// The record holding an emit bound for `topic`/`partition`.
pub fn emit_record(topic: &str, partition: u32, record: &Record) -> Record {
    let mut held = record.clone();
    held.headers
        .push((DEST.to_string(), topic.as_bytes().to_vec()));
    held.headers.push((
        DEST_PARTITION.to_string(),
        partition.to_string().into_bytes(),
    ));
    held
}

/// The record of a marker.
pub fn marker_record(marker: &Marker) -> Record {
    let mut value = marker.position().to_be_bytes().to_vec();
    let kind = match marker {
        Marker::Commit { dests, .. } => {
            for (topic, partition, hw) in dests {
                value.extend((topic.len() as u16).to_be_bytes());
                value.extend(topic.as_bytes());
                value.extend(partition.to_be_bytes());
                value.extend(hw.to_be_bytes());
            }
            "commit"
        }
        Marker::Reset { .. } => "reset",
    };
    Record {
        key: None,
        value,
        headers: vec![(MARKER.to_string(), kind.as_bytes().to_vec())],
        timestamp: None,
        nulls: Default::default(),
    }
}

/// Decodes a record of changelog `topic`/`partition`.
pub fn decode(topic: &str, partition: u32, r: &StoredRecord) -> Result<Entry, StateError> {
    let bad = |reason: &str| StateError::Malformed {
        topic: topic.to_string(),
        partition,
        offset: r.offset,
        reason: reason.to_string(),
    };
    let header = |name: &str| {
        r.headers
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    };
    if let Some(kind) = header(MARKER) {
        let position = r
            .value
            .get(..8)
            .ok_or_else(|| bad("marker without a position"))?;
        let position = u64::from_be_bytes(position.try_into().expect("8 bytes"));
        return match kind {
            b"reset" => Ok(Entry::Marker(Marker::Reset { position })),
            b"commit" => {
                let dests = decode_dests(&r.value[8..]).ok_or_else(|| bad("bad destinations"))?;
                Ok(Entry::Marker(Marker::Commit { position, dests }))
            }
            _ => Err(bad("unknown marker kind")),
        };
    }
    if let Some(kind) = header(STATE) {
        let key = r
            .key
            .as_deref()
            .map(<[u8]>::to_vec)
            .ok_or_else(|| bad("state change without a key"))?;
        return match kind {
            b"put" => Ok(Entry::Change((key, Some(r.value.to_vec())))),
            b"del" => Ok(Entry::Change((key, None))),
            _ => Err(bad("unknown state change")),
        };
    }
    if let Some(dest) = header(DEST) {
        let topic =
            String::from_utf8(dest.to_vec()).map_err(|_| bad("destination is not UTF-8"))?;
        let partition = header(DEST_PARTITION)
            .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok())
            .ok_or_else(|| bad("emit without a destination partition"))?;
        let headers = r
            .headers
            .iter()
            .filter(|(n, _)| n != DEST && n != DEST_PARTITION)
            .cloned()
            .collect();
        let record = Record {
            key: r.key.as_deref().map(<[u8]>::to_vec),
            value: r.value.to_vec(),
            headers,
            timestamp: Some(r.timestamp),
            nulls: Default::default(),
        };
        return Ok(Entry::Emit {
            topic,
            partition,
            record,
        });
    }
    Err(bad("neither a state change, an emit nor a marker"))
}

fn decode_dests(mut bytes: &[u8]) -> Option<Vec<(String, u32, u64)>> {
    let mut dests = Vec::new();
    while !bytes.is_empty() {
        let len = u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?) as usize;
        let topic = String::from_utf8(bytes.get(2..2 + len)?.to_vec()).ok()?;
        let rest = bytes.get(2 + len..)?;
        let partition = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let hw = u64::from_be_bytes(rest.get(4..12)?.try_into().ok()?);
        dests.push((topic, partition, hw));
        bytes = &rest[12..];
    }
    Some(dests)
}

/// A committed unit of the changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub changes: Vec<Change>,
    pub emits: Vec<(String, u32, Record)>,
    pub marker: Marker,
    /// The marker's offset in the changelog partition.
    pub marker_offset: u64,
}

/// Groups decoded entries into units as they are read in order.
#[derive(Debug, Default)]
pub struct Units {
    changes: Vec<Change>,
    emits: Vec<(String, u32, Record)>,
}

impl Units {
    /// Takes the entry at `offset`; returns the unit it closes, if it is a
    /// marker.
    pub fn push(&mut self, entry: Entry, offset: u64) -> Option<Unit> {
        match entry {
            Entry::Change(change) => self.changes.push(change),
            Entry::Emit {
                topic,
                partition,
                record,
            } => self.emits.push((topic, partition, record)),
            Entry::Marker(marker) => {
                return Some(Unit {
                    changes: std::mem::take(&mut self.changes),
                    emits: std::mem::take(&mut self.emits),
                    marker,
                    marker_offset: offset,
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(offset: u64, r: Record) -> StoredRecord {
        StoredRecord {
            offset,
            timestamp: 5,
            key: r.key.map(Into::into),
            value: r.value.into(),
            headers: r.headers,
            nulls: Default::default(),
        }
    }

    #[test]
    fn every_kind_of_record_round_trips() {
        let put = (b"k".to_vec(), Some(b"v".to_vec()));
        let del = (b"gone".to_vec(), None);
        let emit = Record::keyed(b"ek".to_vec(), b"ev".to_vec());
        let commit = Marker::Commit {
            position: 42,
            dests: vec![("out".into(), 2, 7), ("alerts".into(), 0, 0)],
        };
        let reset = Marker::Reset { position: 9 };
        let records = [
            change_record(&put),
            change_record(&del),
            emit_record("out", 2, &emit),
            marker_record(&commit),
            marker_record(&reset),
        ];
        let decoded: Vec<Entry> = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| decode("c", 0, &stored(i as u64, r)).unwrap())
            .collect();
        assert_eq!(decoded[0], Entry::Change(put));
        assert_eq!(decoded[1], Entry::Change(del));
        let Entry::Emit {
            topic,
            partition,
            record,
        } = &decoded[2]
        else {
            panic!("an emit: {:?}", decoded[2])
        };
        assert_eq!((topic.as_str(), *partition), ("out", 2));
        assert_eq!(
            (record.key.as_deref(), record.value.as_slice()),
            (Some(&b"ek"[..]), &b"ev"[..])
        );
        assert!(
            record.headers.is_empty(),
            "the destination headers are taken off"
        );
        assert_eq!(decoded[3], Entry::Marker(commit));
        assert_eq!(decoded[4], Entry::Marker(reset));
    }

    #[test]
    fn a_record_that_is_none_of_them_is_an_error_naming_its_place() {
        let err = decode("__state.g.t", 3, &stored(17, Record::value("x"))).unwrap_err();
        assert!(err.to_string().contains("__state.g.t/3 offset 17"), "{err}");
    }

    #[test]
    fn a_marker_closes_a_unit_and_what_follows_the_last_one_is_pending() {
        let mut units = Units::default();
        assert!(
            units
                .push(Entry::Change((b"a".to_vec(), Some(b"1".to_vec()))), 0)
                .is_none()
        );
        let unit = units
            .push(Entry::Marker(Marker::Reset { position: 3 }), 1)
            .expect("a unit");
        assert_eq!(unit.changes.len(), 1);
        assert_eq!((unit.marker.position(), unit.marker_offset), (3, 1));
        assert!(
            units
                .push(Entry::Change((b"b".to_vec(), None)), 2)
                .is_none()
        );
        assert!(units.changes.len() == 1, "the torn tail waits for a marker");
    }
}
