//! librdkafka's own integration tests (the copy of librdkafka the
//! `rdkafka-sys` crate ships) against a fresh `weir serve --kafka-listen
//! --kafka-auto-create-partitions 4` (the suite expects a broker that creates
//! topics with four partitions, its default scenario): every test
//! `tests/kafka/librdkafka/passing.txt` lists must pass. `tests/kafka/librdkafka/build` builds the suite's test
//! runner once (a stamp holds the version it was built from);
//! `tests/kafka/librdkafka/run` runs the tests one by one, each under a
//! timeout. How to try every test (to grow the list) is in passing.txt.
//! `passing-consumer-protocol.txt` lists the group tests that pass with
//! the KIP-848 consumer protocol (`TEST_CONSUMER_GROUP_PROTOCOL=consumer`,
//! which makes the suite's consumers use `group.protocol=consumer`). A listed
//! test that fails is run once more on its own (the tests are
//! timing-sensitive and share the machine with the rest of `cargo test`); it
//! fails the list only if it fails again.

use std::path::{Path, PathBuf};
use std::process::Command;

use weir_tests::kafka_clients::KafkaServe;

/// `tests/kafka/librdkafka`.
fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka/librdkafka")
}

/// `<target>/librdkafka`, where the suite is built and its logs kept.
fn out() -> PathBuf {
    weir_tests::polyglot::out_root().with_file_name("librdkafka")
}

/// The test numbers a pass list (`passing.txt`) lists (a number starts each
/// line that is not a comment).
fn pass_list(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(scripts().join(file)).expect("read the pass list");
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .map(|line| {
            let number = line.split_whitespace().next().expect("a test number");
            assert!(
                number.len() == 4 && number.bytes().all(|b| b.is_ascii_digit()),
                "{file}: {line:?} does not start with a four-digit test number"
            );
            number.to_string()
        })
        .collect()
}

/// The last `lines` lines of `path`.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn librdkafka_tests_on_the_pass_list_pass_against_weir() {
    run_suite("passing.txt", &[]);
}

#[test]
fn librdkafka_group_tests_pass_with_the_consumer_protocol() {
    run_suite(
        "passing-consumer-protocol.txt",
        &[("TEST_CONSUMER_GROUP_PROTOCOL", "consumer")],
    );
}

/// Runs the tests `list` names against a fresh `weir serve`, with `envs`.
fn run_suite(list: &str, envs: &[(&str, &str)]) {
    let out = out();
    let built = Command::new(scripts().join("build"))
        .arg(&out)
        .output()
        .expect("run tests/kafka/librdkafka/build");
    assert!(
        built.status.success(),
        "building librdkafka's test runner failed (a C/C++ compiler, make and zlib's headers are needed; .ci/run installs them):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&built.stderr));
    let tests = pass_list(list);
    assert!(!tests.is_empty(), "{list} lists no test");

    let dir = tempfile::tempdir().expect("temp dir");
    let serve = KafkaServe::start(dir.path(), &["--kafka-auto-create-partitions", "4"]);
    // Each list's run keeps its own test.conf (the server's address) and logs,
    // since the two lists run at the same time against two servers.
    let run_dir = out.join(format!("run-{}", list.trim_end_matches(".txt")));
    let started = std::time::Instant::now();
    let run = |tests: &[String]| {
        let run = Command::new(scripts().join("run"))
            .arg(&serve.kafka)
            .args(tests)
            .env("LIBRDKAFKA_OUT", &out)
            .env("LIBRDKAFKA_RUN", &run_dir)
            .env("TIMEOUT", "90")
            .envs(envs.iter().copied())
            .output()
            .expect("run tests/kafka/librdkafka/run");
        assert!(
            run.status.success(),
            "tests/kafka/librdkafka/run failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
        tests
            .iter()
            .map(|test| {
                let line = stdout
                    .lines()
                    .find(|l| l.starts_with(test.as_str()))
                    .unwrap_or_else(|| panic!("no result for test {test} in:\n{stdout}"))
                    .to_string();
                let log = run_dir.join("logs").join(format!("{test}.log"));
                (test.clone(), line, log)
            })
            .collect::<Vec<_>>()
    };
    let passed = |line: &str| line.split_whitespace().nth(1) == Some("passed");
    let first = run(&tests);
    // The suite's tests are timing-sensitive and share the machine with the
    // rest of `cargo test`: one that fails is run once more on its own, and
    // fails the test only if it fails again.
    let again: Vec<String> = first
        .iter()
        .filter(|(_, line, _)| !passed(line))
        .map(|(test, line, log)| {
            eprintln!("{line}, run again; its log:\n{}", tail(log, 15));
            test.clone()
        })
        .collect();
    let mut failures = Vec::new();
    if !again.is_empty() {
        for (_, line, log) in run(&again) {
            if passed(&line) {
                eprintln!("{line} on the second run");
            } else {
                failures.push(format!("{line} ({}):\n{}", log.display(), tail(&log, 15)));
            }
        }
    }
    let passed = tests.len() - failures.len();
    eprintln!(
        "librdkafka suite against weir ({list}): {passed} of {} listed tests passed in {:.0?}",
        tests.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} listed librdkafka tests did not pass:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
