//! What the node tells its client, its configuration and its counters.

use std::time::Duration;

use pamphlet_crypto::{Block, RoutingKey};

use crate::routing::htl::MAX_HTL;
use crate::routing::location::Location;
use crate::routing::peers::BackoffConfig;
use crate::routing::swap::SwapConfig;
use crate::wire::message::Htl;

/// Identifies one local fetch or insert started with `start_fetch` / `start_insert`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Why a local operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// The request ran out of hops without finding the block.
    DataNotFound,
    /// Every route was tried (or rejected) while hops remained; with no peers at all this
    /// is also the answer.
    RouteNotFound,
    /// The request's deadline passed.
    TimedOut,
    /// The key failed here moments ago and is quenched; try again later.
    RecentlyFailed,
    /// This node is already inserting this key; wait for that insert to end.
    KeyBusy,
    /// The block given to `start_insert` does not verify (a corrupt SSK).
    InvalidBlock,
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

/// Configuration of a node; every constant is explained in docs/routing.md.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// This node's location on the circle.
    pub location: Location,
    /// Seed of the node's RNG (link-local ids, HTL coins). Different nodes need different
    /// seeds; a real node draws it from the OS once at start.
    pub seed: u64,
    /// Swaps this node has started in its life so far (its swap age: young nodes swap
    /// hotter, `swap::temperature`). State like `location`: a restarted node passes the
    /// saved value (`Node::swap_age`) so it does not start hot again.
    pub swap_age: u32,
    /// Hops-to-live of requests this node starts, and the cap on incoming ones.
    pub max_htl: Htl,
    /// How long a local request may take in all; a hop sent with HTL h is given
    /// `request_timeout * (h + 1) / (max_htl + 1)`.
    pub request_timeout: Duration,
    /// How long a peer has to say `Accepted` (or answer) before it counts as timed out.
    pub accept_timeout: Duration,
    /// Requests from one peer this node handles at once; more get RejectedOverload.
    pub max_requests_per_peer: u32,
    /// Backoff periods for peers that reject, time out or forge.
    pub backoff: BackoffConfig,
    /// How long a key that failed with DataNotFound stays quenched.
    pub quench_time: Duration,
    /// How many quenched keys are remembered at most.
    pub quench_capacity: usize,
    /// How often this node starts a location swap (darknet); `None`: never on its own
    /// (a driver may still call `Node::start_swap`). Swap requests from peers are always
    /// served.
    pub swap_interval: Option<Duration>,
    /// Swapping parameters, including the Pitch Black mitigation.
    pub swap: SwapConfig,
    /// The most hops one DataNotFound / RouteNotFound answer may cost a fetch or insert
    /// this node *started* (`Htl::MAX`: trust the HTL it reports, as Hyphanet does). A
    /// black hole answers DataNotFound at once; with the cap the originator tries another
    /// first hop instead of giving up. Default 3: about six first hops may be tried.
    /// Measured in docs/security.md; the cost is messages per genuine miss.
    pub not_found_cap: Htl,
    /// Treat DataNotFound (or RouteNotFound with no hops left) in answer to an insert as
    /// the lie it is: honest nodes answer an insert that ran its hops out with
    /// InsertReply, so only a black hole says this. The insert goes on to the next peer
    /// without spending hops and the liar is backed off like a forger. Off: believe it and
    /// end the insert (Hyphanet's rule, for comparison in the simulator).
    pub refuse_false_insert_not_found: bool,
    /// The same cap for fetches this node relays for a peer. Default 6: a relay with more
    /// than 6 hops left does not let one "not found" end the request, while a relay with 6
    /// or fewer believes it, which bounds how far a genuine miss branches out. 9 was
    /// enough on ideal locations but not on swapped ones (92% with 20% black holes,
    /// against 98% with 6); a miss costs 1.6 times the messages of 9 (a cap of 3 at every
    /// relay cost about 5 to 7 times; docs/routing.md). `Htl::MAX`: trust every answer.
    pub relay_not_found_cap: Htl,
    /// How requests pick the next peer. Only [`RoutingStrategy::Pamphlet`] is meant for
    /// real nodes; the others exist so the simulator can compare systems on one code base.
    pub strategy: RoutingStrategy,
    /// Keep copies of blocks that pass through (fetch return paths, insert paths) in the
    /// cache area. On by default: caching is what makes popular data fast and spreads it
    /// away from the nodes nearest its key. Off (config `cache_bytes = 0`) the node keeps
    /// only what it is a sink for, and data lives only where routing puts it.
    pub cache_passing: bool,
}

