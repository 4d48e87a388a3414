//! FCPv2, Hyphanet's client protocol (feature `net`), so that tools written for Freenet
//! (pyfreenet3's `fcpput`, `fcpget`, `fcpgenkey`, `fcpinvertkey`, …) work against pamphlet
//! unchanged. docs/fcp.md lists what is supported, field by field, and the error codes.
//!
//! Layout, bottom up:
//! - [`message`]: the strict codec (limits checked before allocating; fuzzed by proptest);
//! - [`codes`]: fred's numeric codes and the one function mapping pipeline failures to them;
//! - [`fields`]: typed field access and the `ProtocolError` a bad field earns;
//! - [`dda`]: the `TestDDA` handshake that guards disk access;
//! - [`request`]: `ClientPut`/`ClientGet` as jobs on the client pipelines the JSON API uses;
//! - [`dir`]: `ClientPutComplexDir`/`ClientPutDiskDir`, sites published like `insert --site`;
//! - [`queue`]: persistent requests and the global queue, shared by all connections;
//! - [`persist`]: `Persistence=forever` requests on disk (atomic, strict records);
//! - [`persistent`]: starting, finishing, removing and resuming persistent requests;
//! - [`session`]: one connection (reader, writer, requests by `Identifier`);
//! - [`server`]: the listener and who may connect.
//!
//! The contract: FCP never re-implements a pipeline. A request here and one through the
//! JSON API run the same `pipeline::insert_chk`/`insert_signed`/`fetch`.

// A driver: sockets, timeouts and wall-clock timestamps (`StartupTime`) on tokio.
#![allow(clippy::disallowed_methods)]

pub mod codes;
pub mod dda;
pub mod dir;
pub mod fields;
pub mod message;
pub mod persist;
pub mod persistent;
pub mod queue;
pub mod request;
pub mod server;
pub mod session;

pub use server::{FcpConfig, FcpListen};
#[cfg(test)]
mod dir_tests;
#[cfg(test)]
mod tests;
