//! Routing on the graph of online nodes, computed rather than sent as messages.
//!
//! Months of traffic on 10,000 nodes are far too many messages to pass between real
//! `Node`s (the message-level simulator runs about a thousand fetches a second), and what
//! durability depends on is *where* a block goes and *who* a fetch reaches, not the
//! messages' timing. So a route here is the path a `Node` request would take, computed
//! on the friend graph restricted to the nodes online at that hour: greedy by the
//! neighbours' locations (with `Rules::foaf`, the default since session 10, by the
//! closest of each neighbour's own and its online neighbours' locations, as the node
//! routes; otherwise by their own), each node visited once, backtracking from a node with
//! no untried online neighbour, one hop of HTL spent per node entered (HTL 18, decremented
//! every hop: the real node's probabilistic decrements at 18 and 1 are left out), ending
//! when a fetch finds the block or the hops run out. Costs are counted per hop: a request
//! and its answer (two messages), and the block's 32 KiB on every hop it crosses. What
//! this leaves out: overload and backoff, timeouts, and attackers.

use crate::location::Location;

/// Hops-to-live of every request and insert.
pub(crate) const HTL: u32 = 18;

/// Scratch space for routes (a visit mark per node, reused without clearing).
pub(crate) struct Router {
    mark: Vec<u32>,
    generation: u32,
    /// With FOAF routing (`Rules::foaf`): each node's online neighbours' locations,
    /// sorted, node `i`'s at `foaf[foaf_at[i]..foaf_at[i + 1]]` (one slab: this is read
    /// for every neighbour of every hop, and a vector per node scattered them over the
    /// heap); rebuilt every hour by [`Router::set_foaf`]. `foaf_at` empty: routes by own
    /// locations.
    foaf: Vec<u64>,
    foaf_at: Vec<usize>,
    /// The same online neighbours of each node with their locations, in adjacency order,
    /// at the same offsets: what a route tries from a node, without the offline two thirds.
    neighbours: Vec<(u32, u64)>,
    /// Per node, what the route now running (its `generation`) learnt of its FOAF
    /// distance to the key: a route that backtracks ranks the same neighbours again.
    foaf_memo: Vec<FoafMemo>,
    /// While set, routes ignore `foaf` (an insert by own locations, `Foaf::Fetches`).
    own_only: bool,
    /// Whether routes record [`Route::sent`], which only a second attempt by the key
    /// reads (`SecondAttempt::Key`); off, every route skips a push per hop.
    pub(crate) record_sent: bool,
}

/// A node's closest online neighbours to one route's key ([`nearest_two`]), for the route
/// stamped `generation`.
#[derive(Clone, Copy, Debug, Default)]
struct FoafMemo {
    generation: u32,
    best: u64,
    best_at: u64,
    second: u64,
}

impl FoafMemo {
    /// The distance to the key from the closest neighbour not at `except` (the node that
    /// asks: a node does not route back through the one it came from).
    fn without(&self, except: u64) -> u64 {
        if self.best_at == except {
            self.second
        } else {
            self.best
        }
    }
}

/// Of the sorted locations `f` (a node's online neighbours'), the distance to `target` of
/// the closest, its location, and the distance of the closest at another location:
/// `(best, best_at, second)`, `u64::MAX` for none.
fn nearest_two(f: &[u64], target: Location) -> (u64, u64, u64) {
    let n = f.len();
    let i = f.partition_point(|&l| l < target.0);
    // The two closest on each side (the circle wraps: below the first is the last) hold
    // the closest and the closest other. (Plain loops: this runs for every neighbour of
    // every hop, and the iterator chains they replaced were most of the debug build's
    // test time.)
    let wrap = |x: usize| if x >= n { x - n } else { x };
    let mut candidates = [u64::MAX; 4];
    let mut c = 0;
    for k in 0..2.min(n) {
        for x in [wrap(i + k), wrap(i + n - 1 - k)] {
            candidates[c] = f[x];
            c += 1;
        }
    }
    let (mut best, mut best_at) = (u64::MAX, u64::MAX);
    for &l in &candidates[..c] {
        let d = Location(l).distance(target);
        if d < best {
            (best, best_at) = (d, l);
        }
    }
    let mut second = u64::MAX;
    for &l in &candidates[..c] {
        if l != best_at {
            second = second.min(Location(l).distance(target));
        }
    }
    (best, best_at, second)
}

