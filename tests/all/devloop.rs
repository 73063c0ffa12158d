//! The guest developer's loop, end to end through the real `weir` binary:
//! `weir new` a project in each language, `weir build` it with the real
//! toolchains, and `weir test` the component against its generated fixture;
//! and `weir test` on the sample guests with passing and failing expected
//! files, every failure kind the processor handles, initial state, and bad
//! input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weir_tests::{guests, polyglot, weir_bin};

/// Runs `weir ARGS` in `dir`, with compiled components cached under the
/// target directory (repeat runs do not compile the component again).
fn weir(dir: &Path, args: &[&str]) -> Output {
    Command::new(weir_bin())
        .args(args)
        .current_dir(dir)
        .env("WEIR_CACHE_DIR", polyglot::shared_cache_dir())
        .env("RUST_LOG", "warn")
        .env_remove("WEIR_SERVER")
        .output()
        .expect("run weir")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "weir failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `weir new NAME --lang LANG` in a fresh directory: the project's path.
fn new_project(root: &Path, name: &str, lang: &str) -> PathBuf {
    let out = weir(root, &["new", name, "--lang", lang]);
    let stdout = succeeded(&out);
    assert!(
        stdout.contains(&format!("created {lang} guest {name}")),
        "{stdout}"
    );
    let dir = root.join(name);
    for file in [
        "README.md",
        "wit/weir.wit",
        "fixtures/sample.jsonl",
        "fixtures/expected.json",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing from the new project"
        );
    }
    dir
}

/// `weir test NAME.wasm` against the project's own fixture and expected file.
fn test_project(dir: &Path, name: &str) {
    let wasm = format!("{name}.wasm");
    let args = [
        "test",
        &wasm,
        "--input",
        "fixtures/sample.jsonl",
        "--expect",
        "fixtures/expected.json",
    ];
    let stdout = succeeded(&weir(dir, &args));
    assert!(
        stdout.contains(
            "matches fixtures/expected.json (4 emits, 1 failures, 1 dead letters, 3 state keys)"
        ),
        "{stdout}"
    );
}

#[test]
fn a_new_rust_guest_builds_passes_its_fixture_and_its_unit_tests() {
    let root = tempfile::tempdir().unwrap();
    let dir = new_project(root.path(), "shout", "rust");
    assert!(dir.join("vendor/weir-guest/src/testing.rs").is_file());

    // The project builds on its own: a target directory under ours only so
    // that repeat runs reuse the compiled dependencies.
    let target = polyglot::out_root().with_file_name("devloop-guests");
    let cargo = |cmd: &mut Command| {
        cmd.env("CARGO_TARGET_DIR", &target)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .current_dir(&dir);
    };
    let mut build = Command::new(weir_bin());
    build.args(["build", "."]);
    cargo(&mut build);
    let out = build.output().unwrap();
    assert!(succeeded(&out).contains("shout.wasm"));
    test_project(&dir, "shout");

    // The generated unit tests run natively on the SDK's test harness.
    let mut unit = Command::new("cargo");
    unit.arg("test");
    cargo(&mut unit);
    let out = unit.output().unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "cargo test failed:\n{all}");
    assert!(all.contains("test result: ok. 2 passed"), "{all}");

    // A fixture whose expectation is wrong fails with a readable diff.
    let expected = dir.join("fixtures/expected.json");
    let good = std::fs::read_to_string(&expected).unwrap();
    std::fs::write(&expected, good.replace("\"HELLO\"", "\"HELLO!\"")).unwrap();
    let args = [
        "test",
        "shout.wasm",
        "--input",
        "fixtures/sample.jsonl",
        "--expect",
        "fixtures/expected.json",
    ];
    let out = weir(&dir, &args);
    assert!(!out.status.success(), "a mismatch must fail");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("emits differ (- expected, + actual)"),
        "{stdout}"
    );
    assert!(stdout.contains("-     \"value\": \"HELLO!\""), "{stdout}");
    assert!(stdout.contains("+     \"value\": \"HELLO\""), "{stdout}");
    assert!(
        !stdout.contains("state differ"),
        "only what differs: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("--update"),
        "{}",
        text(&out.stderr)
    );

    // `--update` accepts the new output.
    let mut update = args.to_vec();
    update.push("--update");
    succeeded(&weir(&dir, &update));
    let rewritten: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    assert_eq!(rewritten, good, "--update writes what the template expects");
    succeeded(&weir(&dir, &args));
}

