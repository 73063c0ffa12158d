//! `weir new` and `weir build`: a guest project of one's own, outside this
//! repository, that builds with no weir checkout around.
//!
//! The project's files are embedded in the binary: the templates under
//! `host/templates/` (the sample guest, its build script, README, fixture
//! and expected report, with `{{name}}` filled in), and from the repository
//! the WIT contract, the Rust SDK (vendored as `vendor/weir-guest`, with the
//! guest workspace's lock file so the same crate versions build it) and the
//! JavaScript and Python helpers (with the JS lock file). Every project's
//! sample guest does the same thing, so the same fixture and expected report
//! serve all three languages.
//!
//! Building runs the project's own tools: cargo (after `rustup target add
//! wasm32-wasip2` when the target is missing), `npm install` and
//! `node build.mjs`, or a `.venv` with componentize-py and `build.py`; each
//! leaves the component at `<dir>/<name>.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The languages a guest project can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    JavaScript,
    Python,
}

impl Language {
    pub const ALL: [Language; 3] = [Language::Rust, Language::JavaScript, Language::Python];

    /// The name in `weir new --lang`.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::JavaScript => "js",
            Language::Python => "python",
        }
    }

    /// The inverse of [`Language::name`].
    pub fn parse(s: &str) -> Option<Language> {
        Self::ALL.into_iter().find(|l| l.name() == s)
    }

    /// The language of the project in `dir`, from the files it holds.
    pub fn detect(dir: &Path) -> Option<Language> {
        if dir.join("Cargo.toml").is_file() {
            Some(Language::Rust)
        } else if dir.join("package.json").is_file() {
            Some(Language::JavaScript)
        } else if dir.join("build.py").is_file() {
            Some(Language::Python)
        } else {
            None
        }
    }
}

crate::keyword::keywords!(Language);

/// What can go wrong creating or building a project.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error("invalid guest name {name:?}: {reason}")]
    Name { name: String, reason: &'static str },
    #[error("{0} already exists and is not empty: choose another name or --dir")]
    Exists(PathBuf),
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{0} holds no guest project (no Cargo.toml, package.json or build.py): create one with `weir new`"
    )]
    NotAProject(PathBuf),
    #[error("cannot read {path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("`{tool}` is needed to build a {language} guest: {how}")]
    MissingTool {
        tool: &'static str,
        language: &'static str,
        how: &'static str,
    },
    #[error("`{command}` failed ({status})")]
    Failed { command: String, status: String },
    #[error("the build left no component at {0}")]
    NoComponent(PathBuf),
}

/// A file of a new project: its path in the project and its text.
type File = (&'static str, &'static str);

const WIT: &str = include_str!("../../wit/weir.wit");
const EXPECTED: &str = include_str!("../templates/common/expected.json");
const SAMPLE: &str = include_str!("../templates/common/sample.jsonl");

const RUST: &[File] = &[
    ("Cargo.toml", include_str!("../templates/rust/Cargo.toml")),
    ("Cargo.lock", include_str!("../../guests/Cargo.lock")),
    ("src/lib.rs", include_str!("../templates/rust/src/lib.rs")),
    ("README.md", include_str!("../templates/rust/README.md")),
    (
        "vendor/weir-guest/Cargo.toml",
        include_str!("../templates/rust/sdk.Cargo.toml"),
    ),
    (
        "vendor/weir-guest/src/lib.rs",
        include_str!("../../guests/sdk/src/lib.rs"),
    ),
    (
        "vendor/weir-guest/src/emits.rs",
        include_str!("../../guests/sdk/src/emits.rs"),
    ),
    (
        "vendor/weir-guest/src/state.rs",
        include_str!("../../guests/sdk/src/state.rs"),
    ),
    (
        "vendor/weir-guest/src/testing.rs",
        include_str!("../../guests/sdk/src/testing.rs"),
    ),
    (".gitignore", "/target\n/*.wasm\n"),
];

const JS: &[File] = &[
    ("package.json", include_str!("../templates/js/package.json")),
    (
        "package-lock.json",
        include_str!("../../guests/js/package-lock.json"),
    ),
    ("index.js", include_str!("../templates/js/index.js")),
    (
        "weir-guest.js",
        include_str!("../../guests/js/weir-guest.js"),
    ),
    ("build.mjs", include_str!("../templates/js/build.mjs")),
    ("README.md", include_str!("../templates/js/README.md")),
    (".gitignore", "/node_modules\n/*.wasm\n"),
];

