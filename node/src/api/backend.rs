//! What the API needs from the node beyond moving blocks ([`ApiBackend`]), as typed values:
//! the node task's [`NodeSnapshot`] (rendered to JSON by the API, not by the node task),
//! and add-friend results and errors.

use serde::{Deserialize, Serialize};

use crate::client::pipeline::BlockNetwork;
use crate::id::PeerId;
use crate::link::{NodeRef, NodeRefError};

/// What the API needs from the node beyond moving blocks.
pub trait ApiBackend: BlockNetwork {
    /// The node's latest status snapshot (`GET /v1/status`, `GET /v1/peers`).
    fn status(&self) -> NodeSnapshot;
    /// Adds a friend from its node reference (connects now, remembers it across restarts).
    fn add_friend(&self, noderef: &str) -> Result<FriendAdded, AddFriendError>;
}

/// The node as status displays see it: a plain value the node task refreshes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// The node's location on the circle [0, 1).
    pub location: f64,
    /// Connected peers and where they are.
    pub peers: Vec<PeerSnapshot>,
    /// Where friends connect (TCP).
    pub listen: String,
    /// This node's reference, to give to friends.
    pub noderef: String,
    /// Requests this node is working on.
    pub in_flight: usize,
    /// Traffic counters.
    pub counters: Counters,
    /// Store and cache fill.
    pub store: StoreSnapshot,
}

/// One connected peer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    /// The peer.
    pub peer: PeerId,
    /// Its location as it last told us (none before its first update).
    pub location: Option<f64>,
}

/// The counters status displays show (a subset of `NodeStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests received from peers.
    pub requests_received: u64,
    /// Inserts received from peers.
    pub inserts_received: u64,
    /// Requests answered from this node's store.
    pub found_locally: u64,
    /// Requests forwarded to a peer.
    pub forwarded: u64,
    /// Fetches started by this node's clients.
    pub local_fetches: u64,
    /// Location swaps started.
    pub swaps_attempted: u64,
    /// Location swaps done.
    pub swaps_done: u64,
}

/// Store and cache fill: the store's own counters, as the node task last read them.
pub use crate::store::StoreStats as StoreSnapshot;

/// A friend added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FriendAdded {
    /// Its reference.
    pub noderef: NodeRef,
    /// The peer id it has on this node.
    pub peer: PeerId,
}

/// Why a friend could not be added. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddFriendError {
    /// The text is not a node reference.
    #[error("bad node reference: {0}")]
    BadReference(#[from] NodeRefError),
    /// The reference is this node's own.
    #[error("that is this node's own reference; add a friend's")]
    IsSelf,
    /// Another friend's key maps to the same peer id (astronomically unlikely).
    #[error("that friend's key collides with friend {0:?}; ask them for a new identity")]
    Conflict(PeerId),
    /// The transport could not take the friend.
    #[error("the node cannot add friends now: {0}")]
    Transport(String),
    /// The friend is connected but the friends file could not be written, so it will be
    /// forgotten at restart.
    #[error("the friend was added but could not be saved ({0}); fix the data directory and add it again")]
    Save(String),
}

impl AddFriendError {
    /// True when the request was at fault (HTTP 400); false when this node was (500).
    pub fn is_caller_error(&self) -> bool {
        match self {
            Self::BadReference(_) | Self::IsSelf | Self::Conflict(_) => true,
            Self::Transport(_) | Self::Save(_) => false,
        }
    }
}
