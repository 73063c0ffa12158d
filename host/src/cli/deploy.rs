//! `weir deploy`: upload a component, then create the processor (if the server
//! has none of that name), swap it in (optionally rewinding the group), or run
//! it as a shadow. With `--wait`, or after a rewind or shadow start when stderr
//! is a terminal, a progress bar follows the processor until its lag is 0.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use super::Out;
use weir::broker::SeekTo;
use weir::client::{Client, NewProcessor, ProcessorStatus};

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
    /// A label for this version, e.g. v2.
    #[arg(long)]
    pub label: Option<String>,
    /// Input topic (repeatable; needed to create a processor).
    #[arg(long = "topic")]
    pub topics: Vec<String>,
    /// Consumer group of a new processor (defaults to its name).
    #[arg(long)]
    pub group: Option<String>,
    /// Members of a new processor.
    #[arg(long)]
    pub instances: Option<u32>,
    /// Guest configuration KEY=VALUE of a new processor (repeatable).
    #[arg(long = "config", value_parser = key_value)]
    pub config: Vec<(String, String)>,
    /// Swap and move the group: earliest, latest, an offset or ts:MILLIS (a new
    /// processor takes earliest or latest as its start).
    #[arg(long, conflicts_with = "shadow")]
    pub rewind_to: Option<SeekTo>,
    /// Run the component as `<processor>.shadow` beside the current version,
    /// its emits going to `<topic>.shadow` topics.
    #[arg(long, requires = "from")]
    pub shadow: bool,
    /// Where the shadow starts: earliest, an offset or ts:MILLIS.
    #[arg(long, requires = "shadow")]
    pub from: Option<SeekTo>,
    /// Follow the processor with a progress bar until its lag is 0.
    #[arg(long)]
    pub wait: bool,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

pub async fn deploy(client: &Client, args: DeployArgs, out: Out) -> Result<()> {
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
    let label = args.label.as_deref();
    let status = if let Some(from) = args.shadow.then_some(args.from).flatten() {
        client.shadow(name, &component.id, label, from).await?
    } else {
        match client.processor(name).await {
            Ok(_) => {
                if !args.topics.is_empty() || args.group.is_some() || !args.config.is_empty() {
                    eprintln!(
                        "note: --topic, --group and --config only apply when creating; {name} exists, so its settings stay"
                    );
                }
                client
                    .swap(name, &component.id, label, args.rewind_to)
                    .await?
            }
            Err(e) if e.status() == Some(404) => create(client, &args, component.id).await?,
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

async fn create(client: &Client, args: &DeployArgs, component: String) -> Result<ProcessorStatus> {
    if args.topics.is_empty() {
        bail!(
            "processor {:?} does not exist yet: name its input with --topic",
            args.processor
        );
    }
    let reset = match args.rewind_to {
        None => None,
        Some(SeekTo::Earliest) => Some("earliest".to_string()),
        Some(SeekTo::Latest) => Some("latest".to_string()),
        Some(_) => bail!("a new processor starts at earliest or latest, not an offset or time"),
    };
    let body = NewProcessor {
        component,
        topics: args.topics.clone(),
        label: args.label.clone(),
        group: args.group.clone(),
        instances: args.instances,
        config: args
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect(),
        reset,
    };
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
