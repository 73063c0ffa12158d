//! `docs/api.md` against the server: every (method, path) in the doc's
//! endpoint table is served (by the log and group routes, `ROUTES`, or the
//! processor routes, `PROCESSOR_ROUTES`), and every route the server has is
//! documented.

use std::collections::BTreeSet;

use serde_json::Value;
use weir::service::{PROCESSOR_ROUTES, ROUTES};
use weir_tests::Host;
use weir_tests::server::Server;

/// The (method, path) rows of the doc's endpoint table.
fn documented() -> BTreeSet<(String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH"];
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", method, path, ..] if methods.contains(method) => {
                    Some((method.to_string(), path.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

fn listed(routes: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[test]
fn the_doc_table_and_the_route_lists_match_in_both_directions() {
    let doc = documented();
    let served = listed(ROUTES);
    let processors = listed(PROCESSOR_ROUTES);
    assert!(served.len() >= 11 && processors.len() >= 13, "{served:?}");
    assert!(served.is_disjoint(&processors));
    let all: BTreeSet<_> = served.union(&processors).cloned().collect();
    let undocumented: Vec<_> = all.difference(&doc).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/api.md: {undocumented:?}"
    );
    let unknown: Vec<_> = doc.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "docs/api.md rows no route list has: {unknown:?}"
    );
}

/// `path` with every `{param}` replaced by something that exists.
fn concrete(path: &str) -> String {
    path.replace("{topic}", "docs")
        .replace("{partition}", "0")
        .replace("{group}", "readers")
        .replace("{name}", "p")
}

/// Whether the router itself refused the request (no such route or method),
/// as opposed to a handler answering.
fn unrouted(status: u16, body: &Value) -> bool {
    status == 405 || (status == 404 && body["error"] == "not found")
}

#[tokio::test]
async fn every_served_route_answers_from_a_handler() {
    let host = Host::new();
    host.topic("docs", 1);
    host.append_values("docs", 0, &["a"]);
    host.offsets
        .commit(
            "readers",
            "docs",
            0,
            weir::offsets::Committed {
                offset: 1,
                generation: 1,
            },
        )
        .unwrap();
    let server = Server::start(&host, None).await;
    let c = &server.client;
    let control = c.get(server.url("/no/such/route")).send().await.unwrap();
    let status = control.status().as_u16();
    assert!(
        unrouted(status, &control.json().await.unwrap()),
        "the check can tell"
    );
    // The delete goes last, so the other routes still find the topic.
    let mut routes: Vec<_> = ROUTES.iter().chain(PROCESSOR_ROUTES).copied().collect();
    routes.sort_by_key(|(m, _)| *m == "DELETE");
    for (method, path) in routes {
        let method: reqwest::Method = method.parse().unwrap();
        let response = c
            .request(method.clone(), server.url(&concrete(path)))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = match response.headers().get("content-type") {
            Some(t) if t.to_str().unwrap().starts_with("application/json") => {
                response.json().await.unwrap()
            }
            _ => Value::Null,
        };
        assert!(!unrouted(status, &body), "{method} {path}: {status} {body}");
        assert!(status < 500, "{method} {path}: {status} {body}");
    }
    server.shutdown().await;
}
