//! Host-side bindings generated from `wit/weir.wit` (world `processor`).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "processor",
});

/// The fully qualified world every guest must implement.
pub const WORLD: &str = "weir:processor/processor@0.1.0";

/// The WIT package version the host speaks.
pub const PACKAGE_VERSION: &str = "0.1.0";
