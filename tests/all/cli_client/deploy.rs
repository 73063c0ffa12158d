//! Deploying through the CLI against a running server: rewind, shadow, broken versions, flags.

use super::*;

/// The processor's status, as `weir processor status --json` prints it.
fn status(serve: &Serve, dir: &Path, name: &str) -> Value {
    let out = serve.ok(dir, &["--json", "processor", "status", name], "");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn deploy_rewind_shadow_and_a_broken_version_through_the_cli() {
    use weir_tests::guests;
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let d = dir.path();
    serve.ok(d, &["topic", "create", "orders", "--partitions", "2"], "");
    serve.ok(d, &["topic", "create", "orders-usd"], "");
    serve.ok(
        d,
        &["produce", "--topic", "orders", "--generate", "300"],
        "",
    );
    let deploy = |wasm: &str, label: &str, extra: &[&str]| {
        let mut args = vec![
            "deploy",
            "--processor",
            "fx",
            "--wasm",
            wasm,
            "--label",
            label,
        ];
        args.extend_from_slice(extra);
        serve.ok(d, &args, "")
    };
    deploy(guests::CURRENCY_V1, "v1", &["--topic", "orders", "--wait"]);
    let v1 = status(&serve, d, "fx");
    assert_eq!(
        (v1["lag"].as_u64(), v1["label"].as_str()),
        (Some(0), Some("v1"))
    );

    deploy(
        guests::CURRENCY_V2,
        "v2",
        &["--rewind-to", "earliest", "--wait"],
    );
    let v2 = status(&serve, d, "fx");
    assert_eq!(
        (v2["lag"].as_u64(), v2["label"].as_str()),
        (Some(0), Some("v2"))
    );
    let usd = serve.ok(d, &["--json", "topic", "describe", "orders-usd"], "");
    let usd: Value = serde_json::from_str(&usd).unwrap();
    assert_eq!(usd["high_watermarks"][0], 600, "history once per version");

    let broken = serve.weir(
        d,
        &[
            "deploy",
            "--processor",
            "fx",
            "--wasm",
            guests::WRONG_WORLD,
            "--label",
            "v3",
        ],
        "",
    );
    assert!(!broken.status.success());
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(stderr.contains("weir:processor"), "{stderr}");
    assert_eq!(
        status(&serve, d, "fx")["version"],
        v2["version"],
        "v2 kept running"
    );

    deploy(
        guests::CURRENCY_V1,
        "v1",
        &["--shadow", "--from", "earliest", "--wait"],
    );
    let shadow = status(&serve, d, "fx.shadow");
    assert_eq!(
        (shadow["lag"].as_u64(), shadow["shadow_of"].as_str()),
        (Some(0), Some("fx"))
    );
    serve.ok(d, &["shadow", "drop", "fx"], "");
    let listed = serve.ok(d, &["--json", "processor", "list"], "");
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    serve.ok(d, &["processor", "delete", "fx"], "");
}

/// Polls `weir processor status name --json` until `done` holds (at most 30 s).
fn wait_status(serve: &Serve, dir: &Path, name: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        let s = status(serve, dir, name);
        if done(&s) {
            return s;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{name} never got there: {s:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn deploy_flags_set_the_limits_and_retries_and_reach_the_guest() {
    use weir_tests::guests;
    let dir = tempfile::tempdir().unwrap();
    let serve = Serve::start(dir.path());
    let d = dir.path();
    serve.ok(d, &["topic", "create", "in"], "");
    serve.ok(d, &["produce", "--topic", "in"], "a\nb\n");
    serve.ok(
        d,
        &[
            "deploy",
            "--processor",
            "hog",
            "--wasm",
            guests::HOSTILE_OOM,
            "--topic",
            "in",
            "--memory-mb",
            "16",
            "--deadline-ms",
            "2000",
            "--max-stack-kb",
            "256",
            "--fuel",
            "10000000000",
            "--scratch",
            "--max-records",
            "1",
            "--max-retries",
            "0",
            "--initial-backoff-ms",
            "1",
            "--max-backoff-ms",
            "1",
            "--when-exhausted",
            "stop",
        ],
        "",
    );
    let failed = wait_status(&serve, d, "hog", |s| s["state"] == "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("the limit is 16777216"), "{error}");
    assert_eq!(
        failed["limits"],
        serde_json::json!({"memory_bytes": 16 << 20, "deadline_ms": 2000, "max_stack_bytes": 256 << 10, "fuel": 10_000_000_000u64})
    );
    assert_eq!(
        (
            failed["max_records"].as_u64(),
            failed["max_retries"].as_u64()
        ),
        (Some(1), Some(0))
    );
    assert_eq!(
        (
            failed["when_exhausted"].as_str(),
            failed["scratch"].as_bool()
        ),
        (Some("stop"), Some(true))
    );

    // Over the existing processor: the flags given change, the rest stay.
    serve.ok(
        d,
        &[
            "deploy",
            "--processor",
            "hog",
            "--wasm",
            guests::HOSTILE_LOOP,
            "--deadline-ms",
            "300",
        ],
        "",
    );
    let looped = wait_status(&serve, d, "hog", |s| {
        s["state"] == "failed" && s["error"].as_str().is_some_and(|e| e.contains("deadline"))
    });
    let error = looped["error"].as_str().unwrap();
    assert!(error.contains("300ms deadline"), "{error}");
    assert_eq!(looped["limits"]["deadline_ms"], 300);
    assert_eq!(looped["limits"]["memory_bytes"], 16 << 20, "kept");
    assert_eq!(looped["max_retries"], 0, "kept");

    let refused = serve.weir(
        d,
        &[
            "deploy",
            "--processor",
            "hog",
            "--wasm",
            guests::HOSTILE_LOOP,
            "--max-records",
            "0",
        ],
        "",
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("max_records must be at least 1"),
        "{stderr}"
    );
    let shadow = serve.weir(
        d,
        &[
            "deploy",
            "--processor",
            "hog",
            "--wasm",
            guests::HOSTILE_LOOP,
            "--shadow",
            "--from",
            "earliest",
            "--fuel",
            "5",
        ],
        "",
    );
    assert!(!shadow.status.success());
    let stderr = String::from_utf8_lossy(&shadow.stderr);
    assert!(
        stderr.contains("`limits` cannot be given with --shadow"),
        "{stderr}"
    );
}
