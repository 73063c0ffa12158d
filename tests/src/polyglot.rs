//! The JavaScript and Python guests: installs their toolchains from the
//! project's own files, builds their components, and shares one
//! compiled-artifact cache so each component is compiled once.
//!
//! - JavaScript: `npm install --no-save` in `guests/js` (the versions the
//!   committed `package-lock.json` pins),
//!   then `node build.mjs` (componentize-js).
//! - Python: a virtual environment `guests/python/.venv` with the pinned
//!   `requirements.txt`, then `.venv/bin/python build.py` (componentize-py).
//!
//! Components land in `<target>/polyglot-guests/<language>/<guest>.wasm`. A stamp
//! beside them holds a hash of every input (sources, lock files, the WIT), so a
//! language is rebuilt only when one of them changed. A file lock serializes
//! builds across processes sharing the target directory.
//!
//! When `node`/`npm` or `python3` is missing, [`js`] and [`python`] print a loud
//! message saying how to enable the tests and return `None`, so the caller
//! skips; when the environment variable `CI` is set they panic instead, so CI
//! never skips silently.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use weir::runtime::{Guest, RuntimeError, content_hash};

use crate::Host;

/// A language whose guests are built by a script of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    JavaScript,
    Python,
}

impl Language {
    /// The directory under `guests/` and under `<target>/polyglot-guests/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Language::JavaScript => "js",
            Language::Python => "python",
        }
    }

    /// The file that makes a subdirectory a guest.
    fn entry_file(self) -> &'static str {
        match self {
            Language::JavaScript => "index.js",
            Language::Python => "app.py",
        }
    }

    /// The source directory, `guests/<lang>`.
    pub fn source_dir(self) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../guests")
            .join(self.dir_name())
    }

    /// The name of every guest of this language (each subdirectory holding
    /// the entry file), sorted.
    pub fn guest_names(self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.source_dir())
            .expect("read the guest sources")
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(self.entry_file()).is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// The built JavaScript guest `name` (a directory of `guests/js`), or `None`
/// (after a loud message) when Node.js is not installed and `CI` is unset.
pub fn js(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    guest(&BUILT, Language::JavaScript, name)
}

/// The built Python guest `name` (a directory of `guests/python`), or `None`
/// (after a loud message) when Python 3 is not installed and `CI` is unset.
pub fn python(name: &str) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    guest(&BUILT, Language::Python, name)
}

/// The built guest `name` of `language`.
pub fn built(language: Language, name: &str) -> Option<PathBuf> {
    match language {
        Language::JavaScript => js(name),
        Language::Python => python(name),
    }
}

fn guest(built: &OnceLock<Option<PathBuf>>, language: Language, name: &str) -> Option<PathBuf> {
    let dir = built.get_or_init(|| build(language)).as_ref()?;
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "no {} guest {name}: expected {}",
        language.dir_name(),
        path.display()
    );
    Some(path)
}

/// `<target>/polyglot-guests`, found from this crate's `OUT_DIR`
/// (`<target>/<profile>/build/<package>/out`).
pub fn out_root() -> PathBuf {
    let out_dir = Path::new(env!("OUT_DIR"));
    let build = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .expect("OUT_DIR lies under a build directory");
    build
        .parent()
        .and_then(Path::parent)
        .expect("the build directory lies under the target directory")
        .join("polyglot-guests")
}

/// Installs the toolchain and builds every guest of `language` when any input
/// changed; `None` when the toolchain is missing outside CI.
fn build(language: Language) -> Option<PathBuf> {
    let (tool, version_args, how) = match language {
        Language::JavaScript => (
            "npm",
            ["--version"],
            "install Node.js 20+ with npm (e.g. `apt-get install nodejs npm`)",
        ),
        Language::Python => (
            "python3",
            ["--version"],
            "install Python 3.11+ with venv (e.g. `apt-get install python3 python3-venv`)",
        ),
    };
    let found = Command::new(tool)
        .args(version_args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let message = format!(
            "`{tool}` is not installed, so the {} guest tests cannot run: {how}, then run `cargo test` again",
            language.dir_name()
        );
        assert!(std::env::var_os("CI").is_none(), "CI is set: {message}");
        say(&format!(
            "\n==================== SKIPPED ====================\n{message}\n=================================================\n"
        ));
        return None;
    }

    let out = out_root().join(language.dir_name());
    std::fs::create_dir_all(&out).expect("create the polyglot output directory");
    let lock = File::create(out_root().join(format!("{}.lock", language.dir_name())))
        .expect("create the build lock");
    lock.lock().expect("lock the polyglot build");

    let src = language.source_dir();
    let stamp = out.join("inputs.sha256");
    let hash = inputs_hash(language, &src);
    let fresh = std::fs::read_to_string(&stamp).is_ok_and(|s| s == hash)
        && language
            .guest_names()
            .iter()
            .all(|n| out.join(format!("{n}.wasm")).exists());
    if !fresh {
        install(language, &src, &out);
        let started = std::time::Instant::now();
        match language {
            Language::JavaScript => run(
                Command::new("node")
                    .arg("build.mjs")
                    .arg(&out)
                    .current_dir(&src),
                "node build.mjs",
            ),
            Language::Python => run(
                Command::new(src.join(".venv/bin/python"))
                    .arg("build.py")
                    .arg(&out)
                    .current_dir(&src),
                "build.py",
            ),
        }
        say(&format!(
            "built the {} guests in {:.1?}",
            language.dir_name(),
            started.elapsed()
        ));
        std::fs::write(&stamp, &hash).expect("write the build stamp");
    }
    Some(out)
}

