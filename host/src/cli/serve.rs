//! `weir serve`: the HTTP API over the data directory, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use weir::group::Groups;
use weir::offsets::Offsets;
use weir::service::{AppState, Metrics};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Where to listen. Anything but loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
}

/// Serves until a signal; `token` is the global `--token` (or `WEIR_TOKEN`).
pub async fn serve(dir: &Path, args: ServeArgs, token: Option<String>) -> Result<()> {
    if !args.listen.ip().is_loopback() && token.is_none() {
        anyhow::bail!(weir::service::ServiceError::TokenRequired { addr: args.listen });
    }
    let log = super::open_log(dir)?;
    let offsets = Arc::new(Offsets::open(log.clone()).context("loading committed offsets")?);
    let state = Arc::new(AppState {
        groups: Arc::new(Groups::new(log.clone())),
        log,
        offsets,
        metrics: Metrics::install(),
        token,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    println!("listening on http://{}", listener.local_addr()?);
    weir::service::serve(listener, state, super::run::shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}
