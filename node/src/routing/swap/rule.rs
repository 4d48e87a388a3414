//! The swap rule (Sandberg's Metropolis step, heated): whether two partners exchange
//! locations given their reveals, the temperature, and the plausibility check that is the
//! Pitch Black mitigation. Pure functions of the two reveals, so both ends decide alike.

use super::Reveal;
use crate::location::Location;
use crate::routing::peers::MAX_FOAF;

/// The Metropolis temperature of the swap rule: a swap that makes the product of
/// neighbour distances grow by a factor `r` is still taken with probability `r^(-1/T)`,
/// with `T = temperature(k, age)` for the `k` neighbours both partners reveal together and
/// the older partner's swap age (swaps it has started).
///
/// Sandberg's rule is `T = 1` (the chain then samples the posterior of locations given a
/// Kleinberg graph). From random locations that chain gets stuck in large networks: the
/// simulator and a centralised replay of the same chain agree that the ring wraps the
/// circle several times and stays locally disordered for hundreds of rounds. Two things
/// help, both measured (docs/benchmarks.md):
///
/// - A hotter chain crosses those barriers faster and still holds a converged network where
///   it is. But the product has one factor per link, so the same `T` is far hotter for
///   partners with few friends: at 48 nodes of degree 3, `T = 2` left links as long as
///   random ones. Hence the base temperature grows with the links the swap weighs: `k / 12`,
///   between 1 (Sandberg's rule, small degrees) and [`MAX_TEMPERATURE`] (two partners of
///   degree 12 or more).
/// - Annealing: young nodes swap [`HEAT`] times hotter, cooling linearly to the base over
///   their first [`COOLING_SWAPS`] swaps. A new darknet, whose nodes are all young, first
///   orders itself at large scale (the ring stops wrapping the circle) and then locally;
///   at a constant temperature the local order freezes first and traps the windings. The
///   older partner's age counts, so a newcomer joining a settled network swaps cold, and a
///   peer that lies about its age to make its partners hot gains nothing.
///
/// Both ends see both reveals, so they compute the same `T` and still decide alike.
pub fn temperature(links: usize, age: u32) -> f64 {
    let base = (links as f64 / 12.0).clamp(1.0, MAX_TEMPERATURE);
    let warm = (1.0 - f64::from(age) / f64::from(COOLING_SWAPS)).max(0.0);
    base * (1.0 + (HEAT - 1.0) * warm)
}

/// How much hotter than its base temperature a brand-new node swaps (see [`temperature`]).
pub const HEAT: f64 = 4.0;

/// Swaps (started by a node) over which its extra heat falls to none (see [`temperature`]).
pub const COOLING_SWAPS: u32 = 300;

/// The hottest base temperature (see [`temperature`]; [`HEAT`] multiplies it while young).
pub const MAX_TEMPERATURE: f64 = 2.0;

/// What [`decide`] concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Exchange locations.
    Swap,
    /// Keep them.
    Keep,
    /// One side's claims fail the plausibility check.
    Implausible,
}

/// Sum of ln(distance) from `at` to `neighbours`, with `moved` (the partner's location,
/// when the partner is a neighbour) replaced by `to` (where the partner will be).
pub(super) fn log_product(at: Location, neighbours: &[Location], moved: Option<(Location, Location)>) -> f64 {
    neighbours
        .iter()
        .map(|&n| {
            let n = match moved {
                Some((from, to)) if n == from => to,
                _ => n,
            };
            (at.distance(n).max(1) as f64).ln()
        })
        .sum()
}