const PYTHON: &[File] = &[
    (
        "pyproject.toml",
        include_str!("../templates/python/pyproject.toml"),
    ),
    ("app.py", include_str!("../templates/python/app.py")),
    (
        "weir_guest.py",
        include_str!("../../guests/python/weir_guest.py"),
    ),
    ("build.py", include_str!("../templates/python/build.py")),
    (
        "requirements.txt",
        include_str!("../../guests/python/requirements.txt"),
    ),
    ("README.md", include_str!("../templates/python/README.md")),
    (".gitignore", "/.venv\n/*.wasm\n__pycache__/\n"),
];

/// Names the shared files would clash with, or that tools reserve.
const RESERVED: &[&str] = &[
    "weir-guest",
    "weir_guest",
    "std",
    "core",
    "alloc",
    "test",
    "build",
];

/// Checks a guest name: it becomes a crate, an npm package, a file and a
/// processor name, so it is lower-case ASCII letters, digits and `-`,
/// starting with a letter, at most 64 characters.
pub fn validate_name(name: &str) -> Result<(), ScaffoldError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 64 {
        Some("it is longer than 64 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lower-case letter")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("only a-z, 0-9 and '-' are allowed")
    } else if name.ends_with('-') || name.contains("--") {
        Some("'-' must separate words")
    } else if RESERVED.contains(&name) {
        Some("the name is reserved")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ScaffoldError::Name {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Creates a `language` guest project called `name` in `dir` (which must
/// not exist or be empty); returns the files written, relative to `dir`.
pub fn create(name: &str, language: Language, dir: &Path) -> Result<Vec<String>, ScaffoldError> {
    validate_name(name)?;
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied || (dir.exists() && !dir.is_dir()) {
        return Err(ScaffoldError::Exists(dir.to_path_buf()));
    }
    let files = match language {
        Language::Rust => RUST,
        Language::JavaScript => JS,
        Language::Python => PYTHON,
    };
    let common: [File; 3] = [
        ("wit/weir.wit", WIT),
        ("fixtures/sample.jsonl", SAMPLE),
        ("fixtures/expected.json", EXPECTED),
    ];
    let mut written = Vec::new();
    for (path, text) in files.iter().chain(&common) {
        let target = dir.join(path);
        let write = |target: &Path| -> std::io::Result<()> {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, fill(text, name))
        };
        write(&target).map_err(|source| ScaffoldError::Write {
            path: target.clone(),
            source,
        })?;
        written.push(path.to_string());
    }
    Ok(written)
}

/// `text` with `{{name}}` replaced by the guest's name.
fn fill(text: &str, name: &str) -> String {
    text.replace("{{name}}", name)
}

/// Builds the project in `dir` into `<dir>/<name>.wasm`, installing what its
/// language's build needs when it is missing; returns the component's path.
pub fn build(dir: &Path) -> Result<PathBuf, ScaffoldError> {
    let language = Language::detect(dir).ok_or_else(|| ScaffoldError::NotAProject(dir.into()))?;
    let built = match language {
        Language::Rust => build_rust(dir)?,
        Language::JavaScript => {
            need(
                "npm",
                "js",
                "install Node.js 20+ with npm (e.g. `apt-get install nodejs npm`)",
            )?;
            if !dir
                .join("node_modules/@bytecodealliance/componentize-js")
                .exists()
            {
                run(Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund"])
                    .current_dir(dir))?;
            }
            run(Command::new("node").arg("build.mjs").current_dir(dir))?;
            dir.join(format!("{}.wasm", package_name(dir, "package.json")?))
        }
        Language::Python => {
            need(
                "python3",
                "python",
                "install Python 3.11+ with venv (e.g. `apt-get install python3 python3-venv`)",
            )?;
            let python = dir.join(".venv/bin/python");
            if !python.exists() {
                run(Command::new("python3")
                    .args(["-m", "venv", ".venv"])
                    .current_dir(dir))?;
            }
            if !dir.join(".venv/bin/componentize-py").exists() {
                run(Command::new(&python)
                    .args(["-m", "pip", "install", "-q", "-r", "requirements.txt"])
                    .current_dir(dir))?;
            }
            run(Command::new(&python).arg("build.py").current_dir(dir))?;
            dir.join(format!("{}.wasm", package_name(dir, "pyproject.toml")?))
        }
    };
    if !built.is_file() {
        return Err(ScaffoldError::NoComponent(built));
    }
    Ok(built)
}

/// `cargo build --release --target wasm32-wasip2`, then the component copied
/// to `<dir>/<name>.wasm`.
fn build_rust(dir: &Path) -> Result<PathBuf, ScaffoldError> {
    const TARGET: &str = "wasm32-wasip2";
    need(
        "cargo",
        "rust",
        "install Rust with rustup (https://rustup.rs)",
    )?;
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(dir)
        .output();
    // Without rustup the toolchain must have the target already; cargo says
    // so plainly if it has not.
    let missing = installed.is_ok_and(|out| {
        out.status.success()
            && !String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
    });
    if missing {
        run(Command::new("rustup")
            .args(["target", "add", TARGET])
            .current_dir(dir))?;
    }
    run(Command::new("cargo")
        .args(["build", "--release", "--target", TARGET])
        .current_dir(dir))?;
    let name = package_name(dir, "Cargo.toml")?;
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => dir.join("target"),
    };
    let target_dir = if target_dir.is_absolute() {
        target_dir
    } else {
        dir.join(target_dir)
    };
    let built = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    if !built.is_file() {
        return Err(ScaffoldError::NoComponent(built));
    }
    let out = dir.join(format!("{name}.wasm"));
    std::fs::copy(&built, &out).map_err(|source| ScaffoldError::Write {
        path: out.clone(),
        source,
    })?;
    Ok(out)
}

/// The package name in `dir/manifest` (Cargo.toml, package.json or
/// pyproject.toml).
fn package_name(dir: &Path, manifest: &str) -> Result<String, ScaffoldError> {
    let path = dir.join(manifest);
    let bad = |reason: String| ScaffoldError::Manifest {
        path: path.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let name = if manifest.ends_with(".toml") {
        // Cargo.toml's [package] or pyproject.toml's [project].
        let value: toml::Table = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let table = if manifest == "Cargo.toml" {
            "package"
        } else {
            "project"
        };
        value
            .get(table)
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .map(str::to_string)
    } else {
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        value
            .get("name")
            .and_then(|n| n.as_str())
            .map(str::to_string)
    };
    name.ok_or_else(|| bad("it names no package".into()))
}

fn need(
    tool: &'static str,
    language: &'static str,
    how: &'static str,
) -> Result<(), ScaffoldError> {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Ok(())
    } else {
        Err(ScaffoldError::MissingTool {
            tool,
            language,
            how,
        })
    }
}

fn run(command: &mut Command) -> Result<(), ScaffoldError> {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = command.status().map_err(|e| ScaffoldError::Failed {
        command: shown.clone(),
        status: e.to_string(),
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(ScaffoldError::Failed {
            command: shown,
            status: status.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_project_vendors_every_source_file_of_the_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests/sdk/src");
        for entry in std::fs::read_dir(&sdk).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let vendored = format!("vendor/weir-guest/src/{name}");
            assert!(
                RUST.iter().any(|(path, _)| *path == vendored),
                "{vendored} is missing from the Rust template"
            );
        }
    }

    #[test]
    fn a_name_is_a_lower_case_word_list() {
        for good in ["upper", "my-guest", "g2"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "My",
            "2go",
            "a_b",
            "a--b",
            "a-",
            "weir-guest",
            "x/y",
            "é",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_vendored_sdk_uses_the_guest_workspaces_dependencies() {
        let workspace: toml::Table =
            toml::from_str(include_str!("../../guests/Cargo.toml")).unwrap();
        let sdk: toml::Table =
            toml::from_str(include_str!("../templates/rust/sdk.Cargo.toml")).unwrap();
        for dep in ["wit-bindgen", "serde", "serde_json"] {
            assert_eq!(
                workspace["workspace"]["dependencies"][dep], sdk["dependencies"][dep],
                "{dep} differs between guests/Cargo.toml and the vendored SDK"
            );
        }
    }
}
