//! The storage seam: the handful of file operations the log performs, behind a
//! trait so tests can inject I/O errors (EIO, ENOSPC, a failed fsync) exactly
//! where a real disk would produce them.
//!
//! Every byte the log writes or reads goes through [`Storage`] and
//! [`StorageFile`]; nothing under `log/` calls `std::fs` for segment or index
//! data directly. Files are addressed by position (`pread`/`pwrite`), so one
//! writer and many readers can share a file handle without a seek cursor.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// How [`Storage::create`] treats a file that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateMode {
    /// Fail if the file exists: used for segment files, which must never be
    /// overwritten.
    New,
    /// Replace whatever is there: used for index files, which are derived data.
    Replace,
}

/// The file-system operations the log needs.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Opens an existing file for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>>;
    /// Creates a file for reading and writing.
    fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Renames a file within its directory, replacing any file at `to` in
    /// one step (compaction swaps its output in this way).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
}

/// One open file, addressed by position.
#[allow(clippy::len_without_is_empty)] // a file's length is a size, not a count
pub trait StorageFile: Send + Sync + std::fmt::Debug {
    /// Fills `buf` from `pos`; a short file is `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    /// Writes all of `buf` at `pos`. On error, any prefix may have been written.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// Makes written data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// Allocates disk blocks for `len` bytes from `pos` without changing the
    /// file's length, so later writes there skip the file system's delayed
    /// allocation. A hint: storage that cannot do it does nothing.
    fn reserve(&self, _pos: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsStorage;

#[derive(Debug)]
struct OsFile(File);

impl Storage for OsStorage {
    fn open(&self, path: &Path) -> io::Result<Arc<dyn StorageFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(OsFile(file)))
    }

    fn create(&self, path: &Path, mode: CreateMode) -> io::Result<Arc<dyn StorageFile>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        match mode {
            CreateMode::New => options.create_new(true),
            CreateMode::Replace => options.create(true).truncate(true),
        };
        Ok(Arc::new(OsFile(options.open(path)?)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

impl StorageFile for OsFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn reserve(&self, pos: u64, len: u64) -> io::Result<()> {
        use rustix::fs::{FallocateFlags, fallocate};
        match fallocate(&self.0, FallocateFlags::KEEP_SIZE, pos, len) {
            // A file system without fallocate just writes as before.
            Err(e) if e == rustix::io::Errno::OPNOTSUPP => Ok(()),
            other => other.map_err(io::Error::from),
        }
    }
}

/// Reads a whole file through `storage`; `None` if it does not exist.
pub fn read_whole(storage: &dyn Storage, path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = match storage.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = vec![0u8; file.len()? as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(Some(bytes))
}

/// Replaces the file at `path` with `bytes` and makes them durable.
pub fn write_whole(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = storage.create(path, CreateMode::Replace)?;
    file.write_all_at(bytes, 0)?;
    file.sync_data()
}
