//! Build-script helper shared by `host/build.rs` and `tests/build.rs`: builds the
//! `guests/` Cargo workspace for `wasm32-wasip2` and lists the components.
//!
//! Both build scripts run the same nested `cargo build` into one directory beside
//! the outer target directory (`<target>/wasm-guests`), so the guests are compiled
//! once per checkout however many crates ask for them; the second request finds
//! them fresh. The nested build drops the outer build's compiler flags and
//! wrappers (clippy's among them), which are meant for the host target only.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target triple.
pub const TARGET: &str = "wasm32-wasip2";

/// One built sample guest.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The package name, e.g. `fraud-filter`.
    pub name: String,
    /// The built component.
    pub path: PathBuf,
}

impl Guest {
    /// The name as a Rust constant, e.g. `FRAUD_FILTER`.
    pub fn const_name(&self) -> String {
        self.name.to_uppercase().replace('-', "_")
    }
}

/// Builds every guest of the workspace at `guests_dir` and returns the
/// components, sorted by name. Panics with the fixing command when the
/// `wasm32-wasip2` target is missing and cannot be installed.
pub fn build_guests(guests_dir: &Path) -> Vec<Guest> {
    ensure_target();
    let target_dir = shared_target_dir();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guests_dir)
        .args(["build", "--release", "--workspace", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir);
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo for the guests: {e}"));
    assert!(
        status.success(),
        "building the guests in {} failed ({status}); run `cargo build --release` there to see why",
        guests_dir.display()
    );

    watch(&guests_dir.join("Cargo.toml"));
    watch(&guests_dir.join("Cargo.lock"));
    watch(&guests_dir.join("../wit"));
    let out = target_dir.join(TARGET).join("release");
    let mut guests = Vec::new();
    for member in members(guests_dir) {
        let dir = guests_dir.join(&member);
        watch(&dir.join("src"));
        watch(&dir.join("Cargo.toml"));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        if !manifest.contains("cdylib") {
            continue;
        }
        let path = out.join(format!("{}.wasm", member.replace('-', "_")));
        assert!(
            path.exists(),
            "guest {member} built no component at {}",
            path.display()
        );
        guests.push(Guest { name: member, path });
    }
    guests.sort_by(|a, b| a.name.cmp(&b.name));
    guests
}

fn watch(path: &Path) {
    println!("cargo::rerun-if-changed={}", path.display());
}

/// The `members = [...]` list of the guests workspace manifest.
fn members(guests_dir: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(guests_dir.join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("reading {}/Cargo.toml: {e}", guests_dir.display()));
    let start = manifest
        .find("members")
        .and_then(|i| manifest[i..].find('[').map(|j| i + j + 1))
        .expect("guests/Cargo.toml has a members list");
    let end = start + manifest[start..].find(']').expect("members list is closed");
    manifest[start..end]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

/// `<outer target dir>/wasm-guests`, found from `OUT_DIR`
/// (`<target>/<profile>/build/<package>/out`).
fn shared_target_dir() -> PathBuf {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("run from a build script"));
    let build = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .expect("OUT_DIR lies under a build directory");
    let target = build
        .parent()
        .and_then(Path::parent)
        .expect("the build directory lies under the target directory");
    target.join("wasm-guests")
}

/// Installs the guest target through rustup when it is missing (a
/// `rust-toolchain.toml` target is not installed when `RUSTUP_AUTO_INSTALL=0`).
fn ensure_target() {
    if target_installed() {
        return;
    }
    println!("cargo::warning=installing the {TARGET} target: rustup target add {TARGET}");
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        added && target_installed(),
        "the {TARGET} target is missing and could not be installed; run: rustup target add {TARGET}"
    );
}

fn target_installed() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return false;
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .exists()
}
