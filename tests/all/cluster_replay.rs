//! Hot swap, deploy with rewind, rewinds and shadows of processors on a Kafka
//! cluster (tansu 0.6, see `tests/src/tansu.rs`), through `weir serve`'s API
//! as an operator would drive them; input produced and output read back by
//! rdkafka, and the currency guests' output checked against a model computed
//! here.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use weir_tests::guests;
use weir_tests::tansu::{ONE_RECORD_PER_BATCH, Read, Tansu};

use super::cluster::http;
use weir_tests::command::terminate;
use weir_tests::wait_for;

const PARTITIONS: i32 = 4;
const CURRENCIES: [(&str, i64); 4] = [("USD", 1000), ("EUR", 1080), ("GBP", 1270), ("JPY", 7)];

/// Orders `ids` as JSON, keyed by id.
fn orders(ids: std::ops::Range<u64>) -> Vec<(String, String)> {
    ids.map(|id| {
        let (currency, _) = CURRENCIES[(id % 4) as usize];
        let order = json!({"id": id, "customer": format!("c{}", id % 7),
            "amount_cents": 1000 + id * 37, "currency": currency, "country": "NL"});
        (id.to_string(), order.to_string())
    })
    .collect()
}

fn produce_orders(tansu: &Tansu, ids: std::ops::Range<u64>) {
    let records = orders(ids);
    let pairs: Vec<(&str, &str)> = records
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tansu.produce_keyed("orders", &pairs);
}

/// The model: US cents for order `id`, correct (v2) or with v1's bug
/// (dividing by the rate).
fn usd(id: u64, fixed: bool) -> i64 {
    let (_, rate) = CURRENCIES[(id % 4) as usize];
    let cents = 1000 + id as i64 * 37;
    if fixed {
        cents * rate / 1000
    } else {
        cents * 1000 / rate
    }
}

/// One converted order read back: (order id, usd cents, version header).
fn converted(read: &Read) -> (u64, i64, String) {
    let value: Value = serde_json::from_str(&read.value).expect("a converted order");
    let version = read
        .header("weir.version")
        .expect("every emit names its version");
    (
        value["order_id"].as_u64().unwrap(),
        value["usd_cents"].as_i64().unwrap(),
        version.to_string(),
    )
}

struct Serve {
    child: Child,
    url: String,
    tansu: Tansu,
    _dir: tempfile::TempDir,
}

impl Serve {
    /// tansu with `orders` and `orders-usd`, and `weir serve` beside it.
    fn start() -> Serve {
        let tansu = Tansu::start();
        tansu.create_topic("orders", PARTITIONS);
        tansu.create_topic("orders-usd", PARTITIONS);
        let dir = tempfile::tempdir().unwrap();
        let (child, url) = weir_tests::server::spawn_serve(
            dir.path(),
            &["--listen".as_ref(), "127.0.0.1:0".as_ref()],
        );
        Serve {
            child,
            url,
            tansu,
            _dir: dir,
        }
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        http(method, format!("{}{path}", self.url), body)
    }

    /// `GET path`'s body as text.
    fn text(&self, path: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let response = reqwest::get(format!("{}{path}", self.url)).await;
            response.expect("GET").text().await.expect("a text body")
        })
    }

    /// Uploads a component; returns its id.
    fn upload(&self, wasm: &str) -> String {
        let bytes = std::fs::read(wasm).expect("read the guest");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = runtime.block_on(async {
            let response = reqwest::Client::new()
                .post(format!("{}/components", self.url))
                .body(bytes)
                .send()
                .await
                .expect("upload");
            assert_eq!(response.status().as_u16(), 201);
            response.json::<Value>().await.unwrap()
        });
        response["id"].as_str().unwrap().to_string()
    }

    /// Deploys `fx` (the given component) against the broker.
    fn deploy_fx(&self, component: &str, label: &str, max_records: u32) -> Value {
        let body = json!({
            "component": component, "topics": ["orders"], "label": label,
            "config": {"output": "orders-usd"}, "max_records": max_records,
            "cluster": {"bootstrap_servers": self.tansu.bootstrap(), "instance_id": "serve",
                "properties": {ONE_RECORD_PER_BATCH.0: ONE_RECORD_PER_BATCH.1}},
        });
        let (status, body) = self.call(Method::PUT, "/processors/fx", Some(body));
        assert_eq!(status, 201, "{body}");
        body
    }

    fn committed(&self, group: &str) -> Vec<i64> {
        self.tansu.committed(group, "orders", PARTITIONS)
    }

    fn caught_up(&self, group: &str) -> bool {
        self.committed(group) == self.tansu.ends("orders", PARTITIONS)
    }

    fn wait_caught_up(&self, group: &str) {
        wait_for("the group to catch up", Duration::from_secs(120), || {
            self.caught_up(group)
        });
    }

    fn stop(&mut self) {
        let out = terminate(&mut self.child);
        assert!(out.status.success(), "weir serve failed");
    }
}

