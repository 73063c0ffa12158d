//! The local copy of a group's state: one redb database per group, holding
//! every partition's keys and values, and per partition the changelog offset
//! the copy reflects (its checkpoint), the input position it stands at, and
//! its size.
//!
//! Commits are applied without an fsync (redb's `Durability::None`), since the
//! changelog already holds them; [`StateStore::persist`] makes everything so
//! far durable, between batches, so after a crash the copy is at some earlier
//! checkpoint and [`StateStore::catch_up`] replays the changelog from there.
//! Every write of a partition (its keys and its metadata) is one redb
//! transaction, so the copy never stands between two units.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::changelog::{self, Marker, Unit, Units};
use super::{KeyValue, StateError};
use crate::group::TopicPartition;
use crate::log::StoredRecord;

const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
const META: TableDefinition<&[u8], &[u8]> = TableDefinition::new("meta");

/// Where a partition's copy stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionMeta {
    /// The next changelog offset to replay.
    pub checkpoint: u64,
    /// The input position of the last unit applied, if any.
    pub position: Option<u64>,
    pub keys: u64,
    /// Bytes of keys and values.
    pub bytes: u64,
}

impl PartitionMeta {
    fn encode(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&self.checkpoint.to_be_bytes());
        out[8..16].copy_from_slice(&self.position.unwrap_or(u64::MAX).to_be_bytes());
        out[16..24].copy_from_slice(&self.keys.to_be_bytes());
        out[24..].copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> PartitionMeta {
        let word = |i: usize| {
            bytes
                .get(i * 8..i * 8 + 8)
                .map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
        };
        PartitionMeta {
            checkpoint: word(0),
            position: Some(word(1)).filter(|p| *p != u64::MAX),
            keys: word(2),
            bytes: word(3),
        }
    }
}

/// The local copy of one group's state.
pub struct StateStore {
    path: PathBuf,
    db: Database,
    /// Bytes of every partition, for the budget.
    total: AtomicU64,
    /// Whether a unit was applied since the last [`StateStore::persist`].
    dirty: AtomicBool,
    /// Held through a persist, so that a second caller never returns before
    /// the first one's commit is durable.
    persisting: Mutex<()>,
}

