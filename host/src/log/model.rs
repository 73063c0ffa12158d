//! The model-based property test of the log: random sequences of append, roll,
//! clock advance, retention, reopen, crash with a torn tail, and damaged index
//! files, checked after every step against an in-memory oracle (a plain vector
//! of records). Cases: `WEIR_PROPTEST_CASES` (default 24).
//!
//! The oracle does not re-implement segment rolling: it asks the directory which
//! segment each batch landed in, and checks every retention decision against
//! the rules (expired, or the partition over its size limit) rather than
//! predicting it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;

use super::{Durability, Log, LogError, LogOptions, Record, TopicConfig};

const RETENTION_MS: u64 = 20_000;
const RETENTION_BYTES: u64 = 3_000;

#[derive(Debug, Clone)]
enum Op {
    /// `count` records of `len` bytes, each `age` ms older than now (or
    /// stamped with append time when `None`).
    Append {
        count: usize,
        len: usize,
        age: Option<i64>,
    },
    Roll,
    Advance(i64),
    Retention,
    Reopen,
    /// Crash and cut the active segment to `cut` (an index into its length).
    TornTail(Index),
    /// Reopen after deleting, zeroing or truncating one index file.
    DamageIndex {
        file: Index,
        how: u8,
    },
    /// Read from a random offset, and seek by a random timestamp.
    /// `exact` seeks the timestamp of an existing record instead, to hit the
    /// boundaries.
    Lookup {
        from: Index,
        ts: i64,
        exact: Option<Index>,
        max: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1..6usize, 0..120usize, proptest::option::of(0..30_000i64))
            .prop_map(|(count, len, age)| Op::Append { count, len, age }),
        1 => Just(Op::Roll),
        2 => (0..15_000i64).prop_map(Op::Advance),
        2 => Just(Op::Retention),
        1 => Just(Op::Reopen),
        2 => any::<Index>().prop_map(Op::TornTail),
        1 => (any::<Index>(), 0..3u8).prop_map(|(file, how)| Op::DamageIndex { file, how }),
        3 => (any::<Index>(), -40_000..5_000i64, proptest::option::of(any::<Index>()), 1..20usize)
            .prop_map(|(from, ts, exact, max)| Op::Lookup { from, ts, exact, max }),
    ]
}

/// A batch as the oracle knows it: where it landed and where it ends.
#[derive(Debug, Clone)]
struct Batch {
    base: u64,
    count: u64,
    segment: u64,
    end: u64,
}

struct Oracle {
    /// Records from `start`, by offset.
    records: Vec<(i64, Vec<u8>)>,
    start: u64,
    batches: Vec<Batch>,
}

impl Oracle {
    fn end(&self) -> u64 {
        self.start + self.records.len() as u64
    }

    fn truncate_to(&mut self, offset: u64) {
        self.records.truncate((offset - self.start) as usize);
        self.batches.retain(|b| b.base < offset);
    }

    fn advance_start(&mut self, offset: u64) {
        let drop = (offset - self.start) as usize;
        self.records.drain(..drop);
        self.start = offset;
        self.batches.retain(|b| b.base >= offset);
    }
}

struct Harness {
    dir: tempfile::TempDir,
    clock: Arc<AtomicI64>,
    log: Option<Log>,
}

impl Harness {
    fn open(&mut self) {
        let clock = self.clock.clone();
        let options = LogOptions {
            clock: Arc::new(move || clock.load(Ordering::SeqCst)),
            // The oracle applies retention itself, at the steps it chooses.
            maintenance: None,
            ..LogOptions::default()
        };
        self.log = Some(Log::open_with(self.dir.path(), options).expect("reopen"));
    }

    fn log(&self) -> &Log {
        self.log.as_ref().expect("open")
    }

    fn pdir(&self) -> PathBuf {
        self.log().partition_dir("t", 0)
    }
}

/// The base and length of the newest segment file.
fn active_segment(dir: &Path) -> (u64, u64) {
    let base = files(dir, "log")
        .into_iter()
        .map(|(b, _)| b)
        .max()
        .expect("a segment");
    let len = std::fs::metadata(super::segment::log_path(dir, base))
        .unwrap()
        .len();
    (base, len)
}

fn files(dir: &Path, ext: &str) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p.clone())))
        .collect();
    out.sort();
    out
}