/// The swap rule, the same at both ends (`a` is the initiator's reveal, `b` the
/// responder's): swap if the product of neighbour distances does not grow, else with
/// probability `(before/after)^(1/T)` with `T` from [`temperature`]; the coin is the XOR
/// of both shares.
pub fn decide(a: &Reveal, b: &Reveal, check_neighbours: bool) -> Decision {
    if check_neighbours && !(plausible(a) && plausible(b)) {
        return Decision::Implausible;
    }
    let before = log_product(a.location, &a.neighbours, None) + log_product(b.location, &b.neighbours, None);
    let after = log_product(b.location, &a.neighbours, Some((b.location, a.location)))
        + log_product(a.location, &b.neighbours, Some((a.location, b.location)));
    if after <= before {
        return Decision::Swap;
    }
    let mut coin = [0u8; 8];
    for (i, c) in coin.iter_mut().enumerate() {
        *c = a.random[i] ^ b.random[i];
    }
    let u = u64::from_be_bytes(coin) as f64 / 18_446_744_073_709_551_616.0;
    let t = temperature(a.neighbours.len() + b.neighbours.len(), a.age.max(b.age));
    if u < ((before - after) / t).exp() {
        Decision::Swap
    } else {
        Decision::Keep
    }
}

/// The Pitch Black mitigation: whether a reveal's neighbour locations are plausible.
///
/// In a darknet whose locations are uniformly random (the worst case for an honest node,
/// before any swapping) the distance from a node to a neighbour is uniform on [0, 1/2],
/// so `ln(distance)` has mean `ln(1/2) - 1` and standard deviation 1; swapping only makes
/// neighbours closer. An attacker that wants its swaps accepted must claim neighbours
/// *far* from the location it offers (Evans et al.): that makes keeping its own location
/// look costly. A reveal whose mean `ln(distance)` exceeds the uniform mean by more than
/// three standard errors (`3/sqrt(k)` for `k` neighbours) is rejected, as is one claiming
/// no neighbour or more than [`MAX_FOAF`].
pub fn plausible(r: &Reveal) -> bool {
    !r.neighbours.is_empty() && not_too_far(r.location, &r.neighbours)
}

/// The mean `ln(distance)` test of [`plausible`] (no count check beyond [`MAX_FOAF`]).
fn not_too_far(location: Location, neighbours: &[Location]) -> bool {
    let k = neighbours.len();
    if k == 0 {
        return true;
    }
    if k > MAX_FOAF {
        return false;
    }
    let mean = log_product(location, neighbours, None) / k as f64 - (u64::MAX as f64).ln();
    let uniform_mean = 0.5f64.ln() - 1.0;
    mean <= uniform_mean + 3.0 / (k as f64).sqrt()
}

/// The fewest claimed points (the peer and its neighbours) for which [`too_even`] judges.
pub const EVENNESS_MIN_POINTS: usize = 16;

/// Whether `points` cover the circle far too evenly for an honest neighbour list: the
/// largest gap between consecutive points is too small. For `n` points placed uniformly
/// at random (the most spread an honest list is: before swapping; after it, neighbours
/// cluster near the node and leave a gap of most of the circle) the largest gap `M`
/// satisfies `n*M - ln(n)` → Gumbel, so `P(n*M < ln(n) - 2) ≈ exp(-e^2) ≈ 6e-4`, while
/// `n` evenly spaced points have `n*M = 1`. A FOAF liar that spreads 64 claimed locations
/// evenly (to look closest to every key) fails this from 32 points on.
pub fn too_even(points: &[Location]) -> bool {
    let n = points.len();
    if n < EVENNESS_MIN_POINTS {
        return false;
    }
    let mut v: Vec<u64> = points.iter().map(|l| l.0).collect();
    v.sort_unstable();
    let wrap = v[0].wrapping_sub(v[n - 1]);
    let max_gap = v.windows(2).map(|w| w[1] - w[0]).fold(wrap, u64::max);
    let scaled = n as f64 * (max_gap as f64 / 18_446_744_073_709_551_616.0);
    scaled < (n as f64).ln() - 2.0
}

/// The plausibility test of a friend-of-a-friend advert (`LocationUpdate`): the same
/// statistics as a swap reveal's ([`plausible`]: not far more distant than random, at most
/// [`MAX_FOAF`]) and not far too evenly spread ([`too_even`]). An empty list is plausible
/// (a peer whose only friend is us).
pub fn plausible_neighbours(location: Location, neighbours: &[Location]) -> bool {
    if !not_too_far(location, neighbours) {
        return false;
    }
    let mut points = neighbours.to_vec();
    points.push(location);
    !too_even(&points)
}
