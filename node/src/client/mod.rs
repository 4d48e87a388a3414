//! The client pipelines, sans-IO: documents of any size in and out of CHK blocks.
//!
//! - [`splitfile`]: [`splitfile::encode`] turns bytes into blocks and a top URI;
//!   [`splitfile::Fetch`] rebuilds a document from blocks as they arrive;
//! - [`fec`]: Reed-Solomon segments (any k of n blocks rebuild a segment);
//! - `keepalive`: probe every block of a document and reinsert the missing ones;
//! - [`manifest`]: the manifest format;
//! - [`retry`]: when a failed block is sent again, and when a USK probe is "not sure";
//! - [`window`]: how many block requests a fetch keeps in flight (adapted to the path);
//! - [`site`]: site manifests (paths to documents), and [`site_transfer`] to insert and read them.
//!
//! Nothing here talks to the network: the daemon drives these with blocks from its node,
//! and tests drive them with blocks from a map. See docs/client.md.

pub mod compress;
pub mod fec;
#[cfg(feature = "net")]
pub mod keepalive;
pub mod manifest;
#[cfg(feature = "net")]
pub mod memory_net;
#[cfg(feature = "net")]
pub mod pipeline;
pub mod retry;
pub mod signed;
pub mod site;
#[cfg(feature = "net")]
pub mod site_transfer;
pub mod splitfile;
pub mod window;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A block failed to verify or decrypt with the key the manifest gave.
    #[error("a block of the document is invalid: {0}")]
    Block(#[from] pamphlet_crypto::BlockError),
    /// The manifest is malformed or from an incompatible version.
    #[error("the document's manifest is invalid: {0}")]
    BadManifest(&'static str),
    /// The rebuilt document does not match the hash its manifest records.
    #[error("the fetched document does not match its recorded hash")]
    HashMismatch,
    /// Too many blocks could not be found to rebuild the document.
    #[error("{missing} of {of} blocks of a segment could not be found; too few remain to rebuild it")]
    NotFound {
        /// Blocks of the segment that could not be found.
        missing: usize,
        /// Blocks the segment has (data and check).
        of: usize,
    },
    /// Forward error correction failed.
    #[error("forward error correction failed: {0}")]
    Fec(String),
    /// An insert option is out of range.
    #[error("{0}")]
    BadOption(String),
    /// A site manifest, a path inside a site, or a site upload is refused.
    #[error(transparent)]
    Site(#[from] site::SiteError),
}