/// Where a route went.
#[derive(Debug, Default)]
pub(crate) struct Route {
    /// Nodes entered, in order (not the origin).
    pub(crate) visited: Vec<u32>,
    /// The path from the origin (first) to where the route stopped (last), without the
    /// branches it backtracked from: the way an answer comes back.
    pub(crate) path: Vec<u32>,
    /// Whether `stop` said yes (the last node of `path` is where).
    pub(crate) found: bool,
    /// The HTL each node of `visited` was entered with (before its hop was spent).
    pub(crate) arrived: Vec<u32>,
    /// The origin's neighbours the route was sent to, in order (the request's first hops).
    pub(crate) first_hops: Vec<u32>,
    /// The nodes (not the origin) whose hops ran out, which quench the key, with the HTL
    /// the route arrived there with.
    pub(crate) quenched: Vec<(u32, u32)>,
    /// Every hop sent, (from, to) in order: what each node knows of where it sent the
    /// request (a second attempt by the key routes around it, [`Again::by_key`]). Empty
    /// unless the router was asked to record it ([`Router::record_sent`]).
    pub(crate) sent: Vec<(u32, u32)>,
}

impl Route {
    /// The peers `node`, entered from `upstream`, routes a repeat around when its hops ran
    /// out in this (failed) route: those it sent this route to, if it has another online
    /// peer beside them and the upstream (else none: it routes as ever, as the node does).
    fn detour(&self, g: &Graph<'_>, node: u32, upstream: u32) -> Vec<u32> {
        let sent: Vec<u32> = self.sent.iter().filter(|s| s.0 == node).map(|s| s.1).collect();
        let others =
            g.adjacency[node as usize].iter().any(|&j| g.online[j as usize] && j != upstream && !sent.contains(&j));
        if others {
            sent
        } else {
            Vec::new()
        }
    }
}

/// A second attempt for a key after `first` failed (`Rules::second_attempt`): what the
/// originator knows of the failure is the first hops it sent it to.
pub(crate) struct Again<'r> {
    /// The failed attempt.
    pub(crate) first: &'r Route,
    /// The second route never enters the failed attempt's first hops (an ideal: relays do
    /// not know them); false: only the origin skips them, relays route as ever.
    pub(crate) avoid: bool,
    /// Every node whose hops ran out in the failed attempt (its quenched nodes, and the
    /// origin) routes the second around the peers it sent the failed one to, if the second
    /// arrives with no more HTL than the failed one did (the node's rule since session 10,
    /// `node/second_attempt.rs`; a node left with no other peer routes as ever).
    pub(crate) by_key: bool,
    /// Relays on the failed attempt's path quenched the key (`routing/quench.rs`): one
    /// entered with no more HTL than the failed attempt brought it answers "not found" at
    /// once, which costs the request [`NOT_FOUND_CAP`] hops, and the route backtracks.
    pub(crate) quenched: bool,
}

/// What one "not found" answer may cost a request, in hops: the node's default
/// `NodeConfig::not_found_cap` (test `the_quench_cost_is_the_nodes_not_found_cap`).
pub(crate) const NOT_FOUND_CAP: u32 = 4;

/// The graph and who is online: what a route needs.
pub(crate) struct Graph<'a> {
    pub(crate) adjacency: &'a [Vec<u32>],
    pub(crate) online: &'a [bool],
    pub(crate) location: &'a [Location],
}

