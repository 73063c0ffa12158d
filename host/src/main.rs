//! The `weir` command line: embedded over a local data directory, or a client
//! of a running `weir serve` when `--server` (or `WEIR_SERVER`) is set. The
//! data commands (topic, produce, consume, group) are written once over
//! `cli::admin::Admin`; this file picks the broker or the client for them.
//! Start-up code, so errors are `anyhow` with context here and in `cli/`.
//!
//! What reaches the user: an error is one line, `Error: ` and its whole
//! chain (never a backtrace, whatever `RUST_BACKTRACE` says), with exit
//! status 1; a closed stdout (`weir consume | head -1`) ends the process
//! quietly with status 141, as a shell reports a process that SIGPIPE ended.

use std::path::{Path, PathBuf};

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// mimalloc rather than glibc's malloc: the data path allocates and frees
/// many small buffers per record (keys, values, headers), where glibc spent
/// a fifth of a pipeline's time (`weir bench`, README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;

use cli::Out;

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A WebAssembly plugin host for consumer logic"
)]
struct Cli {
    /// Where the log, offsets and compiled components live (embedded mode).
    #[arg(
        long,
        global = true,
        env = "WEIR_DATA_DIR",
        default_value = "weir-data"
    )]
    data_dir: PathBuf,
    /// Talk to the `weir serve` at this URL (http://HOST:PORT) instead of
    /// opening the data directory. The commands that work on the data
    /// directory only (serve, run, demo, bench) and the guest developer's
    /// (new, build, test) ignore WEIR_SERVER.
    #[arg(long, global = true, env = "WEIR_SERVER")]
    server: Option<String>,
    /// Bearer token: the one `weir serve` requires, or the one sent to --server.
    #[arg(long, global = true, env = "WEIR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON (as the API returns it) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Log format on stderr (filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Produce generated orders and run two guests over them as independent groups.
    Demo {
        /// How many orders to produce.
        #[arg(long, default_value_t = 10_000)]
        orders: u64,
    },
    /// Print a shell completion script: `weir completions bash >
    /// /etc/bash_completion.d/weir`, or `source <(weir completions zsh)`.
    Completions { shell: clap_complete::Shell },
    #[command(flatten)]
    Data(cli::DataCommand),
    /// Run a processor in the foreground until Ctrl-C or SIGTERM.
    Run(Box<cli::run::RunArgs>),
    /// Serve the HTTP API (topics, produce, fetch, groups, processors, metrics).
    Serve(cli::serve::ServeArgs),
    /// Measure append, guest-boundary, pipeline, CPU-bound and cold-start costs.
    Bench {
        /// A short smoke run instead of the full measurement.
        #[arg(long)]
        quick: bool,
        /// Run only these sections (comma-separated); all when absent.
        #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(weir::bench::SECTIONS))]
        only: Vec<String>,
    },
    /// Upload a component and create, swap or shadow a processor (needs --server).
    Deploy(Box<cli::deploy::DeployArgs>),
    /// Processors on the server: list, status, pause, resume, scale, rewind,
    /// delete (needs --server).
    Processor {
        #[command(subcommand)]
        command: cli::processor::ProcessorCommand,
    },
    /// Promote or drop a processor's shadow (needs --server).
    Shadow {
        #[command(subcommand)]
        command: cli::processor::ShadowCommand,
    },
    /// Read a processor's committed state, for debugging (needs --server).
    State {
        #[command(subcommand)]
        command: cli::processor::StateCommand,
    },
    /// Print what a processor's guests logged and printed, optionally
    /// following new lines (needs --server).
    Logs(cli::logs::LogsArgs),
    /// Create a guest project of your own: rust, js or python.
    New(cli::scaffold::NewArgs),
    /// Build the guest project in DIR into its component.
    Build(cli::scaffold::BuildArgs),
    /// Run a guest over fixture records (no data directory) and print or
    /// check the emits, failures, dead letters and final state.
    Test(Box<cli::test::TestArgs>),
}

fn main() -> ExitCode {
    quiet_broken_pipe();
    let matches = Cli::command().get_matches();
    let server_from_env = matches.value_source("server") == Some(ValueSource::EnvVariable);
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Command::Completions { shell } = cli.command {
        return report(completions(shell));
    }
    // WEIR_SERVER is the client's setting: a command that works on the data
    // directory only (`weir serve` above all) is not affected by it.
    if server_from_env && cli.command.is_local() {
        cli.server = None;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match cli.log_format {
        LogFormat::Text => subscriber.init(),
        LogFormat::Json => subscriber.json().init(),
    }
    // The guest developer's commands need no data directory and no server.
    match cli.command {
        Command::New(args) => return report(cli::scaffold::new(args)),
        Command::Build(args) => return report(cli::scaffold::build(args)),
        Command::Test(args) => return report(cli::test::test(*args, cli.json)),
        _ => {}
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return report(Err(e).context("starting the async runtime")),
    };
    let result = runtime.block_on(dispatch(cli));
    // A guest call still running after the shutdown grace must not keep the
    // process alive (dropping the runtime would wait for its blocking thread
    // without bound): its batch was never committed and is redelivered.
    runtime.shutdown_timeout(SHUTDOWN_BOUND);
    report(result)
}

/// The exit status after a write to a closed stdout: 128 + SIGPIPE, what a
/// shell shows for a process the signal ended.
const BROKEN_PIPE: u8 = 141;

/// The exit status of a command's result; an error is printed on one line,
/// its whole chain and no backtrace.
fn report(result: Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    let broken_pipe = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::from(BROKEN_PIPE);
    }
    // Nothing is left to tell if stderr is gone too.
    writeln!(
        std::io::stderr(),
        "Error: {}",
        weir::error::chain(e.as_ref())
    )
    .ok();
    ExitCode::FAILURE
}

