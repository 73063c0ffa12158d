//! `weir run`: one processor in the foreground, as `--instances` group members,
//! until Ctrl-C or SIGTERM (or, with `--until-caught-up`, until every input
//! partition is caught up, whatever the number of members).
//!
//! While it runs it serves the same HTTP API as `weir serve` over the same
//! broker on a loopback port, advertised in `<data-dir>/api.json`, so other
//! `weir` commands given the data directory produce to it and read its groups
//! through that API instead of failing on the directory's lock.
//!
//! With `--reset latest` the start is committed before the members join, so a
//! run that stops before its first batch does not skip, on the next run, the
//! records produced in between.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::Out;
use super::admin::Advertised;
use super::spec::SpecArgs;
use weir::broker::Broker;
use weir::cluster::ClusterBackend;
use weir::consumer::Backend;
use weir::processor::{Instances, ProcessorSpec, Slot};
use weir::runtime::{GuestSpec, Handler, Runtime, Source};
use weir::service::{AppState, Metrics};
use weir::supervisor::Supervisor;
use weir::wire::PartitionLag;

/// How often `--until-caught-up` checks the group's lag (and a member's
/// failure).
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// How long stopping waits for the API's requests in flight.
const API_GRACE: Duration = Duration::from_secs(5);

#[derive(clap::Args)]
pub struct RunArgs {
    /// The processor's name; its group and dead-letter topic derive from it.
    #[arg(long)]
    pub name: String,
    /// The guest component.
    #[arg(long)]
    pub wasm: PathBuf,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// A host directory the guest may read and write as /scratch (created if
    /// missing); without it the guest has no filesystem.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Watch the wasm file and hot-swap each new version in at the members'
    /// next batch boundary; a version that fails to load is rejected and the
    /// running one carries on.
    #[arg(long, conflicts_with = "until_caught_up")]
    pub watch: bool,
    /// Exit once every input partition is caught up (a batch job), instead of
    /// waiting for new records until Ctrl-C; with `--instances N`, N members
    /// share the work and the run exits when the group is caught up.
    #[arg(long)]
    pub until_caught_up: bool,
    /// On SIGTERM or Ctrl-C, how long to wait for the batches in flight
    /// before interrupting them (they are redelivered on the next run)
    /// [default: 30].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace: Option<u64>,
}

/// The line `weir run` ends with (`--json` prints it as JSON).
#[derive(serde::Serialize)]
struct Finished {
    processor: String,
    group: String,
    instances: usize,
    processed: u64,
    batches: u64,
    emitted: u64,
    /// Records left on the input partitions after the group's committed
    /// offsets.
    lag: u64,
}

/// Why the members stopped.
enum Stop {
    Signal,
    Failed,
    CaughtUp,
}

pub async fn run(dir: &Path, args: RunArgs, token: Option<String>, out: Out) -> Result<()> {
    let signal = signals();
    tokio::pin!(signal);
    let mut changes = args.spec.changes();
    if args.scratch.is_some() {
        changes.set("scratch", true);
    }
    let spec = ProcessorSpec::default().apply(&changes)?;
    spec.validate()?;
    let broker = super::open_broker(dir)?;
    // A processor whose spec names a Kafka cluster reads and writes there;
    // the data directory still holds the compiled cache and serves the API.
    let cluster = match &spec.cluster {
        Some(cluster) => Some(ClusterBackend::connect(cluster, dir)?),
        None => None,
    };
    match &cluster {
        Some(cluster) => cluster.check_topics(&spec)?,
        None => spec.check_topics(broker.log())?,
    }
    let log = broker.log().clone();
    let runtime = Arc::new(Runtime::new(dir, log.clone()).context("starting the wasm runtime")?);
    let guest_spec = spec.guest_spec(&args.name, args.scratch.clone());
    let mut guest = runtime.load_file(&args.wasm, guest_spec.clone())?;
    if let Some(cluster) = &cluster {
        guest = guest.emitting_to(cluster.clone());
    }
    let how = match guest.source() {
        Source::Compiled => "compiled",
        Source::Cached => "loaded from cache",
    };
    tracing::info!(processor = %args.name, version = guest.version(), "{} {how} in {:?}", args.wasm.display(), guest.load_time());
    let config = spec.processor_config(&args.name);
    let group = config.group.clone().unwrap_or_else(|| args.name.clone());
    let backend: Arc<dyn Backend> = match &cluster {
        Some(cluster) => cluster.clone(),
        None => {
            broker
                .commit_start(&group, &spec.topics, spec.reset)
                .context("committing the start position")?;
            broker.clone()
        }
    };
    let lag = |group: &str, topics: &[String]| -> Result<Vec<PartitionLag>> {
        Ok(match &cluster {
            Some(cluster) => cluster.lag(group, topics)?,
            None => broker.lag(group, topics)?,
        })
    };
    let handler: Arc<dyn Handler> = Arc::new(guest);
    let count = spec.instances;
    let mut instances = Instances::start(config, backend, handler, count)?;
    // Advertised once the members have joined, so the first command that
    // finds it sees them.
    let api = Api::start(dir, broker.clone(), runtime.clone(), token).await?;
    if args.watch {
        tokio::spawn(watch(
            args.wasm.clone(),
            runtime.clone(),
            guest_spec,
            instances.slot(),
        ));
    }
    let stop = if args.until_caught_up {
        until_caught_up(&lag, &group, &spec.topics, &mut instances, signal).await?
    } else {
        tokio::select! {
            _ = signal => Stop::Signal,
            _ = instances.failed() => Stop::Failed,
        }
    };
    match stop {
        Stop::Signal => tracing::info!("shutting down: finishing the batches in flight"),
        Stop::Failed => tracing::error!("a member stopped; stopping the others"),
        Stop::CaughtUp => tracing::info!(%group, "caught up"),
    }
    api.stop().await;
    // Past the grace, the guests still running are interrupted: their batches
    // are not committed, so the next run redelivers them.
    let grace = args.shutdown_grace.map_or(
        weir::supervisor::DEFAULT_SHUTDOWN_GRACE,
        Duration::from_secs,
    );
    let interrupter = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            tokio::time::sleep(grace).await;
            tracing::warn!(
                ?grace,
                "batches still running after the shutdown grace: interrupting them; they will be redelivered"
            );
            runtime.interrupt();
        }
    });
    let stopped = instances.stop().await;
    interrupter.abort();
    let processors = stopped.context("processor stopped")?;
    log.sync_all()?;
    let mut done = Finished {
        processor: args.name.clone(),
        group: group.clone(),
        instances: count,
        processed: 0,
        batches: 0,
        emitted: 0,
        lag: lag(&group, &spec.topics)?.iter().map(|l| l.lag).sum(),
    };
    for p in &processors {
        let stats = p.stats();
        done.processed += stats.records();
        done.batches += stats.batches();
        done.emitted += stats.emitted();
    }
    out.print(&done, |d| {
        println!(
            "{}: processed {} record(s) in {} batch(es), emitted {}, lag {}",
            d.processor, d.processed, d.batches, d.emitted, d.lag
        )
    })
}