/// Installs the packages `language`'s build needs, unless the lock file they
/// were installed from is unchanged.
fn install(language: Language, src: &Path, out: &Path) {
    let (lock_file, stamp) = match language {
        Language::JavaScript => ("package-lock.json", out.join("npm-ci.sha256")),
        Language::Python => ("requirements.txt", out.join("pip.sha256")),
    };
    let lock_hash = content_hash(&std::fs::read(src.join(lock_file)).expect("read the lock file"));
    let installed = match language {
        Language::JavaScript => src.join("node_modules/@bytecodealliance/componentize-js"),
        Language::Python => src.join(".venv/bin/componentize-py"),
    };
    if installed.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == lock_hash) {
        return;
    }
    let started = std::time::Instant::now();
    match language {
        // `npm install --no-save` installs exactly the versions the committed
        // lock file pins and leaves it untouched. (`npm ci` would refuse it: npm
        // records only this platform's optional native packages in a lock file,
        // then `ci` reports the other platforms' ones as missing.)
        Language::JavaScript => run(
            Command::new("npm")
                .args(["install", "--no-save", "--no-audit", "--no-fund"])
                .current_dir(src),
            "npm install --no-save",
        ),
        Language::Python => {
            if !src.join(".venv/bin/python").exists() {
                run(
                    Command::new("python3")
                        .args(["-m", "venv", ".venv"])
                        .current_dir(src),
                    "python3 -m venv .venv",
                );
            }
            run(
                Command::new(src.join(".venv/bin/python"))
                    .args(["-m", "pip", "install", "-q", "-r", "requirements.txt"])
                    .current_dir(src),
                "pip install -r requirements.txt",
            );
        }
    }
    say(&format!(
        "installed the {} toolchain in {:.1?}",
        language.dir_name(),
        started.elapsed()
    ));
    std::fs::write(&stamp, lock_hash).expect("write the install stamp");
}

/// Writes a line straight to stderr: the test harness captures `eprintln!`
/// of passing tests, and a skip or a slow build must show in any case.
pub(crate) fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runs `cmd`, failing the test if it cannot start or fails.
pub(crate) fn run(cmd: &mut Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not start `{what}`: {e}"));
    assert!(status.success(), "`{what}` failed ({status})");
}

/// A hash over every input of `language`'s build: the WIT and every source
/// file under `src` except installed packages and caches.
fn inputs_hash(language: Language, src: &Path) -> String {
    let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut files = Vec::new();
    collect(&wit, &mut files);
    collect(src, &mut files);
    files.sort();
    let mut all = Vec::new();
    for f in &files {
        all.extend_from_slice(f.to_string_lossy().as_bytes());
        all.push(0);
        all.extend(std::fs::read(f).expect("read a guest source"));
        all.push(0);
    }
    all.extend_from_slice(language.dir_name().as_bytes());
    content_hash(&all)
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source directory") {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || name == "node_modules" || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The compiled-artifact cache every polyglot test and benchmark shares:
/// `<target>/polyglot-guests/cache/compiled`. It persists across runs; entries
/// are keyed by component hash and engine, so a stale one is never used.
pub fn shared_cache_dir() -> PathBuf {
    out_root().join("cache")
}

/// A host over a fresh temporary data directory whose runtime keeps compiled
/// components in the [shared cache](shared_cache_dir).
pub fn host() -> Host {
    let dir = tempfile::tempdir().expect("temp dir");
    Host::with_cache(dir, &shared_cache_dir())
}

/// Restarts `host` over the same data directory, keeping the
/// [shared cache](shared_cache_dir).
pub fn reopen(host: Host) -> Host {
    host.reopen_with_cache(&shared_cache_dir())
}

/// Loads a component for processor `name`. Loads are serialized so two tests
/// needing the same uncached component compile it once, not side by side.
pub fn load(
    host: &Host,
    path: &Path,
    name: &str,
    config: &[(&str, &str)],
) -> Result<Guest, RuntimeError> {
    static LOADING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    host.guest(path, name, config)
}
