//! `weir serve` and `weir run` shutting down whatever their guests do: SIGTERM
//! ends the process within the shutdown grace plus a small bound even while a
//! guest spins with a long deadline, and the batch it cut off is not committed
//! (the next start redelivers it).

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use weir_tests::command;
use weir_tests::server::spawn_serve;
use weir_tests::{Host, guests};

/// The grace the test gives (`--shutdown-grace`).
const GRACE: Duration = Duration::from_secs(1);
/// What shutdown may take beyond the grace: interrupting the guests, stopping
/// their members, flushing the log (the host allows itself 2.5 s; the rest is
/// slack for a loaded machine).
const BOUND: Duration = Duration::from_secs(5);

/// SIGTERMs `child` and waits for it to exit successfully; returns how long
/// that took.
fn terminate(mut child: Child, patience: Duration) -> Duration {
    let (status, took) = command::sigterm(&mut child, patience);
    assert!(status.success(), "exit status {status}");
    took
}

/// `GET /processors/{name}` from a blocking test (`null` on any error).
fn status_of(url: &str, name: &str) -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async {
            let response = reqwest::get(format!("{url}/processors/{name}"))
                .await
                .ok()?;
            response.json().await.ok()
        })
        .unwrap_or_default()
}

fn config(path: &Path, deadline_ms: u64) {
    let toml = format!(
        r#"listen = "127.0.0.1:0"

[[processors]]
name = "spinner"
wasm = {wasm:?}
topics = ["in"]
config = {{ output = "out" }}
max_poll_interval_ms = 90000
max_retries = 1
initial_backoff_ms = 10
max_backoff_ms = 10
limits = {{ deadline_ms = {deadline_ms} }}
"#,
        wasm = guests::SCRIPTED
    );
    std::fs::write(path, toml).unwrap();
}

#[test]
fn sigterm_interrupts_a_spinning_guest_after_the_grace_and_its_batch_is_redelivered() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["a", "spin"]);
    let Host { dir, .. } = host;
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("weir.toml");
    // A minute's deadline: only the shutdown can stop this batch in time.
    config(&path, 60_000);
    let grace = GRACE.as_secs().to_string();
    let args = [
        "--config".as_ref(),
        path.as_os_str(),
        "--shutdown-grace".as_ref(),
        grace.as_ref(),
    ];
    let (child, _) = spawn_serve(dir.path(), &args);
    let _guard = command::KillOnPanic(child.id());
    // The member polls at once; give the guest time to be well into its spin.
    std::thread::sleep(Duration::from_millis(1500));
    let took = terminate(child, GRACE + BOUND);
    eprintln!("exited {took:?} after SIGTERM (grace {GRACE:?})");
    assert!(took >= GRACE, "the batch in flight had its grace: {took:?}");

    let host = Host::new_in(dir);
    assert_eq!(
        host.committed("spinner", "in", 0),
        0,
        "the batch cut off is not committed"
    );
    assert!(host.values("out", 0).is_empty(), "and emitted nothing");
    let Host { dir, .. } = host;

    // The next start (with a deadline that ends the spin) gets the same
    // batch again: `a` is processed, `spin` dead-lettered.
    config(&path, 300);
    let (child, url) = spawn_serve(dir.path(), &args);
    let _guard = command::KillOnPanic(child.id());
    let started = Instant::now();
    loop {
        let status = status_of(&url, "spinner");
        if status["lag"] == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never redelivered: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    terminate(child, GRACE + BOUND);
    let host = Host::new_in(dir);
    assert_eq!(host.values("out", 0), ["a"]);
    assert_eq!(host.values("spinner.dlq", 0), ["spin"]);
    assert_eq!(host.committed("spinner", "in", 0), 2);
}

#[test]
fn weir_run_interrupts_a_spinning_guest_after_its_grace_and_commits_nothing() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["spin"]);
    let Host { dir, .. } = host;
    let wasm = guests::SCRIPTED;
    let child = Command::new(weir_tests::weir_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["run", "--name", "spinner", "--topic", "in"])
        .args(["--config", "output=out", "--wasm"])
        .arg(wasm)
        // A minute's deadline: only the shutdown can stop this batch in time.
        .args(["--deadline-ms", "60000", "--max-poll-interval-ms", "90000"])
        .args(["--shutdown-grace", &GRACE.as_secs().to_string()])
        .spawn()
        .unwrap();
    let _guard = command::KillOnPanic(child.id());
    std::thread::sleep(Duration::from_millis(1500));
    let took = terminate(child, GRACE + BOUND);
    eprintln!("weir run exited {took:?} after SIGTERM (grace {GRACE:?})");
    assert!(took >= GRACE, "the batch in flight had its grace: {took:?}");
    let host = Host::new_in(dir);
    assert_eq!(host.committed("spinner", "in", 0), 0, "nothing committed");
    assert!(host.values("out", 0).is_empty());
}
