//! `weir run`: one processor in the foreground, as `--instances` group members,
//! until Ctrl-C or SIGTERM (or, with `--until-caught-up`, until every input
//! partition is caught up).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use weir::broker::ResetPolicy;
use weir::consumer::PollLimits;
use weir::group::{AssignorKind, GroupSettings, Protocol};
use weir::processor::{Instances, Processor, ProcessorConfig, RetryPolicy, Slot, WhenExhausted};
use weir::runtime::{GuestSpec, Handler, Limits, Runtime, Source};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The processor's name; its group and dead-letter topic derive from it.
    #[arg(long)]
    pub name: String,
    /// The guest component.
    #[arg(long)]
    pub wasm: PathBuf,
    /// Input topic (repeatable).
    #[arg(long = "topic", required = true)]
    pub topics: Vec<String>,
    /// Consumer group (defaults to the processor's name).
    #[arg(long)]
    pub group: Option<String>,
    /// Guest configuration entry KEY=VALUE (repeatable).
    #[arg(long = "config", value_parser = parse_pair)]
    pub config: Vec<(String, String)>,
    /// A label for this guest version, e.g. v2.
    #[arg(long)]
    pub label: Option<String>,
    /// Where the group starts on a partition it has no committed offset for.
    #[arg(long, value_enum, default_value = "earliest")]
    pub reset: ResetPolicy,
    /// Members of the group to run (each a static member `<name>-<i>`).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    #[arg(long, value_enum, default_value = "cooperative")]
    pub protocol: Protocol,
    /// range, roundrobin, sticky or cooperative-sticky.
    #[arg(long, default_value = "cooperative-sticky", value_parser = parse_assignor)]
    pub assignor: AssignorKind,
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout_ms: u64,
    #[arg(long, default_value_t = 60_000)]
    pub max_poll_interval_ms: u64,
    #[arg(long, default_value_t = 500)]
    pub max_records: usize,
    #[arg(long, default_value_t = 1 << 20)]
    pub max_bytes: u64,
    #[arg(long, default_value_t = 500)]
    pub max_wait_ms: u64,
    /// Per-batch deadline.
    #[arg(long, default_value_t = 10_000)]
    pub deadline_ms: u64,
    /// Guest memory cap.
    #[arg(long, default_value_t = 128)]
    pub memory_mb: usize,
    /// Guest wasm stack (16 to 1024 KiB); deeper recursion traps.
    #[arg(long, default_value_t = 1024)]
    pub max_stack_kb: usize,
    /// Fuel per batch (roughly, wasm instructions); unmetered when absent.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// A host directory the guest may read and write as /scratch (created if
    /// missing); without it the guest has no filesystem.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Retries (with exponential backoff) before the processor stops.
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,
    #[arg(long, default_value_t = 100)]
    pub initial_backoff_ms: u64,
    /// After the retries: bisect and dead-letter the poison record, stop, or
    /// pause the partition (the others go on).
    #[arg(long, value_enum, default_value = "dead-letter")]
    pub when_exhausted: WhenExhausted,
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

fn parse_assignor(s: &str) -> Result<AssignorKind, String> {
    AssignorKind::parse(s).ok_or_else(|| format!("unknown assignor {s:?}"))
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

pub async fn run(dir: &Path, args: RunArgs) -> Result<()> {
    let broker = super::open_broker(dir)?;
    let log = broker.log().clone();
    let runtime = Arc::new(Runtime::new(dir, log.clone()).context("starting the wasm runtime")?);
    let spec = GuestSpec {
        processor: args.name.clone(),
        label: args.label.clone(),
        config: args.config.clone(),
        limits: Limits {
            memory_bytes: args.memory_mb << 20,
            deadline: Duration::from_millis(args.deadline_ms),
            max_stack_bytes: args.max_stack_kb << 10,
            fuel: args.fuel,
        },
        scratch: args.scratch.clone(),
    };
    let guest = runtime.load_file(&args.wasm, spec.clone())?;
    let how = match guest.source() {
        Source::Compiled => "compiled",
        Source::Cached => "loaded from cache",
    };
    tracing::info!(processor = %args.name, version = guest.version(), "{} {how} in {:?}", args.wasm.display(), guest.load_time());
    let config = processor_config(&args)?;
    let handler: Arc<dyn Handler> = Arc::new(guest);
    let (name, count) = (args.name.clone(), args.instances.max(1));
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
                spec,
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

fn processor_config(args: &RunArgs) -> Result<ProcessorConfig> {
    if args.max_records == 0 {
        bail!("--max-records must be at least 1");
    }
    Ok(ProcessorConfig {
        name: args.name.clone(),
        topics: args.topics.clone(),
        group: args.group.clone(),
        poll: PollLimits {
            max_records: args.max_records,
            max_bytes: args.max_bytes,
            max_wait: Duration::from_millis(args.max_wait_ms),
        },
        reset: args.reset,
        group_settings: GroupSettings {
            protocol: args.protocol,
            assignor: args.assignor,
            session_timeout: Duration::from_millis(args.session_timeout_ms),
            max_poll_interval: Duration::from_millis(args.max_poll_interval_ms),
        },
        instance_id: None,
        retry: RetryPolicy {
            max_retries: args.max_retries,
            initial_backoff: Duration::from_millis(args.initial_backoff_ms),
            then: args.when_exhausted,
            ..RetryPolicy::default()
        },
        emit_suffix: None,
        commit: Default::default(),
        state_budget: weir::state::DEFAULT_BUDGET_BYTES,
        lag_skip: None,
    })
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