#[test]
fn weir_new_refuses_a_bad_name_and_an_occupied_directory() {
    let root = tempfile::tempdir().unwrap();
    let out = weir(root.path(), &["new", "Bad_Name", "--lang", "rust"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("invalid guest name \"Bad_Name\""),
        "{}",
        text(&out.stderr)
    );

    let out = weir(root.path(), &["new", "fine", "--lang", "cobol"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("expected one of rust, js, python"),
        "{}",
        text(&out.stderr)
    );

    std::fs::create_dir(root.path().join("taken")).unwrap();
    std::fs::write(root.path().join("taken/keep.txt"), "mine").unwrap();
    let out = weir(
        root.path(),
        &["new", "fine", "--lang", "js", "--dir", "taken"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("taken already exists and is not empty"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(root.path().join("taken/keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_dir(root.path().join("taken"))
            .unwrap()
            .count(),
        1,
        "nothing written"
    );

    // An empty directory is fine.
    std::fs::create_dir(root.path().join("empty")).unwrap();
    succeeded(&weir(
        root.path(),
        &["new", "fine", "--lang", "python", "--dir", "empty"],
    ));
    assert!(root.path().join("empty/app.py").is_file());

    let out = weir(root.path(), &["build", "taken"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("holds no guest project"),
        "{}",
        text(&out.stderr)
    );
}

/// Links the toolchain the polyglot fixture installed (`node_modules` or
/// `.venv`) into `dir`, so `weir build` finds it instead of installing it.
fn link_toolchain(language: polyglot::Language, dir: &Path) {
    let name = match language {
        polyglot::Language::JavaScript => "node_modules",
        polyglot::Language::Python => ".venv",
    };
    let installed = language.source_dir().join(name).canonicalize().unwrap();
    std::os::unix::fs::symlink(installed, dir.join(name)).unwrap();
}

#[test]
fn a_new_js_guest_builds_and_passes_its_fixture() {
    // Installs the toolchain (or skips loudly when Node.js is missing).
    if polyglot::js("redact").is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = new_project(root.path(), "shout-js", "js");
    link_toolchain(polyglot::Language::JavaScript, &dir);
    assert!(succeeded(&weir(&dir, &["build"])).contains("shout-js.wasm"));
    test_project(&dir, "shout-js");
}

#[test]
fn a_new_python_guest_builds_and_passes_its_fixture() {
    if polyglot::python("careless").is_none() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = new_project(root.path(), "shout-py", "python");
    link_toolchain(polyglot::Language::Python, &dir);
    assert!(succeeded(&weir(&dir, &["build"])).contains("shout-py.wasm"));
    test_project(&dir, "shout-py");
}

/// Writes `files` (name, text) into a fresh directory.
fn files(list: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in list {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

#[test]
fn weir_test_applies_every_failure_kind_as_the_processor_does() {
    let dir = files(&[(
        "in.jsonl",
        r#"{"key": "a", "value": "one"}
{"value": "fail:skip"}
{"value": "fail:dead-letter", "headers": {"h": "1"}}
{"value": "fail:retry"}
{"key": {"base64": "AP8="}, "value": "two", "partition": 1}
"#,
    )]);
    let args = [
        "test",
        guests::SCRIPTED,
        "--input",
        "in.jsonl",
        "--config",
        "output=out",
        "--max-retries",
        "2",
        "--name",
        "scripted",
        "--format",
        "json",
    ];
    let report: serde_json::Value =
        serde_json::from_str(&succeeded(&weir(dir.path(), &args))).unwrap();
    let emits = report["emits"].as_array().unwrap();
    assert_eq!(emits.len(), 2, "{report:#}");
    assert_eq!(emits[0]["value"], "one");
    assert_eq!(
        emits[1]["key"],
        serde_json::json!({"base64": "AP8="}),
        "bytes keep base64"
    );
    let outcomes: Vec<(u64, &str, &str, u64)> = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["offset"].as_u64().unwrap(),
                f["kind"].as_str().unwrap(),
                f["outcome"].as_str().unwrap(),
                f["retries"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, "skip", "skipped", 0),
            (2, "dead-letter", "dead-lettered", 0),
            (3, "retry", "dead-lettered", 2),
        ],
        "{report:#}"
    );
    let dead: Vec<(&str, u64)> = report["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["topic"].as_str().unwrap(), d["offset"].as_u64().unwrap()))
        .collect();
    assert_eq!(dead, [("scripted.dlq", 2), ("scripted.dlq", 3)]);
    assert!(report.get("stopped").is_none(), "{report:#}");

    // With --when-exhausted stop the retried record stops the run, and
    // without an expected file a stopped run exits non-zero.
    let mut stop = args.to_vec();
    stop.extend(["--when-exhausted", "stop"]);
    let out = weir(dir.path(), &stop);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert!(
        report["stopped"]
            .as_str()
            .unwrap()
            .contains("offset 3 after 3 attempts"),
        "{report:#}"
    );
    assert_eq!(
        report["emits"].as_array().unwrap().len(),
        1,
        "partition 1 never ran"
    );
    assert!(
        text(&out.stderr).contains("the processor stopped"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn weir_test_reports_a_fatal_failure_and_a_trap() {
    let dir = files(&[
        (
            "fatal.jsonl",
            "{\"value\": \"ok\"}\n{\"value\": \"fail:fatal\"}\n{\"value\": \"never\"}\n",
        ),
        ("trap.jsonl", "{\"value\": \"boom\"}\n"),
    ]);
    let out = weir(
        dir.path(),
        &[
            "test",
            guests::SCRIPTED,
            "--input",
            "fatal.jsonl",
            "--config",
            "output=out",
        ],
    );
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("emits (1):"),
        "the prefix committed: {stdout}"
    );
    assert!(stdout.contains("offset 1: fatal"), "{stdout}");
    assert!(
        stdout.contains("stopped: guest reported a fatal failure at input/0 offset 1"),
        "{stdout}"
    );

    // A trap is retried, then the poison record is dead-lettered.
    let out = weir(
        dir.path(),
        &[
            "test",
            guests::HOSTILE_TRAP,
            "--input",
            "trap.jsonl",
            "--max-retries",
            "1",
        ],
    );
    let stdout = succeeded(&out);
    assert!(stdout.contains("offset 0: fault"), "{stdout}");
    assert!(stdout.contains("guest trapped"), "{stdout}");
    assert!(
        stdout.contains("hostile_trap.dlq partition 0 offset 0"),
        "{stdout}"
    );
}

#[test]
fn weir_test_checks_a_sample_guest_against_passing_and_failing_expectations() {
    let order = |id: u64, customer: &str, cents: i64| {
        format!(
            r#"{{"value": {{"id": {id}, "customer": "{customer}", "amount_cents": {cents}, "currency": "EUR", "country": "DE"}}}}"#
        )
    };
    let fixture = [
        r#"{"state": {"customer/c1": "{\"orders\":4,\"amount_cents\":1000}"}}"#.to_string(),
        order(1, "c1", 100),
        order(2, "c2", 7),
        r#"{"value": "not an order"}"#.to_string(),
    ]
    .join("\n");
    let expected = r#"{
  "emits": [
    {"topic": "customer-totals", "key": "c1", "value": "{\"customer\":\"c1\",\"orders\":5,\"amount_cents\":1100}"},
    {"topic": "customer-totals", "key": "c2", "value": "{\"customer\":\"c2\",\"orders\":1,\"amount_cents\":7}"}
  ],
  "state": [
    {"partition": 0, "key": "customer/c1", "value": "{\"orders\":5,\"amount_cents\":1100}"},
    {"partition": 0, "key": "customer/c2", "value": "{\"orders\":1,\"amount_cents\":7}"}
  ]
}"#;
    let wrong = expected.replace(r#"\"amount_cents\":1100}"}"#, r#"\"amount_cents\":1101}"}"#);
    let dir = files(&[
        ("orders.jsonl", &fixture),
        ("expected.json", expected),
        ("wrong.json", &wrong),
    ]);
    let test = |expect: &str| {
        weir(
            dir.path(),
            &[
                "test",
                guests::RUNNING_TOTALS,
                "--input",
                "orders.jsonl",
                "--expect",
                expect,
            ],
        )
    };
    let stdout = succeeded(&test("expected.json"));
    assert!(stdout.contains("ok:"), "{stdout}");
    assert!(stdout.contains("1 dead letters"), "{stdout}");

    let out = test("wrong.json");
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("emits differ"), "{stdout}");
    assert!(stdout.contains("amount_cents\\\":1101"), "{stdout}");
    assert!(stdout.contains("state differ"), "{stdout}");

    // --state gives the initial state from a file instead (overriding the
    // fixture's own for the keys it names).
    std::fs::write(
        dir.path().join("state.json"),
        r#"[{"key": "customer/c2", "value": "{\"orders\":1,\"amount_cents\":1}"}]"#,
    )
    .unwrap();
    let out = weir(
        dir.path(),
        &[
            "test",
            guests::RUNNING_TOTALS,
            "--input",
            "orders.jsonl",
            "--state",
            "state.json",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&succeeded(&out)).unwrap();
    assert_eq!(
        report["emits"][1]["value"],
        r#"{"customer":"c2","orders":2,"amount_cents":8}"#
    );
}

#[test]
fn weir_test_names_the_bad_line_of_a_fixture_and_loses_nothing() {
    let bad = "{\"value\": \"ok\"}\n{\"value\": \"half\"\n";
    let dir = files(&[
        ("bad.jsonl", bad),
        ("empty.jsonl", "# nothing\n\n"),
        ("expected.json", "{\"emitz\": []}"),
        ("good.jsonl", "{\"value\": \"ok\"}\n"),
    ]);
    let run = |args: &[&str]| {
        let mut all = vec!["test", guests::SCRIPTED];
        all.extend(args);
        weir(dir.path(), &all)
    };
    let out = run(&["--input", "bad.jsonl"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.jsonl line 2: EOF while parsing an object"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bad.jsonl")).unwrap(),
        bad
    );

    let out = run(&["--input", "empty.jsonl"]);
    assert!(
        text(&out.stderr).contains("no records in empty.jsonl"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["--input", "good.jsonl", "--expect", "expected.json"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown section `emitz`"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["--input", "missing.jsonl"]);
    assert!(
        text(&out.stderr).contains("cannot read missing.jsonl"),
        "{}",
        text(&out.stderr)
    );

    let out = weir(dir.path(), &["test", "nope.wasm", "--input", "good.jsonl"]);
    assert!(
        text(&out.stderr).contains("cannot read component nope.wasm"),
        "{}",
        text(&out.stderr)
    );
}
