//! What the node tells its client: an [`Event`] per local operation that ends, and why one
//! failed ([`FailReason`]).

use pamphlet_crypto::{Block, RoutingKey};

use crate::id::Htl;

/// Identifies one local fetch or insert started with `start_fetch` / `start_insert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Why a local operation failed, as the sans-IO node sees it. The client of the node
/// turns it into a [`super::Failure`] (`Failure::from_reason`), the one failure type that
/// travels on to the person.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The request ran out of hops without finding the block.
    DataNotFound {
        /// The hops-to-live the request searched with.
        htl: Htl,
    },
    /// Every route was tried (or rejected) while hops remained; with no peers at all this
    /// is also the answer.
    RouteNotFound {
        /// Hops-to-live left when the routes ran out.
        htl_left: Htl,
    },
    /// The request's deadline passed.
    TimedOut {
        /// Hops-to-live left when it gave up.
        htl_left: Htl,
    },
    /// The key failed here moments ago and is quenched; try again later.
    RecentlyFailed,
    /// This node is already inserting this key; wait for that insert to end.
    KeyBusy,
    /// The block given to `start_insert` does not verify (a corrupt SSK).
    InvalidBlock,
    /// Every route left was overloaded: its window here was full, or it answered
    /// RejectedOverload (see `node::load`). Try again later.
    Overloaded,
}

/// Results for the client, drained with `Node::poll_event`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A fetch found its block (verified against the key).
    FetchSucceeded {
        /// The fetch.
        op: OpId,
        /// The block.
        block: Block,
        /// How many peers this node tried (0 when found in the local store).
        peers_tried: u32,
        /// Whether the local store already held it.
        local: bool,
    },
    /// A fetch failed.
    FetchFailed {
        /// The fetch.
        op: OpId,
        /// Why.
        reason: FailReason,
        /// How many peers this node tried.
        peers_tried: u32,
    },
    /// An insert finished: the block went along its route and is held by the sinks on it.
    InsertSucceeded {
        /// The insert.
        op: OpId,
        /// The routing key of the inserted block.
        key: RoutingKey,
        /// How many peers this node tried.
        peers_tried: u32,
        /// True when the insert ran its hops out; false when the network had no further
        /// route first (normal on a small network: every reachable node was visited).
        htl_exhausted: bool,
        /// A sink on the route (this one included) could not keep the block for good: it
        /// dropped older data for it, or kept it in its cache only (see `InsertReply`).
        displaced: bool,
    },
    /// An SSK insert found a different block already published under the key.
    InsertCollision {
        /// The insert.
        op: OpId,
        /// The block that holds the slot (verified).
        existing: Block,
    },
    /// An insert reached no peer at all.
    InsertFailed {
        /// The insert.
        op: OpId,
        /// Why.
        reason: FailReason,
        /// How many peers this node tried.
        peers_tried: u32,
    },
}
