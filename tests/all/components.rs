//! Loading components: bad files are refused with an error naming the file and
//! the world weir expects, and compiled code is cached across runtimes.

use std::path::Path;

use weir::runtime::{GuestSpec, RuntimeError, Source, WORLD};
use weir_tests::{Host, guests};

fn load(host: &Host, path: &Path) -> Result<weir::runtime::Guest, RuntimeError> {
    host.runtime.load_file(path, GuestSpec::default())
}

#[test]
fn a_malformed_wasm_file_is_refused_naming_the_file_and_the_world() {
    let host = Host::new();
    let path = host.dir.path().join("broken.wasm");
    std::fs::write(&path, b"\0asm this is not a component").unwrap();

    let err = load(&host, &path).err().expect("garbage is refused");

    assert!(matches!(err, RuntimeError::Compile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(WORLD), "{message}");
}

#[test]
fn a_core_module_is_not_a_component() {
    let host = Host::new();
    let path = host.dir.path().join("core.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();

    let err = load(&host, &path).err().expect("core modules are refused");

    assert!(matches!(err, RuntimeError::Compile { .. }), "{err:?}");
    assert!(err.to_string().contains("core.wasm"));
}

#[test]
fn a_component_of_another_world_is_refused_naming_the_missing_export() {
    let host = Host::new();

    let err = load(&host, Path::new(guests::WRONG_WORLD))
        .err()
        .expect("wrong world is refused");

    assert!(matches!(err, RuntimeError::Incompatible { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("wrong_world.wasm"), "{message}");
    assert!(message.contains(WORLD), "{message}");
    assert!(
        message.contains("init") || message.contains("process"),
        "names the missing export: {message}"
    );
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let host = Host::new();
    let err = load(&host, Path::new("/nonexistent/guest.wasm"))
        .err()
        .unwrap();
    assert!(matches!(err, RuntimeError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/guest.wasm"));
}

#[test]
fn a_second_start_loads_the_compiled_component_from_the_cache() {
    let host = Host::new();
    let first = load(&host, Path::new(guests::FRAUD_FILTER)).unwrap();
    assert_eq!(first.source(), Source::Compiled);

    let host = host.reopen();
    let second = load(&host, Path::new(guests::FRAUD_FILTER)).unwrap();
    assert_eq!(
        second.source(),
        Source::Cached,
        "a new runtime reuses the artifact"
    );
    let artifacts: Vec<_> = std::fs::read_dir(host.dir.path().join("compiled"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");

    // A damaged artifact is recompiled, not trusted.
    drop((first, second));
    std::fs::write(&artifacts[0], b"garbage").unwrap();
    let host = host.reopen();
    let third = load(&host, Path::new(guests::FRAUD_FILTER)).unwrap();
    assert_eq!(third.source(), Source::Compiled);
    third.probe().expect("the recompiled guest instantiates");
}

#[test]
fn versions_name_the_content_hash_and_the_label() {
    let host = Host::new();
    let spec = GuestSpec {
        label: Some("v2".into()),
        ..GuestSpec::default()
    };
    let labelled = host
        .runtime
        .load_file(Path::new(guests::CURRENCY_V2), spec)
        .unwrap();
    let plain = load(&host, Path::new(guests::CURRENCY_V1)).unwrap();
    let v2 = weir::runtime::Handler::version(&labelled);
    let v1 = weir::runtime::Handler::version(&plain);
    assert!(v2.starts_with("v2@"), "{v2}");
    assert!(v1.starts_with("sha256:"), "{v1}");
    assert_ne!(v1[7..], v2[3..], "different code, different hash");
}
