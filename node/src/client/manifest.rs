//! The manifest: what a fetcher needs to rebuild a document from CHK blocks.
//!
//! A manifest is the plaintext of the top CHK block (the one the document's URI names, with
//! the `manifest` flag). It is serialized with postcard and versioned. When the manifest of
//! a large file does not fit in one block, it is itself stored as a splitfile and a smaller
//! manifest describes it (`nested`), up to [`MAX_DEPTH`] levels.

use pamphlet_crypto::{ChkFlags, ChkUri, DecryptionKey, RoutingKey, CHK_PAYLOAD_LEN};
use serde::{Deserialize, Serialize};

use super::ClientError;

/// Manifest format version this build writes and reads.
pub const MANIFEST_VERSION: u8 = 1;
/// Deepest nesting of manifests a fetcher follows (2^(7·4) blocks is far beyond any file).
pub const MAX_DEPTH: u8 = 4;
/// Longest file name or MIME type kept in a manifest.
pub const MAX_LABEL: usize = 255;

/// One CHK block of a splitfile: its routing key and decryption key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Where the block lives.
    pub routing_key: [u8; 32],
    /// What decrypts it.
    pub key: [u8; 32],
}

impl BlockRef {
    /// The URI of this block (plain flags: splitfile blocks hold raw data).
    pub fn uri(&self) -> ChkUri {
        ChkUri::new(RoutingKey(self.routing_key), DecryptionKey::from_bytes(self.key), ChkFlags::default())
    }

    /// The reference to the block a URI names.
    pub fn of(uri: &ChkUri) -> Self {
        Self { routing_key: uri.routing_key.0, key: *uri.key.expose() }
    }
}

/// A group of data blocks with their Reed-Solomon check blocks: any `data.len()` of the
/// `data.len() + check.len()` blocks rebuild the segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// The data blocks, in order. Each holds a full 32 KiB shard (the last one of the file
    /// is zero-padded; [`Body::Split::len`] says where the content ends).
    pub data: Vec<BlockRef>,
    /// The check blocks (Reed-Solomon recovery shards), in order.
    pub check: Vec<BlockRef>,
}

/// Where the content is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Small content, inside the manifest itself.
    Inline(Vec<u8>),
    /// Content split into segments of CHK blocks.
    Split {
        /// Length of the content in bytes.
        len: u64,
        /// The segments, in order.
        segments: Vec<Segment>,
    },
}

/// How the content was transformed before splitting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compression {
    /// Stored as it is.
    None,
    /// Deflate; the document is this many bytes once inflated.
    Deflate {
        /// Length of the inflated document.
        len: u64,
    },
}

/// Describes one document (or, when `nested`, the serialized manifest one level down).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u8,
    /// The content is a serialized [`Manifest`], not the document.
    pub nested: bool,
    /// The file name the publisher gave, if any.
    pub name: Option<String>,
    /// The MIME type the publisher gave, if any.
    pub mime: Option<String>,
    /// SHA-256 of the content as stored (compressed, if it is); checked before a fetch
    /// counts as complete.
    pub sha256: [u8; 32],
    /// Whether the content must be inflated to give the document.
    pub compression: Compression,
    /// Where the content is.
    pub body: Body,
}

impl Manifest {
    /// Serializes the manifest.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing plain data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Parses and sanity-checks a manifest; every problem is a [`ClientError::BadManifest`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClientError> {
        if bytes.len() > CHK_PAYLOAD_LEN * 1024 {
            return Err(ClientError::BadManifest("too large"));
        }
        let (m, rest): (Manifest, _) =
            postcard::take_from_bytes(bytes).map_err(|_| ClientError::BadManifest("not a manifest"))?;
        if !rest.is_empty() {
            return Err(ClientError::BadManifest("trailing bytes"));
        }
        if m.version != MANIFEST_VERSION {
            return Err(ClientError::BadManifest("unsupported manifest version; upgrade pamphlet"));
        }
        if m.name.as_ref().is_some_and(|n| n.len() > MAX_LABEL) || m.mime.as_ref().is_some_and(|n| n.len() > MAX_LABEL)
        {
            return Err(ClientError::BadManifest("name or MIME type too long"));
        }
        if let Body::Split { len, segments } = &m.body {
            let data_blocks: u64 = segments.iter().map(|s| s.data.len() as u64).sum();
            if data_blocks
                .checked_mul(CHK_PAYLOAD_LEN as u64)
                .is_none_or(|cap| cap < *len || cap - *len >= CHK_PAYLOAD_LEN as u64)
                || segments.iter().any(|s| s.data.is_empty())
            {
                return Err(ClientError::BadManifest("segments cannot hold the stated length"));
            }
            if segments.iter().any(|s| s.data.len() + s.check.len() > super::fec::MAX_SHARDS) {
                return Err(ClientError::BadManifest("segment too large"));
            }
        }
        Ok(m)
    }
}
