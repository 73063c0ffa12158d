//! Helpers for errors that every subsystem shares.

/// An error and its sources on one line (for a dead-letter header, a status
/// or a log line).
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_chain_lists_every_source_in_order() {
        let inner = std::io::Error::other("disk full");
        let outer = crate::log::LogError::Io {
            path: "seg".into(),
            source: inner,
        };
        let line = super::chain(&outer);
        assert!(line.ends_with(": disk full"), "{line}");
    }
}
