//! The guest developer's loop, end to end through the real `weir` binary:
//! `weir new` a project in each language, `weir build` it with the real
//! toolchains, and `weir test` the component against its generated fixture;
//! and `weir test` on the sample guests with passing and failing expected
//! files, every failure kind the processor handles, initial state, and bad
//! input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use weir_tests::{guests, polyglot, weir_bin};

mod fixtures;

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
