//! `weir processor list|status|pause|resume|scale|rewind|delete` and `weir
//! shadow promote|drop`: processors on a running server (client-only). A
//! processor the server does not have is an error that names the closest one
//! it has ("did you mean").

use anyhow::Result;
use clap::Subcommand;

use super::Out;
use weir::client::{Client, ClientError, ProcessorStatus};
use weir::supervisor::RewindTo;

#[derive(Subcommand)]
pub enum ProcessorCommand {
    /// Every processor with its state, version and lag.
    List,
    /// One processor's status, with lag per partition.
    Status { name: String },
    /// Stop polling; members keep their partitions.
    Pause { name: String },
    /// Poll again after a pause.
    Resume { name: String },
    /// Run N members.
    Scale { name: String, instances: u32 },
    /// Move the processor's group to earliest, latest, an offset, an RFC 3339
    /// time, ts:MILLIS or a duration back from now (-1h) on every partition,
    /// or per partition: `0:100,1:latest` (name the topic, `orders/0:100`,
    /// when the processor reads several).
    Rewind {
        name: String,
        #[arg(long, allow_hyphen_values = true)]
        to: RewindTo,
    },
    /// Stop and remove the processor with its group's offsets and its
    /// dead-letter topic.
    Delete {
        name: String,
        /// Keep the dead-letter topic `<name>.dlq`.
        #[arg(long)]
        keep_dlq: bool,
    },
}

#[derive(Subcommand)]
pub enum StateCommand {
    /// A processor's committed state under KEY (the first input partition
    /// that has it, or --partition).
    Get {
        name: String,
        key: String,
        #[arg(long)]
        partition: Option<u32>,
    },
}

/// `weir state get`.
pub async fn state(client: &Client, command: StateCommand, out: Out) -> Result<()> {
    let StateCommand::Get {
        name,
        key,
        partition,
    } = command;
    let entry = client.state(&name, &key, partition).await;
    let entry = hinted(client, &name, entry).await?;
    out.print(&entry, |e| println!("{}", e.value))
}

/// `result`, with a "did you mean" naming the closest processor the server
/// has when it answered that it has no processor `name`.
async fn hinted<T>(client: &Client, name: &str, result: Result<T, ClientError>) -> Result<T> {
    match result {
        Err(e) if e.status() == Some(404) && e.to_string().contains("no processor named") => {
            let names = client.processors().await?.into_iter().map(|p| p.name);
            Err(super::admin::unknown(e.into(), name, names.collect()))
        }
        other => Ok(other?),
    }
}

#[derive(Subcommand)]
pub enum ShadowCommand {
    /// Make the shadow's component the processor's, and remove the shadow.
    Promote { name: String },
    /// Stop and remove the shadow.
    Drop { name: String },
}

/// One line per processor.
pub fn table(all: &[ProcessorStatus]) {
    println!(
        "{:<24} {:<8} {:<28} {:>9} {:>10} {:>12}",
        "name", "state", "version", "instances", "lag", "processed"
    );
    for p in all {
        println!(
            "{:<24} {:<8} {:<28} {:>9} {:>10} {:>12}",
            p.name, p.state, p.version, p.instances, p.lag, p.processed
        );
    }
}

/// One processor in full.
pub fn status(p: &ProcessorStatus) {
    println!("processor {} ({})", p.name, p.state);
    println!("  version:   {}", p.version);
    println!("  topics:    {}", p.topics.join(", "));
    println!("  group:     {}", p.group);
    println!("  instances: {}", p.instances);
    println!("  processed: {}", p.processed);
    println!("  lag:       {}", p.lag);
    if let Some(error) = &p.error {
        println!("  error:     {error}");
    }
    if let Some(last) = p.rest.get("last_error").and_then(|v| v.as_str()) {
        println!("  retrying:  attempt {} failed: {last}", p.rest["attempts"]);
    }
    let partitions = p.rest.get("partitions").and_then(|v| v.as_array());
    for part in partitions.into_iter().flatten() {
        println!(
            "  {}/{}: committed {} of {}, lag {}",
            part["topic"].as_str().unwrap_or("?"),
            part["partition"],
            part["committed"],
            part["high_watermark"],
            part["lag"]
        );
    }
}

pub async fn run(client: &Client, command: ProcessorCommand, out: Out) -> Result<()> {
    let changed = match command {
        ProcessorCommand::List => {
            return out.print(&client.processors().await?, |all| table(all));
        }
        ProcessorCommand::Status { name } => {
            hinted(client, &name, client.processor(&name).await).await?
        }
        ProcessorCommand::Pause { name } => {
            hinted(client, &name, client.pause(&name).await).await?
        }
        ProcessorCommand::Resume { name } => {
            hinted(client, &name, client.resume(&name).await).await?
        }
        ProcessorCommand::Scale { name, instances } => {
            hinted(client, &name, client.scale(&name, instances).await).await?
        }
        ProcessorCommand::Rewind { name, to } => {
            hinted(client, &name, client.rewind(&name, &to).await).await?
        }
        ProcessorCommand::Delete { name, keep_dlq } => {
            hinted(
                client,
                &name,
                client.delete_processor(&name, keep_dlq).await,
            )
            .await?;
            return out.print(&serde_json::json!({"deleted": name}), |_| {
                println!("deleted processor {name}")
            });
        }
    };
    out.print(&changed, status)
}

pub async fn shadow(client: &Client, command: ShadowCommand, out: Out) -> Result<()> {
    match command {
        ShadowCommand::Promote { name } => {
            let promoted = client.promote_shadow(&name).await;
            out.print(&hinted(client, &name, promoted).await?, status)
        }
        ShadowCommand::Drop { name } => {
            hinted(client, &name, client.drop_shadow(&name).await).await?;
            out.print(
                &serde_json::json!({"dropped": format!("{name}.shadow")}),
                |_| println!("dropped the shadow of {name}"),
            )
        }
    }
}
