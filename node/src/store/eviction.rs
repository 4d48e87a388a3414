//! Which block a full store area gives up: the rule shared by the real store and the
//! durability model (`sim::durability`).
//!
//! Pure LRU forgets a block a node is the sink for as readily as one that is far from it
//! and stored there by chance (a node that has since swapped location, or a sink of a
//! key whose nearer sink was offline at insert time). [`farthest`] picks, among the few
//! least recently used blocks, the one whose key is farthest from the node's own
//! location, so blocks the network routes to this node are kept longer. Measured on and
//! off in docs/durability.md.

use crate::location::Location;

/// Index (in `keys` order) of the key farthest from `own`; the first one on a tie, so with
/// keys given least recently used first, equal distances fall back to LRU. `None` if
/// `keys` is empty.
pub fn farthest(own: Location, keys: impl IntoIterator<Item = Location>) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, k) in keys.into_iter().enumerate() {
        let d = own.distance(k);
        if best.is_none_or(|(_, bd)| d > bd) {
            best = Some((i, d));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_farthest_and_the_oldest_on_a_tie() {
        let own = Location::from_f64(0.9);
        let keys = [0.85, 0.4, 0.95, 0.4].map(Location::from_f64);
        assert_eq!(farthest(own, keys), Some(1), "0.4 is 0.5 away; the first of the two ties");
        assert_eq!(
            farthest(own, [Location::from_f64(0.1), Location::from_f64(0.6)]),
            Some(1),
            "distance is around the circle: 0.1 is 0.2 away, 0.6 is 0.3"
        );
        assert_eq!(farthest(own, []), None);
    }
}
