//! Injected I/O failures through the log's storage seam: EIO and ENOSPC on a
//! write, EIO on fsync. A failed append is never acknowledged, the partition is
//! poisoned until reopened, and reopening finds exactly the acknowledged records
//! intact. Also: group commit under `always`, and the `interval` flusher.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use weir::log::{
    Durability, Log, LogError, LogOptions, OsStorage, Record, Storage, StorageFile, TopicConfig,
    storage::CreateMode,
};

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// Switches the test flips to make the next operations fail.
#[derive(Debug, Default)]
struct Faults {
    /// 0 = writes succeed; otherwise the errno of a failed write, which first
    /// writes half of its bytes (a torn write, as a full disk produces).
    write_errno: AtomicI32,
    fail_syncs: AtomicBool,
    /// Successful `sync_data` calls on segment files.
    log_syncs: AtomicU64,
    /// Extra latency per fsync, to make group commit observable.
    sync_delay_ms: AtomicU64,
}

#[derive(Debug)]
struct FaultyStorage {
    faults: Arc<Faults>,
}

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    faults: Arc<Faults>,
    is_log: bool,
}

impl FaultyStorage {
    fn wrap(&self, path: &Path, inner: Arc<dyn StorageFile>) -> Arc<dyn StorageFile> {
        Arc::new(FaultyFile {
            inner,
            faults: self.faults.clone(),
            is_log: path.extension().is_some_and(|e| e == "log"),
        })
    }
}

impl Storage for FaultyStorage {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        Ok(self.wrap(path, OsStorage.open(path)?))
    }

    fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Arc<dyn StorageFile>> {
        Ok(self.wrap(path, OsStorage.create(path, mode)?))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        OsStorage.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.faults.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        OsStorage.sync_dir(dir)
    }
}

impl StorageFile for FaultyFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.inner.read_exact_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        match self.faults.write_errno.load(Ordering::SeqCst) {
            0 => self.inner.write_all_at(buf, pos),
            errno => {
                self.inner.write_all_at(&buf[..buf.len() / 2], pos)?;
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        let delay = self.faults.sync_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if self.faults.fail_syncs.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(EIO));
        }
        self.inner.sync_data()?;
        if self.is_log {
            self.faults.log_syncs.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn reserve(&self, pos: u64, len: u64) -> io::Result<()> {
        self.inner.reserve(pos, len)
    }
}

fn faulty_log(dir: &Path) -> (Log, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let options = LogOptions {
        storage: Arc::new(FaultyStorage {
            faults: faults.clone(),
        }),
        ..LogOptions::default()
    };
    (Log::open_with(dir, options).unwrap(), faults)
}

fn batch(prefix: &str, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| Record::keyed(format!("{prefix}-k{i}"), format!("{prefix}-v{i}")))
        .collect()
}

fn values(log: &Log, partition: u32) -> Vec<Vec<u8>> {
    log.read("t", partition, 0, 10_000, 1 << 30)
        .unwrap()
        .into_iter()
        .map(|r| r.value.into())
        .collect()
}

fn expected(prefixes: &[&str], n: usize) -> Vec<Vec<u8>> {
    prefixes
        .iter()
        .flat_map(|p| batch(p, n).into_iter().map(|r| r.value))
        .collect()
}

fn assert_poisoned(result: Result<u64, LogError>, op: &str, errno: i32) {
    match result {
        Err(LogError::Poisoned {
            op: got, source, ..
        }) => {
            assert_eq!(got, op);
            assert_eq!(source.raw_os_error(), Some(errno), "the cause is kept");
        }
        other => panic!("expected a poisoned partition after a failed {op}, got {other:?}"),
    }
}

/// A failed write (half the batch reached the file) under each policy.
fn a_failed_write_is_not_acknowledged(durability: Durability, errno: i32) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, faults) = faulty_log(dir.path());
        let config = TopicConfig::with_partitions(2).durability(durability);
        log.create_topic("t", config).unwrap();
        log.append("t", 0, &batch("a", 5)).unwrap();
        log.append("t", 0, &batch("b", 5)).unwrap();

        faults.write_errno.store(errno, Ordering::SeqCst);
        assert_poisoned(log.append("t", 0, &batch("lost", 5)), "write", errno);
        faults.write_errno.store(0, Ordering::SeqCst);

        assert!(log.is_poisoned("t", 0).unwrap());
        assert_eq!(log.high_watermark("t", 0).unwrap(), 10, "not acknowledged");
        assert_poisoned(log.append("t", 0, &batch("c", 1)), "write", errno);
        assert_eq!(
            values(&log, 0),
            expected(&["a", "b"], 5),
            "readers unaffected"
        );
        assert_eq!(
            log.append("t", 1, &batch("other", 1)).unwrap(),
            0,
            "only one partition"
        );
    }
    let log = Log::open(dir.path()).unwrap();
    assert!(
        !log.is_poisoned("t", 0).unwrap(),
        "reopening clears the poison"
    );
    assert_eq!(
        log.high_watermark("t", 0).unwrap(),
        10,
        "the torn batch is cut"
    );
    assert_eq!(log.append("t", 0, &batch("c", 2)).unwrap(), 10);
    assert_eq!(
        values(&log, 0),
        expected(&["a", "b", "c"], 5)[..12].to_vec()
    );
}

#[test]
fn eio_on_write_under_never_poisons_and_loses_nothing_acknowledged() {
    a_failed_write_is_not_acknowledged(Durability::Never, EIO);
}