impl Graph<'_> {
    /// Whether at most `rank - 1` of `node`'s online neighbours are closer to `target`
    /// than it is (`rank` 1: it is a sink, closer than all its peers, as `Node::is_sink`).
    pub(crate) fn is_sink(&self, node: usize, target: Location, rank: usize) -> bool {
        self.is_sink_without(node, target, rank, usize::MAX)
    }

    /// [`Graph::is_sink`] as if `absent` were offline: whether `node` is where inserts of
    /// `target` go while `absent` is away.
    pub(crate) fn is_sink_without(&self, node: usize, target: Location, rank: usize, absent: usize) -> bool {
        if rank == 0 {
            return false;
        }
        let d = self.location[node].distance(target);
        let mut closer = 0;
        for &j in &self.adjacency[node] {
            let j = j as usize;
            if j != absent && self.online[j] && self.location[j].distance(target) < d {
                closer += 1;
                if closer == rank {
                    return false;
                }
            }
        }
        true
    }
}

impl Graph<'_> {
    /// Whether `node`, whose uptime is `uptime[node]`, keeps an insert of `target` in its
    /// store area under the uptime rule: its own uptime is at least `min`, and none of its
    /// online peers whose uptime is at least `min` is closer to `target` (a sink among the
    /// peers that are there most of the time).
    pub(crate) fn is_steady_sink(&self, node: usize, target: Location, uptime: &[f32], min: f32) -> bool {
        if uptime[node] < min {
            return false;
        }
        let d = self.location[node].distance(target);
        !self.adjacency[node].iter().any(|&j| {
            let j = j as usize;
            self.online[j] && uptime[j] >= min && self.location[j].distance(target) < d
        })
    }
}

impl Router {
    pub(crate) fn new(nodes: usize) -> Self {
        Router {
            mark: vec![0; nodes],
            generation: 0,
            foaf: Vec::new(),
            foaf_at: Vec::new(),
            neighbours: Vec::new(),
            foaf_memo: Vec::new(),
            own_only: false,
            record_sent: false,
        }
    }

    /// Routes from now on rank a neighbour by the smaller of its own distance to the key and
    /// its closest online neighbour's (the node's FOAF routing, `routing::peers`), with the
    /// graph as it is now, and take each node's online neighbours from lists made here
    /// (call again whenever who is online or where changes: until then routes see the
    /// graph as it was).
    pub(crate) fn set_foaf(&mut self, g: &Graph<'_>) {
        self.foaf.clear();
        self.foaf_at.clear();
        self.neighbours.clear();
        self.foaf_at.push(0);
        self.foaf_memo.resize(g.adjacency.len(), FoafMemo::default());
        for (i, adjacent) in g.adjacency.iter().enumerate() {
            let start = self.foaf.len();
            if g.online[i] {
                self.neighbours
                    .extend(adjacent.iter().filter(|&&j| g.online[j as usize]).map(|&j| (j, g.location[j as usize].0)));
                self.foaf.extend(self.neighbours[start..].iter().map(|&(_, at)| at));
                self.foaf[start..].sort_unstable();
            }
            self.foaf_at.push(self.foaf.len());
        }
    }

    /// The distance from `target` to the closest of `node`'s online neighbours other than
    /// the one at `except` (the node routing, which its peers advertise too) (FOAF), for
    /// the route stamped `generation` (whose key `target` is).
    fn foaf_distance(&mut self, node: usize, target: Location, except: u64, generation: u32) -> u64 {
        let memo = &mut self.foaf_memo[node];
        if memo.generation != generation {
            let (best, best_at, second) = nearest_two(&self.foaf[self.foaf_at[node]..self.foaf_at[node + 1]], target);
            *memo = FoafMemo { generation, best, best_at, second };
        }
        memo.without(except)
    }

    /// Routes from `from` towards `target` with [`HTL`] hops, stopping early at the first
    /// entered node for which `stop` is true.
    pub(crate) fn route(
        &mut self,
        g: &Graph<'_>,
        from: usize,
        target: Location,
        stop: impl FnMut(usize) -> bool,
    ) -> Route {
        self.route_htl(g, from, target, HTL, stop)
    }

