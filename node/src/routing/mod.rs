//! Routing, sans-IO: locations, peers, and the per-request state machines.
//! See docs/routing.md.
//!
//! - [`htl`]: hops-to-live and its per-link probabilistic decrement;
//! - [`peers`]: the peer table (locations, friend-of-a-friend, load, backoff);
//! - [`opennet`]: opennet peer management (modes, strangers, the limits);
//! - [`request`]: one request's routing state (steepest ascent with backtracking);
//! - [`quench`]: keys that just failed are answered at once for a short time;
//! - [`swap`]: location swapping (Sandberg) with the Pitch Black mitigation.

pub mod htl;
pub mod opennet;
pub mod peers;
pub mod quench;
pub mod request;
pub mod swap;
