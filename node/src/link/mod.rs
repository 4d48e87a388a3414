//! Links, sans-IO: what two friends need to talk, without any socket.
//!
//! - [`noise`]: static keys and the Noise session of one link (a padded IK handshake, frame
//!   sealing and rekeying over byte buffers; snow is itself sans-IO);
//! - [`addr`]: one dialable address ([`PeerAddr`]: an IP literal or a host name, with port);
//! - [`sign`]: signatures by the static key itself (XEdDSA-style);
//! - [`record`]: the signed, sequenced list of a node's addresses ([`AddressRecord`],
//!   Hyphanet's ARK);
//! - [`noderef`]: the pasteable node reference ([`NodeRef`]) friends exchange;
//! - [`bandwidth`]: the token bucket behind `upload_limit` / `download_limit`;
//! - [`datagram`]: a link over UDP, one frame per datagram, with its own acknowledgements,
//!   loss recovery and congestion control (not yet wired into the node).
//!
//! The tokio code that moves these bytes over TCP is in `transport/`; the tests and the
//! link benchmark drive a [`noise::Session`] pair directly.

pub mod addr;
pub mod bandwidth;
pub mod datagram;
pub mod noderef;
pub mod noise;
pub mod record;
pub mod sign;

pub use addr::{AddrError, PeerAddr};
pub use noderef::{NodeRef, NodeRefError};
pub use noise::{PublicKey, SessionError, StaticKeypair};
pub use record::{AddressRecord, RecordError};
