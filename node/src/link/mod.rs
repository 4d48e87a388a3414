//! Links, sans-IO: what two friends need to talk, without any socket.
//!
//! - [`noise`]: static keys and the Noise session of one link (a padded IK handshake, frame
//!   sealing and rekeying over byte buffers; snow is itself sans-IO);
//! - [`noderef`]: the pasteable node reference ([`NodeRef`]) friends exchange.
//!
//! The tokio code that moves these bytes over TCP is in `transport/`; the tests and the
//! link benchmark drive a [`noise::Session`] pair directly.

pub mod noderef;
pub mod noise;

pub use noderef::{NodeRef, NodeRefError};
pub use noise::{PublicKey, SessionError, StaticKeypair};
