//! Test support shared by the simulator and routing tests (`mod common;`).
//!
//! `seeds` lives here, not in the library: the harness (`sim::network`) must not read the
//! environment (nothing under `sim/` reads a clock or an env var), while a test may, so a
//! failure can be replayed with `PAMPHLET_SEED=n cargo test …` without a library API
//! that only tests need.

// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

pub(crate) mod offers;
pub(crate) mod routing;

/// Seeds for a test to run over: `PAMPHLET_SEED` if set (to replay a failure), else
/// `defaults`.
pub(crate) fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("PAMPHLET_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => vec![seed],
        None => defaults.to_vec(),
    }
}