/// Waits until the group's committed offsets reach the end of every input
/// partition (a partition a member paused counts as done: nothing more will
/// be read from it), a member fails, or a signal comes.
async fn until_caught_up(
    lag: &impl Fn(&str, &[String]) -> Result<Vec<PartitionLag>>,
    group: &str,
    topics: &[String],
    instances: &mut Instances,
    mut signal: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<Stop> {
    loop {
        tokio::select! {
            _ = signal.as_mut() => return Ok(Stop::Signal),
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        if instances.has_failed() {
            return Ok(Stop::Failed);
        }
        let paused: Vec<_> = instances
            .stats()
            .iter()
            .flat_map(|s| s.paused_partitions())
            .collect();
        let behind = lag(group, topics)?.into_iter().any(|l| {
            l.lag > 0
                && !paused
                    .iter()
                    .any(|tp| tp.topic == l.topic && tp.partition == l.partition)
        });
        if !behind {
            return Ok(Stop::CaughtUp);
        }
    }
}

/// The HTTP API `weir run` serves over its broker while it runs, advertised in
/// `api.json`.
struct Api {
    advertised: Advertised,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

impl Api {
    async fn start(
        dir: &Path,
        broker: Arc<Broker>,
        runtime: Arc<Runtime>,
        token: Option<String>,
    ) -> Result<Api> {
        let supervisor = Arc::new(Supervisor::new(dir, broker.clone(), runtime)?);
        // Nothing to restore: this host runs only its own processor.
        supervisor.mark_ready();
        let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .context("binding the API's loopback port")?;
        let addr = listener.local_addr()?;
        let advertised = Advertised::write(dir, addr, token.as_deref())?;
        let state = Arc::new(AppState {
            broker,
            supervisor,
            metrics: Metrics::install(),
            token,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            let shutdown = async {
                stopped.await.ok();
            };
            if let Err(e) = weir::service::serve(listener, state, shutdown).await {
                tracing::error!(error = %weir::error::chain(&e), "the API stopped");
            }
        });
        tracing::info!(
            "serving the API on http://{addr} (advertised in {})",
            dir.join(super::admin::API_FILE).display()
        );
        Ok(Api {
            advertised,
            stop,
            served,
        })
    }

    /// Stops advertising, then serving (after the requests in flight, for at
    /// most [`API_GRACE`]).
    async fn stop(self) {
        drop(self.advertised);
        self.stop.send(()).ok();
        if tokio::time::timeout(API_GRACE, self.served).await.is_err() {
            tracing::warn!("the API did not finish its requests in time");
        }
    }
}

/// Polls `path` and swaps in every new version that loads; a broken one is
/// logged and rejected. (Polling the file's size and modification time every
/// half second is enough for deploys and needs no platform watcher.)
async fn watch(path: PathBuf, runtime: Arc<Runtime>, spec: GuestSpec, slot: Arc<Slot>) {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.modified().ok()))
    };
    let mut seen = stamp(&path);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = stamp(&path);
        if now == seen || now.is_none() {
            continue;
        }
        seen = now;
        let (runtime, path, spec) = (runtime.clone(), path.clone(), spec.clone());
        let loaded = tokio::task::spawn_blocking(move || runtime.load_file(&path, spec)).await;
        match loaded {
            Ok(Ok(guest)) => {
                let guest: Arc<dyn Handler> = Arc::new(guest);
                let old = slot.swap(guest.clone());
                tracing::info!(
                    from = old.version(),
                    to = guest.version(),
                    "hot-swapped a new version"
                );
            }
            Ok(Err(e)) => {
                tracing::error!(error = %anyhow::Error::from(e), "rejected the new version; the old one keeps running")
            }
            Err(e) => {
                tracing::error!(error = %e, "loading the new version panicked; the old one keeps running")
            }
        }
    }
}

pub async fn shutdown_signal() {
    signals().await
}

/// Ctrl-C or SIGTERM, caught from this call on (not from the first poll), so
/// a signal that comes while the members start stops them gracefully instead
/// of killing the process.
fn signals() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
