//! A real `weir serve` API in-process, on 127.0.0.1:0 over an embedded
//! [`Host`](crate::Host), for tests that speak HTTP to it.

use std::sync::Arc;

use weir::service::{AppState, Metrics, ServiceError};

use crate::Host;

/// A running server and a client for it.
pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServiceError>>,
}

impl Server {
    /// Serves `host`'s log, offsets and groups; `token`, if any, is required.
    pub async fn start(host: &Host, token: Option<&str>) -> Server {
        let state = Arc::new(AppState {
            log: host.log.clone(),
            offsets: host.offsets.clone(),
            groups: host.groups.clone(),
            metrics: Metrics::install(),
            token: token.map(str::to_string),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local address"));
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

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and checks that it stopped cleanly.
    pub async fn shutdown(mut self) {
        self.stop
            .take()
            .expect("running")
            .send(())
            .expect("server alive");
        self.task
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}
