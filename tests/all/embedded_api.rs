//! `weir run` as a real process that other `weir` commands reach through the
//! API it advertises in `<data-dir>/api.json`; `--reset latest` across two
//! runs; `--until-caught-up` with several members; the group's membership and
//! its record across restarts, as `weir group describe` shows them.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::Host;
use weir_tests::command::{self, copy_run_args};

fn weir(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command::weir(dir, args);
    cmd.env("RUST_LOG", "info");
    cmd
}

fn ok(out: Output) -> String {
    command::stdout_of(&out)
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let text = ok(weir(dir, &all).output().unwrap());
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn produce(dir: &Path, topic: &str, lines: &[String]) {
    let mut child = weir(dir, &["produce", "--topic", topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    ok(child.wait_with_output().unwrap());
}

/// A data directory with topics `in` (`partitions`) and `out` (1).
fn data_dir(partitions: u32) -> tempfile::TempDir {
    let host = Host::new();
    host.topic("in", partitions);
    host.topic("out", 1);
    let Host { dir, .. } = host;
    dir
}

fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(mut child: Child) -> Output {
    command::sigterm(&mut child, Duration::from_secs(30));
    child.wait_with_output().unwrap()
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn a_running_weir_run_is_produced_to_and_described_through_its_data_directory() {
    let dir = data_dir(2);
    let d = dir.path();
    let child = weir(d, &copy_run_args(&[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let api = d.join("api.json");
    let advertised: Value = wait_for("weir run never advertised its API", || {
        serde_json::from_str(&std::fs::read_to_string(&api).ok()?).ok()
    });
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&api).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "api.json is private");
    assert_eq!(advertised["pid"], child.id());

    // The data directory is locked by the run, yet these work through its API.
    produce(d, "in", &lines("print:n", 0..40));
    let described = wait_for("the run never processed the new records", || {
        let g = json(d, &["group", "describe", "copy"]);
        (g["total_lag"] == 0 && g["partitions"].as_array()?.len() == 2).then_some(g)
    });
    let committed: u64 = described["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["committed"].as_u64().unwrap())
        .sum();
    assert_eq!(committed, 40);
    let members = described["membership"]["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{described}");
    assert_eq!(members[0]["instance_id"], "copy-0");
    assert_eq!(members[0]["assignment"].as_array().unwrap().len(), 2);
    let text = ok(weir(d, &["group", "describe", "copy"]).output().unwrap());
    assert!(text.contains("copy-0"), "{text}");
    assert!(text.contains("in/0,in/1"), "{text}");
    assert_eq!(
        ok(weir(d, &["group", "list"]).output().unwrap()).trim(),
        "copy"
    );

    // An api.json that names another process is stale: the old refusal.
    let real = std::fs::read(&api).unwrap();
    std::fs::write(&api, r#"{"url":"http://127.0.0.1:9","pid":1}"#).unwrap();
    let refused = weir(d, &["topic", "list"]).output().unwrap();
    std::fs::write(&api, real).unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is in use by another weir process"));

    let out = terminate(child);
    assert!(out.status.success(), "{}", out.status);
    assert!(!api.exists(), "removed on a clean exit");
    let last = String::from_utf8_lossy(&out.stdout);
    assert!(last.contains("processed 40 record(s)"), "{last}");
    let host = Host::new_in(dir);
    assert_eq!(host.values("out", 0).len(), 40);
}

#[test]
fn reset_latest_commits_its_start_so_records_between_two_runs_are_processed() {
    let dir = data_dir(1);
    let d = dir.path();
    produce(d, "in", &lines("print:old", 0..5));
    let run = |d: &Path| {
        let mut args = vec!["--json"];
        args.extend(copy_run_args(&["--reset", "latest", "--until-caught-up"]));
        let text = ok(weir(d, &args).output().unwrap());
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    let first = run(d);
    assert_eq!(first["processed"], 0, "latest skips what came before");
    produce(d, "in", &lines("print:new", 0..3));
    let second = run(d);
    assert_eq!(second["processed"], 3, "{second}");
    assert_eq!(second["lag"], 0);
    let host = Host::new_in(dir);
    assert_eq!(
        host.values("out", 0),
        vec!["print:new0", "print:new1", "print:new2"]
    );
}

#[test]
fn until_caught_up_runs_every_instance_and_refuses_watch() {
    let dir = data_dir(4);
    let d = dir.path();
    produce(d, "in", &lines("print:r", 0..400));
    let mut args = vec!["--json"];
    args.extend(copy_run_args(&["--instances", "3", "--until-caught-up"]));
    let done: Value = serde_json::from_str(&ok(weir(d, &args).output().unwrap())).unwrap();
    assert_eq!(done["processed"], 400, "{done}");
    assert_eq!(done["lag"], 0);
    assert_eq!(done["instances"], 3);
    let group = json(d, &["group", "describe", "copy"]);
    let mut instances: Vec<String> = group["membership"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["instance_id"].as_str().unwrap().to_string())
        .collect();
    instances.sort();
    assert_eq!(instances, ["copy-0", "copy-1", "copy-2"], "{group}");

    let refused = weir(d, &copy_run_args(&["--until-caught-up", "--watch"]))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn a_restarted_static_member_keeps_its_partitions_and_the_generation_goes_on() {
    let dir = data_dir(4);
    let d = dir.path();
    produce(d, "in", &lines("print:a", 0..40));
    let args = copy_run_args(&["--instances", "2", "--until-caught-up"]);
    ok(weir(d, &args).output().unwrap());
    let membership = |d: &Path| {
        let g = json(d, &["group", "describe", "copy"]);
        let m = g["membership"].clone();
        let mut by_instance: Vec<(String, Value)> = m["members"]
            .as_array()
            .unwrap_or_else(|| panic!("no membership: {g}"))
            .iter()
            .map(|m| {
                (
                    m["instance_id"].as_str().unwrap().to_string(),
                    m["assignment"].clone(),
                )
            })
            .collect();
        by_instance.sort_by(|a, b| a.0.cmp(&b.0));
        (m["generation"].as_u64().unwrap(), by_instance)
    };
    let (generation, before) = membership(d);
    assert!(generation >= 2, "two members joined: {generation}");
    assert_eq!(before.len(), 2);
    assert!(
        before.iter().all(|(_, a)| a.as_array().unwrap().len() == 2),
        "{before:?}"
    );

    produce(d, "in", &lines("print:b", 0..40));
    ok(weir(d, &args).output().unwrap());
    let (again, after) = membership(d);
    assert_eq!(again, generation, "no rebalance on the restart");
    assert_eq!(after, before, "each instance kept its partitions");
    let host = Host::new_in(dir);
    assert_eq!(host.values("out", 0).len(), 80);
}

#[test]
fn a_serving_data_directory_is_reached_with_the_token_it_advertises() {
    let dir = data_dir(1);
    let d = dir.path();
    let child = weir(
        d,
        &["serve", "--listen", "127.0.0.1:0", "--token", "s3cret"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let api = d.join("api.json");
    let advertised: Value = wait_for("weir serve never advertised its API", || {
        serde_json::from_str(&std::fs::read_to_string(&api).ok()?).ok()
    });
    assert_eq!(advertised["token"], "s3cret");
    // No --token given: the command takes the advertised one.
    let created = json(d, &["topic", "create", "fresh", "--partitions", "3"]);
    assert_eq!(created["partitions"], 3, "{created}");
    produce(d, "fresh", &lines("x", 0..6));
    let topic = json(d, &["topic", "describe", "fresh"]);
    assert_eq!(topic["high_watermarks"], serde_json::json!([2, 2, 2]));
    let out = terminate(child);
    assert!(out.status.success(), "{}", out.status);
    assert!(!api.exists(), "removed on a clean exit");
}
