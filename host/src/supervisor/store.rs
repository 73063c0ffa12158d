//! What the supervisor keeps on disk, so deployments survive a restart:
//! uploaded components, content-addressed as `components/<sha256>.wasm`, and one
//! JSON record per processor in `deployments/<name>.json`. Every write goes
//! through [`durable::replace`] and a removal fsyncs the directory, so a crash
//! leaves either the old record or the new one.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::SupervisorError;
use crate::durable;
use crate::processor::spec::Fields;
use crate::processor::{ProcessorError, ProcessorSpec, SpecChanges};
use crate::runtime::content_hash;

/// A processor as deployed: its name, the component it runs, its settings,
/// and whether it is paused. On disk it is one flat JSON object, the spec's
/// keys beside `name`, `component`, `paused`, `shadow_of` and `from_config`, so a record
/// written before a setting existed loads with that setting's default.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub name: String,
    /// The component's SHA-256, as `POST /components` returned it.
    pub component: String,
    pub spec: ProcessorSpec,
    pub paused: bool,
    /// Why it was paused, when its circuit breaker did it (an operator's
    /// pause gives none).
    pub paused_reason: Option<String>,
    /// Set on a shadow: the processor it shadows. Its group is the shadowed
    /// group plus `.shadow`, and its emits go to `<topic>.shadow`.
    pub shadow_of: Option<String>,
    /// Whether `weir.toml` declares it: removing it from the file removes
    /// it at the next start (one deployed through the API stays).
    pub from_config: bool,
}

impl Deployment {
    /// The consumer group the processor's members join.
    pub fn group(&self) -> String {
        self.spec.group.clone().unwrap_or_else(|| self.name.clone())
    }

    /// This deployment running `component`, with `changes` to its settings:
    /// the keys given replace the recorded ones and the others stay, but for
    /// the label, which names a version: a new version given none has none.
    pub fn changed(
        &self,
        component: &str,
        changes: &SpecChanges,
    ) -> Result<Deployment, ProcessorError> {
        let mut spec = self.spec.apply(changes)?;
        if !changes.has("label") {
            spec.label = None;
        }
        Ok(Deployment {
            component: component.to_string(),
            spec,
            ..self.clone()
        })
    }
}

impl Serialize for Deployment {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let head = serde_json::json!({
            "name": self.name,
            "component": self.component,
            "paused": self.paused,
            "paused_reason": self.paused_reason,
            "shadow_of": self.shadow_of,
            "from_config": self.from_config,
        });
        Fields::merge(head, &self.spec).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Deployment {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fields::read(d, |mut fields| {
            Ok(Deployment {
                name: fields.take("name")?,
                component: fields.take("component")?,
                paused: fields.take_or_default("paused")?,
                paused_reason: fields.take_or_default("paused_reason")?,
                shadow_of: fields.take_or_default("shadow_of")?,
                from_config: fields.take_or_default("from_config")?,
                spec: fields.into_spec()?,
            })
        })
    }
}

/// The supervisor's directory.
pub struct Store {
    components: PathBuf,
    deployments: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Store, SupervisorError> {
        let store = Store {
            components: data_dir.join("components"),
            deployments: data_dir.join("deployments"),
        };
        for dir in [&store.components, &store.deployments] {
            fs::create_dir_all(dir).map_err(|e| SupervisorError::io(dir, e))?;
        }
        Ok(store)
    }

    /// Stores a component under its hash (a no-op when it is already there).
    pub fn put_component(&self, wasm: &[u8]) -> Result<String, SupervisorError> {
        let hash = content_hash(wasm);
        let path = self.component_path(&hash);
        if !path.exists() {
            durable::replace(&path, wasm).map_err(|e| SupervisorError::io(&path, e))?;
        }
        Ok(hash)
    }

