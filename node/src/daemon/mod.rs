//! The node daemon (feature `net`): a data directory, its configuration, and (to come) the
//! driver that runs a [`crate::node`] over the transport with the client API beside it.
//!
//! Data directory layout (docs/api.md):
//! ```text
//! DIR/config.toml    configuration (config.rs)
//! ```

pub mod config;
pub mod jobs;
