//! `weir test GUEST.wasm --input FIXTURES.jsonl [--expect EXPECTED.json]`:
//! a guest's own CI. Runs the component over fixture records with no data
//! directory (see [`weir::fixture`]), with the processor settings of
//! `weir run`'s flags, and prints the report, or compares it with an
//! expected file (exit 1 with a diff when they differ; `--update` writes it
//! instead).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use weir::fixture::{self, Report, Settings};
use weir::processor::ProcessorSpec;

use super::spec::SpecArgs;

#[derive(clap::Args)]
pub struct TestArgs {
    /// The guest component (.wasm).
    pub component: PathBuf,
    /// The fixture: JSON Lines of records (`{"key", "value", "headers",
    /// "timestamp", "partition", "offset"}`, all but value optional) and
    /// `{"state": {..}}` lines.
    #[arg(long)]
    pub input: PathBuf,
    /// Compare the run with this file (as `--update` writes it; only the
    /// sections it names are checked); exit 1 with a diff when they differ.
    #[arg(long)]
    pub expect: Option<PathBuf>,
    /// Write the run's report to the --expect file instead of comparing.
    #[arg(long, requires = "expect")]
    pub update: bool,
    /// Initial state: `{"key": "value"}` for partition 0, or a list of
    /// `{"key", "value", "partition"}` as the report prints it.
    #[arg(long, value_name = "INITIAL")]
    pub state: Option<PathBuf>,
    /// How to print the report: text or json.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The processor's name (its dead-letter topic is NAME.dlq) [default:
    /// the component's file name].
    #[arg(long)]
    pub name: Option<String>,
    /// Where compiled components are cached [default: $XDG_CACHE_HOME/weir
    /// or ~/.cache/weir].
    #[arg(long, env = "WEIR_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The processor settings, as for `weir run` (the first --topic names the
    /// input [default: input]; --config, limits, --max-records, retries,
    /// --when-exhausted and --breaker-threshold apply).
    #[command(flatten)]
    pub spec: SpecArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Runs the test; `Err` for bad input, a failed comparison or a stopped run
/// without an expected file.
pub fn test(args: TestArgs, json: bool) -> Result<()> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => stem(&args.component),
    };
    weir::name::validate("processor", &name)?;
    let mut spec = ProcessorSpec::default().apply(&args.spec.changes())?;
    if spec.topics.is_empty() {
        spec.topics.push("input".into());
    }
    let config = spec.processor_config(&name);
    let settings = Settings {
        topic: spec.topics[0].clone(),
        processor: name.clone(),
        max_records: config.poll.max_records,
        retry: config.retry,
        breaker_threshold: config.breaker_threshold,
    };
    let fixture = fixture::load_fixture(&args.input, args.state.as_deref())?;
    let cache = cache_dir(args.cache_dir)?;
    let report = fixture::test_component(
        &args.component,
        &cache,
        spec.guest_spec(&name, None),
        fixture,
        &settings,
    )
    .with_context(|| format!("testing {}", args.component.display()))?;
    let json = json || matches!(args.format, Format::Json);
    match (&args.expect, args.update) {
        (Some(path), true) => {
            let text = serde_json::to_string_pretty(&report)? + "\n";
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            print(&report, json)?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        (Some(path), false) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let expected: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?;
            let diff = fixture::compare(&expected, &report)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("checking {}", path.display()))?;
            match diff {
                None => {
                    println!(
                        "ok: {} matches {} ({} emits, {} failures, {} dead letters, {} state keys)",
                        args.component.display(),
                        path.display(),
                        report.emits.len(),
                        report.failures.len(),
                        report.dead_letters.len(),
                        report.state.len()
                    );
                    Ok(())
                }
                Some(diff) => {
                    print!("{diff}");
                    bail!(
                        "{} does not match {} (run with --update to accept the new output)",
                        args.component.display(),
                        path.display()
                    )
                }
            }
        }
        (None, _) => {
            print(&report, json)?;
            match &report.stopped {
                Some(reason) => bail!("the processor stopped: {reason}"),
                None => Ok(()),
            }
        }
    }
}

fn print(report: &Report, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.text());
    }
    Ok(())
}

/// The component's file name without `.wasm`, made a valid processor name.
fn stem(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() { "test".into() } else { name }
}

/// Where `weir test` keeps compiled components between runs.
fn cache_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    Ok(base.join("weir"))
}
