//! Positions in a partition, as a seek, a rewind, a swap's `rewind_to`, a
//! shadow's `from` and `weir consume --from` name them: `earliest`,
//! `latest`, an offset, or the first record at or after a time. The CLI
//! spells them as text ([`SeekTo::from_str`]); the API as JSON ([`position`],
//! [`parse_position`]), whose strings take every text form too.
//!
//! A time is an RFC 3339 timestamp (`2026-11-27T09:00:00Z`, any offset),
//! milliseconds since the epoch (`ts:MILLIS`), or a duration back from now
//! (`-1h`, `-15m`, `-1h30m`, `2 days ago`; a day is 24 hours), parsed by
//! `jiff` and resolved to milliseconds when it is read.

use std::str::FromStr;

use jiff::{Span, SpanRelativeTo, Timestamp};
use serde_json::Value;

/// Where a seek moves a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    Earliest,
    Latest,
    Offset(u64),
    /// Milliseconds since the Unix epoch: the first record at or after it.
    Timestamp(i64),
}

/// What every parse error ends with: the forms a position takes.
const FORMS: &str = "expected earliest, latest, an offset, an RFC 3339 time \
     (2026-11-27T09:00:00Z), ts:MILLIS or a duration back from now (-1h, -15m)";

impl FromStr for SeekTo {
    type Err = String;

    /// `earliest`, `latest`, an offset (`1234`), or a time: RFC 3339,
    /// `ts:MILLIS` or a relative duration (`-1h`) from the current time.
    fn from_str(s: &str) -> Result<SeekTo, String> {
        parse_at(s, Timestamp::now())
    }
}

/// Parses `s` with relative durations counted back from `now`.
pub fn parse_at(s: &str, now: Timestamp) -> Result<SeekTo, String> {
    let s = s.trim();
    match s {
        "earliest" | "beginning" => return Ok(SeekTo::Earliest),
        "latest" | "end" => return Ok(SeekTo::Latest),
        _ => {}
    }
    if let Some(ms) = s.strip_prefix("ts:") {
        return ms
            .parse()
            .map(SeekTo::Timestamp)
            .map_err(|_| format!("bad timestamp {ms:?}: expected milliseconds since the epoch"));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(SeekTo::Offset)
            .map_err(|_| format!("offset {s} is too large"));
    }
    if let Ok(at) = s.parse::<Timestamp>() {
        return Ok(SeekTo::Timestamp(at.as_millisecond()));
    }
    let span = s.parse::<Span>().ok();
    let days_are_24_hours = SpanRelativeTo::days_are_24_hours();
    if let Some(back) = span.and_then(|span| span.to_duration(days_are_24_hours).ok()) {
        if !back.is_negative() {
            return Err(format!(
                "a relative position counts back from now: write -{s} (or \"{s} ago\")"
            ));
        }
        let at = now
            .checked_add(back)
            .map_err(|e| format!("{s:?} reaches too far back: {e}"))?;
        return Ok(SeekTo::Timestamp(at.as_millisecond()));
    }
    Err(format!("{FORMS}, got {s:?}"))
}

/// A position as the API writes it: `"earliest"`, `"latest"`, an offset (a
/// JSON number) or `"ts:MILLIS"`.
pub fn position(to: SeekTo) -> Value {
    match to {
        SeekTo::Earliest => "earliest".into(),
        SeekTo::Latest => "latest".into(),
        SeekTo::Offset(o) => o.into(),
        SeekTo::Timestamp(ms) => format!("ts:{ms}").into(),
    }
}

/// A position as the API reads it: what [`position`] writes, and an offset as
/// a string of digits too. Kept as a JSON value in request bodies and parsed
/// here, so a bad position is the caller's 400 with this message rather than
/// a body that fails to deserialize.
pub fn parse_position(value: &Value) -> Result<SeekTo, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map(SeekTo::Offset)
            .ok_or_else(|| format!("bad offset {n}")),
        Value::String(s) => s.parse(),
        _ => Err(format!("a position is a number or a string: {FORMS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seek_targets_parse_from_the_cli_forms() {
        assert_eq!("earliest".parse(), Ok(SeekTo::Earliest));
        assert_eq!("latest".parse(), Ok(SeekTo::Latest));
        assert_eq!("42".parse(), Ok(SeekTo::Offset(42)));
        assert_eq!(
            "ts:1700000000000".parse(),
            Ok(SeekTo::Timestamp(1_700_000_000_000))
        );
        assert!("ts:soon".parse::<SeekTo>().is_err());
        assert!("-3".parse::<SeekTo>().is_err());
        assert!("yesterday-ish".parse::<SeekTo>().is_err());
    }

    #[test]
    fn rfc3339_times_parse_with_any_offset() {
        let utc = "2026-11-27T09:00:00Z".parse();
        assert_eq!(utc, Ok(SeekTo::Timestamp(1_795_770_000_000)));
        assert_eq!("2026-11-27T10:00:00+01:00".parse(), utc);
        assert_eq!(
            "2026-11-27T09:00:00.250Z".parse(),
            Ok(SeekTo::Timestamp(1_795_770_000_250))
        );
    }

    #[test]
    fn relative_durations_count_back_from_now() {
        let now: Timestamp = "2026-11-27T09:00:00Z".parse().unwrap();
        let ms = now.as_millisecond();
        let at = |s| parse_at(s, now);
        assert_eq!(at("-1h"), Ok(SeekTo::Timestamp(ms - 3_600_000)));
        assert_eq!(at("-15m"), Ok(SeekTo::Timestamp(ms - 900_000)));
        assert_eq!(at("-1h30m"), Ok(SeekTo::Timestamp(ms - 5_400_000)));
        assert_eq!(at("2 days ago"), Ok(SeekTo::Timestamp(ms - 172_800_000)));
        let forward = at("1h").unwrap_err();
        assert!(forward.contains("-1h"), "{forward}");
    }

    #[test]
    fn every_position_reads_back_as_written() {
        for to in [
            SeekTo::Earliest,
            SeekTo::Latest,
            SeekTo::Offset(7),
            SeekTo::Timestamp(1_700_000_000_000),
        ] {
            assert_eq!(parse_position(&position(to)), Ok(to));
        }
        assert_eq!(parse_position(&"12".into()), Ok(SeekTo::Offset(12)));
        let hour_ago = parse_position(&"-1h".into());
        assert!(
            matches!(hour_ago, Ok(SeekTo::Timestamp(ms)) if ms < Timestamp::now().as_millisecond()),
            "{hour_ago:?}"
        );
        assert!(parse_position(&(-1).into()).is_err());
        assert!(parse_position(&Value::Null).is_err());
    }
}
