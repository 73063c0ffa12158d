//! The real `weir` binary as separate processes: crashes between process and
//! commit, SIGKILL at arbitrary moments, Ctrl-C, and the demo.
//!
//! `WEIR_KILL_ROUNDS` sets how many SIGKILL rounds the kill test runs (3 by
//! default).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use weir_tests::command::{self, copy_run_args};
use weir_tests::{Host, guests};

fn weir(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = command::weir(dir, args);
    cmd.env("RUST_LOG", "info");
    cmd
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn weir");
    command::stdout_of(&out);
    out
}

/// A data directory with topic `in` holding `print:r0` .. `print:r{n-1}`, and
/// an empty topic `out`.
fn seeded(n: usize) -> tempfile::TempDir {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let values: Vec<String> = (0..n).map(|i| format!("print:r{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    host.append_values("in", 0, &refs);
    let Host { dir, .. } = host;
    dir
}

fn run_args<'a>(max_records: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = copy_run_args(&["--max-records", max_records]);
    args.extend_from_slice(extra);
    args
}

/// The record numbers a run's guest printed, in order, from its log output.
fn printed(stderr: &[u8]) -> Vec<u64> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| l.split("printed r").nth(1))
        .filter_map(|n| n.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn a_crash_between_process_and_commit_redelivers_only_the_last_batch() {
    let dir = seeded(100);
    let crashed = weir(dir.path(), &run_args("10", &["--until-caught-up"]))
        .env("WEIR_CRASH_BEFORE_COMMIT", "3")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the seam aborts the process");
    let first = printed(&crashed.stderr);
    assert_eq!(
        first,
        (0..30).collect::<Vec<_>>(),
        "three batches were processed"
    );

    let resumed = run_ok(&mut weir(
        dir.path(),
        &run_args("10", &["--until-caught-up"]),
    ));
    let second = printed(&resumed.stderr);
    assert_eq!(
        second,
        (20..100).collect::<Vec<_>>(),
        "only the uncommitted batch (20..30) comes again"
    );

    let host = Host::new_in(dir);
    assert_eq!(host.committed("copy", "in", 0), 100);
    let out = host.values("out", 0);
    assert_eq!(
        out.len(),
        100,
        "the crashed batch's emits were never appended"
    );
}

#[test]
fn sigkill_at_any_moment_loses_nothing_and_repeats_at_most_a_batch() {
    let rounds: usize = std::env::var("WEIR_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let n = 3000;
    let dir = seeded(n);
    for round in 0..rounds {
        let mut child = weir(dir.path(), &run_args("50", &[]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + 97 * round as u64));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    run_ok(&mut weir(
        dir.path(),
        &run_args("50", &["--until-caught-up"]),
    ));

    let host = Host::new_in(dir);
    assert_eq!(host.committed("copy", "in", 0), n as u64);
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for v in host.values("out", 0) {
        *counts.entry(v).or_default() += 1;
    }
    assert_eq!(counts.len(), n, "every record was emitted at least once");
    let repeated = counts.values().filter(|c| **c > 1).count();
    assert!(
        repeated <= 50 * rounds,
        "{repeated} repeats: at most one batch per kill"
    );
}

#[test]
fn ctrl_c_finishes_the_batch_in_flight_commits_and_exits_zero() {
    let dir = seeded(500);
    let mut child = weir(dir.path(), &run_args("20", &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out_segment = dir.path().join("topics/out/0/00000000000000000000.log");
    let started = Instant::now();
    while std::fs::metadata(&out_segment).map_or(0, |m| m.len()) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the processor never emitted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status}");

    let host = Host::new_in(dir);
    let committed = host.committed("copy", "in", 0);
    assert!(
        (committed > 0 && committed.is_multiple_of(20)) || committed == 500,
        "whole batches only: {committed}"
    );
    assert_eq!(
        host.values("out", 0).len() as u64,
        committed,
        "emits match the commits exactly"
    );
}

#[test]
fn the_demo_ends_with_zero_lag_on_every_partition_of_both_groups() {
    let dir = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let out = run_ok(&mut weir(dir.path(), &["demo", "--orders", "3000"]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("processor analytics"), "{stdout}");
        assert!(stdout.contains("processor fraud"), "{stdout}");
        assert_eq!(
            stdout.matches("records processed: 3000").count(),
            2,
            "run {run}: {stdout}"
        );
        let rows: Vec<Vec<u64>> = stdout
            .lines()
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|w| w.parse().ok())
                    .collect::<Vec<u64>>()
            })
            .filter(|nums| nums.len() == 4)
            .collect();
        assert_eq!(rows.len(), 6, "3 partitions x 2 groups: {stdout}");
        for row in rows {
            assert_eq!(
                row[1], row[2],
                "committed equals the high watermark: {row:?}"
            );
            assert_eq!(row[3], 0, "lag is zero: {row:?}");
        }
    }
}

#[test]
fn run_watch_rejects_a_broken_version_and_hot_swaps_a_good_one() {
    let dir = seeded(10);
    let wasm = dir.path().join("guest.wasm");
    std::fs::copy(guests::SCRIPTED, &wasm).unwrap();
    let wasm_arg = wasm.to_str().unwrap().to_string();
    let mut child = weir(
        dir.path(),
        &[
            "run",
            "--name",
            "w",
            "--wasm",
            &wasm_arg,
            "--topic",
            "in",
            "--config",
            "output=out",
            "--watch",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::write(&wasm, b"not a component").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::copy(guests::PASSTHROUGH, &wasm).unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    assert!(
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    let log = log.join().unwrap();

    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("rejected the new version; the old one keeps running"),
        "{log}"
    );
    assert!(
        log.contains("guest.wasm is not a valid WebAssembly component"),
        "{log}"
    );
    assert!(log.contains("hot-swapped a new version"), "{log}");
}

#[test]
fn group_commands_list_describe_and_seek_a_stopped_group() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(&mut weir(dir.path(), &["demo", "--orders", "600"]));

    let list = run_ok(&mut weir(dir.path(), &["group", "list"]));
    let list = String::from_utf8_lossy(&list.stdout);
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        vec!["analytics", "fraud"],
        "{list}"
    );

    let describe = run_ok(&mut weir(dir.path(), &["group", "describe", "fraud"]));
    let describe = String::from_utf8_lossy(&describe.stdout);
    assert!(describe.contains("total lag 0"), "{describe}");

    let seek = run_ok(&mut weir(
        dir.path(),
        &["group", "seek", "fraud", "--to", "earliest"],
    ));
    let seek = String::from_utf8_lossy(&seek.stdout);
    assert_eq!(seek.lines().count(), 3, "one line per partition: {seek}");
    assert!(seek.lines().all(|l| l.ends_with("-> 0")), "{seek}");

    let describe = run_ok(&mut weir(dir.path(), &["group", "describe", "fraud"]));
    let describe = String::from_utf8_lossy(&describe.stdout);
    assert!(describe.contains("total lag 600"), "{describe}");

    let bad = weir(dir.path(), &["group", "seek", "fraud", "--to", "soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected earliest, latest"));
}

#[test]
fn a_second_process_on_the_same_data_directory_is_refused() {
    let dir = seeded(5);
    let mut child = weir(dir.path(), &run_args("5", &[]))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first process holds the lock (it writes its pid there).
    let lock = dir.path().join("LOCK");
    let pid = child.id().to_string();
    let started = Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default() != pid {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the first process never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A holder that serves its API is reached through it (see
    // `embedded_api`); one that does not advertise it is refused.
    let api = dir.path().join("api.json");
    while !api.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "no api.json");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::remove_file(&api).unwrap();
    let second = weir(dir.path(), &["topic", "list"]).output().unwrap();
    let first_alive = child.try_wait().unwrap().is_none();
    child.kill().ok();
    child.wait().unwrap();
    assert!(first_alive, "the first process kept running");
    assert!(
        !second.status.success(),
        "the second process must not open the log"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("is in use by another weir process"));
}

#[test]
fn serve_refuses_a_public_address_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = weir(dir.path(), &["serve", "--listen", "0.0.0.0:0"])
        .env_remove("WEIR_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a bearer token"));
}

