//! `weir new NAME --lang rust|js|python [--dir PATH]` and `weir build [DIR]`
//! (see [`weir::scaffold`]).

use std::path::PathBuf;

use anyhow::{Context, Result};

use weir::scaffold::{self, Language};

#[derive(clap::Args)]
pub struct NewArgs {
    /// The guest's name: lower-case letters, digits and '-'.
    pub name: String,
    /// rust, js or python.
    #[arg(long)]
    pub lang: Language,
    /// Where to create the project (it must not exist or be empty)
    /// [default: ./NAME].
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The project made by `weir new`.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

pub fn new(args: NewArgs) -> Result<()> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let files = scaffold::create(&args.name, args.lang, &dir)?;
    println!(
        "created {} guest {} in {} ({} files)",
        args.lang,
        args.name,
        dir.display(),
        files.len()
    );
    println!("next:");
    println!("  cd {}", dir.display());
    println!("  weir build");
    println!(
        "  weir test {}.wasm --input fixtures/sample.jsonl --expect fixtures/expected.json",
        args.name
    );
    Ok(())
}

pub fn build(args: BuildArgs) -> Result<()> {
    let built = scaffold::build(&args.dir)
        .with_context(|| format!("building the guest in {}", args.dir.display()))?;
    println!("built {}", built.display());
    Ok(())
}
