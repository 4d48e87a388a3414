//! The two kinds of block a node stores and forwards, behind one type.

use crate::chk::{ChkBlock, CHK_BLOCK_LEN};
use crate::error::BlockError;
use crate::keys::RoutingKey;
use crate::ssk::{SskBlock, SSK_BLOCK_LEN};

/// Which kind of block a routing key names. Requests carry it, so a node knows what size
/// and what verification to expect before any data arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockKind {
    /// A 32 KiB content-hash block.
    Chk,
    /// A 1 KiB signed-subspace block.
    Ssk,
}

impl BlockKind {
    /// The fixed size of a block of this kind in bytes.
    pub const fn block_len(self) -> usize {
        match self {
            BlockKind::Chk => CHK_BLOCK_LEN,
            BlockKind::Ssk => SSK_BLOCK_LEN,
        }
    }
}

/// A CHK or SSK block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// A content-hash block.
    Chk(ChkBlock),
    /// A signed-subspace block.
    Ssk(SskBlock),
}

impl Block {
    /// Wraps received bytes of the given kind after checking their length.
    pub fn from_bytes(kind: BlockKind, bytes: impl Into<Box<[u8]>>) -> Result<Self, BlockError> {
        match kind {
            BlockKind::Chk => ChkBlock::from_bytes(bytes).map(Block::Chk),
            BlockKind::Ssk => SskBlock::from_bytes(bytes).map(Block::Ssk),
        }
    }

    /// The kind of this block.
    pub fn kind(&self) -> BlockKind {
        match self {
            Block::Chk(_) => BlockKind::Chk,
            Block::Ssk(_) => BlockKind::Ssk,
        }
    }

    /// The block's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Block::Chk(b) => b.as_bytes(),
            Block::Ssk(b) => b.as_bytes(),
        }
    }

    /// The routing key the block hashes (CHK) or derives (SSK) to.
    pub fn routing_key(&self) -> RoutingKey {
        match self {
            Block::Chk(b) => b.routing_key(),
            Block::Ssk(b) => b.routing_key(),
        }
    }

    /// Checks the block against a routing key (and, for SSK, its signature).
    pub fn verify(&self, routing_key: &RoutingKey) -> Result<(), BlockError> {
        match self {
            Block::Chk(b) => b.verify(routing_key),
            Block::Ssk(b) => b.verify(routing_key),
        }
    }
}