    /// The bytes of a stored component.
    pub fn component(&self, hash: &str) -> Result<Vec<u8>, SupervisorError> {
        let valid = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(SupervisorError::UnknownComponent(hash.to_string()));
        }
        let path = self.component_path(hash);
        fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SupervisorError::UnknownComponent(hash.to_string()),
            _ => SupervisorError::io(&path, e),
        })
    }

    /// Where a component's bytes live (also names it in errors).
    pub fn component_path(&self, hash: &str) -> PathBuf {
        self.components.join(format!("{hash}.wasm"))
    }

    /// Records a deployment, replacing any earlier record of the same name.
    pub fn save(&self, deployment: &Deployment) -> Result<(), SupervisorError> {
        let json = serde_json::to_vec_pretty(deployment).expect("a deployment serializes");
        let path = self.deployment_path(&deployment.name);
        durable::replace(&path, &json).map_err(|e| SupervisorError::io(&path, e))
    }

    /// Forgets a deployment.
    pub fn remove(&self, name: &str) -> Result<(), SupervisorError> {
        let path = self.deployment_path(name);
        match fs::remove_file(&path) {
            // The removal is an entry in the directory: fsync it, or a crash
            // can bring the record back.
            Ok(()) => durable::sync_dir(&self.deployments)
                .map_err(|e| SupervisorError::io(&self.deployments, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SupervisorError::io(&path, e)),
        }
    }

    /// Every recorded deployment, shadows last (they need their main processor).
    /// A record that cannot be read is an error naming its file.
    pub fn load_all(&self) -> Result<Vec<Deployment>, SupervisorError> {
        let entries = fs::read_dir(&self.deployments)
            .map_err(|e| SupervisorError::io(&self.deployments, e))?;
        let mut out = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| SupervisorError::io(&self.deployments, e))?
                .path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let bytes = fs::read(&path).map_err(|e| SupervisorError::io(&path, e))?;
            let deployment: Deployment =
                serde_json::from_slice(&bytes).map_err(|e| SupervisorError::Record {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            out.push(deployment);
        }
        out.sort_by_key(|d| (d.shadow_of.is_some(), d.name.clone()));
        Ok(out)
    }

    /// Whether a deployment named `name` is recorded.
    pub fn exists(&self, name: &str) -> bool {
        self.deployment_path(name).exists()
    }

    fn deployment_path(&self, name: &str) -> PathBuf {
        self.deployments.join(format!("{name}.json"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::broker::ResetPolicy;
    use crate::runtime::Limits;

    fn deployment(name: &str) -> Deployment {
        Deployment {
            name: name.into(),
            component: "ab".repeat(32),
            spec: ProcessorSpec {
                label: Some("v1".into()),
                instances: 2,
                config: BTreeMap::from([("output".into(), "out".into())]),
                reset: ResetPolicy::Latest,
                max_records: 7,
                limits: Limits {
                    fuel: Some(1_000_000),
                    ..Limits::default()
                },
                scratch: true,
                ..ProcessorSpec::over(&["orders"])
            },
            paused: true,
            paused_reason: Some("circuit breaker tripped: test".into()),
            shadow_of: None,
            from_config: true,
        }
    }

    #[test]
    fn deployments_round_trip_and_shadows_load_last() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut shadow = deployment("a.shadow");
        shadow.shadow_of = Some("a".into());
        for d in [&shadow, &deployment("b"), &deployment("a")] {
            store.save(d).unwrap();
        }
        let names: Vec<_> = store
            .load_all()
            .unwrap()
            .into_iter()
            .map(|d| d.name)
            .collect();
        assert_eq!(names, ["a", "b", "a.shadow"]);
        store.remove("b").unwrap();
        store.remove("b").unwrap();
        let reopened = Store::open(dir.path()).unwrap().load_all().unwrap();
        assert_eq!(reopened, vec![deployment("a"), shadow]);
    }

    #[test]
    fn components_are_content_addressed_and_bad_ids_are_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let id = store.put_component(b"\0asm bytes").unwrap();
        assert_eq!(id, content_hash(b"\0asm bytes"));
        assert_eq!(store.put_component(b"\0asm bytes").unwrap(), id);
        assert_eq!(store.component(&id).unwrap(), b"\0asm bytes");
        for bad in ["../../etc/passwd", "", &"0".repeat(64)] {
            let err = store.component(bad).unwrap_err();
            assert!(
                matches!(err, SupervisorError::UnknownComponent(_)),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn a_record_written_before_the_spec_loads_with_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let old = r#"{
  "name": "fx",
  "topics": ["orders"],
  "group": null,
  "component": "abababababababababababababababababababababababababababababababab",
  "label": "v1",
  "instances": 2,
  "config": {"output": "out"},
  "reset": "latest",
  "limits": {"memory_bytes": 1048576, "deadline_ms": 2000, "max_stack_bytes": 1048576, "fuel": null},
  "scratch": false,
  "paused": true,
  "shadow_of": null
}"#;
        fs::write(dir.path().join("deployments/fx.json"), old).unwrap();
        let loaded = store.load_all().unwrap().remove(0);
        let expected = ProcessorSpec {
            label: Some("v1".into()),
            instances: 2,
            config: BTreeMap::from([("output".into(), "out".into())]),
            reset: ResetPolicy::Latest,
            limits: Limits {
                memory_bytes: 1 << 20,
                deadline: std::time::Duration::from_secs(2),
                ..Limits::default()
            },
            ..ProcessorSpec::over(&["orders"])
        };
        assert_eq!(loaded.spec, expected);
        assert!(loaded.paused);
        assert_eq!(
            (loaded.name.as_str(), loaded.shadow_of.as_deref()),
            ("fx", None)
        );
        store.save(&loaded).unwrap();
        assert_eq!(
            store.load_all().unwrap(),
            vec![loaded],
            "saved again, it reads back the same"
        );
    }

    #[test]
    fn a_record_with_an_unknown_setting_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let record = r#"{"name": "fx", "component": "ab", "topics": ["t"], "max_recrods": 5}"#;
        fs::write(dir.path().join("deployments/fx.json"), record).unwrap();
        let err = store.load_all().unwrap_err().to_string();
        assert!(
            err.contains("fx.json") && err.contains("max_recrods"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_record_is_an_error_naming_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        fs::write(dir.path().join("deployments/x.json"), b"{not json").unwrap();
        let err = store.load_all().unwrap_err().to_string();
        assert!(err.contains("x.json"), "{err}");
    }
}
