//! Start-up code shared by the `weir` subcommands: the data-directory lock,
//! opening the broker, the data commands that run over [`admin::Admin`]
//! embedded or remote, and how results are printed. One process owns a data
//! directory at a time; a second one gets a clear error instead of two writers
//! corrupting the same segments. In server mode (`--server`) no lock is taken:
//! the server owns the directory.

pub mod admin;
pub mod config;
pub mod consume;
pub mod deploy;
pub mod diff;
pub mod group;
pub mod logs;
pub mod processor;
pub mod records;
pub mod run;
pub mod scaffold;
pub mod serve;
pub mod spec;
pub mod test;
pub mod topic;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, bail};

use clap::Subcommand;

use weir::broker::Broker;

use self::admin::Admin;

/// The commands that run the same on a data directory and through a server.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Create, list, describe and delete topics.
    Topic {
        #[command(subcommand)]
        command: topic::TopicCommand,
    },
    /// Append records: lines from stdin, or generated orders.
    Produce(records::ProduceArgs),
    /// Print records: every partition or one, from a position, optionally
    /// following new ones.
    Consume(consume::ConsumeArgs),
    /// List, describe and seek consumer groups.
    Group {
        #[command(subcommand)]
        command: group::GroupCommand,
    },
    /// Run two guest versions over the same history and show what differs
    /// (commits nothing, writes nothing to the log).
    Diff(Box<diff::DiffArgs>),
}

/// Runs a data command over `admin`, then makes what it wrote durable.
pub async fn data(admin: &impl Admin, command: DataCommand, out: Out) -> Result<()> {
    match command {
        DataCommand::Topic { command } => topic::run(admin, command, out).await?,
        DataCommand::Produce(args) => records::produce(admin, args, out).await?,
        DataCommand::Consume(args) => consume::consume(admin, args, out).await?,
        DataCommand::Group { command } => group::run(admin, command, out).await?,
        DataCommand::Diff(args) => diff::diff(admin, *args, out).await?,
    }
    admin.finish().await
}

/// How a command prints its result: text for people, or `--json`.
#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Prints `value` as pretty JSON under `--json`, else runs `text`.
    pub fn print<T: serde::Serialize>(self, value: &T, text: impl FnOnce(&T)) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            text(value);
        }
        Ok(())
    }
}

/// Held for the life of the process once taken.
static LOCK: OnceLock<File> = OnceLock::new();

/// Takes the exclusive lock on `dir/LOCK`, creating the directory if needed.
pub fn lock_data_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("LOCK");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.try_lock().is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "data directory {} is in use by another weir process (pid {}); stop it or point --data-dir elsewhere",
            dir.display(),
            holder.trim()
        );
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    LOCK.set(file).ok();
    Ok(())
}

/// Opens the broker (log, committed offsets, groups) in `dir`.
pub fn open_broker(dir: &Path) -> Result<Arc<Broker>> {
    Broker::open(dir).with_context(|| format!("opening the data directory {}", dir.display()))
}
