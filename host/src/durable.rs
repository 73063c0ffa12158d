//! Durable whole-file replacement: the one way weir writes a file that a crash
//! must leave either entirely old or entirely new (a topic's `topic.json`, a
//! deployment record, a stored component, a compiled artifact). Segment files
//! are not written this way: they are appended to through the log's storage
//! seam.
//!
//! The bytes go to a uniquely named temporary file in the target's directory
//! (so concurrent writers never share one, and the rename never crosses file
//! systems), which is fsynced and then renamed over the target; then the
//! directory is fsynced. A write that fails removes its temporary file. Readers
//! see the old file or the new one, never a mix.

use std::ffi::OsString;
use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces the file at `path` with `bytes`; once this returns, the new file
/// survives a crash. The file gets the mode a plain create would give it.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_with_mode(path, bytes, 0o666)
}

/// [`replace`], the new file created with `mode` (before the umask): 0o600
/// for a file that holds a secret.
pub fn replace_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // `.<name>.XXXXXX.tmp`: random, created exclusively, and recognisable.
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or_default());
    prefix.push(".");
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        // 0o666 does as `File::create` does (the umask applies); tempfile's
        // default is 0600.
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // The data must be on disk before the rename publishes it, or a crash could
    // leave the target's name on an empty or torn file.
    tmp.as_file().sync_all()?;
    // On failure the temporary file is dropped, which removes it.
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename is an entry in the directory: without this fsync a crash can
    // bring back the old file, or no file at all.
    sync_dir(dir)
}

/// Makes the entries of `dir` (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_replace_writes_a_new_file_and_overwrites_an_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        replace(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        replace(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(names(dir.path()), ["record.json"]);
    }

    #[test]
    fn concurrent_writers_to_one_path_each_leave_a_complete_file_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.bin");
        let writers = 8;
        let rounds = 25;
        // Each writer's content is its id repeated, long enough that a torn or
        // interleaved write would show.
        let content = |id: u8| vec![id; 64 * 1024];
        std::thread::scope(|s| {
            for id in 0..writers {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..rounds {
                        replace(path, &content(id)).unwrap();
                        let read = std::fs::read(path).unwrap();
                        assert!(
                            (0..writers).any(|w| read == content(w)),
                            "a reader saw a file no writer wrote whole"
                        );
                    }
                });
            }
        });
        let last = std::fs::read(&path).unwrap();
        assert!((0..writers).any(|w| last == content(w)));
        assert_eq!(names(dir.path()), ["shared.bin"]);
    }

    #[test]
    fn a_failed_replace_leaves_the_old_file_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        // Renaming a file over a non-empty directory fails.
        replace(&path, b"bytes").unwrap_err();
        assert!(path.is_dir());
        assert_eq!(names(dir.path()), ["target"]);
    }

    #[test]
    fn the_file_gets_the_mode_a_plain_create_gives() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let replaced = dir.path().join("replaced");
        replace(&replaced, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&replaced), mode(&plain));
    }
}