    /// An insert's route from `from` towards `target`: all [`HTL`] hops, by FOAF locations
    /// if `foaf` (and [`Router::set_foaf`] was called), else by own locations.
    pub(crate) fn route_insert(&mut self, g: &Graph<'_>, from: usize, target: Location, foaf: bool) -> Route {
        self.own_only = !foaf;
        let route = self.route(g, from, target, |_| false);
        self.own_only = false;
        route
    }

    /// [`Router::route`] with `htl` hops.
    pub(crate) fn route_htl(
        &mut self,
        g: &Graph<'_>,
        from: usize,
        target: Location,
        htl: u32,
        stop: impl FnMut(usize) -> bool,
    ) -> Route {
        self.route_again(g, from, target, (htl, u32::MAX), None, stop)
    }

    /// [`Router::route_htl`], as a second attempt after `again.first` failed (None: a
    /// first attempt), a "not found" from downstream costing a node at most `cap` of its
    /// hops before it tries its next peer (the node's `not_found_cap`; `u32::MAX`: all,
    /// the route as it always was in the model: it backtracks only from dead ends).
    pub(crate) fn route_again(
        &mut self,
        g: &Graph<'_>,
        from: usize,
        target: Location,
        (htl, cap): (u32, u32),
        again: Option<&Again<'_>>,
        mut stop: impl FnMut(usize) -> bool,
    ) -> Route {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.mark.iter_mut().for_each(|m| *m = 0);
            self.foaf_memo.iter_mut().for_each(|m| m.generation = 0);
            self.generation = 1;
        }
        let gen = self.generation;
        self.mark[from] = gen;
        let skip: &[u32] = again.map_or(&[], |a| &a.first.first_hops);
        if again.is_some_and(|a| a.avoid) {
            skip.iter().for_each(|&j| self.mark[j as usize] = gen);
        }
        // The relays that quenched the key in the failed attempt, with the HTL it had there.
        let quench: &[(u32, u32)] = match again {
            Some(a) if a.quenched => &a.first.quenched,
            _ => &[],
        };
        // By the key: the nodes that failed it, with the HTL it arrived there with.
        let failed: &[(u32, u32)] = match again {
            Some(a) if a.by_key => &a.first.quenched,
            _ => &[],
        };
        let mut route = Route { path: vec![from as u32], ..Route::default() };
        // Per node of `path`: the HTL it has left, and the HTL it arrived with.
        let (mut left, mut arrived_at) = (vec![htl], vec![htl]);
        // Per node of `path`: the peers it routes around (by the key), empty for most.
        let mut around: Vec<Vec<u32>> = vec![Vec::new()];
        while let (Some(&cur), Some(&h)) = (route.path.last(), left.last()) {
            let foaf = !self.foaf_at.is_empty() && !self.own_only;
            let at_origin = cur as usize == from;
            let avoid: &[u32] = around.last().map_or(&[], |v| v.as_slice());
            // The untried online neighbour closest to the key (by FOAF or own location,
            // ties by own location, then index). A plain loop rather than an iterator chain:
            // it is the model's innermost loop, and debug builds (the tests) pay for every
            // adapter.
            let mut next: Option<(u64, u64, u32)> = None;
            if h > 0 {
                let cur_loc = g.location[cur as usize].0;
                let mut consider = |router: &mut Router, j: u32, at: u64| {
                    if router.mark[j as usize] == gen || (at_origin && skip.contains(&j)) || avoid.contains(&j) {
                        return;
                    }
                    let own = Location(at).distance(target);
                    let effective =
                        if foaf { own.min(router.foaf_distance(j as usize, target, cur_loc, gen)) } else { own };
                    let key = (effective, own, j);
                    if next.is_none_or(|best| key < best) {
                        next = Some(key);
                    }
                };
                if !self.foaf_at.is_empty() && g.online[cur as usize] {
                    // The online neighbours listed by `set_foaf` (a third of all of them).
                    let (a, b) = (self.foaf_at[cur as usize], self.foaf_at[cur as usize + 1]);
                    for k in a..b {
                        let (j, at) = self.neighbours[k];
                        consider(self, j, at);
                    }
                } else {
                    for &j in &g.adjacency[cur as usize] {
                        if g.online[j as usize] {
                            consider(self, j, g.location[j as usize].0);
                        }
                    }
                }
            }
            let answer = match next.map(|(_, _, j)| j) {
                Some(j) => {
                    self.mark[j as usize] = gen;
                    route.visited.push(j);
                    route.arrived.push(h);
                    if self.record_sent {
                        route.sent.push((cur, j));
                    }
                    if at_origin {
                        route.first_hops.push(j);
                    }
                    route.path.push(j);
                    if stop(j as usize) {
                        route.found = true;
                        return route;
                    }
                    if !quench.iter().any(|&(q, qh)| q == j && h <= qh) {
                        left.push(h - 1);
                        arrived_at.push(h);
                        around.push(match again {
                            Some(a) if failed.iter().any(|&(q, qh)| q == j && h <= qh) => a.first.detour(g, j, cur),
                            _ => Vec::new(),
                        });
                        continue;
                    }
                    // Quenched: "not found" at once, which costs at most the node's cap.
                    route.path.pop();
                    if let Some(up) = left.last_mut() {
                        *up = up.saturating_sub(cap.min(NOT_FOUND_CAP));
                    }
                    continue;
                }
                None => {
                    // `cur` ends: "not found" when its hops ran out (it quenches the key),
                    // else "no route" with the hops it has left.
                    route.path.pop();
                    left.pop();
                    around.pop();
                    let arrived = arrived_at.pop().unwrap_or(0);
                    if h == 0 && !at_origin {
                        route.quenched.push((cur, arrived));
                    }
                    h
                }
            };
            if let Some(up) = left.last_mut() {
                *up = (*up).min(answer.max(up.saturating_sub(cap)));
            }
        }
        route
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of 40 nodes at i/40, all online but node 11.
    fn ring() -> (Vec<Vec<u32>>, Vec<bool>, Vec<Location>) {
        let n = 40u32;
        let adj = (0..n).map(|i| vec![(i + n - 1) % n, (i + 1) % n]).collect();
        let mut online = vec![true; n as usize];
        online[11] = false;
        let loc = (0..n).map(|i| Location::from_f64(f64::from(i) / f64::from(n))).collect();
        (adj, online, loc)
    }