fn check(h: &Harness, oracle: &Oracle) -> Result<(), TestCaseError> {
    let log = h.log();
    prop_assert_eq!(log.high_watermark("t", 0).unwrap(), oracle.end());
    prop_assert_eq!(log.log_start("t", 0).unwrap(), oracle.start);
    let all = log
        .read("t", 0, oracle.start, usize::MAX, u64::MAX)
        .unwrap();
    prop_assert_eq!(all.len(), oracle.records.len());
    for (i, r) in all.iter().enumerate() {
        prop_assert_eq!(r.offset, oracle.start + i as u64);
        prop_assert_eq!(
            (r.timestamp, &r.value[..]),
            (oracle.records[i].0, &oracle.records[i].1[..])
        );
    }
    if oracle.start > 0 {
        let below = log.read("t", 0, oracle.start - 1, 1, 1);
        let out_of_range = matches!(below, Err(LogError::OffsetOutOfRange { .. }));
        prop_assert!(out_of_range, "read below the log start: {:?}", below);
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness {
        dir: tempfile::tempdir().unwrap(),
        clock: Arc::new(AtomicI64::new(1_000_000)),
        log: None,
    };
    h.open();
    let config = TopicConfig::with_partitions(1)
        .durability(Durability::Never)
        .segment_bytes(700)
        .retention(Some(RETENTION_MS), Some(RETENTION_BYTES));
    h.log().create_topic("t", config).unwrap();
    let mut oracle = Oracle {
        records: Vec::new(),
        start: 0,
        batches: Vec::new(),
    };
    for op in ops {
        let now = h.clock.load(Ordering::SeqCst);
        match op {
            Op::Append { count, len, age } => {
                let records: Vec<Record> = (0..count)
                    .map(|i| Record {
                        value: vec![(oracle.end() as usize + i) as u8; len],
                        timestamp: age.map(|a| now - a - i as i64),
                        ..Record::default()
                    })
                    .collect();
                let base = h.log().append("t", 0, &records).unwrap();
                prop_assert_eq!(base, oracle.end());
                let (segment, end) = active_segment(&h.pdir());
                oracle.batches.push(Batch {
                    base,
                    count: count as u64,
                    segment,
                    end,
                });
                for r in records {
                    oracle.records.push((r.timestamp.unwrap_or(now), r.value));
                }
            }
            Op::Roll => {
                h.log().roll("t", 0).unwrap();
            }
            Op::Advance(ms) => {
                h.clock.fetch_add(ms, Ordering::SeqCst);
            }
            Op::Retention => {
                let before = h.log().partition_bytes("t", 0).unwrap();
                let retained = h.log().enforce_retention().unwrap();
                let deleted = retained
                    .first()
                    .map(|r| r.deleted.clone())
                    .unwrap_or_default();
                let cutoff = now - RETENTION_MS as i64;
                let mut total = before;
                for d in &deleted {
                    prop_assert_eq!(d.base_offset, oracle.start);
                    prop_assert!(d.max_timestamp < cutoff || total > RETENTION_BYTES);
                    total -= d.bytes;
                    oracle.advance_start(d.next_offset);
                }
                // The first segment kept, unless it is the active one, was not due.
                let (active, _) = active_segment(&h.pdir());
                if oracle.start < active {
                    let first: Vec<&Batch> = oracle
                        .batches
                        .iter()
                        .filter(|b| b.segment == oracle.start)
                        .collect();
                    let newest = oracle.records
                        [..first.iter().map(|b| b.count).sum::<u64>() as usize]
                        .iter()
                        .map(|r| r.0)
                        .max()
                        .unwrap_or(i64::MIN);
                    prop_assert!(newest >= cutoff && total <= RETENTION_BYTES);
                }
            }
            Op::Reopen => {
                h.log = None;
                h.open();
            }
            Op::TornTail(cut) => {
                h.log = None;
                let pdir = h.dir.path().join("topics/t/0");
                let (active, len) = active_segment(&pdir);
                let cut = cut.index(len as usize + 1) as u64;
                let path = super::segment::log_path(&pdir, active);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(cut)
                    .unwrap();
                let lost = oracle
                    .batches
                    .iter()
                    .find(|b| b.segment == active && b.end > cut);
                if let Some(lost) = lost.cloned() {
                    oracle.truncate_to(lost.base);
                }
                h.open();
            }
            Op::DamageIndex { file, how } => {
                h.log = None;
                let pdir = h.dir.path().join("topics/t/0");
                let mut indexes = files(&pdir, "index");
                indexes.extend(files(&pdir, "timeindex"));
                if !indexes.is_empty() {
                    let (_, path) = &indexes[file.index(indexes.len())];
                    let len = std::fs::metadata(path).unwrap().len();
                    match how {
                        0 => std::fs::remove_file(path).unwrap(),
                        1 => std::fs::write(path, vec![0u8; len as usize]).unwrap(),
                        _ => std::fs::OpenOptions::new()
                            .write(true)
                            .open(path)
                            .unwrap()
                            .set_len(len / 2)
                            .unwrap(),
                    }
                }
                h.open();
                prop_assert!(h.log().damage().is_empty(), "an index is not the data");
            }
            Op::Lookup {
                from,
                ts,
                exact,
                max,
            } => {
                let span = oracle.records.len() + 1;
                let from = oracle.start + from.index(span) as u64;
                let got = h.log().read("t", 0, from, max, 1 << 20).unwrap();
                let want = &oracle.records[(from - oracle.start) as usize..];
                prop_assert!(got.len() <= max);
                prop_assert_eq!(got.len(), want.len().min(max), "read from {}", from);
                for (i, r) in got.iter().enumerate() {
                    prop_assert_eq!(r.offset, from + i as u64);
                    prop_assert_eq!(&r.value, &want[i].1);
                }
                let ts = match exact {
                    Some(i) if !oracle.records.is_empty() => {
                        oracle.records[i.index(oracle.records.len())].0
                    }
                    _ => now + ts,
                };
                let expect = oracle
                    .records
                    .iter()
                    .position(|r| r.0 >= ts)
                    .map(|i| oracle.start + i as u64);
                prop_assert_eq!(h.log().offset_for_timestamp("t", 0, ts).unwrap(), expect);
            }
        }
        check(&h, &oracle)?;
    }
    // Recovery is idempotent: opening twice more changes nothing on disk.
    h.log = None;
    h.open();
    let snapshot = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut all: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
            .collect();
        all.sort();
        all
    };
    let first = snapshot(&h.pdir());
    h.log = None;
    h.open();
    prop_assert_eq!(first, snapshot(&h.pdir()));
    check(&h, &oracle)
}

fn cases() -> u32 {
    std::env::var("WEIR_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_log_matches_an_in_memory_oracle(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
