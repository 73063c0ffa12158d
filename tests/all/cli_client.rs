//! The `weir` binary as a client of a real `weir serve` on 127.0.0.1:0:
//! topics, produce, consume and groups over HTTP (text and `--json`), clear
//! errors, no data-directory lock taken in server mode, and the client-only
//! commands refusing to run without a server.

use std::path::Path;
use std::process::{Child, Command, Output};

use serde_json::Value;
use weir_tests::command;
use weir_tests::server::spawn_serve;
use weir_tests::weir_bin;

mod deploy;

/// A `weir serve` child process and the URL it printed.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let (child, url) = spawn_serve(dir, &["--listen".as_ref(), "127.0.0.1:0".as_ref()]);
        Serve { child, url }
    }

    /// `weir --server URL args…`, with a data directory the server holds, to
    /// show the client never takes its lock.
    fn weir(&self, dir: &Path, args: &[&str], stdin: &str) -> Output {
        let mut server_args = vec!["--server", &self.url];
        server_args.extend_from_slice(args);
        weir_with_stdin(dir, &server_args, stdin)
    }

    fn ok(&self, dir: &Path, args: &[&str], stdin: &str) -> String {
        let out = self.weir(dir, args, stdin);
        assert!(
            out.status.success(),
            "weir {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// `weir --data-dir DIR args…` with `stdin` as its input.
fn weir_with_stdin(dir: &Path, args: &[&str], stdin: &str) -> Output {
    command::output_with_stdin(&mut command::weir(dir, args), stdin)
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[test]
fn topic_produce_consume_and_group_commands_work_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Serve::start(dir.path());
    let d = dir.path();

    let created = server.ok(d, &["topic", "create", "lines", "--partitions", "2"], "");
    assert_eq!(created.trim(), "created topic lines with 2 partition(s)");
    let json: Value =
        serde_json::from_str(&server.ok(d, &["--json", "topic", "describe", "lines"], "")).unwrap();
    assert_eq!(json["partitions"], 2);

    let produced = server.ok(
        d,
        &["produce", "--topic", "lines", "--key-separator", "="],
        "k1=v1\nk1=v2\nplain\n",
    );
    assert_eq!(produced.trim(), "produced 3 record(s) to lines");
    let listed: Value =
        serde_json::from_str(&server.ok(d, &["topic", "list", "--json"], "")).unwrap();
    let lines = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "lines")
        .unwrap();
    let hws: Vec<u64> = lines["high_watermarks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(hws.iter().sum::<u64>(), 3);

    let keyed_partition = hws.iter().position(|&h| h >= 2).unwrap().to_string();
    let consumed = server.ok(
        d,
        &[
            "consume",
            "--topic",
            "lines",
            "--partition",
            &keyed_partition,
        ],
        "",
    );
    let values: Vec<&str> = consumed
        .lines()
        .filter_map(|l| l.split('\t').nth(4))
        .collect();
    assert!(values.starts_with(&["v1", "v2"]), "{consumed}");
    let consumed: Value = serde_json::from_str(&server.ok(
        d,
        &[
            "--json",
            "consume",
            "--topic",
            "lines",
            "--partition",
            &keyed_partition,
            "--max",
            "1",
        ],
        "",
    ))
    .unwrap();
    assert_eq!(consumed.as_array().unwrap().len(), 1);
    assert_eq!(consumed[0]["key"], "k1");

    let seek = server.weir(
        d,
        &[
            "group", "seek", "readers", "--to", "earliest", "--topic", "lines",
        ],
        "",
    );
    assert!(
        seek.status.success(),
        "{}",
        String::from_utf8_lossy(&seek.stderr)
    );
    let described = server.ok(d, &["group", "describe", "readers"], "");
    assert!(described.contains("total lag 3"), "{described}");
    let groups: Value =
        serde_json::from_str(&server.ok(d, &["group", "list", "--json"], "")).unwrap();
    assert_eq!(groups, serde_json::json!(["readers"]));

    let missing = server.weir(d, &["topic", "describe", "ghost"], "");
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("404") && stderr.contains("unknown topic \"ghost\""),
        "{stderr}"
    );

    let deleted = server.ok(d, &["topic", "delete", "lines"], "");
    assert_eq!(deleted.trim(), "deleted topic lines");
    let gone = server.weir(d, &["consume", "--topic", "lines"], "");
    assert!(!gone.status.success());
    let described = server.weir(d, &["group", "describe", "readers"], "");
    assert!(
        !described.status.success(),
        "the group's offsets went with the topic"
    );
}

#[test]
fn client_only_commands_name_the_server_setting_when_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["deploy", "--processor", "p", "--wasm", "x.wasm"],
        vec!["processor", "list"],
        vec!["shadow", "drop", "p"],
    ] {
        let out = Command::new(weir_bin())
            .arg("--data-dir")
            .arg(dir.path().join("unused"))
            .args(&args)
            .env_remove("WEIR_SERVER")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--server") && stderr.contains("WEIR_SERVER"),
            "{stderr}"
        );
    }
    assert!(
        !dir.path().join("unused").exists(),
        "no data directory was created"
    );
}

