//! Running the real `weir` binary from a test: the command line, input on
//! stdin, and the check that it succeeded.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{guests, weir_bin};

/// `weir --data-dir DIR args…`, ready to spawn: it logs at `warn` and takes
/// no server or token from the environment (a test sets what it needs on the
/// command, e.g. `RUST_LOG`, which replaces this one).
pub fn weir(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(weir_bin());
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("WEIR_SERVER")
        .env_remove("WEIR_TOKEN");
    cmd
}

/// The arguments of `weir run` for processor `copy`: the scripted guest
/// copying `in` to `out`, then `extra`.
pub fn copy_run_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "--name",
        "copy",
        "--wasm",
        guests::SCRIPTED,
        "--topic",
        "in",
        "--config",
        "output=out",
    ];
    args.extend_from_slice(extra);
    args
}

/// Runs `cmd` with `stdin` as its input; its whole output.
pub fn output_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The stdout of a run, after asserting that it succeeded (its stderr in the
/// message if not).
#[track_caller]
pub fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "weir failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Sends SIGTERM to `child` and waits for it to exit, at most `patience`
/// (then kills it and fails the test); its exit status and how long it took.
pub fn sigterm(child: &mut Child, patience: Duration) -> (ExitStatus, Duration) {
    let pid = child.id().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(kill.unwrap().success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > patience {
            child.kill().ok();
            panic!("no exit within {patience:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops `child` with SIGTERM (failing the test if it takes over a minute);
/// its exit status and what it wrote to its piped stdout.
pub fn terminate(child: &mut Child) -> Output {
    let (status, _) = sigterm(child, Duration::from_secs(60));
    let mut stdout = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut stdout).ok();
    }
    Output {
        status,
        stdout,
        stderr: Vec::new(),
    }
}

/// What a `weir` process spawned with its stderr in `<dir>/weir.log` has
/// logged so far.
pub fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("weir.log")).unwrap_or_default()
}

/// Kills the process with this pid (SIGKILL) if the test panics before it
/// exits, so no `weir` process outlives a failed test.
pub struct KillOnPanic(pub u32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status()
                .ok();
        }
    }
}
