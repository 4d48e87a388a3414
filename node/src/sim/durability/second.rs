//! A second, differently routed attempt for a block not found (`Rules::second_attempt`,
//! docs/durability.md "A second attempt").
//!
//! An 18-hop greedy route that misses an online holder usually spends its hops around
//! another local minimum near the key. The originator cannot see where the route went,
//! only which of its peers it sent it to; so the second attempt starts through its best
//! *other* peer, which leads into another region of the graph towards the same key. The
//! protocol is unchanged (HTL 18), and what it costs is one more request per block a first
//! attempt did not find. How relays route it is the rule's: as ever (`Next`), around the
//! failed attempt's first hops (`Avoid`, an ideal), or, as the node since session 10,
//! each node whose hops ran out in the failed attempt around the peers it sent it to
//! (`Key`, `Again::by_key`).

use super::holdings::Holdings;
use super::route::{Again, Graph, Route, Router};
use super::rules::SecondAttempt;
use crate::location::Location;

/// Routes a fetch of `block` (at `target`) from `from` with `htl` hops (a "not found"
/// costing a node at most `cap` of them, `Router::route_again`) and, if it failed
/// and the rule asks for one, a second attempt: (the first route, the second if sent).
#[allow(clippy::too_many_arguments)] // The router's inputs and the rule, all needed.
pub(super) fn route_block(
    router: &mut Router,
    g: &Graph<'_>,
    holdings: &Holdings,
    from: usize,
    block: u32,
    target: Location,
    (htl, cap): (u32, u32),
    (rule, waits): (SecondAttempt, bool),
) -> (Route, Option<Route>) {
    // Only a second attempt by the key reads where each hop of the first was sent.
    router.record_sent = rule == SecondAttempt::Key;
    let first = router.route_again(g, from, target, (htl, cap), None, |v| holdings.place(v, block).is_some());
    if first.found || rule == SecondAttempt::Off {
        return (first, None);
    }
    let again = Again {
        first: &first,
        avoid: rule == SecondAttempt::Avoid,
        by_key: rule == SecondAttempt::Key,
        quenched: !waits,
    };
    let second = router.route_again(g, from, target, (htl, cap), Some(&again), |v| holdings.place(v, block).is_some());
    (first, Some(second))
}
