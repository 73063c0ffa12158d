//! The `weir` binary's rough edges, as a user meets them: a closed stdout,
//! `RUST_BACKTRACE=1`, typos in names, a missing output topic, consuming
//! every partition and following, producing with a partition and headers,
//! positions as times, `WEIR_SERVER` exported while starting `weir serve`,
//! `--json` on `demo`, and shell completions.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::command;
use weir_tests::guests;
use weir_tests::server::spawn_serve;

/// `weir --data-dir DIR args…` with no server or token from the environment.
fn weir(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command::weir(dir, args);
    cmd.stdin(Stdio::null());
    cmd
}

fn ok(cmd: &mut Command) -> String {
    command::stdout_of(&cmd.output().expect("spawn weir"))
}

fn failed(cmd: &mut Command) -> String {
    let out: Output = cmd.output().expect("spawn weir");
    assert!(!out.status.success(), "weir should have failed");
    String::from_utf8(out.stderr).unwrap()
}

/// A `weir serve` child, killed when dropped.
struct Serve(Child, String);

impl Drop for Serve {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn serve(dir: &Path) -> Serve {
    let (child, url) = spawn_serve(dir, &["--listen".as_ref(), "127.0.0.1:0".as_ref()]);
    Serve(child, url)
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&mut weir(
        d,
        &["topic", "create", "orders", "--partitions", "2"],
    ));
    ok(&mut weir(
        d,
        &["produce", "--topic", "orders", "--generate", "20000"],
    ));

    // `weir consume | head -1`: the reader goes away after one line.
    let mut child = weir(d, &["consume", "--topic", "orders", "--max", "20000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("amount_cents"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "nothing but silence: {stderr}");

    // A command that prints with println! to a stdout already closed.
    let mut child = weir(d, &["topic", "list"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn errors_are_one_line_with_the_cause_and_a_did_you_mean_never_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&mut weir(d, &["topic", "create", "orders"]));
    let seek = ["group", "seek", "readers", "--to", "earliest", "--topic"];
    ok(&mut weir(d, &[&seek[..], &["orders"]].concat()));

    for (args, expected) in [
        (
            &["consume", "--topic", "ordrs"][..],
            "Error: unknown topic \"ordrs\" (did you mean `orders`?)",
        ),
        (
            &["topic", "delete", "ordres"][..],
            "Error: unknown topic \"ordres\" (did you mean `orders`?)",
        ),
        (
            &["group", "describe", "reader"][..],
            "Error: group \"reader\" has no committed offsets and no live members (did you mean `readers`?)",
        ),
    ] {
        let stderr = failed(weir(d, args).env("RUST_BACKTRACE", "1"));
        assert_eq!(stderr.trim_end(), expected, "weir {args:?}");
    }
    // A cause below a generic layer is named on the same line.
    let stderr = failed(&mut weir(
        d,
        &["produce", "--topic", "orders", "--partition", "3"],
    ));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("has no partition 3"), "{stderr}");
}

#[test]
fn a_missing_output_topic_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&mut weir(d, &["topic", "create", "orders"]));
    ok(&mut weir(d, &["topic", "create", "alerts"]));
    ok(&mut weir(
        d,
        &["produce", "--topic", "orders", "--generate", "50"],
    ));
    let run = [
        "run",
        "--name",
        "fraud",
        "--wasm",
        guests::FRAUD_FILTER,
        "--topic",
        "orders",
        "--config",
        "output=alrts",
        "--until-caught-up",
    ];
    let stderr = failed(&mut weir(d, &run));
    assert!(
        stderr.contains("output topic \"alrts\"")
            && stderr.contains("did you mean `alerts`?")
            && stderr.contains("weir topic create alrts"),
        "{stderr}"
    );
    let groups = ok(&mut weir(d, &["group", "list"]));
    assert!(!groups.contains("fraud"), "nothing was processed: {groups}");

    // The same check on a server's deploy, before the processor exists.
    let server = serve(d);
    let url = server.1.as_str();
    let deploy = [
        "--server",
        url,
        "deploy",
        "--processor",
        "fraud",
        "--wasm",
        guests::FRAUD_FILTER,
        "--topic",
        "orders",
        "--config",
    ];
    let stderr = failed(&mut weir(d, &[&deploy[..], &["output=alrts"]].concat()));
    assert!(stderr.contains("did you mean `alerts`?"), "{stderr}");
    ok(&mut weir(d, &[&deploy[..], &["output=alerts"]].concat()));
    // ...and a processor's name is matched too.
    let stderr = failed(&mut weir(
        d,
        &["--server", url, "processor", "status", "frad"],
    ));
    assert!(stderr.contains("did you mean `fraud`?"), "{stderr}");
}

