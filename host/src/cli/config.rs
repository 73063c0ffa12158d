//! `weir.toml`, the service's configuration file: where to listen, the token,
//! topics to create and processors to run. Everything is optional; `weir serve`
//! runs with no file at all.
//!
//! ```toml
//! listen = "127.0.0.1:7070"
//! # token = "..."          # or WEIR_TOKEN; required beyond loopback
//! retention_check_secs = 60
//!
//! [[topics]]
//! name = "orders"
//! partitions = 4
//!
//! [[processors]]
//! name = "fraud"
//! wasm = "fraud-filter.wasm"   # relative to this file
//! topics = ["orders"]
//! label = "v1"
//! instances = 2
//! config = { output = "alerts" }
//! limits = { memory_bytes = 67108864, deadline_ms = 2000, fuel = 50000000 }
//! scratch = true               # a private /scratch in <data-dir>/scratch/fraud
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use weir::runtime::Limits;
use weir::supervisor::Reset;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    /// How often retention runs over every topic.
    pub retention_check_secs: Option<u64>,
    #[serde(default)]
    pub topics: Vec<DeclaredTopic>,
    #[serde(default)]
    pub processors: Vec<DeclaredProcessor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredTopic {
    pub name: String,
    #[serde(default = "one")]
    pub partitions: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredProcessor {
    pub name: String,
    pub wasm: PathBuf,
    pub topics: Vec<String>,
    pub label: Option<String>,
    pub group: Option<String>,
    #[serde(default = "one")]
    pub instances: usize,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub reset: Reset,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub scratch: bool,
}

fn one<T: From<u8>>() -> T {
    T::from(1)
}

impl ServeConfig {
    /// Reads `path`; relative wasm paths are taken from the file's directory.
    pub fn load(path: &Path) -> Result<ServeConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: ServeConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in &mut config.processors {
            if p.wasm.is_relative() {
                p.wasm = base.join(&p.wasm);
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_parses_and_resolves_wasm_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:0"
[[topics]]
name = "orders"
partitions = 3
[[processors]]
name = "fraud"
wasm = "g/fraud.wasm"
topics = ["orders"]
config = { output = "alerts" }
reset = "latest"
limits = { deadline_ms = 2000, fuel = 5000 }
"#,
        )
        .unwrap();
        let config = ServeConfig::load(&path).unwrap();
        assert_eq!(config.listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(config.topics[0].partitions, 3);
        let p = &config.processors[0];
        assert_eq!(p.wasm, dir.path().join("g/fraud.wasm"));
        assert_eq!((p.instances, p.reset), (1, Reset::Latest));
        assert_eq!(p.config["output"], "alerts");
        assert_eq!(p.limits.deadline, std::time::Duration::from_millis(2000));
        assert_eq!(p.limits.fuel, Some(5000));
        assert_eq!(p.limits.memory_bytes, Limits::default().memory_bytes);
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:1\"\n").unwrap();
        let err = format!("{:#}", ServeConfig::load(&path).unwrap_err());
        assert!(err.contains("weir.toml") && err.contains("listn"), "{err}");
    }
}
