//! `weir test`: failure kinds, fatal failures and traps, sample guests and bad fixture lines.

use super::*;

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