/// Makes `println!` to a closed stdout end the process quietly: Rust ignores
/// SIGPIPE, so such a write fails and `println!` panics; every other panic
/// is reported as before.
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload_as_str().unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(BROKEN_PIPE.into());
        }
        default(info)
    }));
}

/// `weir completions SHELL`: the script, written whole to stdout.
fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "weir", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    Ok(stdout.flush()?)
}

impl Command {
    /// Whether the command works on the data directory only.
    fn is_local(&self) -> bool {
        matches!(
            self,
            Command::Demo { .. }
                | Command::Run(_)
                | Command::Serve(_)
                | Command::Bench { .. }
                | Command::Completions { .. }
                | Command::New(_)
                | Command::Build(_)
                | Command::Test(_)
        )
    }
}

/// How long exiting waits for blocking work left after a command finished.
const SHUTDOWN_BOUND: std::time::Duration = std::time::Duration::from_millis(500);

const NEEDS_SERVER: &str =
    "this command talks to a running `weir serve`: set --server URL or WEIR_SERVER";

async fn dispatch(cli: Cli) -> Result<()> {
    let out = Out { json: cli.json };
    if let Some(url) = &cli.server {
        let client = weir::client::Client::new(url, cli.token.clone())?;
        return remote(&client, cli.command, out).await;
    }
    let dir = cli.data_dir;
    if matches!(
        cli.command,
        Command::Deploy(_)
            | Command::Processor { .. }
            | Command::Shadow { .. }
            | Command::State { .. }
            | Command::Logs(_)
    ) {
        bail!(NEEDS_SERVER);
    }
    if let Err(locked) = cli::lock_data_dir(&dir) {
        // Held by a `weir run` or `weir serve`: its API answers for it.
        return match (cli.command, cli::admin::holder(&dir, cli.token)) {
            (Command::Data(command), Some(client)) => cli::data(&client, command, out).await,
            _ => Err(locked),
        };
    }
    match cli.command {
        Command::Demo { orders } => {
            let report = weir::demo::run(&dir, orders).await.context("demo failed")?;
            out.print(&report, |r| print!("{r}"))
        }
        Command::Data(command) => cli::data(&*cli::open_broker(&dir)?, command, out).await,
        Command::Run(args) => cli::run::run(&dir, *args, cli.token, out).await,
        Command::Serve(args) => cli::serve::serve(&dir, args, cli.token).await,
        Command::Bench { quick, only } => {
            let scratch = tempfile_dir(&dir)?;
            let size = if quick {
                weir::bench::BenchSize::QUICK
            } else {
                weir::bench::BenchSize::FULL
            };
            let mut stdout = std::io::stdout();
            let mut report = if out.json {
                weir::bench::Report::json(&mut stdout)
            } else {
                weir::bench::Report::text(&mut stdout)
            };
            let result = weir::bench::run(&scratch, size, &only, &mut report).await;
            std::fs::remove_dir_all(&scratch).ok();
            result.context("benchmark failed")?;
            report.finish().context("benchmark failed")
        }
        Command::Deploy(_)
        | Command::Processor { .. }
        | Command::Shadow { .. }
        | Command::State { .. }
        | Command::Logs(_) => {
            bail!(NEEDS_SERVER)
        }
        Command::Completions { .. } | Command::New(_) | Command::Build(_) | Command::Test(_) => {
            unreachable!("answered before the runtime starts")
        }
    }
}

/// The commands a server can answer; the rest work on a data directory only.
async fn remote(client: &weir::client::Client, command: Command, out: Out) -> Result<()> {
    match command {
        Command::Data(command) => cli::data(client, command, out).await,
        Command::Deploy(args) => cli::deploy::deploy(client, *args, out).await,
        Command::Processor { command } => cli::processor::run(client, command, out).await,
        Command::Shadow { command } => cli::processor::shadow(client, command, out).await,
        Command::State { command } => cli::processor::state(client, command, out).await,
        Command::Logs(args) => cli::logs::logs(client, args, out).await,
        Command::Demo { .. }
        | Command::Run(_)
        | Command::Serve(_)
        | Command::Bench { .. }
        | Command::Completions { .. }
        | Command::New(_)
        | Command::Build(_)
        | Command::Test(_) => {
            bail!("this command works on a local data directory: drop --server")
        }
    }
}

fn tempfile_dir(base: &Path) -> Result<PathBuf> {
    let dir = base.join(format!("bench-{}", std::process::id()));
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
