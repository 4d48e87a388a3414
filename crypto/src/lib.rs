//! pamphlet-crypto: keys, blocks and URIs. No I/O, no clocks, no global randomness: key
//! generation takes the RNG as an argument.
//!
//! Layout:
//! - [`aead`]: ChaCha20-Poly1305 (ring) for block bodies and store entries;
//! - [`chk`]: content-hash blocks (32 KiB payload, convergent encryption);
//! - [`ssk`]: signed-subspace blocks (1 KiB payload, ed25519, editions); KSKs are SSKs whose
//!   keys come from a keyword ([`uri::KskUri`]);
//! - [`block`]: the [`Block`] enum nodes store and forward, and its verification;
//! - [`uri`]: parsing and formatting of `CHK@`, `SSK@`, `USK@` and `KSK@` URIs;
//! - [`keys`]: routing keys (public) and secrets (redacted `Debug`, zeroized on drop);
//! - [`error`]: typed errors.
//!
//! The contract: a block is self-verifying. [`Block::verify`] with nothing but the routing
//! key tells a node whether a block is genuine; reading it needs the URI.

#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod aead;
mod b64;
pub mod block;
pub mod chk;
pub mod error;
pub mod keys;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod ssk;
pub mod uri;

pub use block::{Block, BlockKind};
pub use chk::{ChkBlock, CHK_BLOCK_LEN, CHK_PAYLOAD_LEN};
pub use error::{BlockError, UriError, UriPart};
pub use keys::{CryptoKey, DecryptionKey, PublicKeyHash, RoutingKey, SskPrivateKey, SskPublicKey};
pub use ssk::{SskBlock, SSK_BLOCK_LEN, SSK_PAYLOAD_LEN};
pub use uri::{ChkFlags, ChkUri, KskUri, SskInsertUri, SskRequestUri, Uri};

/// A fresh SSK subspace: its insert URI (secret) for document `name`.
pub fn generate_ssk(rng: &mut impl rand_core::CryptoRngCore, name: &str) -> SskInsertUri {
    SskInsertUri::new(SskPrivateKey::generate(rng), CryptoKey::generate(rng), name, 0, false)
}
