//! `weir.toml`, the service's configuration file: where to listen, the token,
//! topics to create and processors to run. Everything is optional; `weir serve`
//! runs with no file at all.
//!
//! ```toml
//! listen = "127.0.0.1:7070"
//! # token = "..."          # or WEIR_TOKEN; required beyond loopback
//! metrics_public = false    # true: /metrics answers without the token
//! retention_check_secs = 60
//! shutdown_grace_secs = 30   # then batches still running are interrupted
//! kafka_listen = "127.0.0.1:9092"       # speak Kafka too (off when absent)
//! kafka_advertised = "localhost:9092"   # what Metadata tells clients
//! kafka_tls_cert = "kafka.crt"          # Kafka clients speak TLS (both or neither;
//! kafka_tls_key = "kafka.key"           # PEM, relative to this file)
//! kafka_auto_create_partitions = 1     # Metadata creates unknown topics (off when absent)
//!
//! [[topics]]
//! name = "orders"
//! partitions = 4
//! retention_ms = 604800000     # any setting of POST /topics (docs/api.md)
//! cleanup_policy = "delete"
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
//! # ...and any other key of a processor spec (the README's settings table)
//! ```
//!
//! A processor the file declared and no longer does is removed at the next
//! start with a file (one deployed through the API is left alone).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use weir::processor::SpecChanges;
use weir::processor::spec::Fields;
use weir::wire::CreateTopic;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<SocketAddr>,
    pub token: Option<String>,
    /// Whether `/metrics` answers without the token.
    #[serde(default)]
    pub metrics_public: bool,
    /// How often the log rolls aged segments, applies retention and compacts
    /// (every topic; 60 when absent).
    pub retention_check_secs: Option<u64>,
    /// How long a shutdown waits for batches in flight before interrupting
    /// them (`--shutdown-grace` wins).
    pub shutdown_grace_secs: Option<u64>,
    /// Where to speak the Kafka protocol (`--kafka-listen` wins); off when
    /// absent.
    pub kafka_listen: Option<SocketAddr>,
    /// The `HOST:PORT` Kafka clients are told to connect to.
    pub kafka_advertised: Option<String>,
    /// The Kafka listener's TLS certificate chain (PEM); with
    /// `kafka_tls_key`, clients speak TLS (`--kafka-tls-cert` wins).
    pub kafka_tls_cert: Option<PathBuf>,
    /// The private key of `kafka_tls_cert` (PEM).
    pub kafka_tls_key: Option<PathBuf>,
    /// When set, Metadata creates the unknown topics Kafka clients ask for,
    /// with this many partitions (`--kafka-auto-create-partitions` wins).
    pub kafka_auto_create_partitions: Option<u32>,
    /// Created at start, or given these settings if they exist.
    #[serde(default)]
    pub topics: Vec<CreateTopic>,
    #[serde(default)]
    pub processors: Vec<DeclaredProcessor>,
}

/// A processor the file declares: its name, its wasm file and the settings
/// of its spec that the table gives (any key of [`ProcessorSpec`], checked
/// when the file is read). At every start they are applied: a new processor
/// takes them with defaults for the rest; a recorded one has them changed and
/// keeps its other settings.
#[derive(Debug)]
pub struct DeclaredProcessor {
    pub name: String,
    pub wasm: PathBuf,
    pub settings: SpecChanges,
}

impl<'de> Deserialize<'de> for DeclaredProcessor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::read(d, |mut fields| {
            Ok(DeclaredProcessor {
                name: fields.take("name")?,
                wasm: fields.take("wasm")?,
                settings: fields.into_changes()?,
            })
        })
    }
}

impl ServeConfig {
    /// Reads `path`; relative wasm paths are taken from the file's directory.
    pub fn load(path: &Path) -> Result<ServeConfig> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut config: ServeConfig =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for file in [&mut config.kafka_tls_cert, &mut config.kafka_tls_key]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        for p in &mut config.processors {
            if p.wasm.is_relative() {
                p.wasm = base.join(&p.wasm);
            }
        }
        Ok(config)
    }
}

impl ServeConfig {
    /// The Kafka listener's (certificate, key) files, if the file asks for TLS.
    pub fn kafka_tls(&self) -> Result<Option<(PathBuf, PathBuf)>> {
        match (&self.kafka_tls_cert, &self.kafka_tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert.clone(), key.clone()))),
            (None, None) => Ok(None),
            _ => {
                anyhow::bail!("kafka_tls_cert and kafka_tls_key go together: give both or neither")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir::broker::ResetPolicy;
    use weir::processor::ProcessorSpec;
    use weir::runtime::Limits;

    #[test]
    fn a_full_file_parses_and_resolves_wasm_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:0"
metrics_public = true
kafka_auto_create_partitions = 4
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
        assert!(config.metrics_public);
        assert_eq!(config.kafka_auto_create_partitions, Some(4));
        assert_eq!(config.topics[0].settings.partitions, Some(3));
        let p = &config.processors[0];
        assert_eq!(p.wasm, dir.path().join("g/fraud.wasm"));
        let spec = ProcessorSpec::default().apply(&p.settings).unwrap();
        assert_eq!((spec.instances, spec.reset), (1, ResetPolicy::Latest));
        assert_eq!(spec.config["output"], "alerts");
        assert_eq!(spec.limits.deadline, std::time::Duration::from_millis(2000));
        assert_eq!(spec.limits.fuel, Some(5000));
        assert_eq!(spec.limits.memory_bytes, Limits::default().memory_bytes);
    }

    #[test]
    fn a_misspelt_processor_setting_is_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        let text = "[[processors]]\nname = \"p\"\nwasm = \"p.wasm\"\nmax_record = 5\n";
        std::fs::write(&path, text).unwrap();
        let err = format!("{:#}", ServeConfig::load(&path).unwrap_err());
        assert!(
            err.contains("weir.toml") && err.contains("max_record"),
            "{err}"
        );
    }

    #[test]
    fn topic_settings_are_read_and_a_misspelt_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        let text = "[[topics]]\nname = \"t\"\nretention_ms = 5000\ncleanup_policy = \"compact\"\n";
        std::fs::write(&path, text).unwrap();
        let config = ServeConfig::load(&path).unwrap().topics[0]
            .settings
            .new_config();
        assert_eq!(config.retention_ms, Some(5000));
        assert_eq!(config.cleanup_policy, weir::log::CleanupPolicy::Compact);
        std::fs::write(&path, "[[topics]]\nname = \"t\"\npartitons = 3\n").unwrap();
        let err = format!("{:#}", ServeConfig::load(&path).unwrap_err());
        assert!(
            err.contains("weir.toml") && err.contains("partitons"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:1\"\n").unwrap();
        let err = format!("{:#}", ServeConfig::load(&path).unwrap_err());
        assert!(err.contains("weir.toml") && err.contains("listn"), "{err}");
    }

    #[test]
    fn kafka_tls_files_are_taken_from_the_files_directory_and_go_in_pairs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        let text =
            "kafka_tls_cert = \"tls/server.pem\"\nkafka_tls_key = \"/etc/weir/server.key\"\n";
        std::fs::write(&path, text).unwrap();
        let config = ServeConfig::load(&path).unwrap();
        assert_eq!(
            config.kafka_tls().unwrap(),
            Some((
                dir.path().join("tls/server.pem"),
                PathBuf::from("/etc/weir/server.key")
            ))
        );
        std::fs::write(&path, "kafka_tls_key = \"server.key\"\n").unwrap();
        let err = ServeConfig::load(&path).unwrap().kafka_tls().unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
        assert_eq!(ServeConfig::default().kafka_tls().unwrap(), None);
    }
}
