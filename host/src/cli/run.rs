//! `weir run`: one processor in the foreground, as `--instances` group members,
//! until Ctrl-C or SIGTERM (or, with `--until-caught-up`, until every input
//! partition is caught up).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::spec::SpecArgs;
use weir::processor::{Instances, Processor, ProcessorSpec, Slot};
use weir::runtime::{GuestSpec, Handler, Runtime, Source};

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
    #[arg(long)]
    pub watch: bool,
    /// Exit once every input partition is caught up (a batch job), instead of
    /// waiting for new records until Ctrl-C.
    #[arg(long)]
    pub until_caught_up: bool,
}

pub async fn run(dir: &Path, args: RunArgs) -> Result<()> {
    let mut changes = args.spec.changes();
    if args.scratch.is_some() {
        changes.set("scratch", true);
    }
    let spec = ProcessorSpec::default().apply(&changes)?;
    spec.validate()?;
    let broker = super::open_broker(dir)?;
    spec.check_topics(broker.log())?;
    let log = broker.log().clone();
    let runtime = Arc::new(Runtime::new(dir, log.clone()).context("starting the wasm runtime")?);
    let guest_spec = spec.guest_spec(&args.name, args.scratch.clone());
    let guest = runtime.load_file(&args.wasm, guest_spec.clone())?;
    let how = match guest.source() {
        Source::Compiled => "compiled",
        Source::Cached => "loaded from cache",
    };
    tracing::info!(processor = %args.name, version = guest.version(), "{} {how} in {:?}", args.wasm.display(), guest.load_time());
    let config = spec.processor_config(&args.name);
    let handler: Arc<dyn Handler> = Arc::new(guest);
    let (name, count) = (args.name.clone(), spec.instances);
    let processors = if args.until_caught_up {
        let processor = Processor::new(config, broker.as_ref(), handler)?;
        vec![
            processor
                .run_until_caught_up()
                .await
                .context("processor stopped")?,
        ]
    } else {
        let mut instances = Instances::start(config, broker.clone(), handler, count)?;
        if args.watch {
            tokio::spawn(watch(
                args.wasm.clone(),
                runtime.clone(),
                guest_spec,
                instances.slot(),
            ));
        }
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down: finishing the batches in flight"),
            _ = instances.failed() => tracing::error!("a member stopped; stopping the others"),
        }
        instances.stop().await.context("processor stopped")?
    };
    log.sync_all()?;
    let (mut records, mut batches, mut emitted, mut lag) = (0, 0, 0, 0);
    for p in &processors {
        let stats = p.stats();
        records += stats.records();
        batches += stats.batches();
        emitted += stats.emitted();
        lag += p.consumer().lag()?;
    }
    println!(
        "{name}: processed {records} record(s) in {batches} batch(es), emitted {emitted}, lag {lag}"
    );
    Ok(())
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
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
