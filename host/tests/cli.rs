//! The `weir` binary's basic commands. (This file also makes `cargo test` build
//! the binary that the process tests in `tests/` drive.)

use std::io::Write;
use std::process::{Command, Stdio};

fn weir(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("spawn weir")
}

#[test]
fn topics_are_created_listed_produced_to_and_consumed() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        weir(
            dir.path(),
            &["topic", "create", "events", "--partitions", "2"]
        )
        .status
        .success()
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["produce", "--topic", "events", "--key-separator", "="])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a=1\na=2\nplain\n")
        .unwrap();
    let produced = child.wait_with_output().unwrap();
    assert!(produced.status.success());
    assert!(String::from_utf8_lossy(&produced.stdout).contains("produced 3 record(s)"));

    let list = weir(dir.path(), &["topic", "list"]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.contains("events\tpartitions=2"), "{list}");

    let mut seen = Vec::new();
    for p in ["0", "1"] {
        let out = weir(
            dir.path(),
            &["consume", "--topic", "events", "--partition", p],
        );
        seen.extend(String::from_utf8_lossy(&out.stdout).lines().map(|l| {
            // partition, offset, timestamp, key, value, headers
            let cols: Vec<&str> = l.split('\t').collect();
            format!("{}={}", cols[3], cols[4])
        }));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec!["=plain", "a=1", "a=2"],
        "a null key prints empty"
    );
}

#[test]
fn bad_names_and_unknown_topics_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = weir(dir.path(), &["topic", "create", "../escape"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid topic name"));

    let unknown = weir(dir.path(), &["consume", "--topic", "ghost"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown topic \"ghost\""));
}
