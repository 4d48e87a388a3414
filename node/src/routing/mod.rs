//! Routing, sans-IO: locations, peers, and the per-request state machines.
//! See docs/routing.md.

pub mod location;

pub use location::Location;
