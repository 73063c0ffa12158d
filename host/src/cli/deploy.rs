//! `weir deploy`: upload a component, then create the processor (if the server
//! has none of that name) with the settings the flags give, swap it in with
//! those settings changed (optionally rewinding the group), or run it as a
//! shadow. With `--wait`, or after a rewind or shadow start when stderr
//! is a terminal, a progress bar follows the processor until its lag is 0.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::Out;
use super::spec::SpecArgs;
use weir::broker::{ResetPolicy, SeekTo};
use weir::client::{Client, NewProcessor, ProcessorStatus, Swap, position};
use weir::processor::{ProcessorSpec, SpecChanges};

/// How often `--wait` asks the server for the processor's status.
const POLL: Duration = Duration::from_millis(500);

#[derive(clap::Args)]
pub struct DeployArgs {
    /// The processor to create or update.
    #[arg(long)]
    pub processor: String,
    /// The guest component.
    #[arg(long)]
    pub wasm: PathBuf,
    /// Settings: a new processor takes them (the rest at their defaults); an
    /// existing one has these changed and keeps the others.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Give the guest a private directory, <data-dir>/scratch/<processor> on
    /// the server, as /scratch (--scratch=false takes it away).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub scratch: Option<bool>,
    /// Swap and move the group: earliest, latest, an offset, an RFC 3339
    /// time, ts:MILLIS or a duration back from now (-1h) (a new processor
    /// takes earliest or latest as its start).
    #[arg(long, conflicts_with = "shadow", allow_hyphen_values = true)]
    pub rewind_to: Option<SeekTo>,
    /// Run the component as `<processor>.shadow` beside the current version,
    /// its emits going to `<topic>.shadow` topics, with the processor's
    /// settings (only --label may be given).
    #[arg(long, requires = "from")]
    pub shadow: bool,
    /// Where the shadow starts: earliest, an offset, an RFC 3339 time,
    /// ts:MILLIS or a duration back from now (-1h).
    #[arg(long, requires = "shadow", allow_hyphen_values = true)]
    pub from: Option<SeekTo>,
    /// Follow the processor with a progress bar until its lag is 0.
    #[arg(long)]
    pub wait: bool,
}

pub async fn deploy(client: &Client, args: DeployArgs, out: Out) -> Result<()> {
    let mut changes = args.spec.changes();
    if let Some(scratch) = args.scratch {
        changes.set("scratch", scratch);
    }
    if args.shadow
        && let Some(key) = changes.keys().find(|k| *k != "label")
    {
        bail!(
            "a shadow runs with {}'s settings: `{key}` cannot be given with --shadow",
            args.processor
        );
    }
    let wasm =
        std::fs::read(&args.wasm).with_context(|| format!("reading {}", args.wasm.display()))?;
    let component = client.upload_component(wasm).await?;
    eprintln!(
        "uploaded {} ({} bytes) as {}",
        args.wasm.display(),
        component.bytes,
        component.id
    );
    let name = &args.processor;
    let status = if let Some(from) = args.shadow.then_some(args.from).flatten() {
        let label = args.spec.label.as_deref();
        client.shadow(name, &component.id, label, from).await?
    } else {
        match client.processor(name).await {
            Ok(_) => {
                let body = Swap {
                    component: component.id,
                    rewind_to: args.rewind_to.map(position),
                    changes,
                };
                client.swap(name, &body).await?
            }
            Err(e) if e.status() == Some(404) => {
                create(client, &args, component.id, &changes).await?
            }
            Err(e) => return Err(e.into()),
        }
    };
    out.print(&status, super::processor::status)?;
    let follow =
        args.wait || ((args.rewind_to.is_some() || args.shadow) && std::io::stderr().is_terminal());
    if follow {
        wait_caught_up(client, &status.name).await?;
    }
    Ok(())
}

async fn create(
    client: &Client,
    args: &DeployArgs,
    component: String,
    changes: &SpecChanges,
) -> Result<ProcessorStatus> {
    let mut spec = ProcessorSpec::default().apply(changes)?;
    if spec.topics.is_empty() {
        bail!(
            "processor {:?} does not exist yet: name its input with --topic",
            args.processor
        );
    }
    let start = match args.rewind_to {
        None => None,
        Some(SeekTo::Earliest) => Some(ResetPolicy::Earliest),
        Some(SeekTo::Latest) => Some(ResetPolicy::Latest),
        Some(_) => bail!("a new processor starts at earliest or latest, not an offset or time"),
    };
    if let Some(start) = start {
        if changes.has("reset") && spec.reset != start {
            bail!("--rewind-to {start} and --reset {} disagree", spec.reset);
        }
        spec.reset = start;
    }
    let body = NewProcessor { component, spec };
    Ok(client.create_processor(&args.processor, &body).await?)
}

/// Polls the processor until its lag is 0, drawing records processed against
/// what is left, with the rate and the ETA; fails if the processor fails.
async fn wait_caught_up(client: &Client, name: &str) -> Result<()> {
    let first = client.processor(name).await?;
    let bar = ProgressBar::new(first.lag);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} records, {per_sec}, ETA {eta}")
            .context("progress bar template")?,
    );
    bar.set_message(name.to_string());
    let mut status = first.clone();
    loop {
        if status.state == "failed" {
            bar.abandon();
            bail!(
                "processor {name} failed: {}",
                status.error.as_deref().unwrap_or("no reason given")
            );
        }
        if status.state == "paused" {
            bar.abandon();
            bail!(
                "processor {name} is paused; resume it to catch up (lag {})",
                status.lag
            );
        }
        let done = status.processed.saturating_sub(first.processed);
        bar.set_length(done + status.lag);
        bar.set_position(done);
        if status.lag == 0 {
            break;
        }
        tokio::time::sleep(POLL).await;
        status = client.processor(name).await?;
    }
    bar.finish();
    eprintln!("{name}: caught up (lag 0, {} processed)", status.processed);
    Ok(())
}
