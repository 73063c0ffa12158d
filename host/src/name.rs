//! Names of topics, groups and processors: they become directory names and keys,
//! so they are checked once, at the edge, before anything touches the disk.
//!
//! A valid name is 1 to 200 characters of `[A-Za-z0-9._-]` and is neither `.`
//! nor `..`, which keeps every name a single, harmless path component.

/// The longest name accepted.
pub const MAX_LEN: usize = 200;

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} name {name:?}: {reason}")]
pub struct NameError {
    pub kind: &'static str,
    pub name: String,
    pub reason: &'static str,
}

/// Checks `name`; `kind` ("topic", "group", ...) goes into the error.
pub fn validate(kind: &'static str, name: &str) -> Result<(), NameError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_LEN {
        Some("it is longer than 200 characters")
    } else if name == "." || name == ".." {
        Some("it is a path component")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Some("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(NameError {
            kind,
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in ["orders", "fraud.dlq", "__consumer_offsets", "a-b_c.9"] {
            assert_eq!(validate("topic", name), Ok(()));
        }
    }

    #[test]
    fn path_tricks_and_odd_characters_are_refused() {
        let long = "x".repeat(MAX_LEN + 1);
        for name in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "a b",
            "naïve",
            "a\0b",
            long.as_str(),
        ] {
            let err = validate("topic", name).expect_err(name);
            assert_eq!(err.name, name);
        }
    }
}
