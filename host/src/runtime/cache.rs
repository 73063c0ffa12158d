//! The compiled-component cache: `<data>/compiled/<wasm hash>-<engine hash>.cwasm`.
//!
//! The key covers the component's bytes (SHA-256) and everything about the engine
//! that makes compiled code incompatible (wasmtime's own compatibility hash, which
//! includes its version and the compiler settings), so a cached artifact is only
//! ever loaded into an engine that could have produced it. Artifacts are written
//! through [`durable::replace`], so a crash leaves no half file; an artifact
//! that fails to load anyway is recompiled and replaced.

use std::hash::{Hash, Hasher};
use std::path::Path;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::RuntimeError;
use crate::durable;

/// A hasher over SHA-256, so the engine half of the key is stable across runs
/// (std's default hasher makes no such promise).
struct StableHasher(Sha256);

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The hex SHA-256 of a component's bytes: its content identity.
pub fn content_hash(wasm: &[u8]) -> String {
    hex(&Sha256::digest(wasm))
}

fn engine_hash(engine: &Engine) -> String {
    let mut hasher = StableHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a component came to be ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Compiled now (and stored in the cache).
    Compiled,
    /// Loaded from a previously compiled artifact.
    Cached,
}

/// Loads `wasm` from the cache in `dir`, or compiles and stores it.
pub fn load_or_compile(
    engine: &Engine,
    dir: &Path,
    wasm: &[u8],
    hash: &str,
    name: &Path,
) -> Result<(Component, Source), RuntimeError> {
    let path = dir.join(format!("{}-{}.cwasm", &hash[..32], engine_hash(engine)));
    // Read into memory rather than mapping the file: a mapping would turn a
    // later truncation of the file by anyone into SIGBUS in the host.
    if let Ok(bytes) = std::fs::read(&path) {
        // SAFETY: the file is in weir's own data directory and was written by
        // `Component::serialize` for an engine with the same compatibility hash
        // (it is in the file name); wasmtime also checks the header on load.
        match unsafe { Component::deserialize(engine, &bytes) } {
            Ok(component) => return Ok((component, Source::Cached)),
            Err(e) => {
                tracing::warn!(artifact = %path.display(), error = %e, "recompiling unusable cached artifact")
            }
        }
    }
    let component = Component::new(engine, wasm).map_err(|e| RuntimeError::Compile {
        path: name.to_path_buf(),
        source: e.into_boxed_dyn_error(),
    })?;
    let bytes = component.serialize().map_err(|e| RuntimeError::Compile {
        path: name.to_path_buf(),
        source: e.into_boxed_dyn_error(),
    })?;
    std::fs::create_dir_all(dir)
        .and_then(|()| durable::replace(&path, &bytes))
        .map_err(|source| RuntimeError::Cache { path, source })?;
    Ok((component, Source::Compiled))
}