#[test]
fn embedded_topic_describe_and_delete_work_on_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let weir = |args: &[&str]| {
        let out = Command::new(weir_bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .env_remove("WEIR_SERVER")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    weir(&["topic", "create", "t", "--partitions", "3"]);
    let described: Value =
        serde_json::from_str(&weir(&["topic", "describe", "t", "--json"])).unwrap();
    assert_eq!(described["high_watermarks"], serde_json::json!([0, 0, 0]));
    assert_eq!(weir(&["topic", "delete", "t"]).trim(), "deleted topic t");
    assert!(!weir(&["topic", "list"]).contains("t\tpartitions"));
}

/// `weir --data-dir DIR args…` on the data directory itself (no server).
fn embedded(dir: &Path, args: &[&str], stdin: &str) -> String {
    command::stdout_of(&weir_with_stdin(dir, args, stdin))
}

/// (offset, key, value) of every record of one partition, from `consume --json`.
fn partition_records(consume: impl Fn(&[&str]) -> String, topic: &str, p: u32) -> Vec<Value> {
    let p = p.to_string();
    let args = ["--json", "consume", "--topic", topic, "--partition", &p];
    let records: Value = serde_json::from_str(&consume(&args)).unwrap();
    records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["offset"], r["key"], r["value"]]))
        .collect()
}

#[test]
fn local_and_remote_produce_place_records_identically() {
    // Two produce commands, so placement also has to carry over between them.
    let requests = [
        vec![
            "a=1", "plain-1", "plain-2", "b=2", "plain-3", "a=3", "plain-4",
        ],
        vec!["plain-5", "c=4", "plain-6", "plain-7", "plain-8"],
    ];
    let produce = ["produce", "--topic", "t", "--key-separator", "="];
    let create = ["topic", "create", "t", "--partitions", "3"];

    let local = tempfile::tempdir().unwrap();
    embedded(local.path(), &create, "");
    for lines in &requests {
        embedded(local.path(), &produce, &(lines.join("\n") + "\n"));
    }

    let served = tempfile::tempdir().unwrap();
    let server = Serve::start(served.path());
    let d = served.path();
    server.ok(d, &create, "");
    for lines in &requests {
        server.ok(d, &produce, &(lines.join("\n") + "\n"));
    }
    // The same records through a JSON produce, to a twin topic.
    server.ok(d, &["topic", "create", "j", "--partitions", "3"], "");
    let http = reqwest::Client::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for lines in &requests {
        let records: Vec<Value> = lines
            .iter()
            .map(|line| match line.split_once('=') {
                Some((key, value)) => serde_json::json!({"key": key, "value": value}),
                None => serde_json::json!({"value": line}),
            })
            .collect();
        let url = format!("{}/topics/j/records", server.url);
        let status = runtime.block_on(async {
            let body = serde_json::json!({ "records": records });
            http.post(url).json(&body).send().await.unwrap().status()
        });
        assert_eq!(status, 200);
    }

    let all: Vec<&str> = requests.iter().flatten().copied().collect();
    for p in 0..3 {
        let here = partition_records(|args| embedded(local.path(), args, ""), "t", p);
        let binary = partition_records(|args| server.ok(d, args, ""), "t", p);
        let json = partition_records(|args| server.ok(d, args, ""), "j", p);
        assert_eq!(here, binary, "partition {p}: embedded vs binary produce");
        assert_eq!(here, json, "partition {p}: embedded vs JSON produce");
        // The documented rule: the topic's n-th record, unkeyed, goes to n mod 3.
        let unkeyed: Vec<Value> = all
            .iter()
            .enumerate()
            .filter(|(n, line)| !line.contains('=') && *n as u32 % 3 == p)
            .map(|(_, line)| Value::from(*line))
            .collect();
        let placed: Vec<Value> = here
            .iter()
            .filter(|r| r[1].is_null())
            .map(|r| r[2].clone())
            .collect();
        assert_eq!(placed, unkeyed, "partition {p}");
    }
}
