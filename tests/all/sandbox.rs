//! The sandbox against hostile guests: each one ends in a clear error naming
//! the limit it hit (or, for `hostile-wasi`, in every escape being denied), no
//! commit, and a second processor in the same process that carries on, before
//! and after, as if nothing happened.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use weir::consumer::PollLimits;
use weir::error::chain as error_chain;
use weir::processor::{Attempt, Processor, ProcessorConfig, ProcessorError};
use weir::runtime::{GuestSpec, Limits, RuntimeError};
use weir_tests::{Host, guests};

/// A passthrough processor over its own topic and group, running beside the
/// hostile one.
struct Bystander {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<Processor, ProcessorError>>,
}

const BYSTANDER_BATCH: usize = 300;

fn start_bystander(host: &Host) -> Bystander {
    host.topic("good", 2);
    host.topic("good-out", 1);
    append_good(host);
    let guest = host
        .guest(guests::PASSTHROUGH, "bystander", &[("output", "good-out")])
        .unwrap();
    let mut config = ProcessorConfig::new("bystander", &["good"]);
    config.poll = PollLimits {
        max_records: 10,
        max_wait: Duration::from_millis(20),
        ..PollLimits::default()
    };
    let processor = Processor::new(config, host.broker.as_ref(), Arc::new(guest)).unwrap();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(processor.run(stopped));
    Bystander { stop, task }
}

fn append_good(host: &Host) {
    let values: Vec<String> = (0..BYSTANDER_BATCH).map(|i| format!("g{i}")).collect();
    for partition in 0..2 {
        host.append_values("good", partition, &values);
    }
}

/// Appends more for the bystander after the hostile guest failed, and checks
/// that it processed and committed everything, without a single fault.
async fn bystander_is_unaffected(host: &Host, bystander: Bystander) {
    append_good(host);
    let total = 2 * BYSTANDER_BATCH as u64;
    let started = Instant::now();
    while (0..2).any(|p| host.committed("bystander", "good", p) < total) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the bystander stalled at {} and {}",
            host.committed("bystander", "good", 0),
            host.committed("bystander", "good", 1)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bystander.stop.send(true).unwrap();
    let processor = bystander.task.await.unwrap().unwrap();
    assert_eq!(processor.stats().records(), 2 * total);
    assert_eq!(processor.stats().traps(), 0);
    assert_eq!(host.values("good-out", 0).len() as u64, 2 * total);
}

