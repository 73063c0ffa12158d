//! `weir test`: runs a guest component over fixture records with no data
//! directory, through the processor's own decisions, and reports (or checks
//! against an expected file) what it emitted, which failures it met and how
//! they were handled, what it dead-lettered and the state it left.
//!
//! - `bytes`: keys, values and state in a fixture (UTF-8 text, base64, or
//!   any JSON value as its text).
//! - `input`: the fixture file (JSON Lines of records and state).
//! - `run`: the processor loop over the fixture, with no log and no clock.
//! - `report`: the report, its text form, and the comparison with an
//!   expected file as a line diff.

mod bytes;
mod input;
mod report;
mod run;

use std::path::{Path, PathBuf};

pub use bytes::Bytes;
pub use input::{Fixture, PartitionState, StateEntries, StateEntry};
pub use report::{DeadLetter, Emitted, Failed, Report, compare};
pub use run::{Settings, run};

use crate::runtime::{GuestSpec, Runtime, RuntimeError};

/// What can go wrong before a run: reading its inputs and loading the guest.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error(
        "{path} is not valid JSON state (an object of key: value, or a list of {{\"key\", \"value\", \"partition\"}})"
    )]
    State {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no records in {0}: a fixture needs at least one line with a `value`")]
    Empty(PathBuf),
    #[error("cannot load the guest")]
    Guest(#[source] RuntimeError),
}

fn read(path: &Path) -> Result<String, FixtureError> {
    std::fs::read_to_string(path).map_err(|source| FixtureError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the fixture file at `path`, and the initial state at `state` (the
/// form of a `{"state": ..}` line's value, for partition 0 unless entries
/// name theirs), which adds to and overrides the fixture's own.
pub fn load_fixture(path: &Path, state: Option<&Path>) -> Result<Fixture, FixtureError> {
    let mut fixture =
        Fixture::parse(&read(path)?).map_err(|(line, reason)| FixtureError::Line {
            path: path.to_path_buf(),
            line,
            reason,
        })?;
    if fixture.records.is_empty() {
        return Err(FixtureError::Empty(path.to_path_buf()));
    }
    if let Some(state_path) = state {
        let entries: StateEntries =
            serde_json::from_str(&read(state_path)?).map_err(|source| FixtureError::State {
                path: state_path.to_path_buf(),
                source,
            })?;
        fixture.add_state(entries, 0);
    }
    Ok(fixture)
}

/// Loads the component at `wasm` as `spec` says (compiled artifacts cached
/// under `cache_dir`) and runs it over `fixture`.
pub fn test_component(
    wasm: &Path,
    cache_dir: &Path,
    spec: GuestSpec,
    fixture: Fixture,
    settings: &Settings,
) -> Result<Report, FixtureError> {
    let runtime = Runtime::detached(cache_dir).map_err(FixtureError::Guest)?;
    let guest = runtime.load_file(wasm, spec).map_err(FixtureError::Guest)?;
    Ok(run(&guest, fixture, settings))
}