/// How a node ranks its peers for a request (docs/simulation.md compares them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoutingStrategy {
    /// Greedy by effective distance (own or friend-of-a-friend), with backtracking.
    #[default]
    Pamphlet,
    /// Greedy by the peers' own locations only, with backtracking (no FOAF).
    Greedy,
    /// A random untried peer each time, with backtracking (a random walk).
    RandomWalk,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            location: Location(0),
            seed: 0,
            swap_age: 0,
            max_htl: MAX_HTL,
            request_timeout: Duration::from_secs(120),
            accept_timeout: Duration::from_secs(10),
            max_requests_per_peer: 24,
            backoff: BackoffConfig::default(),
            quench_time: Duration::from_secs(30),
            quench_capacity: 4096,
            swap_interval: None,
            swap: SwapConfig::default(),
            not_found_cap: 3,
            refuse_false_insert_not_found: true,
            relay_not_found_cap: 6,
            strategy: RoutingStrategy::Pamphlet,
            cache_passing: true,
        }
    }
}

/// Counters for status displays and tests. Monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// DataRequests received from peers.
    pub requests_received: u64,
    /// InsertRequests received from peers.
    pub inserts_received: u64,
    /// Fetches started locally.
    pub local_fetches: u64,
    /// Inserts started locally.
    pub local_inserts: u64,
    /// Requests (local or remote) answered from this node's store or cache.
    pub found_locally: u64,
    /// Requests and inserts sent to a peer (each hop, including backtracking).
    pub forwarded: u64,
    /// Verified blocks received on a return path.
    pub data_found: u64,
    /// RejectedLoop sent.
    pub rejected_loop: u64,
    /// RejectedOverload sent.
    pub rejected_overload: u64,
    /// Requests answered at once because their key was quenched.
    pub quenched: u64,
    /// Blocks received that did not verify (forged or corrupt), and invalid inserts.
    pub forged_blocks: u64,
    /// Peers that did not answer in time.
    pub timeouts: u64,
    /// InsertCollisions sent.
    pub insert_collisions: u64,
    /// Inserts answered at once because the same block was already here.
    pub inserts_already_present: u64,
    /// Blocks written to the store area.
    pub store_writes: u64,
    /// Blocks written to the cache area.
    pub cache_writes: u64,
    /// Failed store writes.
    pub store_errors: u64,
    /// "Not found" answers to an insert, which no honest node gives (see
    /// `NodeConfig::refuse_false_insert_not_found`): the sender was backed off.
    pub false_not_found: u64,
    /// Replies that matched no request (late, after a timeout, or bogus).
    pub unexpected_replies: u64,
    /// Swaps this node started.
    pub swaps_attempted: u64,
    /// Swaps (started here or by a partner) that changed this node's location.
    pub swaps_done: u64,
    /// Swaps of this node's that were refused, timed out, or failed a commitment or the
    /// plausibility check (the sum of the four counters below, plus lost links).
    pub swaps_aborted: u64,
    /// Swaps that completed with the rule saying keep.
    pub swaps_kept: u64,
    /// Swaps ended by a `SwapRejected` (partner busy, dead-end walk, or a failed check there).
    pub swaps_refused: u64,
    /// Swaps ended because a reveal failed the plausibility check (Pitch Black mitigation).
    pub swaps_implausible: u64,
    /// Swaps ended because the partner's reveal did not open its commitment.
    pub swaps_bad_reveal: u64,
    /// Swaps that timed out.
    pub swaps_timed_out: u64,
    /// Times this node took a fresh random location (`SwapConfig::reset_probability`).
    pub location_resets: u64,
}
