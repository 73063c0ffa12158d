//! Keyed state, scoped to the processor and the input partition of the batch
//! being processed. Reads see the batch's own writes; the writes commit with
//! the batch's offset, and a failed batch's are dropped. State survives
//! restarts and moves with its partition, and a rewind of the group puts it
//! back as it was at the rewind point.
//!
//! [`Dedupe`] builds idempotent processing on it: "is this the first time I
//! see this id within the TTL?".

use crate::sys as wit;

/// The value stored under `key`.
pub fn get(key: &[u8]) -> Option<Vec<u8>> {
    wit::get(key)
}

/// Stores `value` under `key`; an error (a key or value over the host's
/// limit, a spent budget) changes nothing.
pub fn put(key: &[u8], value: &[u8]) -> Result<(), String> {
    wit::put(key, value)
}

/// Removes `key`.
pub fn delete(key: &[u8]) {
    wit::delete(key)
}

/// Up to `limit` entries whose keys start with `prefix` and sort after
/// `after`, in key order.
pub fn scan(prefix: &[u8], after: Option<&[u8]>, limit: u32) -> Vec<(Vec<u8>, Vec<u8>)> {
    wit::scan(prefix, after, limit)
}

/// The value under `key` as JSON, `None` when absent or not `T`.
pub fn get_json<T: serde::de::DeserializeOwned>(key: &[u8]) -> Option<T> {
    get(key).and_then(|v| serde_json::from_slice(&v).ok())
}

/// Stores `value` as JSON under `key`.
pub fn put_json<T: serde::Serialize>(key: &[u8], value: &T) -> Result<(), String> {
    let bytes = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    put(key, &bytes)
}

/// Idempotent processing: remembers the ids it has seen for `ttl_ms`
/// (measured in the records' own timestamps, so a replay decides the same
/// way), and forgets them after.
///
/// Keys used: `dedupe/<name>/id/<id>` (the time the id was first seen) and
/// `dedupe/<name>/t/<time><id>` (an index by time, for [`Dedupe::expire`]).
pub struct Dedupe {
    ids: Vec<u8>,
    times: Vec<u8>,
    ttl_ms: i64,
}

impl Dedupe {
    /// A dedupe set called `name` (a processor may keep several).
    pub fn new(name: &str, ttl_ms: i64) -> Dedupe {
        Dedupe {
            ids: format!("dedupe/{name}/id/").into_bytes(),
            times: format!("dedupe/{name}/t/").into_bytes(),
            ttl_ms,
        }
    }

    fn id_key(&self, id: &[u8]) -> Vec<u8> {
        [self.ids.as_slice(), id].concat()
    }

    fn time_key(&self, at: i64, id: &[u8]) -> Vec<u8> {
        // Big-endian with the sign bit flipped sorts like the number.
        let at = (at as u64 ^ (1 << 63)).to_be_bytes();
        [self.times.as_slice(), &at, id].concat()
    }

    /// `true` the first time `id` is seen at `now_ms` (or once its last
    /// sighting is older than the TTL), and remembers it; `false` for a
    /// duplicate within the TTL.
    pub fn first_seen(&self, id: &[u8], now_ms: i64) -> Result<bool, String> {
        let key = self.id_key(id);
        if let Some(seen) = get(&key) {
            let seen = i64::from_be_bytes(seen.try_into().map_err(|_| "corrupt dedupe entry")?);
            if now_ms - seen < self.ttl_ms {
                return Ok(false);
            }
            delete(&self.time_key(seen, id));
        }
        put(&key, &now_ms.to_be_bytes())?;
        put(&self.time_key(now_ms, id), &[])?;
        Ok(true)
    }

    /// Forgets up to `limit` ids whose TTL ran out by `now_ms`, oldest first;
    /// returns how many. Call it once per batch to keep state bounded.
    pub fn expire(&self, now_ms: i64, limit: u32) -> u32 {
        let mut forgotten = 0;
        for (key, _) in scan(&self.times, None, limit) {
            let rest = &key[self.times.len()..];
            let Some((at, id)) = rest.split_first_chunk::<8>() else {
                delete(&key);
                continue;
            };
            let at = (u64::from_be_bytes(*at) ^ (1 << 63)) as i64;
            if now_ms - at < self.ttl_ms {
                break;
            }
            delete(&key);
            delete(&self.id_key(id));
            forgotten += 1;
        }
        forgotten
    }
}