#[test]
fn enospc_on_write_under_always_poisons_and_loses_nothing_acknowledged() {
    a_failed_write_is_not_acknowledged(Durability::Always, ENOSPC);
}

#[test]
fn enospc_on_write_under_interval_poisons_and_loses_nothing_acknowledged() {
    a_failed_write_is_not_acknowledged(Durability::Interval { ms: 10 }, ENOSPC);
}

#[test]
fn a_failed_fsync_under_always_is_never_acknowledged_nor_read() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, faults) = faulty_log(dir.path());
        let config = TopicConfig::with_partitions(1).durability(Durability::Always);
        log.create_topic("t", config).unwrap();
        log.append("t", 0, &batch("a", 3)).unwrap();

        faults.fail_syncs.store(true, Ordering::SeqCst);
        assert_poisoned(log.append("t", 0, &batch("unsynced", 3)), "fsync", EIO);
        faults.fail_syncs.store(false, Ordering::SeqCst);

        assert_eq!(
            log.high_watermark("t", 0).unwrap(),
            3,
            "the high watermark waits for fsync"
        );
        assert_eq!(values(&log, 0), expected(&["a"], 3));
        assert_poisoned(log.append("t", 0, &batch("b", 1)), "fsync", EIO);
        assert!(
            matches!(log.sync_all(), Err(LogError::Poisoned { .. })),
            "a sync after a failed fsync must not report success"
        );
    }
    // The written-but-unsynced batch may or may not have reached the disk; what
    // was acknowledged is there, intact, and offsets stay dense.
    let log = Log::open(dir.path()).unwrap();
    let records = log.read("t", 0, 0, 100, 1 << 20).unwrap();
    let hw = log.high_watermark("t", 0).unwrap();
    assert!(hw == 3 || hw == 6, "high watermark {hw}");
    assert_eq!(records.len() as u64, hw);
    let got: Vec<Vec<u8>> = records.iter().map(|r| r.value.to_vec()).collect();
    assert_eq!(got[..3], expected(&["a"], 3)[..]);
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as u64)
    );
    assert_eq!(log.append("t", 0, &batch("c", 1)).unwrap(), hw);
}

#[test]
fn a_failed_fsync_when_rolling_a_segment_poisons_the_partition() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (log, faults) = faulty_log(dir.path());
        let config = TopicConfig::with_partitions(1)
            .durability(Durability::Never)
            .segment_bytes(200);
        log.create_topic("t", config).unwrap();
        log.append("t", 0, &batch("a", 4)).unwrap();
        faults.fail_syncs.store(true, Ordering::SeqCst);
        assert_poisoned(log.append("t", 0, &batch("b", 4)), "segment seal", EIO);
        faults.fail_syncs.store(false, Ordering::SeqCst);
        assert_eq!(log.segment_count("t", 0).unwrap(), 1);
        assert_eq!(log.high_watermark("t", 0).unwrap(), 4);
    }
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.high_watermark("t", 0).unwrap(), 4);
    assert_eq!(values(&log, 0), expected(&["a"], 4));
    assert_eq!(log.append("t", 0, &batch("b", 4)).unwrap(), 4, "rolls now");
    assert_eq!(log.segment_count("t", 0).unwrap(), 2);
}

#[test]
fn concurrent_appends_under_always_share_fsyncs_and_are_acknowledged_after_them() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty_log(dir.path());
    let config = TopicConfig::with_partitions(1).durability(Durability::Always);
    log.create_topic("t", config).unwrap();
    // A slow disk: while one fsync runs, the other producers' batches queue up.
    faults.sync_delay_ms.store(3, Ordering::SeqCst);
    let (threads, per_thread) = (8, 25);
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (log, start, faults) = (&log, &start, &faults);
            s.spawn(move || {
                start.wait();
                for i in 0..per_thread {
                    let syncs_before = faults.log_syncs.load(Ordering::SeqCst);
                    let base = log.append("t", 0, &batch(&format!("t{t}-{i}"), 2)).unwrap();
                    assert!(
                        faults.log_syncs.load(Ordering::SeqCst) > syncs_before,
                        "acknowledged without an fsync after it was written"
                    );
                    assert!(log.high_watermark("t", 0).unwrap() >= base + 2);
                }
            });
        }
    });
    let appends = (threads * per_thread) as u64;
    let syncs = faults.log_syncs.load(Ordering::SeqCst);
    assert_eq!(log.high_watermark("t", 0).unwrap(), 2 * appends);
    assert!(
        syncs < appends / 2,
        "{syncs} fsyncs for {appends} appends: no group commit"
    );
    let records = log.read("t", 0, 0, 10_000, 1 << 30).unwrap();
    assert!(
        records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == i as u64)
    );
}

#[test]
fn the_interval_policy_fsyncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty_log(dir.path());
    let config = TopicConfig::with_partitions(1).durability(Durability::Interval { ms: 20 });
    log.create_topic("t", config).unwrap();
    log.append("t", 0, &batch("a", 1)).unwrap();
    assert_eq!(
        log.high_watermark("t", 0).unwrap(),
        1,
        "visible before the fsync"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while faults.log_syncs.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no background fsync within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    // A failing background fsync poisons the partition.
    faults.fail_syncs.store(true, Ordering::SeqCst);
    log.append("t", 0, &batch("b", 1)).unwrap();
    while !log.is_poisoned("t", 0).unwrap() {
        assert!(
            Instant::now() < deadline,
            "a failed background fsync went unnoticed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_poisoned(log.append("t", 0, &batch("c", 1)), "fsync", EIO);
}
