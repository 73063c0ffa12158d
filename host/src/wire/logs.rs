//! The shapes of `GET /processors/{name}/logs`: a guest's log lines and what
//! it printed ([`LogLine`]), read a page at a time ([`LogPage`]) with the
//! filters of [`LogQuery`].

use serde::{Deserialize, Serialize};

/// One line a guest logged (the `log` import) or printed (stdout, stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increases by one per line the processor's logbook takes: the cursor
    /// of `from`.
    pub seq: u64,
    /// When the host took the line, in milliseconds since the epoch.
    pub at_ms: i64,
    /// The version that wrote it (`label@hash`).
    pub version: String,
    /// The input partition of the batch that wrote it; absent outside a
    /// batch (`init` at a deploy's probe).
    pub partition: Option<u32>,
    /// `log`, `stdout` or `stderr`.
    pub stream: String,
    /// `trace`, `debug`, `info`, `warn` or `error` (`info` for stdout,
    /// `warn` for stderr).
    pub level: String,
    pub message: String,
}

/// A page of lines, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    pub lines: Vec<LogLine>,
    /// The `from` to ask with for the lines that follow.
    pub next: u64,
    /// Lines the bounded logbook dropped, oldest first, since the host
    /// started.
    pub dropped: u64,
}

/// The filters of a logs request; every one optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Only lines whose `seq` is at least this (a page's `next`).
    pub from: Option<u64>,
    /// Only lines taken at or after this position in time: an RFC 3339
    /// time, `ts:MILLIS` or a duration back from now (`-5m`).
    pub since: Option<String>,
    /// Only lines this version wrote.
    pub version: Option<String>,
    pub partition: Option<u32>,
    /// With no line to return yet, wait up to 25 s for one (a long poll).
    #[serde(default)]
    pub follow: bool,
    /// At most this many lines (default and ceiling 1000).
    pub limit: Option<usize>,
}
