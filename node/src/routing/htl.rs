//! Hops-to-live and its per-link probabilistic decrement.
//!
//! A request carries an HTL of at most [`MAX_HTL`]. The node that *receives* a request
//! decrements it before routing further, according to the link the request came in on:
//!
//! - at the maximum, it decrements only if that link drew "decrement at max" (probability
//!   [`DECREMENT_AT_MAX_PROB`]); otherwise the request goes on at the maximum, so a
//!   neighbour that receives a request at max HTL cannot tell whether the sender started it
//!   or forwarded it;
//! - at 1, it decrements (ending the request here) only if the link drew "decrement at
//!   min" (probability [`DECREMENT_AT_MIN_PROB`]); otherwise the request takes one more hop
//!   at 1, so the node where a request dies does not reveal how far it came.
//!
//! Both coins are fixed **per link**, not drawn per request: if they were drawn per request,
//! an attacker could send the same request many times over one link and average the coin
//! away (Hyphanet's reasoning, kept here). The node derives them from a secret and the peer
//! id, so reconnecting does not redraw them either (`Node::add_peer`).

use rand::Rng;

use crate::id::Htl;

/// The largest hops-to-live a request may carry (Hyphanet's value).
pub const MAX_HTL: Htl = 18;

/// Probability that a link decrements a request that arrives at the maximum HTL.
pub const DECREMENT_AT_MAX_PROB: f64 = 0.5;

/// Probability that a link decrements a request that arrives at HTL 1.
pub const DECREMENT_AT_MIN_PROB: f64 = 0.25;

/// The two coins drawn for one link, fixed for the link's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkHtl {
    /// Requests that arrive over this link at the maximum HTL are decremented.
    pub decrement_at_max: bool,
    /// Requests that arrive over this link at HTL 1 are decremented (and so end here).
    pub decrement_at_min: bool,
}

impl LinkHtl {
    /// Draws the two coins for a new link.
    pub fn draw(rng: &mut impl Rng) -> Self {
        LinkHtl {
            decrement_at_max: rng.gen_bool(DECREMENT_AT_MAX_PROB),
            decrement_at_min: rng.gen_bool(DECREMENT_AT_MIN_PROB),
        }
    }

    /// The HTL a request arriving over this link with `htl` continues with (0 means it ends
    /// at this node). `max` is the node's configured maximum; larger values are clamped.
    pub fn decrement(self, htl: Htl, max: Htl) -> Htl {
        let htl = htl.min(max);
        if htl >= max && !self.decrement_at_max {
            htl
        } else if htl == 1 && !self.decrement_at_min {
            1
        } else {
            htl.saturating_sub(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    const ALWAYS: LinkHtl = LinkHtl { decrement_at_max: true, decrement_at_min: true };
    const NEVER: LinkHtl = LinkHtl { decrement_at_max: false, decrement_at_min: false };

    #[test]
    fn decrement_rules() {
        assert_eq!(ALWAYS.decrement(18, 18), 17);
        assert_eq!(NEVER.decrement(18, 18), 18);
        assert_eq!(NEVER.decrement(200, 18), 18, "over-max HTL is clamped");
        assert_eq!(ALWAYS.decrement(200, 18), 17);
        assert_eq!(NEVER.decrement(10, 18), 9);
        assert_eq!(ALWAYS.decrement(1, 18), 0);
        assert_eq!(NEVER.decrement(1, 18), 1);
        assert_eq!(NEVER.decrement(0, 18), 0);
    }

    #[test]
    fn draw_frequencies_match_probabilities() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let links: Vec<LinkHtl> = (0..n).map(|_| LinkHtl::draw(&mut rng)).collect();
        let at_max = links.iter().filter(|l| l.decrement_at_max).count() as f64 / n as f64;
        let at_min = links.iter().filter(|l| l.decrement_at_min).count() as f64 / n as f64;
        // Binomial standard deviations are ~0.0035 and ~0.003; allow about 5 of them.
        assert!((at_max - DECREMENT_AT_MAX_PROB).abs() < 0.02, "at max: {at_max}");
        assert!((at_min - DECREMENT_AT_MIN_PROB).abs() < 0.02, "at min: {at_min}");
    }
}
