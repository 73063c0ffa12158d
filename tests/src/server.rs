//! A real `weir serve` API over an embedded [`Host`], on 127.0.0.1:0, with the
//! supervisor's recorded processors restored as the binary does on start.

use serde_json::{Value, json};

use crate::{Host, guests};

/// A running server and a client for it.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), weir::service::ServiceError>>,
}

impl Server {
    /// Serves `host` until [`Server::shutdown`].
    pub async fn start(host: &Host, token: Option<&str>) -> Server {
        let state = host.app_state(token);
        state.supervisor.restore().await.expect("restore");
        state
            .supervisor
            .watch_failures(std::time::Duration::from_millis(100));
        Server::with_state(state).await
    }

    /// Serves `state` as it is (nothing restored) until [`Server::shutdown`].
    pub async fn with_state(state: std::sync::Arc<weir::service::AppState>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(weir::service::serve(listener, state, async {
            stopped.await.ok();
        }));
        Server {
            base,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task,
        }
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        json_of(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self.client.post(self.url(path)).json(&body);
        json_of(request.send().await.unwrap()).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let request = self.client.put(self.url(path)).json(&body);
        json_of(request.send().await.unwrap()).await
    }

    /// `DELETE path`: the status.
    pub async fn delete(&self, path: &str) -> u16 {
        let response = self.client.delete(self.url(path)).send().await.unwrap();
        response.status().as_u16()
    }

    /// Uploads a component file; returns (status, JSON body).
    pub async fn upload(&self, path: &str) -> (u16, Value) {
        let wasm = std::fs::read(path).unwrap();
        let request = self.client.post(self.url("/components")).body(wasm);
        json_of(request.send().await.unwrap()).await
    }

    /// Stops the server gracefully (processors finish their batches).
    pub async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// A response's status and JSON body (`null` when the body is empty).
pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {bytes:?}"));
    (status, body)
}

/// Starts the real `weir serve` binary on `dir` (arguments after `serve`:
/// `args`), with no token in its environment; returns the child and the URL
/// it printed once listening, when `/ready` says its processors are back.
pub fn spawn_serve(
    dir: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> (std::process::Child, String) {
    let (child, url) = spawn_serve_listening(dir, args);
    wait_ready(&url);
    (child, url)
}

/// Waits (at most a minute) until the `weir serve` at `url` answers `/ready`
/// with 200: its processors are back.
pub fn wait_ready(url: &str) {
    let started = std::time::Instant::now();
    while http_status(url, "/ready") != Some(200) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "weir serve never became ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `GET {url}{path}` over a plain TCP connection (no async runtime, no
/// token): the status, or `None` if the server did not answer.
pub fn http_status(url: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("http://")?;
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// [`spawn_serve`] without waiting for `/ready`: returns as soon as the
/// server listens.
pub fn spawn_serve_listening(
    dir: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::weir_bin())
        .arg("--data-dir")
        .arg(dir)
        .arg("serve")
        .args(args)
        .env_remove("WEIR_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn weir serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, url)
}

impl Server {
    /// Polls `GET /processors/{name}` until `done` holds (at most 30 s);
    /// returns that status.
    pub async fn wait_for(&self, name: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = std::time::Instant::now();
        loop {
            let (status, body) = self.get(&format!("/processors/{name}")).await;
            assert_eq!(status, 200, "{body}");
            if done(&body) {
                return body;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "{name} never got there: {body:#}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

impl Server {
    /// Uploads the scripted guest and deploys it (emitting to `out`) as
    /// `name` over `topic`, with `settings`; returns the new status.
    pub async fn deploy_scripted(&self, name: &str, topic: &str, settings: Value) -> Value {
        let (status, uploaded) = self.upload(guests::SCRIPTED).await;
        assert_eq!(status, 201, "{uploaded}");
        let mut body =
            json!({"component": uploaded["id"], "topics": [topic], "config": {"output": "out"}});
        body.as_object_mut()
            .unwrap()
            .extend(settings.as_object().unwrap().clone());
        let (status, created) = self.put(&format!("/processors/{name}"), body).await;
        assert_eq!(status, 201, "{created}");
        created
    }
}
