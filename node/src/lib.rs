//! pamphlet-node: the node.
//!
//! Layout (see docs/architecture.md):
//! - `wire/`: messages, codec, fixed-size frames (sans-IO);
//! - `routing/`: locations, peers, per-request state machines (sans-IO);
//! - `store/`: the `BlockStore` trait, the memory store and the on-disk slot store;
//! - `node.rs`: `Node`, the deterministic state machine (`handle_*` in, `poll_*` out);
//! - `transport/` (feature `net`): tokio TCP + Noise links and the driver loop;
//! - `sim/` (feature `sim`): the deterministic many-node simulator.
//!
//! The contract: nothing outside `transport/` touches tokio, sockets, wall clocks or
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
pub mod id;
pub mod link;
pub mod location;
pub mod node;
pub mod routing;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;
pub mod testing;
#[cfg(feature = "net")]
pub mod transport;
pub mod wire;

pub use node::{Event, FailReason, Node, NodeConfig, NodeStats, OpId, RoutingStrategy};
