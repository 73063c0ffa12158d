//! Decoding a checked batch's records: a whole batch or a window into one,
//! stepping over records before the wanted offset without copying them.

use bytes::Bytes;

use super::{BatchHeader, HEADER_LEN, NULL_LEN, Nulls, StoredRecord};
use crate::log::LogError;

/// A batch's records are sampled for seeking every this many records: a
/// reader starting in the middle of a batch it has read before goes to the
/// sample before its offset instead of walking from the first record.
pub const SEEK_STEP: u64 = 128;

/// Part of a checked batch to decode: `bytes` from byte `start`, where the
/// record with offset `first` begins, up to the record with offset `end`
/// (exclusive); `bytes` may stop there rather than at the batch's end.
pub struct Window<'a> {
    pub bytes: &'a Bytes,
    pub start: usize,
    pub first: u64,
    pub end: u64,
}

impl Window<'_> {
    /// A whole batch.
    pub fn whole<'a>(bytes: &'a Bytes, header: &BatchHeader) -> Window<'a> {
        Window {
            bytes,
            start: HEADER_LEN,
            first: header.base_offset,
            end: header.next_offset(),
        }
    }
}

/// Decodes into `out` the records of `window` at or after `from` and below
/// `until`, at most `max` of them. Records before `from` are stepped over
/// without copying anything. With `seek`, the walk goes on to the window's
/// end and notes (relative to the window's first record) the byte position of
/// every [`SEEK_STEP`]-th record, and a whole batch is checked to end exactly
/// after its last record. `corrupt` builds the error for a batch whose
/// structure does not add up.
pub fn decode(
    window: &Window<'_>,
    (from, until): (u64, u64),
    max: usize,
    mut seek: Option<&mut Vec<u32>>,
    out: &mut Vec<StoredRecord>,
    corrupt: impl Fn(&str) -> LogError,
) -> Result<(), LogError> {
    let mut cur = Cursor {
        bytes: window.bytes,
        pos: window.start,
    };
    let wanted = window.end.min(until).saturating_sub(from.max(window.first));
    out.reserve(wanted.min(max as u64).min(1 << 16) as usize);
    let mut taken = 0usize;
    for offset in window.first..window.end {
        let full = taken >= max || offset >= until;
        if full && seek.is_none() {
            return Ok(());
        }
        if let Some(seek) = seek.as_deref_mut()
            && (offset - window.first).is_multiple_of(SEEK_STEP)
        {
            seek.push(cur.pos as u32);
        }
        if offset < from || full {
            skip(&mut cur).ok_or_else(|| corrupt("record structure"))?;
            continue;
        }
        let record = parse(&mut cur, offset).ok_or_else(|| corrupt("record structure"))?;
        out.push(record);
        taken += 1;
    }
    if seek.is_some() && cur.pos != window.bytes.len() {
        return Err(corrupt("trailing bytes after the last record"));
    }
    Ok(())
}

/// Steps over one record without copying it.
fn skip(cur: &mut Cursor) -> Option<()> {
    cur.take(8)?;
    let key_len = i32::from_le_bytes(cur.take(4)?.try_into().ok()?);
    if key_len >= 0 {
        cur.take(key_len as usize)?;
    }
    cur.take_u32_prefixed()?;
    let header_count = u32::from_le_bytes(cur.take(4)?.try_into().ok()?);
    for _ in 0..header_count {
        let name_len = u16::from_le_bytes(cur.take(2)?.try_into().ok()?) as usize;
        cur.take(name_len)?;
        cur.take_u32_prefixed()?;
    }
    Some(())
}

fn parse(cur: &mut Cursor, offset: u64) -> Option<StoredRecord> {
    let timestamp = i64::from_le_bytes(cur.take(8)?.try_into().ok()?);
    let key_len = i32::from_le_bytes(cur.take(4)?.try_into().ok()?);
    let key = if key_len < 0 {
        None
    } else {
        Some(cur.take_shared(key_len as usize)?)
    };
    let len = u32::from_le_bytes(cur.take(4)?.try_into().ok()?);
    let mut nulls = Nulls {
        value: len == NULL_LEN,
        headers: Vec::new(),
    };
    let value = if nulls.value {
        Bytes::new()
    } else {
        cur.take_shared(len as usize)?
    };
    let header_count = u32::from_le_bytes(cur.take(4)?.try_into().ok()?);
    let mut headers = Vec::with_capacity(header_count.min(64) as usize);
    for i in 0..header_count {
        let name_len = u16::from_le_bytes(cur.take(2)?.try_into().ok()?) as usize;
        let name = String::from_utf8(cur.take(name_len)?.to_vec()).ok()?;
        match cur.take_u32_prefixed()? {
            Some(value) => headers.push((name, value.to_vec())),
            None => {
                nulls.headers.push(i);
                headers.push((name, Vec::new()));
            }
        }
    }
    Some(StoredRecord {
        offset,
        timestamp,
        key,
        value,
        headers,
        nulls,
    })
}

struct Cursor<'a> {
    bytes: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    /// The next `n` bytes as a view sharing the buffer.
    fn take_shared(&mut self, n: usize) -> Option<Bytes> {
        let start = self.pos;
        self.take(n)?;
        Some(self.bytes.slice(start..self.pos))
    }

    /// A length-prefixed field: `Some(None)` for a null ([`NULL_LEN`]).
    fn take_u32_prefixed(&mut self) -> Option<Option<&'a [u8]>> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        if len == NULL_LEN {
            return Some(None);
        }
        self.take(len as usize).map(Some)
    }
}
