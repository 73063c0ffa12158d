//! Every guest in `guests/` is exercised by some integration test.

use std::path::Path;

#[test]
fn every_guest_is_used_by_a_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("all");
    let mut sources = String::new();
    read_sources(&dir, &mut sources);
    assert!(!weir_tests::guests::ALL.is_empty());
    for name in weir_tests::guests::ALL {
        assert!(
            sources.contains(&format!("guests::{name}")),
            "guest {name} is not used by any test in {}",
            dir.display()
        );
    }
}

/// Appends every test source under `dir` (modules split into directories
/// too), except this file.
fn read_sources(dir: &Path, sources: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_sources(&path, sources);
        } else if path.file_name().is_some_and(|n| n != "guests_tested.rs") {
            sources.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
}
