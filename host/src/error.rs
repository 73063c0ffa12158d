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

/// The candidate closest to `name` when one is close enough to be a typo
/// of it (an edit distance of about a third of its length, at least 2), for
/// a "did you mean" hint; ties go to the first candidate.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let most = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(distance, _)| *distance <= most)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` for the candidate closest to `name`, or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
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

    #[test]
    fn a_typo_is_matched_to_the_closest_name_and_a_stranger_to_none() {
        let names = ["orders", "alerts", "customer-totals"];
        assert_eq!(super::closest("ordrs", names), Some("orders"));
        assert_eq!(super::closest("alert", names), Some("alerts"));
        assert_eq!(
            super::closest("customer-total", names),
            Some("customer-totals")
        );
        assert_eq!(super::closest("payments", names), None);
        assert_eq!(
            super::did_you_mean("ordres", names),
            " (did you mean `orders`?)"
        );
        assert_eq!(super::did_you_mean("zzz", names), "");
    }
}
