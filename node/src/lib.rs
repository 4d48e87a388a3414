//! pamphlet-node: the node.
//!
//! Layout, floor by floor (docs/architecture.md; nothing imports from a floor above it):
//! - `id`, `location`: the shared vocabulary (peer and request ids, HTL, the circle);
//! - `wire/`, `store/`, `link/`: messages and frames, block stores, the sans-IO Noise
//!   session and node references;
//! - `routing/`: per-request state machines, peers, HTL coins, quenching, swapping;
//! - `node/`: `Node`, the deterministic state machine (`handle_*` in, `poll_*` out);
//! - `client/`: splitfiles, FEC, manifests and the pipelines over a `BlockNetwork`;
//! - `transport/` (feature `net`): tokio TCP links carrying `link/` sessions;
//! - `api/` (feature `net`): the local HTTP/JSON API and its jobs;
//! - `sim/` (feature `sim`): the deterministic many-node simulator;
//! - `daemon/` (feature `net`): a running node assembled from all of the above.
//!
//! The contract: nothing below the drivers touches tokio, sockets, wall clocks or
//! unseeded randomness, so the same `Node` runs under the tokio driver and the simulator.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// Unit tests drive state machines with a real `Instant` as the base of virtual time.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

#[cfg(feature = "net")]
pub mod api;
pub mod client;
#[cfg(feature = "net")]
pub mod daemon;
#[cfg(feature = "net")]
pub mod fcp;
#[cfg(feature = "net")]
pub mod gateway;
pub mod id;
pub mod link;
pub mod location;
pub mod node;
pub mod routing;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
#[cfg(feature = "net")]
pub mod transport;
pub mod wire;

pub use node::{Event, FailReason, Failure, Node, NodeConfig, NodeStats, OpId, RetryCause, RoutingStrategy};
