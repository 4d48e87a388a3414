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
    /// Every friend with its addresses and link state (`GET /v1/friends`).
    fn friends(&self) -> Vec<FriendSnapshot>;
    /// Removes a friend named by its peer id (16 hex digits), its key (43 characters of
    /// base64) or its node reference (`DELETE /v1/friends/{friend}`).
    fn remove_friend(&self, friend: &str) -> Result<FriendSnapshot, RemoveFriendError>;
}

/// One friend as `pamphlet node friends` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendSnapshot {
    /// Its id on this node (16 hex digits).
    pub peer: String,
    /// Its static key (base64).
    pub key: String,
    /// Its reference as kept now (the latest addresses it signed).
    pub noderef: String,
    /// Its addresses, in its order of preference.
    pub addresses: Vec<String>,
    /// The sequence number of its address record (0: a version-1 reference).
    pub seq: u64,
    /// `connected`, `connecting` (was connected at `last_seen`; no link now) or `never
    /// connected` (as far as the data directory remembers).
    pub state: String,
    /// Since when (Unix seconds) the link is up, or this node has been trying.
    pub since: Option<u64>,
    /// When (Unix seconds) a link to it was last up (remembered across clean restarts).
    pub last_seen: Option<u64>,
    /// Why the last dial failed, for people.
    pub last_error: Option<String>,
    /// The failure's stable kind (`unanswered`, `refused`, `timed_out`, …).
    pub last_error_kind: Option<String>,
    /// Address records refused from it (stale, replayed, badly signed).
    pub records_refused: u64,
}

/// Why a friend could not be removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveFriendError {
    /// No friend matches.
    #[error("no friend {0:?}: name one by the peer id or key `pamphlet node friends` shows, or by its reference")]
    NotFound(String),
    /// The friend was dropped but the friends file could not be rewritten, so it comes
    /// back at the next start.
    #[error("the friend was removed but the friends file could not be saved ({0}); fix the data directory and remove it again")]
    Save(String),
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
    /// Opennet counters by name (announcements, offers, strangers admitted and refused;
    /// empty for a darknet node). docs/opennet.md.
    #[serde(default)]
    pub opennet: std::collections::BTreeMap<String, u64>,
    /// Links up over UDP datagrams, of the peers (`transport = "udp"`; the others run over
    /// TCP).
    #[serde(default)]
    pub udp_links: usize,
    /// This node's online share over the last week, from `DIR/uptime` (none: not known
    /// yet, or steady backups off).
    #[serde(default)]
    pub own_uptime: Option<f64>,
}

/// One connected peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    /// The peer.
    pub peer: PeerId,
    /// Its location as it last told us (none before its first update).
    pub location: Option<f64>,
    /// What it is to this node: `friend`, `stranger` or `seed` (opennet, docs/opennet.md).
    #[serde(default = "friend_kind")]
    pub kind: String,
    /// How it was found: `friends file`, or for strangers `seeds file`, `announcement`,
    /// `path folding`, `reconnect` or `inbound`.
    #[serde(default = "friends_file")]
    pub found: String,
}

fn friend_kind() -> String {
    "friend".into()
}

fn friends_file() -> String {
    "friends file".into()
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
    /// Top blocks kept in the store area by the wider rule (docs/durability.md).
    pub top_wide_stores: u64,
    /// Inserts flagged `top` by a peer over its budget, handled as plain inserts.
    pub top_flags_over_budget: u64,
    /// Blocks queued to be offered to closer peers after this node's location changed.
    pub offers_queued: u64,
    /// Offers sent.
    pub offers_sent: u64,
    /// Returns (back after a time without peers, or restarted with remembered keys).
    pub returns: u64,
    /// Blocks queued for offers after a return.
    pub return_offers_queued: u64,
    /// Remembered store keys loaded at start.
    pub keys_loaded: u64,
    /// Steady backups: keys queued on a return for a steady peer.
    #[serde(default)]
    pub steady_backups_queued: u64,
    /// Steady backups: blocks kept for a peer rarely online.
    #[serde(default)]
    pub steady_backups_kept: u64,
    /// Offered keys this node would have kept but did not ask for: its store area was full
    /// (offers are taken only into room).
    #[serde(default)]
    pub offered_keys_no_room: u64,
}

/// Store and cache fill: the store's own counters, as the node task last read them.
pub use crate::store::StoreStats as StoreSnapshot;

/// A friend added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendAdded {
    /// Its reference.
    pub noderef: NodeRef,
    /// The peer id it has on this node.
    pub peer: PeerId,
    /// Whether it was new, already known, or known with older addresses.
    pub outcome: AddOutcome,
}

/// What adding a reference did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddOutcome {
    /// A new friend.
    Added,
    /// Already a friend; the reference's signed addresses were newer and replaced the kept
    /// ones.
    Updated,
    /// Already a friend with these addresses or newer ones: nothing changed.
    Known,
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
