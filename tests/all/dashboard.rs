//! The dashboard at `/ui` in headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) against a real `weir serve` that wants a token: the
//! page, given the token in its URL fragment, shows the server's live
//! numbers (topics and high watermarks, the processor's version, state and
//! lag, the history of what was done); without the token it asks for one.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use weir_tests::command;
use weir_tests::guests;
use weir_tests::server::{http_status, spawn_serve};

const TOKEN: &str = "dash-secret";

fn weir(dir: &Path, url: &str, args: &[&str]) -> String {
    let args = [&["--server", url, "--token", TOKEN], args].concat();
    command::stdout_of(&command::weir(dir, &args).output().unwrap())
}

/// The page's DOM after Chromium ran its script for a few (virtual) seconds.
fn rendered(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", url])
        .output()
        .expect("chromium runs (.ci/run installs it: apt-get install -y chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_dashboard_shows_the_live_numbers_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (mut serve, url) = spawn_serve(
        d,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--token".as_ref(),
            TOKEN.as_ref(),
        ],
    );
    let weir = |args: &[&str]| weir(d, &url, args);
    weir(&["topic", "create", "orders", "--partitions", "2"]);
    weir(&["topic", "create", "orders-usd"]);
    weir(&["produce", "--topic", "orders", "--generate", "300"]);
    weir(&[
        "deploy",
        "--processor",
        "fx",
        "--wasm",
        guests::CURRENCY_V2,
        "--label",
        "v2",
        "--topic",
        "orders",
        "--wait",
    ]);
    weir(&["processor", "pause", "fx"]);
    weir(&["produce", "--topic", "orders", "--generate", "120"]);
    let status: Value =
        serde_json::from_str(&weir(&["--json", "processor", "status", "fx"])).unwrap();
    let orders: Value =
        serde_json::from_str(&weir(&["--json", "topic", "describe", "orders"])).unwrap();
    assert_eq!(status["lag"], 120);

    // The page is served without the token; the API behind it is not.
    assert_eq!(http_status(&url, "/ui"), Some(200));
    assert_eq!(http_status(&url, "/topics"), Some(401));

    let dom = rendered(&format!("{url}/ui#token={TOKEN}"));
    let hw = orders["high_watermarks"].as_array().unwrap();
    let hw = format!("{}, {}", hw[0], hw[1]);
    let version = status["version"].as_str().unwrap();
    for shown in [
        "<td>orders</td>".to_string(),
        "<td>orders-usd</td>".to_string(),
        format!("<td class=\"hw\">{hw}</td>"),
        format!("<td class=\"version\">{version}</td>"),
        "<td class=\"state-paused\">paused</td>".to_string(),
        "<td class=\"n lag\">120</td>".to_string(),
        "<td>deploy</td>".to_string(),
        "<td>pause</td>".to_string(),
    ] {
        assert!(dom.contains(&shown), "{shown} is not on the page:\n{dom}");
    }
    for p in status["partitions"].as_array().unwrap() {
        let lag = format!("fx orders/{}: {}", p["partition"], p["lag"]);
        assert!(dom.contains(&lag), "the chart's legend lacks {lag}:\n{dom}");
    }
    assert!(dom.contains("<polyline"), "the lag chart is drawn");
    assert!(
        !dom.contains(TOKEN),
        "the token left the address bar and the page"
    );

    let locked = rendered(&format!("{url}/ui"));
    assert!(locked.contains("the API wants a bearer token"), "{locked}");
    assert!(!locked.contains("<td>orders</td>"));
    serve.kill().ok();
    serve.wait().ok();
}
