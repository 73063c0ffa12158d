//! Positions in a partition, as a seek, a rewind, a swap's `rewind_to` and a
//! shadow's `from` name them: `earliest`, `latest`, an offset, or the first
//! record at or after a timestamp. The CLI spells them as text
//! ([`SeekTo::from_str`]); the API as JSON ([`position`], [`parse_position`]).

use std::str::FromStr;

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

impl FromStr for SeekTo {
    type Err = String;

    /// `earliest`, `latest`, an offset (`1234`) or a timestamp (`ts:MILLIS`).
    fn from_str(s: &str) -> Result<SeekTo, String> {
        match s {
            "earliest" | "beginning" => Ok(SeekTo::Earliest),
            "latest" | "end" => Ok(SeekTo::Latest),
            _ => {
                if let Some(ms) = s.strip_prefix("ts:") {
                    return ms.parse().map(SeekTo::Timestamp).map_err(|_| {
                        format!("bad timestamp {ms:?}: expected milliseconds since the epoch")
                    });
                }
                s.parse().map(SeekTo::Offset).map_err(|_| {
                    format!("expected earliest, latest, an offset or ts:MILLIS, got {s:?}")
                })
            }
        }
    }
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
        _ => Err("a position is earliest, latest, an offset or \"ts:MILLIS\"".to_string()),
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
        assert!(parse_position(&(-1).into()).is_err());
        assert!(parse_position(&Value::Null).is_err());
    }
}