/// A snapshot of the committed state (see [`StateStore::reader`]).
pub struct Reader {
    path: PathBuf,
    table: Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl Reader {
    /// The value under `key` in `tp`'s state.
    pub fn get(&self, tp: &TopicPartition, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        let Some(table) = &self.table else {
            return Ok(None);
        };
        let value = table
            .get(full_key(tp, key).as_slice())
            .map_err(|e| StateError::store(&self.path, e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("path", &self.path)
            .finish()
    }
}

/// The key prefix of a partition: topic names never hold a NUL byte.
fn prefix(tp: &TopicPartition) -> Vec<u8> {
    let mut out = Vec::with_capacity(tp.topic.len() + 5);
    out.extend(tp.topic.as_bytes());
    out.push(0);
    out.extend(tp.partition.to_be_bytes());
    out
}

fn full_key(tp: &TopicPartition, key: &[u8]) -> Vec<u8> {
    let mut out = prefix(tp);
    out.extend(key);
    out
}

impl StateStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<StateStore, StateError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError::store(path, redb::Error::Io(e)))?;
        }
        let db = Database::create(path).map_err(|e| StateError::store(path, e))?;
        let store = StateStore {
            path: path.to_path_buf(),
            db,
            total: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
            persisting: Mutex::new(()),
        };
        let total = store.metas()?.iter().map(|(_, m)| m.bytes).sum();
        store.total.store(total, Ordering::Relaxed);
        Ok(store)
    }

    fn err(&self, e: impl Into<redb::Error>) -> StateError {
        StateError::store(&self.path, e)
    }

    /// Bytes of keys and values over every partition.
    pub fn total_bytes(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// The value under `key` in `tp`'s state.
    pub fn get(&self, tp: &TopicPartition, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        self.reader()?.get(tp, key)
    }

    /// A consistent read-only view of every partition's committed state, as
    /// of now: a batch opens one and reads through it.
    pub fn reader(&self) -> Result<Reader, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(KV) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(self.err(e)),
        };
        Ok(Reader {
            path: self.path.clone(),
            table,
        })
    }

    /// Up to `limit` entries of `tp` whose keys start with `start` and sort
    /// after `after`, in key order.
    pub fn scan(
        &self,
        tp: &TopicPartition,
        start: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<KeyValue>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(KV) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let base = prefix(tp);
        let from = full_key(tp, start);
        let mut out = Vec::new();
        for entry in table.range(from.as_slice()..).map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            let Some(key) = k.value().strip_prefix(base.as_slice()) else {
                break;
            };
            if !key.starts_with(start) || out.len() >= limit {
                break;
            }
            if after.is_some_and(|a| key <= a) {
                continue;
            }
            out.push((key.to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Every entry of `tp`, in key order.
    pub fn snapshot(&self, tp: &TopicPartition) -> Result<Vec<KeyValue>, StateError> {
        self.scan(tp, &[], None, usize::MAX)
    }

    /// Where `tp`'s copy stands.
    pub fn meta(&self, tp: &TopicPartition) -> Result<PartitionMeta, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(PartitionMeta::default()),
            Err(e) => return Err(self.err(e)),
        };
        let meta = table.get(prefix(tp).as_slice()).map_err(|e| self.err(e))?;
        Ok(meta.map_or_else(PartitionMeta::default, |m| PartitionMeta::decode(m.value())))
    }

    /// Keys and bytes over every partition.
    pub fn totals(&self) -> Result<(u64, u64), StateError> {
        let metas = self.metas()?;
        Ok(metas
            .iter()
            .fold((0, 0), |(k, b), (_, m)| (k + m.keys, b + m.bytes)))
    }

    /// Every partition's metadata, as (key prefix, meta).
    fn metas(&self) -> Result<Vec<(Vec<u8>, PartitionMeta)>, StateError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (k, v) = entry.map_err(|e| self.err(e))?;
            out.push((k.value().to_vec(), PartitionMeta::decode(v.value())));
        }
        Ok(out)
    }

    /// Applies a committed unit of `tp`'s changelog, which ends before
    /// changelog offset `checkpoint`: a commit on top of the state, a reset in
    /// place of it.
    pub fn apply(
        &self,
        tp: &TopicPartition,
        unit: &Unit,
        checkpoint: u64,
    ) -> Result<(), StateError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::None)
            .map_err(|e| self.err(redb::Error::from(e)))?;
        let before = self.meta(tp)?;
        let mut meta = before;
        {
            let mut kv = txn.open_table(KV).map_err(|e| self.err(e))?;
            if let Marker::Reset { .. } = unit.marker {
                let base = prefix(tp);
                let mut end = base.clone();
                end.push(0xff);
                let doomed: Vec<Vec<u8>> = kv
                    .range(base.as_slice()..)
                    .map_err(|e| self.err(e))?
                    .map_while(|e| {
                        let (k, _) = e.ok()?;
                        k.value().starts_with(&base).then(|| k.value().to_vec())
                    })
                    .collect();
                for k in doomed {
                    kv.remove(k.as_slice()).map_err(|e| self.err(e))?;
                }
                meta.keys = 0;
                meta.bytes = 0;
            }
            for (key, value) in &unit.changes {
                let full = full_key(tp, key);
                let old = kv
                    .get(full.as_slice())
                    .map_err(|e| self.err(e))?
                    .map(|v| v.value().len());
                if let Some(len) = old {
                    meta.keys -= 1;
                    meta.bytes -= (key.len() + len) as u64;
                }
                match value {
                    Some(v) => {
                        kv.insert(full.as_slice(), v.as_slice())
                            .map_err(|e| self.err(e))?;
                        meta.keys += 1;
                        meta.bytes += (key.len() + v.len()) as u64;
                    }
                    None => {
                        kv.remove(full.as_slice()).map_err(|e| self.err(e))?;
                    }
                }
            }
            meta.checkpoint = checkpoint;
            meta.position = Some(unit.marker.position());
            let mut metas = txn.open_table(META).map_err(|e| self.err(e))?;
            metas
                .insert(prefix(tp).as_slice(), meta.encode().as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        // Marked after the commit: a persist that clears the mark before this
        // line has made this commit durable too.
        self.dirty.store(true, Ordering::Release);
        self.total.fetch_add(meta.bytes, Ordering::Relaxed);
        self.total.fetch_sub(before.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Makes every change applied so far durable. With nothing applied since
    /// the last time it costs nothing: no commit, no `fsync` (a processor
    /// without state persists at every restart and rewind, and an `fsync`
    /// queued behind the log's background writeback took up to 0.3 s).
    pub fn persist(&self) -> Result<(), StateError> {
        let _persisting = self.persisting.lock().expect("persist lock");
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.durable_commit();
        if result.is_err() {
            self.dirty.store(true, Ordering::Release);
        }
        result
    }

    fn durable_commit(&self) -> Result<(), StateError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(redb::Error::from(e)))?;
        txn.open_table(META).map_err(|e| self.err(e))?;
        txn.commit().map_err(|e| self.err(e))
    }

    /// Replays `tp`'s changelog (`changelog`, read in chunks by `read(from)`,
    /// which returns nothing at the end) from the copy's checkpoint. Returns
    /// the last unit applied, if any.
    pub fn catch_up(
        &self,
        tp: &TopicPartition,
        changelog: &str,
        mut read: impl FnMut(u64) -> Result<Vec<StoredRecord>, StateError>,
    ) -> Result<Option<Unit>, StateError> {
        let mut from = self.meta(tp)?.checkpoint;
        let mut units = Units::default();
        let mut last = None;
        loop {
            let records = read(from)?;
            let Some(tail) = records.last() else {
                break;
            };
            from = tail.offset + 1;
            for r in &records {
                let entry = changelog::decode(changelog, tp.partition, r)?;
                if let Some(unit) = units.push(entry, r.offset) {
                    self.apply(tp, &unit, r.offset + 1)?;
                    last = Some(unit);
                }
            }
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests;
