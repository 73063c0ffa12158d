//! The real Kafka clients the listener's tests drive, and a `weir serve`
//! process with its Kafka listener on.
//!
//! - Python: a virtual environment `<target>/kafka-clients/venv` with the
//!   versions `tests/kafka/requirements.txt` pins (confluent-kafka, which
//!   bundles a current librdkafka, and kafka-python with its codecs),
//!   installed once per change of that file (a stamp holds its hash; a file
//!   lock serializes installs across processes). `tests/kafka/clients.py`
//!   runs one client operation per call, JSON in and out.
//! - kcat: Debian's package (librdkafka 2.0.2), which `.ci/run` installs.
//!
//! When python3 or kcat is missing, [`clients`] prints a loud message and
//! returns `None`, so the caller skips; when `CI` is set it panics instead.

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::polyglot::{run, say};

/// The installed clients.
pub struct Clients {
    python: PathBuf,
    script: PathBuf,
    kcat: PathBuf,
}

/// The clients, installed on first use; `None` (after a loud message) when
/// a prerequisite is missing outside CI.
pub fn clients() -> Option<&'static Clients> {
    static CLIENTS: OnceLock<Option<Clients>> = OnceLock::new();
    CLIENTS.get_or_init(install).as_ref()
}

fn install() -> Option<Clients> {
    let missing = |what: &str, how: &str| {
        let message = format!("{what} is missing: the Kafka client tests need it ({how})");
        assert!(std::env::var_os("CI").is_none(), "CI is set: {message}");
        say(&format!("SKIPPING Kafka client tests: {message}"));
    };
    let Some(kcat) = which("kcat") else {
        missing("kcat", "`apt-get install kcat`, as .ci/run does");
        return None;
    };
    if which("python3").is_none() {
        missing("python3", "`apt-get install python3 python3-venv`");
        return None;
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka");
    let out = crate::polyglot::out_root().with_file_name("kafka-clients");
    std::fs::create_dir_all(&out).expect("create the Kafka clients directory");
    let lock = File::create(out.join("install.lock")).expect("create the install lock");
    lock.lock().expect("lock the Kafka clients install");
    let requirements = src.join("requirements.txt");
    let hash =
        weir::runtime::content_hash(&std::fs::read(&requirements).expect("read requirements.txt"));
    let stamp = out.join("pip.sha256");
    let venv = out.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(hash.as_str()) {
        let started = std::time::Instant::now();
        if !python.exists() {
            run(
                Command::new("python3").arg("-m").arg("venv").arg(&venv),
                "python3 -m venv",
            );
        }
        run(
            Command::new(&python)
                .args(["-m", "pip", "install", "-q", "-r"])
                .arg(&requirements),
            "pip install -r tests/kafka/requirements.txt",
        );
        say(&format!(
            "installed the Kafka clients in {:.1?}",
            started.elapsed()
        ));
        std::fs::write(&stamp, &hash).expect("write the install stamp");
    }
    Some(Clients {
        python,
        script: src.join("clients.py"),
        kcat,
    })
}

impl Clients {
    /// Runs one operation of `clients.py` (see its docstring); its JSON answer.
    pub fn python(&self, request: Value) -> Value {
        self.run_script(&self.script, request)
    }

    /// Starts the Python `script` in the virtual environment with `request`
    /// on its stdin (then closed) and its stdout piped.
    pub fn start_script(&self, script: &Path, request: &Value) -> Child {
        let mut child = Command::new(&self.python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(request.to_string().as_bytes())
            .expect("write the request");
        child
    }

    /// Runs the Python `script` with `request`, JSON in and out; its answer.
    pub fn run_script(&self, script: &Path, request: Value) -> Value {
        let name = script.file_name().unwrap_or_default().to_string_lossy();
        let child = self.start_script(script, &request);
        let output = child.wait_with_output().expect("wait for the script");
        assert!(output.status.success(), "{name} failed for {request}");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "{name} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Runs kcat with `args`, feeding it `stdin`; (success, stdout, stderr).
    pub fn kcat(&self, args: &[&str], stdin: &[u8]) -> (bool, String, String) {
        let mut child = Command::new(&self.kcat)
            .args(args)
            // `cargo test` puts the build's own librdkafka (the `rdkafka`
            // crate's, built without zstd) on the library path; kcat must
            // load the system's.
            .env_remove("LD_LIBRARY_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kcat");
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin)
            .expect("write kcat's input");
        let output = child.wait_with_output().expect("wait for kcat");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// A `weir serve` process with `--kafka-listen 127.0.0.1:0`, killed when
/// dropped.
pub struct KafkaServe {
    pub child: Child,
    /// `http://HOST:PORT` of the API.
    pub http: String,
    /// `HOST:PORT` of the Kafka listener.
    pub kafka: String,
}

impl KafkaServe {
    /// Starts `weir serve` on `dir` with the Kafka listener and `args`; waits
    /// for `/ready`.
    pub fn start(dir: &Path, args: &[&str]) -> KafkaServe {
        KafkaServe::start_with(dir, "127.0.0.1:0", args, &[])
    }

    /// Starts `weir serve` with its Kafka listener on `kafka` (a restart
    /// on the port clients already know), `args` and environment `envs`.
    pub fn start_with(dir: &Path, kafka: &str, args: &[&str], envs: &[(&str, &str)]) -> KafkaServe {
        let mut child = Command::new(crate::weir_bin())
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--kafka-listen", kafka])
            .args(args)
            .envs(envs.iter().copied())
            .env_remove("WEIR_TOKEN")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weir serve");
        let mut lines = std::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut line = || {
            lines
                .next()
                .expect("a line from weir serve")
                .expect("read a line")
        };
        let http = line();
        let http = http
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {http:?}"))
            .to_string();
        let kafka = line();
        let kafka = kafka
            .strip_prefix("kafka listening on ")
            .unwrap_or_else(|| panic!("unexpected second line {kafka:?}"))
            .to_string();
        // Keep draining stdout so a later line never meets a closed pipe.
        std::thread::spawn(move || for _ in lines {});
        crate::server::wait_ready(&http);
        KafkaServe { child, http, kafka }
    }
}

impl Drop for KafkaServe {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(tool))
        .find(|p| p.is_file())
}

/// `bytes` in lower-case hex, as `clients.py` takes and gives keys, values
/// and headers.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `answer`, after asserting the client reported no error.
#[track_caller]
pub fn ok(answer: Value) -> Value {
    assert!(answer.get("error").is_none(), "the client failed: {answer}");
    answer
}

/// Records for partition 0 with binary values, null, empty and ordinary
/// keys, headers and timestamps.
pub fn records(count: usize) -> Vec<Value> {
    (0..count)
        .map(|i| {
            let key = match i % 3 {
                0 => Value::Null,
                1 => json!(""),
                _ => json!(hex(format!("key-{i}").as_bytes())),
            };
            let mut value: Vec<u8> = (0..=255u8).collect();
            value.extend_from_slice(format!("record {i}").as_bytes());
            json!({
                "partition": 0,
                "key": key,
                "value": hex(&value),
                "headers": [["trace", hex(format!("t{i}").as_bytes())], ["bin", hex(&[0, 255, i as u8])]],
                "timestamp": 1_700_000_000_000i64 + i as i64,
            })
        })
        .collect()
}

/// What a consumer must see of `sent`: every field, offsets from 0.
#[track_caller]
pub fn assert_same(sent: &[Value], got: &[Value], what: &str) {
    assert_eq!(got.len(), sent.len(), "{what}: record count");
    for (i, (s, g)) in sent.iter().zip(got).enumerate() {
        assert_eq!(g["offset"], json!(i), "{what}: offset of record {i}");
        for field in ["key", "value", "headers", "timestamp"] {
            assert_eq!(g[field], s[field], "{what}: {field} of record {i}");
        }
    }
}

/// Runs `weir serve` with its Kafka listener on `kafka_listen` and `args`,
/// and no token from the environment; its stderr, after checking that it
/// failed without starting anything.
pub fn refused_at_start(kafka_listen: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(crate::weir_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--kafka-listen",
            kafka_listen,
        ])
        .args(args)
        .env_remove("WEIR_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success(), "{args:?} starts");
    assert!(output.stdout.is_empty(), "nothing was started for {args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}
