//! pamphlet-node: the node.
//!
//! Layout (see docs/architecture.md):
//! - `wire/`: messages, codec, fixed-size frames (sans-IO);
//! - `routing/`: locations, peers, per-request state machines (sans-IO);
//! - `store/`: the `BlockStore` trait, the memory store and the on-disk slot store;
//! - `node.rs`: `Node`, the deterministic state machine (`handle_*` in, `poll_*` out);
//! - `transport/` (feature `net`): tokio TCP + Noise links and the driver loop.
//!
//! The contract: nothing outside `transport/` touches tokio, sockets, wall clocks or
//! unseeded randomness, so the same `Node` runs under the tokio driver and the simulator.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