    #[test]
    fn routes_greedily_around_offline_nodes_within_the_hops() {
        let (adj, online, loc) = ring();
        let g = Graph { adjacency: &adj, online: &online, location: &loc };
        let mut r = Router::new(40);
        let route = r.route(&g, 0, Location::from_f64(5.0 / 40.0), |i| i == 5);
        assert!(route.found);
        assert_eq!(route.path, vec![0, 1, 2, 3, 4, 5]);
        // Node 11 is offline: the ring is cut there, and 18 hops the other way do not reach 12.
        let route = r.route(&g, 10, Location::from_f64(12.0 / 40.0), |i| i == 12);
        assert!(!route.found);
        assert_eq!(route.visited.len(), HTL as usize, "it backtracked and spent every hop");
        assert!(!route.visited.contains(&11));
    }

    #[test]
    fn sinks_are_the_nodes_no_online_peer_beats() {
        let (adj, online, loc) = ring();
        let g = Graph { adjacency: &adj, online: &online, location: &loc };
        let target = Location::from_f64(11.2 / 40.0);
        assert!(g.is_sink(12, target, 1), "11 is offline, so 12 is the closest online");
        assert!(g.is_sink(10, target, 1), "10's only online peer, 9, is farther");
        assert!(!g.is_sink(13, target, 1));
        assert!(g.is_sink(13, target, 2), "one peer closer is allowed at rank 2");
        assert!(g.is_sink_without(13, target, 1, 12), "with 12 away, 13 is where inserts go");
        let mut uptime = vec![0.9f32; 40];
        uptime[12] = 0.2;
        assert!(!g.is_steady_sink(12, target, &uptime, 0.5), "12 is rarely online: it caches");
        assert!(g.is_steady_sink(13, target, &uptime, 0.5), "13's only closer peer, 12, is rarely online");
        assert!(!g.is_steady_sink(14, target, &uptime, 0.5));
    }