/// Lines of `consume --format '%p %o %k %v %h'`.
fn consumed(dir: &Path, extra: &[&str]) -> Vec<String> {
    let format = ["consume", "--topic", "events", "--format", "%p %o %k %v %h"];
    ok(&mut weir(dir, &[&format[..], extra].concat()))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn consume_reads_every_partition_with_headers_and_produce_takes_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&mut weir(
        d,
        &["topic", "create", "events", "--partitions", "3"],
    ));
    for (p, value) in [("2", "late"), ("0", "early")] {
        let mut child = weir(
            d,
            &[
                "produce",
                "--topic",
                "events",
                "--partition",
                p,
                "--key-separator",
                ":",
                "--header",
                "src=cli",
                "--header",
                "trace=t1",
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
        let line = format!("k:{value}\n");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), line.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(
        consumed(d, &[]),
        [
            "0 0 k early src=cli,trace=t1",
            "2 0 k late src=cli,trace=t1"
        ]
    );
    assert_eq!(
        consumed(d, &["--partition", "2"]),
        ["2 0 k late src=cli,trace=t1"]
    );
    let json: Value = serde_json::from_str(&ok(&mut weir(
        d,
        &["--json", "consume", "--topic", "events"],
    )))
    .unwrap();
    assert_eq!(json[1]["partition"], 2);
    assert_eq!(json[1]["headers"]["trace"], "t1");

    // Positions as times: an hour back takes everything, a future time
    // nothing, and a group seeks by an RFC 3339 time too.
    assert_eq!(consumed(d, &["--from", "-1h"]).len(), 2);
    assert_eq!(consumed(d, &["--from", "2999-01-01T00:00:00Z"]).len(), 0);
    assert_eq!(
        consumed(d, &["--from", "2000-01-01T00:00:00+02:00"]).len(),
        2
    );
    let seek = [
        "group",
        "seek",
        "g",
        "--topic",
        "events",
        "--to",
        "2999-01-01T00:00:00Z",
    ];
    let moved = ok(&mut weir(d, &seek));
    assert!(moved.contains("events/2: - -> 1"), "{moved}");
}

#[test]
fn consume_follow_prints_records_produced_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let server = serve(d);
    let url = server.1.clone();
    let client = |args: &[&str]| {
        let mut cmd = weir(d, &[&["--server", url.as_str()][..], args].concat());
        cmd.stdin(Stdio::piped());
        cmd
    };
    ok(&mut client(&[
        "topic",
        "create",
        "live",
        "--partitions",
        "2",
    ]));
    let mut follower = client(&["consume", "--topic", "live", "--follow", "--format", "%v"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for p in ["0", "1"] {
        let mut producer = client(&["produce", "--topic", "live", "--partition", p])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let line = format!("hello-{p}\n");
        std::io::Write::write_all(&mut producer.stdin.take().unwrap(), line.as_bytes()).unwrap();
        assert!(producer.wait().unwrap().success());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 2 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push(line);
        }
    }
    seen.sort();
    assert_eq!(seen, ["hello-0", "hello-1"]);
    assert!(
        follower.try_wait().unwrap().is_none(),
        "--follow keeps polling"
    );
    follower.kill().ok();
    follower.wait().ok();
}

#[test]
fn weir_server_in_the_environment_does_not_stop_weir_serve() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = weir(dir.path(), &["serve", "--listen", "127.0.0.1:0"])
        .env("WEIR_SERVER", "http://127.0.0.1:9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let running = child.try_wait().unwrap().is_none();
    child.kill().ok();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .ok();
    child.wait().ok();
    assert!(
        line.starts_with("listening on http://127.0.0.1:") && running,
        "{line}{stderr}"
    );
}

#[test]
fn demo_prints_json_under_the_json_flag() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(&mut weir(dir.path(), &["--json", "demo", "--orders", "60"]));
    let report: Value = serde_json::from_str(&out).expect("demo --json prints JSON");
    assert_eq!(report["produced"], 60);
    let processors = report["processors"].as_array().unwrap();
    assert_eq!(processors.len(), 2);
    for p in processors {
        assert_eq!(p["records"], 60, "{p}");
    }
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, mark) in [
        ("bash", "_weir()"),
        ("zsh", "#compdef weir"),
        ("fish", "complete -c weir"),
    ] {
        let script = ok(&mut weir(dir.path(), &["completions", shell]));
        assert!(
            script.contains(mark) && script.contains("consume"),
            "{shell}"
        );
    }
}
