//! The node's configuration: every constant a `Node` runs with, explained in
//! docs/routing.md, and the named presets the simulator compares.

use std::time::Duration;

use crate::id::Htl;
use crate::location::Location;
use crate::routing::htl::MAX_HTL;
use crate::routing::peers::BackoffConfig;
use crate::routing::swap::SwapConfig;

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

/// Named presets: the rules other systems run by, on pamphlet's code, so the simulator
/// (and anyone comparing) says *which* rules it means rather than setting fields itself.
/// Each is a builder step on a config; they combine (`NodeConfig::default()
/// .hyphanet_routing().without_defences()` is a node that routes and trusts as Hyphanet
/// does).
impl NodeConfig {
    /// Hyphanet's routing: greedy by the peers' own locations with backtracking, without
    /// friend-of-a-friend locations ([`RoutingStrategy::Greedy`]). HTL and the defences are
    /// left as they are.
    #[must_use]
    pub fn hyphanet_routing(self) -> Self {
        NodeConfig { strategy: RoutingStrategy::Greedy, ..self }
    }

    /// Hyphanet's rules of trust, without pamphlet's defences: every DataNotFound /
    /// RouteNotFound is believed for the HTL it reports, at the originator and at relays
    /// (no caps), DataNotFound in answer to an insert ends the insert, and any swap reveal
    /// is accepted (no Pitch Black plausibility check). For comparison only: docs/security.md
    /// measures what each defence buys against its adversary.
    #[must_use]
    pub fn without_defences(self) -> Self {
        NodeConfig {
            not_found_cap: Htl::MAX,
            relay_not_found_cap: Htl::MAX,
            refuse_false_insert_not_found: false,
            swap: SwapConfig { check_neighbours: false, ..self.swap },
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_change_only_what_they_name() {
        let d = NodeConfig::default();
        assert_eq!(d.clone().hyphanet_routing(), NodeConfig { strategy: RoutingStrategy::Greedy, ..d.clone() });
        let trusting = d.clone().without_defences();
        assert_eq!((trusting.not_found_cap, trusting.relay_not_found_cap), (Htl::MAX, Htl::MAX));
        assert!(!trusting.refuse_false_insert_not_found && !trusting.swap.check_neighbours);
        assert_eq!(
            trusting,
            NodeConfig {
                not_found_cap: Htl::MAX,
                relay_not_found_cap: Htl::MAX,
                refuse_false_insert_not_found: false,
                swap: SwapConfig { check_neighbours: false, ..d.swap },
                ..d.clone()
            }
        );
        // The defaults are pamphlet's defences, on.
        assert!(d.refuse_false_insert_not_found && d.swap.check_neighbours && d.not_found_cap < Htl::MAX);
    }
}
