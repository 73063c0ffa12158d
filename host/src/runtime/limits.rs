//! A processor's resource limits, and the per-store limiter that enforces the
//! memory and table caps.
//!
//! [`Limits`] is plain data with serde support, so a deployment record or an API
//! body can carry it as JSON: every field is optional there (missing ones take
//! the documented defaults), unknown ones are refused (a misspelt limit must
//! not silently fall back to its default), and the deadline travels as
//! milliseconds.
//!
//! ```json
//! {"memory_bytes": 134217728, "deadline_ms": 10000, "max_stack_bytes": 1048576, "fuel": null}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::ResourceLimiter;

/// The most elements a guest table may grow to (function tables of large
/// components stay far below it).
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Per-processor resource limits for each batch's store. Exceeding any of them
/// traps the guest: the batch is not committed and the failure policy applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest linear memory a guest may grow to. Default 128 MiB.
    pub memory_bytes: usize,
    /// Wall-clock budget for instantiating, initializing and processing a
    /// batch, enforced by epoch interruption to within one ticker period.
    /// Default 10 s; `deadline_ms` in JSON.
    #[serde(rename = "deadline_ms", with = "millis")]
    pub deadline: Duration,
    /// The wasm stack each guest call may use; deeper recursion traps with a
    /// stack overflow. Default 1 MiB.
    pub max_stack_bytes: usize,
    /// Fuel (roughly, wasm instructions) per batch, instantiation and `init`
    /// included: a deterministic bound on work, unlike the deadline. `None`
    /// (the default) compiles the guest without fuel metering, so it costs
    /// nothing.
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            deadline: Duration::from_secs(10),
            max_stack_bytes: 1 << 20,
            fuel: None,
        }
    }
}

/// A `Duration` as whole milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().try_into().unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Enforces the memory and table caps of one store, and remembers a refused
/// memory growth so the trap can be reported as what it is.
pub(super) struct Limiter {
    memory_bytes: usize,
    /// The size the guest last asked its memory to grow to, past the cap.
    pub(super) refused: Option<usize>,
}

impl Limiter {
    pub(super) fn new(memory_bytes: usize) -> Limiter {
        Limiter {
            memory_bytes,
            refused: None,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes || maximum.is_some_and(|max| desired > max) {
            self.refused = Some(desired);
            wasmtime::bail!(
                "guest memory may not grow to {desired} bytes (limit {} bytes)",
                self.memory_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS || maximum.is_some_and(|max| desired > max) {
            wasmtime::bail!(
                "guest table may not grow to {desired} elements (limit {MAX_TABLE_ELEMENTS})"
            );
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_serialize_the_deadline_as_milliseconds_and_default_missing_fields() {
        let limits = Limits {
            deadline: Duration::from_millis(250),
            fuel: Some(1_000),
            ..Limits::default()
        };
        let json = serde_json::to_value(limits).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "memory_bytes": 128 << 20,
                "deadline_ms": 250,
                "max_stack_bytes": 1 << 20,
                "fuel": 1000,
            })
        );
        let back: Limits = serde_json::from_value(json).unwrap();
        assert_eq!(back, limits);

        let partial: Limits = serde_json::from_str(r#"{"deadline_ms": 50}"#).unwrap();
        assert_eq!(
            partial,
            Limits {
                deadline: Duration::from_millis(50),
                ..Limits::default()
            }
        );
        let misspelt = serde_json::from_str::<Limits>(r#"{"deadline": 50}"#).unwrap_err();
        assert!(
            misspelt.to_string().contains("unknown field `deadline`"),
            "{misspelt}"
        );
    }

    #[test]
    fn a_refused_growth_is_remembered() {
        let mut limiter = Limiter::new(1 << 20);
        assert!(limiter.memory_growing(0, 1 << 20, None).unwrap());
        assert!(limiter.refused.is_none());
        let err = limiter.memory_growing(1 << 20, 2 << 20, None).unwrap_err();
        assert!(err.to_string().contains("limit 1048576"), "{err}");
        assert_eq!(limiter.refused, Some(2 << 20));
    }
}
