//! Every node-to-node message.
//!
//! Request identifiers are **link-local**: the sender of a request picks a fresh random id
//! for each hop, so an identifier seen on one link means nothing on any other. This is the
//! defence against request-identifier traceback (Tian et al. 2013): an attacker who saw a
//! request cannot ask far-away nodes whether they saw "the same id", because no id travels
//! further than one hop. Loops are detected by key instead (see `routing/`).
//!
//! The codec (`wire/codec.rs`) serializes this enum with postcard; adding a variant at the
//! end keeps every earlier variant's encoding.

use pamphlet_crypto::{Block, BlockKind, RoutingKey};
use serde::{Deserialize, Serialize};

use crate::id::{Htl, RequestId};
use crate::location::Location;

/// A message between two neighbouring nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Fetch the block with this routing key.
    DataRequest {
        /// Link-local request id.
        id: RequestId,
        /// What kind of block the key names (sets the size and the verification).
        kind: BlockKind,
        /// The routing key.
        key: RoutingKey,
        /// Hops to live left.
        htl: Htl,
    },
    /// The block was found; it travels back along the request's path.
    DataFound {
        /// The id of the request this answers.
        id: RequestId,
        /// The block; the receiver verifies it against the key it asked for.
        block: Block,
    },
    /// The request ran out of hops without finding the block.
    DataNotFound {
        /// The id of the request this answers.
        id: RequestId,
        /// Hops to live left when it gave up (lets the sender continue elsewhere).
        htl: Htl,
    },
    /// No route remained (all peers tried or rejected) before hops ran out.
    RouteNotFound {
        /// The id of the request this answers.
        id: RequestId,
        /// Hops to live left.
        htl: Htl,
    },
    /// The receiver is already handling a request for this key: it would loop.
    RejectedLoop {
        /// The id of the request this answers.
        id: RequestId,
    },
    /// The receiver is overloaded; back off and route elsewhere.
    RejectedOverload {
        /// The id of the request this answers.
        id: RequestId,
    },
    /// Store this block in the network; routed like a request.
    InsertRequest {
        /// Link-local request id.
        id: RequestId,
        /// Hops to live left.
        htl: Htl,
        /// The block; its routing key is derived from it and it is verified before use.
        block: Block,
        /// The block is one FEC cannot rebuild (a document's top block: the one its URI
        /// names, which every fetch needs first): nodes on the path with fewer than
        /// `DurabilityConfig::top_sinks` peers closer to the key keep it in their store area,
        /// not only its sinks (docs/durability.md, "Wider top blocks"). Appended last, so
        /// the encoding of the earlier fields is unchanged; a node honours it for a bounded
        /// number of blocks per peer (`DurabilityConfig::top_budget`).
        top: bool,
    },
    /// The insert finished: it ran its hops out on the way to the key's sinks.
    InsertReply {
        /// The id of the insert this answers.
        id: RequestId,
    },
    /// An SSK insert hit a slot that already holds a different block under the same key:
    /// the existing block is returned to the inserter (first publisher wins).
    InsertCollision {
        /// The id of the insert this answers.
        id: RequestId,
        /// The block already stored.
        block: Block,
    },
    /// Start (or continue the random walk of) a location swap (Sandberg). Carries the
    /// initiator's commitment to its location, neighbour locations and random share.
    SwapRequest {
        /// Link-local id.
        id: RequestId,
        /// Steps of random walk left.
        htl: Htl,
        /// SHA-256 commitment of the initiator's `SwapReveal`.
        commitment: [u8; 32],
    },
    /// The walk's end accepts and commits too.
    SwapReply {
        /// The id of the swap request this answers.
        id: RequestId,
        /// SHA-256 commitment of the responder's `SwapReveal`.
        commitment: [u8; 32],
    },
    /// Opens a commitment: location, neighbour locations, swap age and a random share.
    SwapReveal {
        /// The swap's link-local id.
        id: RequestId,
        /// The sender's location.
        location: Location,
        /// The sender's neighbours' locations.
        neighbours: Vec<Location>,
        /// Swaps the sender has started (young nodes swap hotter).
        age: u32,
        /// The sender's random share; the XOR of both decides a probabilistic swap.
        random: [u8; 32],
    },
    /// The swap was refused or abandoned (busy, walk dead-ended, bad reveal).
    SwapRejected {
        /// The swap's link-local id.
        id: RequestId,
    },
    /// The sender's location and its neighbours' (friend-of-a-friend routing).
    LocationUpdate {
        /// The sender's location.
        location: Location,
        /// The sender's neighbours' locations.
        neighbours: Vec<Location>,
    },
    /// Keeps an idle link alive.
    Keepalive,
    /// The receiver took on a request or insert and is routing it: the sender now waits
    /// the longer, HTL-scaled time for the answer. A peer that sends neither this nor an
    /// answer within a few seconds is treated as a timeout, so one silent peer cannot
    /// consume a whole request's time (Hyphanet's `Accepted`).
    Accepted {
        /// The id of the request this answers.
        id: RequestId,
    },
    /// The sender's signed address record (Hyphanet's ARK): where it can be dialled now.
    /// Sent on every new link and whenever the sender's advertised addresses change. The
    /// transport checks it (`link::record`) and keeps it only with a higher sequence number
    /// than the one it has; it never reaches the routing core.
    AddressRecord {
        /// The record's sequence number (at least 1).
        seq: u64,
        /// One to eight addresses as text (`192.0.2.7:4000`, `[2001:db8::7]:4000`,
        /// `node.example.org:4000`).
        addresses: Vec<String>,
        /// The ed25519 signature (XEdDSA-style, by the sender's static key), in two halves
        /// because serde derives arrays only up to 32 elements.
        signature: [[u8; 32]; 2],
    },
    /// Opennet (issue 19): a newcomer's announcement, routed toward its location. Nodes on
    /// the way that want a peer answer [`Message::AnnounceReply`]; the end answers
    /// [`Message::AnnounceDone`]. Darknet nodes ignore it.
    Announce {
        /// Link-local id.
        id: RequestId,
        /// Hops left.
        htl: Htl,
        /// The newcomer's location (fixed for an opennet node).
        location: Location,
        /// The newcomer's reference, for the nodes that want it.
        reference: Reference,
    },
    /// Opennet: a node near the announced location offers its reference; relayed back to
    /// the newcomer, which may connect.
    AnnounceReply {
        /// The announcement's link-local id.
        id: RequestId,
        /// The offering node's location.
        location: Location,
        /// The offering node's reference.
        reference: Reference,
    },
    /// Opennet: the announcement ended downstream.
    AnnounceDone {
        /// The announcement's link-local id.
        id: RequestId,
    },
    /// Opennet path folding: sent just before a `DataFound` or `InsertReply`, on the same
    /// link with the same id: the reference of the node that had the data (or of a node on
    /// the path that put its own in its place). The requester may connect to it.
    FoldOffer {
        /// The id of the request whose answer follows.
        id: RequestId,
        /// The offered node's location.
        location: Location,
        /// The offered node's reference.
        reference: Reference,
    },
    /// Sent just before the answer to an insert, on the same link with the same id: a sink
    /// on the way could not keep the block for good — its store area was full (it dropped
    /// older data for it) or over the sender's write budget (it kept it in its cache only).
    /// The network's stores are short where this key lives; the inserter warns that the
    /// document may not last (issue 15).
    StoreFull {
        /// The id of the insert whose answer follows.
        id: RequestId,
    },
    /// Key-first offers (issue 20): blocks this node would hand the receiver (it is now
    /// closer to their keys), named by kind and routing key, at most
    /// [`MAX_OFFERED_KEYS`] of them (a longer list is read only that far). The receiver
    /// answers [`Message::WantKeys`] with the ones it lacks and would keep; only those follow,
    /// as HTL-1 inserts (docs/durability.md, "Key-first offers").
    OfferKeys {
        /// Link-local id, echoed by the answer.
        id: RequestId,
        /// The offered blocks' kinds and routing keys.
        keys: Vec<(BlockKind, RoutingKey)>,
    },
    /// The answer to [`Message::OfferKeys`]: the offered keys the sender lacks and would
    /// keep in its store area (it is a sink for them). Keys never offered are ignored.
    WantKeys {
        /// The id of the offer this answers.
        id: RequestId,
        /// The wanted blocks' kinds and routing keys (a subset of the offer's).
        wanted: Vec<(BlockKind, RoutingKey)>,
    },
}

/// The most keys one [`Message::OfferKeys`] carries (about 9 KiB encoded, well inside
/// `MAX_MESSAGE_LEN`); a receiver reads no further.
pub const MAX_OFFERED_KEYS: usize = 256;

/// A node reference carried by an opennet message: opaque bytes here (the driver encodes
/// and checks them), at most [`MAX_REFERENCE_LEN`] long. The codec refuses a longer one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u8>", into = "Vec<u8>")]
pub struct Reference(Vec<u8>);

/// The longest [`Reference`] (a node reference with a few addresses fits in a quarter).
pub const MAX_REFERENCE_LEN: usize = 2048;

impl Reference {
    /// A reference, if it is at most [`MAX_REFERENCE_LEN`] bytes.
    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() <= MAX_REFERENCE_LEN).then_some(Reference(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for Reference {
    type Error = String;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        let len = bytes.len();
        Reference::new(bytes).ok_or_else(|| format!("reference of {len} bytes exceeds {MAX_REFERENCE_LEN}"))
    }
}

impl From<Reference> for Vec<u8> {
    fn from(r: Reference) -> Self {
        r.0
    }
}