    /// The memo's answer is the closest neighbour's distance with the asking node's
    /// location left out, whatever the list and the key (against a search of every entry).
    #[test]
    fn the_two_nearest_answer_as_a_search_of_every_neighbour() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let n = rng.gen_range(0..8);
            let mut f: Vec<u64> = (0..n).map(|_| rng.gen()).collect();
            f.sort_unstable();
            let target = Location(rng.gen());
            let except = if n > 0 && rng.gen_bool(0.7) { f[rng.gen_range(0..n)] } else { rng.gen() };
            let (best, best_at, second) = nearest_two(&f, target);
            let memo = FoafMemo { generation: 1, best, best_at, second };
            let search = f.iter().filter(|&&l| l != except).map(|&l| Location(l).distance(target)).min();
            assert_eq!(memo.without(except), search.unwrap_or(u64::MAX), "{f:?} {target:?} {except}");
        }
    }

    #[test]
    fn foaf_routing_goes_to_the_neighbour_next_to_the_key() {
        // 0 knows 1 (at 0.85, a dead end) and 2 (at 0.5), which knows 3, at the key (0.9).
        let adj = vec![vec![1, 2], vec![0], vec![0, 3], vec![2]];
        let online = vec![true; 4];
        let loc: Vec<Location> = [0.0, 0.85, 0.5, 0.9].iter().map(|&x| Location::from_f64(x)).collect();
        let g = Graph { adjacency: &adj, online: &online, location: &loc };
        let target = Location::from_f64(0.9);
        let mut r = Router::new(4);
        let own = r.route(&g, 0, target, |i| i == 3);
        assert_eq!(own.visited, vec![1, 2, 3], "by own locations: 1 first (0.85), a dead end");
        r.set_foaf(&g);
        let foaf = r.route(&g, 0, target, |i| i == 3);
        assert_eq!(foaf.visited, vec![2, 3], "2 advertises 3, at the key");
    }

    /// A ring of 40 nodes at i/40 where node 0 also knows 20; a holder at 35.
    fn ring_with_chord() -> (Vec<Vec<u32>>, Vec<bool>, Vec<Location>) {
        let (mut adj, mut online, loc) = ring();
        online[11] = true;
        adj[0].push(20);
        adj[20].push(0);
        (adj, online, loc)
    }

    #[test]
    fn a_second_attempt_leaves_through_another_first_hop() {
        let (adj, online, loc) = ring_with_chord();
        let g = Graph { adjacency: &adj, online: &online, location: &loc };
        let mut r = Router::new(40);
        // The key at 24.5/40: 0's best peer is 20, but only 35 holds the block (6 hops go
        // 20, 21, .., 25).
        let target = Location::from_f64(24.5 / 40.0);
        let first = r.route_htl(&g, 0, target, 6, |i| i == 35);
        assert!(!first.found);
        assert_eq!(first.first_hops, vec![20]);
        assert_eq!(first.arrived[..2], [6, 5]);
        for avoid in [false, true] {
            let again = Again { first: &first, avoid, by_key: false, quenched: false };
            let second = r.route_again(&g, 0, target, (6, u32::MAX), Some(&again), |i| i == 35);
            assert_eq!(second.first_hops, vec![39], "the other side of the ring");
            assert_eq!(second.visited, vec![39, 38, 37, 36, 35]);
            assert!(second.found);
        }
    }

    #[test]
    fn relays_that_quenched_the_key_end_a_second_attempt_that_comes_too_soon() {
        // 0 knows 1 and 2, both know 3, which knows 4: the key at 0.9.
        let adj = vec![vec![1, 2], vec![0, 3], vec![0, 3], vec![1, 2, 4], vec![3]];
        let online = vec![true; 5];
        let loc: Vec<Location> = [0.0, 0.5, 0.4, 0.6, 0.7].iter().map(|&x| Location::from_f64(x)).collect();
        let g = Graph { adjacency: &adj, online: &online, location: &loc };
        let target = Location::from_f64(0.9);
        let mut r = Router::new(5);
        let first = r.route_htl(&g, 0, target, 3, |_| false);
        assert_eq!(first.visited, vec![1, 3, 4]);
        assert_eq!(first.quenched, vec![(4, 1), (3, 2), (1, 3)]);
        // (Had the block come to 4 since,) a second attempt through 2 reaches it...
        let fresh = Again { first: &first, avoid: false, by_key: false, quenched: false };
        let second = r.route_again(&g, 0, target, (3, u32::MAX), Some(&fresh), |i| i == 4);
        assert_eq!((second.visited.clone(), second.found), (vec![2, 3, 4], true));
        // ...unless 3 still quenches the key: it answers "not found" at once.
        let soon = Again { quenched: true, ..fresh };
        let second = r.route_again(&g, 0, target, (3, u32::MAX), Some(&soon), |i| i == 4);
        assert_eq!((second.visited, second.found), (vec![2, 3], false));
    }

    #[test]
    fn by_the_key_a_relay_that_failed_routes_the_second_attempt_around_its_failed_hop() {
        // 0 knows 1 and 2, which both know 3; 3's best peer 4 leads into a chain without
        // the block (4, 7, 8, 9), its next best, 5, to the holder 6. The key at 0.9.
        let adj = vec![
            vec![1, 2],
            vec![0, 3],
            vec![0, 3],
            vec![1, 2, 4, 5],
            vec![3, 7],
            vec![3, 6],
            vec![5],
            vec![4, 8],
            vec![7, 9],
            vec![8],
        ];
        let online = vec![true; 10];
        let loc: Vec<Location> =
            [0.0, 0.5, 0.45, 0.6, 0.85, 0.7, 0.72, 0.84, 0.83, 0.82].iter().map(|&x| Location::from_f64(x)).collect();
        let g = Graph { adjacency: &adj, online: &online, location: &loc };
        let target = Location::from_f64(0.9);
        let mut r = Router::new(10);
        r.record_sent = true;
        let first = r.route_htl(&g, 0, target, 5, |i| i == 6);
        assert_eq!((first.visited.clone(), first.found), (vec![1, 3, 4, 7, 8], false));
        assert!(first.sent.contains(&(3, 4)) && first.quenched.contains(&(3, 4)));
        // The originator alone detours (session 9): 3 sends the repeat to 4 again.
        let next = Again { first: &first, avoid: false, by_key: false, quenched: false };
        let second = r.route_again(&g, 0, target, (5, u32::MAX), Some(&next), |i| i == 6);
        assert_eq!((second.visited, second.found), (vec![2, 3, 4, 7, 8], false));
        // By the key: 3 failed it through 4, and sends the repeat to 5.
        let key = Again { by_key: true, ..next };
        let second = r.route_again(&g, 0, target, (5, u32::MAX), Some(&key), |i| i == 6);
        assert_eq!((second.visited, second.found), (vec![2, 3, 5, 6], true));
        // A repeat that comes to 3 with more hops than the failure is not its repeat.
        let second = r.route_again(&g, 0, target, (6, u32::MAX), Some(&key), |i| i == 6);
        assert_eq!(second.visited[..3], [2, 3, 4]);
    }
}