impl Drop for Serve {
    /// A failed test leaves no server behind.
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Every output of `topic`, by version, as (order id, cents).
fn by_version(tansu: &Tansu, topic: &str) -> BTreeMap<String, Vec<(u64, i64)>> {
    let mut out: BTreeMap<String, Vec<(u64, i64)>> = BTreeMap::new();
    for read in tansu.records(topic) {
        let (id, cents, version) = converted(&read);
        out.entry(version).or_default().push((id, cents));
    }
    out
}

#[test]
fn deploy_with_rewind_replays_history_through_the_fix_on_a_cluster() {
    let mut serve = Serve::start();
    produce_orders(&serve.tansu, 0..200);
    let v1 = serve.upload(guests::CURRENCY_V1);
    let v2 = serve.upload(guests::CURRENCY_V2);
    let v1_version = serve.deploy_fx(&v1, "v1", 50)["version"]
        .as_str()
        .unwrap()
        .to_string();
    serve.wait_caught_up("fx");
    let ends = serve.tansu.ends("orders", PARTITIONS);

    let swap = json!({"component": v2, "label": "v2", "rewind_to": "earliest"});
    let (status, body) = serve.call(Method::POST, "/processors/fx/swap", Some(swap));
    assert_eq!(status, 200, "{body}");
    let v2_version = body["version"].as_str().unwrap().to_string();
    assert_ne!(v1_version, v2_version);
    wait_for("the replay", Duration::from_secs(120), || {
        serve.tansu.records("orders-usd").len() >= 400 && serve.caught_up("fx")
    });
    assert_eq!(serve.tansu.ends("orders", PARTITIONS), ends);

    let out = by_version(&serve.tansu, "orders-usd");
    assert_eq!(out.len(), 2, "two versions wrote: {:?}", out.keys());
    let (mut first, mut replay) = (out[&v1_version].clone(), out[&v2_version].clone());
    first.sort();
    replay.sort();
    let model = |fixed: bool| (0..200).map(|id| (id, usd(id, fixed))).collect::<Vec<_>>();
    assert_eq!(
        first,
        model(false),
        "v1's output, once per order, with its bug"
    );
    assert_eq!(
        replay,
        model(true),
        "the replay: every order once, through v2"
    );
    serve.stop();
}

#[test]
fn a_hot_swap_mid_stream_processes_every_record_with_exactly_one_version() {
    let mut serve = Serve::start();
    produce_orders(&serve.tansu, 0..300);
    let v1 = serve.upload(guests::CURRENCY_V1);
    let v2 = serve.upload(guests::CURRENCY_V2);
    // Small batches, so the swap lands mid-stream.
    let v1_version = serve.deploy_fx(&v1, "v1", 5)["version"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for("some progress", Duration::from_secs(60), || {
        serve.committed("fx").iter().sum::<i64>() > 20
    });
    let swap = json!({"component": v2, "label": "v2"});
    let (status, body) = serve.call(Method::POST, "/processors/fx/swap", Some(swap));
    assert_eq!(status, 200, "{body}");
    let v2_version = body["version"].as_str().unwrap().to_string();
    produce_orders(&serve.tansu, 300..400);
    serve.wait_caught_up("fx");

    let reads = serve.tansu.records("orders-usd");
    assert_eq!(reads.len(), 400, "no order lost or repeated by the swap");
    // Per output partition (keyed as the input), the versions switch once.
    let mut seen: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut per_version: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = Vec::new();
    for read in &reads {
        let (id, cents, version) = converted(read);
        let fixed = version == v2_version;
        assert!(fixed || version == v1_version, "unknown version {version}");
        assert_eq!(cents, usd(id, fixed), "order {id} through {version}");
        ids.push(id);
        *per_version.entry(version.clone()).or_default() += 1;
        let versions = seen.entry(read.partition).or_default();
        if versions.last() != Some(&version) {
            versions.push(version);
        }
    }
    ids.sort();
    assert_eq!(ids, (0..400).collect::<Vec<_>>());
    for (partition, versions) in &seen {
        assert!(
            versions.len() <= 2 && versions.last() == Some(&v2_version),
            "partition {partition} saw {versions:?}"
        );
    }
    assert!(per_version[&v1_version] >= 20, "{per_version:?}");
    // The metrics count each version's records as the headers do.
    let metrics = serve.text("/metrics");
    for (version, count) in &per_version {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("weir_records_processed_total")
                    && l.contains("processor=\"fx\"")
                    && l.contains(&format!("version=\"{version}\""))
            })
            .unwrap_or_else(|| panic!("no processed count for {version}:\n{metrics}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert_eq!(value as usize, *count, "{line}");
    }
    serve.stop();
}

#[test]
fn rewinds_and_shadows_move_a_cluster_group_by_offset_time_and_partition() {
    let mut serve = Serve::start();
    produce_orders(&serve.tansu, 0..100);
    std::thread::sleep(Duration::from_millis(1500));
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(Duration::from_millis(1500));
    produce_orders(&serve.tansu, 100..160);
    let v1 = serve.upload(guests::CURRENCY_V1);
    let v2 = serve.upload(guests::CURRENCY_V2);
    serve.deploy_fx(&v1, "v1", 50);
    serve.wait_caught_up("fx");
    assert_eq!(serve.tansu.records("orders-usd").len(), 160);

    // A time: every partition goes back to its first record after it, and
    // what came after is processed again (by the running processor).
    let rewind = json!({"to": format!("ts:{between}")});
    let (status, body) = serve.call(Method::POST, "/processors/fx/rewind", Some(rewind));
    assert_eq!(status, 200, "{body}");
    wait_for(
        "the replay of the later orders",
        Duration::from_secs(120),
        || serve.tansu.records("orders-usd").len() >= 220 && serve.caught_up("fx"),
    );
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for read in serve.tansu.records("orders-usd") {
        *counts.entry(converted(&read).0).or_default() += 1;
    }
    assert!(
        counts
            .iter()
            .all(|(&id, &n)| n == if id < 100 { 1 } else { 2 }),
        "{counts:?}"
    );

    // One partition to an offset: only it moves.
    let before = serve.committed("fx");
    let rewind = json!({"to": {"0": 0}});
    let (status, body) = serve.call(Method::POST, "/processors/fx/rewind", Some(rewind));
    assert_eq!(status, 200, "{body}");
    wait_for("partition 0's replay", Duration::from_secs(120), || {
        serve.tansu.records("orders-usd").len() as i64 >= 220 + before[0] && serve.caught_up("fx")
    });
    let replayed = serve.tansu.records("orders-usd").len() - 220;
    assert_eq!(replayed as i64, before[0], "partition 0 alone was replayed");

    // Bad targets are refused and move nothing.
    let ends = serve.tansu.ends("orders", PARTITIONS);
    for (to, why) in [
        (json!({"to": ends[1] + 5}), "is outside the log"),
        (json!({"to": {"9": 0}}), "has no partition 9"),
    ] {
        let (status, body) = serve.call(Method::POST, "/processors/fx/rewind", Some(to));
        assert!(status == 400 || status == 404, "{status} {body}");
        assert!(body.to_string().contains(why), "{body}");
    }
    assert_eq!(serve.committed("fx"), ends);

    // A shadow reads with its own group from a chosen point and writes to
    // the side topic, created like its source; the live output is untouched.
    let live = serve.tansu.records("orders-usd").len();
    let shadow = json!({"component": v2, "label": "v2", "from": "earliest"});
    let (status, body) = serve.call(Method::POST, "/processors/fx/shadow", Some(shadow));
    assert_eq!(status, 201, "{body}");
    serve.wait_caught_up("fx.shadow");
    let side = by_version(&serve.tansu, "orders-usd.shadow");
    assert_eq!(side.len(), 1, "{:?}", side.keys());
    let mut replay = side.into_values().next().unwrap();
    replay.sort();
    let model: Vec<(u64, i64)> = (0..160).map(|id| (id, usd(id, true))).collect();
    assert_eq!(replay, model);
    assert_eq!(serve.tansu.records("orders-usd").len(), live);
    let status = serve.call(Method::DELETE, "/processors/fx/shadow", None).0;
    assert_eq!(status, 204);

    // A group whose guest keeps state (its changelog is in the cluster) is
    // refused: its state would not follow the offsets.
    serve.tansu.create_topic("weir-state.fx.orders", PARTITIONS);
    let (status, body) = serve.call(
        Method::POST,
        "/processors/fx/rewind",
        Some(json!({"to": "earliest"})),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("keeps state"), "{body}");
    assert_eq!(serve.committed("fx"), ends);
    serve.stop();
}