/// Runs `wasm` as processor `hostile` over three records under `limits`, beside
/// a bystander, and returns the fault that stopped it; nothing is committed.
async fn hostile(wasm: &str, limits: Limits) -> RuntimeError {
    let host = Host::new();
    let bystander = start_bystander(&host);
    host.topic("in", 1);
    host.append_values("in", 0, &["a", "b", "c"]);
    let spec = GuestSpec {
        processor: "hostile".into(),
        limits,
        ..GuestSpec::default()
    };
    let guest = host.runtime.load_file(Path::new(wasm), spec).unwrap();

    let err = host
        .run("hostile", &["in"], guest, 10)
        .await
        .err()
        .expect("the hostile guest fails every attempt");

    assert_eq!(
        host.committed("hostile", "in", 0),
        0,
        "nothing is committed"
    );
    bystander_is_unaffected(&host, bystander).await;
    match err {
        ProcessorError::Exhausted {
            attempts: 4, last, ..
        } => match *last {
            Attempt::Fault(fault) => fault,
            other => panic!("expected a fault, got {other:?}"),
        },
        other => panic!("expected the retries to run out, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_is_stopped_by_the_deadline() {
    let limits = Limits {
        deadline: Duration::from_millis(100),
        ..Limits::default()
    };
    let fault = hostile(guests::HOSTILE_LOOP, limits).await;
    assert!(matches!(fault, RuntimeError::Deadline(d) if d == Duration::from_millis(100)));
    assert_eq!(fault.to_string(), "guest exceeded its 100ms deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_runs_out_of_fuel_long_before_the_deadline() {
    let limits = Limits {
        fuel: Some(5_000_000),
        ..Limits::default()
    };
    let started = Instant::now();
    let fault = hostile(guests::HOSTILE_LOOP, limits).await;
    assert!(
        matches!(fault, RuntimeError::OutOfFuel(5_000_000)),
        "{fault:?}"
    );
    assert!(fault.to_string().contains("ran out of fuel"), "{fault}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fuel, not the deadline"
    );
}

#[tokio::test]
async fn a_guest_with_enough_fuel_processes_normally() {
    let host = Host::new();
    host.topic("in", 1);
    host.topic("out", 1);
    let values: Vec<String> = (0..100).map(|i| format!("v{i}")).collect();
    host.append_values("in", 0, &values);
    let spec = GuestSpec {
        processor: "fueled".into(),
        config: vec![("output".into(), "out".into())],
        limits: Limits {
            fuel: Some(50_000_000),
            ..Limits::default()
        },
        ..GuestSpec::default()
    };
    let guest = host
        .runtime
        .load_file(Path::new(guests::PASSTHROUGH), spec)
        .unwrap();

    let processor = host.run("fueled", &["in"], guest, 10).await.unwrap();

    assert_eq!(processor.stats().records(), 100);
    assert_eq!(host.values("out", 0), values);
    assert_eq!(host.committed("fueled", "in", 0), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_memory_forever_hits_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let fault = hostile(guests::HOSTILE_OOM, limits).await;
    match fault {
        RuntimeError::Memory { requested, limit } => {
            assert_eq!(limit, 32 << 20);
            assert!(requested > limit, "{requested}");
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_recursion_overflows_the_wasm_stack() {
    let limits = Limits {
        max_stack_bytes: 64 << 10,
        ..Limits::default()
    };
    let fault = hostile(guests::HOSTILE_STACK, limits).await;
    assert!(
        matches!(fault, RuntimeError::StackOverflow(65536)),
        "{fault:?}"
    );
    assert_eq!(
        fault.to_string(),
        "guest overflowed its wasm stack (limit 65536 bytes)"
    );
}

#[tokio::test]
async fn the_default_stack_limit_also_overflows_cleanly_inside_the_host_thread() {
    let host = Host::new();
    host.topic("in", 1);
    host.append_values("in", 0, &["deep"]);
    let guest = host.guest(guests::HOSTILE_STACK, "deep", &[]).unwrap();

    let err = host.run("deep", &["in"], guest, 10).await.err().unwrap();

    let chain = error_chain(&err);
    assert!(
        chain.contains("guest overflowed its wasm stack (limit 1048576 bytes)"),
        "{chain}"
    );
    assert_eq!(host.committed("deep", "in", 0), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_instruction_is_a_trap_naming_it() {
    let fault = hostile(guests::HOSTILE_TRAP, Limits::default()).await;
    assert!(matches!(fault, RuntimeError::Trap { .. }), "{fault:?}");
    let chain = error_chain(&fault);
    assert!(chain.contains("unreachable"), "{chain}");
}

#[test]
fn a_stack_limit_outside_the_bounds_is_refused() {
    let host = Host::new();
    for max_stack_bytes in [0, 64 << 20] {
        let spec = GuestSpec {
            limits: Limits {
                max_stack_bytes,
                ..Limits::default()
            },
            ..GuestSpec::default()
        };
        let err = host
            .runtime
            .load_file(Path::new(guests::PASSTHROUGH), spec)
            .err()
            .expect("refused");
        assert!(matches!(err, RuntimeError::Limits(_)), "{err:?}");
        assert!(err.to_string().contains("max_stack_bytes"), "{err}");
    }
}

/// Runs `hostile-wasi` once (beside a bystander) and returns each attempt with
/// what it got; a TCP listener on 127.0.0.1 waits for the connection the guest
/// tries, and must never see it.
async fn escape_attempts(scratch: Option<&Path>) -> Vec<(String, String)> {
    let host = Host::new();
    let bystander = start_bystander(&host);
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["go"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let spec = GuestSpec {
        processor: "wasi".into(),
        config: vec![("output".into(), "out".into()), ("port".into(), port)],
        scratch: scratch.map(Path::to_path_buf),
        ..GuestSpec::default()
    };
    let guest = host
        .runtime
        .load_file(Path::new(guests::HOSTILE_WASI), spec)
        .unwrap();
    if let Some(dir) = scratch {
        // A symlink inside the scratch directory that points outside it.
        std::os::unix::fs::symlink("/etc/passwd", dir.join("escape")).unwrap();
    }

    host.run("wasi", &["in"], guest, 10).await.unwrap();

    assert_eq!(host.committed("wasi", "in", 0), 1);
    let accepted = listener.accept();
    assert!(
        accepted
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "the guest reached the listener: {accepted:?}"
    );
    bystander_is_unaffected(&host, bystander).await;
    host.records("out", 0)
        .into_iter()
        .map(|r| {
            let key = String::from_utf8(r.key.unwrap().into()).unwrap();
            (key, String::from_utf8(r.value.into()).unwrap())
        })
        .collect()
}

const ATTEMPTS: usize = 14;
const SCRATCH_ATTEMPT: &str = "scratch write and read";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_out_of_the_sandbox_is_denied_and_the_scratch_dir_works() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("scratch");

    let attempts = escape_attempts(Some(&dir)).await;

    assert_eq!(attempts.len(), ATTEMPTS, "{attempts:#?}");
    for (attempt, result) in &attempts {
        if attempt == SCRATCH_ATTEMPT {
            assert_eq!(result, "allowed: hello from scratch");
        } else {
            assert!(result.starts_with("denied"), "{attempt}: {result}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("hello.txt")).unwrap(),
        "hello from scratch",
        "the guest's file is in the host directory"
    );
    assert!(!scratch.path().join("etc").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_scratch_dir_the_guest_has_no_filesystem_at_all() {
    let attempts = escape_attempts(None).await;

    assert_eq!(attempts.len(), ATTEMPTS, "{attempts:#?}");
    for (attempt, result) in &attempts {
        assert!(result.starts_with("denied"), "{attempt}: {result}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_instance_never_sees_what_the_last_one_left_in_memory() {
    let host = Host::new();
    let bystander = start_bystander(&host);
    host.topic("in", 1);
    host.topic("out", 1);
    host.append_values("in", 0, &["first", "second", "third"]);
    let guest = host
        .guest(guests::HOSTILE_SNOOP, "snoop", &[("output", "out")])
        .unwrap();

    let processor = host.run("snoop", &["in"], guest, 1).await.unwrap();

    assert_eq!(processor.stats().batches(), 3, "one instance per batch");
    let seen = host.records("out", 0);
    assert_eq!(seen.len(), 3);
    for record in &seen {
        assert_eq!(
            record.value,
            vec![0u8; 32],
            "a secret leaked between instances"
        );
    }
    bystander_is_unaffected(&host, bystander).await;
}
