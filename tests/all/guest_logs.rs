//! `weir logs`: a `scripted` guest that prints and logs, deployed on a real
//! `weir serve`; its lines come back through the API with their version,
//! partition and stream, a `--follow` sees a line written after it started,
//! and the filters narrow what is shown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_tests::command;
use weir_tests::guests;
use weir_tests::server::spawn_serve;
use weir_tests::weir_bin;

fn weir_in(dir: &Path, url: &str, args: &[&str], stdin: &str) -> Output {
    let args = [&["--server", url], args].concat();
    command::output_with_stdin(&mut command::weir(dir, &args), stdin)
}

fn ok(dir: &Path, url: &str, args: &[&str], stdin: &str) -> String {
    let out = weir_in(dir, url, args, stdin);
    assert!(
        out.status.success(),
        "weir {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn logs_show_what_the_guest_logged_and_printed_and_follow_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut serve, url) = spawn_serve(d, &["--listen".as_ref(), "127.0.0.1:0".as_ref()]);
    let weir = |args: &[&str], stdin: &str| ok(d, &url, args, stdin);
    weir(&["topic", "create", "in"], "");
    weir(&["topic", "create", "out"], "");
    weir(
        &[
            "deploy",
            "--processor",
            "talk",
            "--wasm",
            guests::SCRIPTED,
            "--label",
            "v1",
            "--topic",
            "in",
            "--config",
            "output=out",
            "--wait",
        ],
        "",
    );
    let status: Value =
        serde_json::from_str(&weir(&["--json", "processor", "status", "talk"], "")).unwrap();
    let version = status["version"].as_str().unwrap().to_string();
    assert!(version.starts_with("v1@"), "{version}");

    // A follower started before anything was written.
    let mut follower = Command::new(weir_bin())
        .args(["--server", &url, "--json", "logs", "talk", "--follow"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, followed) = mpsc::channel::<Value>();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                break;
            }
        }
    });

    weir(&["produce", "--topic", "in"], "print:hello\nprint:world\n");
    let started = Instant::now();
    let lines = loop {
        let lines = json_lines(&weir(&["--json", "logs", "talk"], ""));
        if lines.len() >= 4 {
            break lines;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "got only {lines:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let shown: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap(),
                l["level"].as_str().unwrap(),
                l["message"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("log", "info", "printed hello"),
        ("log", "info", "printed world"),
        ("stdout", "info", "hello"),
        ("stdout", "info", "world"),
    ] {
        assert!(shown.contains(&expected), "{expected:?} not in {shown:?}");
    }
    for line in &lines {
        assert_eq!(line["version"], version.as_str(), "{line}");
        assert_eq!(line["partition"], 0, "{line}");
    }
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");

    // The text form names the version, partition, level and stream.
    let text = weir(&["logs", "talk"], "");
    assert!(
        text.lines()
            .any(|l| l.contains(&version) && l.contains(" p0 ") && l.ends_with("stdout hello")),
        "{text}"
    );

    // The follower saw those lines, then one written later.
    weir(&["produce", "--topic", "in"], "print:later\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &Value| l["message"] == "later") {
        let left = deadline.saturating_duration_since(Instant::now());
        match followed.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(e) => panic!("the follower stopped at {seen:?}: {e}"),
        }
    }
    assert!(
        seen.iter().any(|l| l["message"] == "printed hello"),
        "{seen:?}"
    );
    follower.kill().ok();
    follower.wait().ok();

    // Filters: a version, a partition, a time.
    assert_eq!(weir(&["logs", "talk", "--version", "v2@none"], ""), "");
    assert_eq!(weir(&["logs", "talk", "--partition", "3"], ""), "");
    assert_eq!(
        weir(&["logs", "talk", "--since", "ts:99999999999999"], ""),
        ""
    );
    let recent = json_lines(&weir(
        &[
            "--json",
            "logs",
            "talk",
            "--since",
            "-10m",
            "--version",
            &version,
        ],
        "",
    ));
    assert_eq!(recent.len(), 6, "{recent:?}");

    let unknown = weir_in(d, &url, &["logs", "nobody"], "");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody"));
    serve.kill().ok();
    serve.wait().ok();
}