#[test]
fn weir_run_applies_the_sandbox_flags() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["go"]);
    let Host { dir, .. } = host;
    let scratch = dir.path().join("scratch-area");

    let looped = weir(
        dir.path(),
        &[
            "run",
            "--name",
            "loop",
            "--wasm",
            guests::HOSTILE_LOOP,
            "--topic",
            "in",
            "--fuel",
            "1000000",
            "--max-retries",
            "0",
            "--when-exhausted",
            "stop",
            "--until-caught-up",
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&looped.stderr);
    assert!(!looped.status.success(), "{stderr}");
    assert!(
        stderr.contains("guest ran out of fuel (limit 1000000 per batch)"),
        "{stderr}"
    );

    let wasi = run_ok(&mut weir(
        dir.path(),
        &[
            "run",
            "--name",
            "wasi",
            "--wasm",
            guests::HOSTILE_WASI,
            "--topic",
            "in",
            "--config",
            "output=out",
            "--scratch",
            scratch.to_str().unwrap(),
            "--max-stack-kb",
            "256",
            "--memory-mb",
            "64",
            "--deadline-ms",
            "5000",
            "--until-caught-up",
        ],
    ));
    assert_eq!(
        std::fs::read_to_string(scratch.join("hello.txt")).unwrap(),
        "hello from scratch"
    );
    // The guest's stdout reaches the log, tagged with processor and version.
    let log = String::from_utf8_lossy(&wasi.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("scratch write and read: allowed: hello from scratch"))
        .unwrap_or_else(|| panic!("no guest stdout in the log: {log}"));
    assert!(line.contains("processor=wasi"), "{line}");
    assert!(line.contains("version=sha256:"), "{line}");
    assert!(line.contains("stream=\"stdout\""), "{line}");
}
