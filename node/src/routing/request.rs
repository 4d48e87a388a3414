//! One request's routing state, as a value: steepest ascent with backtracking.
//!
//! A [`Request`] knows its key's location, its hops-to-live, the peers it already tried,
//! the peer it is waiting on and its deadline. It never sends anything itself: the node
//! asks it for the [`Request::next`] step given the peers ranked for the key, and tells it
//! how the peer it waited on answered ([`Request::on_reply`]). That keeps it testable
//! without a network (see the tests below, including a property test).
//!
//! Rules:
//! - a peer must say `Accepted` within a short time, then answer within a time that grows
//!   with the HTL it was given; both are capped by the request's own deadline and, with a
//!   hop share ([`Request::with_hop_share`]), by that share of the time the request has
//!   left, so a peer that accepts and then stays silent cannot use up the whole budget:
//!   backtracking always has time left (issue 14, "Accepted, then silence");
//! - each peer is tried at most once, and never the peer the request came from;
//! - DataNotFound / RouteNotFound carry the HTL left downstream; the request continues with
//!   the smaller of its own and that, so hops spent on a dead branch are spent, except that
//!   one answer may cost at most the request's not-found cap (the black-hole defence);
//! - a timeout costs one hop (the peer took at least that one);
//! - RejectedLoop, RejectedOverload, a forged block and a false answer cost none: the peer
//!   did no routing;
//! - when the HTL is 0 the request ends with DataNotFound ([`Outcome::HtlExhausted`]);
//!   when no untried peer is left, with RouteNotFound and the HTL left; when its own
//!   deadline passes, with [`Outcome::TimedOut`].

use std::time::{Duration, Instant};

use pamphlet_crypto::{BlockKind, RoutingKey};

use crate::id::PeerId;
use crate::id::{Htl, RequestId};
use crate::location::Location;

/// How the peer a request waited on answered (as far as routing cares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// DataNotFound or RouteNotFound with the HTL left downstream.
    NotFound {
        /// HTL left when the downstream gave up.
        htl: Htl,
    },
    /// The peer is already routing this key.
    RejectedLoop,
    /// The peer is overloaded.
    RejectedOverload,
    /// The peer did not answer in time.
    TimedOut,
    /// The peer answered with a block that does not verify, or with an answer no honest
    /// node gives (DataNotFound to an insert): it did no honest routing.
    Forged,
}

/// What the node should do next for a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Send the request to `peer` with link-local id `id` and `htl`, and wait until `until`.
    Forward {
        /// The next hop.
        peer: PeerId,
        /// The link-local id to use.
        id: RequestId,
        /// HTL to put in the message.
        htl: Htl,
        /// When to give up on that peer.
        until: Instant,
    },
    /// The request is over without success.
    Finish(Outcome),
}

/// How a request ended without success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its hops ran out (DataNotFound; for an insert, "it went as far as it should").
    HtlExhausted,
    /// No untried peer was left while HTL remained.
    RouteNotFound {
        /// HTL left.
        htl: Htl,
    },
    /// Its own deadline passed.
    TimedOut {
        /// HTL left.
        htl: Htl,
    },
}

/// The peer a request is waiting on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// The peer.
    pub peer: PeerId,
    /// The link-local id the request was sent with.
    pub id: RequestId,
    /// When to give up on it: first the short accept deadline, then (once it sent
    /// `Accepted`) `answer_by`.
    pub until: Instant,
    /// When to give up on an answer once the peer accepted.
    pub answer_by: Instant,
    /// Whether the peer said it accepted the request.
    pub accepted: bool,
}

/// The routing state of one fetch or insert at one node.
#[derive(Clone, Debug)]
pub struct Request {
    /// Kind of the block.
    pub kind: BlockKind,
    /// Its routing key.
    pub key: RoutingKey,
    /// The key's location.
    pub target: Location,
    htl: Htl,
    /// The peer the request came from (never routed back to).
    upstream: Option<PeerId>,
    tried: Vec<PeerId>,
    waiting: Option<Waiting>,
    deadline: Instant,
    /// Some downstream peer accepted the request and answered (not a rejection or timeout).
    reached: bool,
    /// The most HTL one NotFound answer may take away (`Htl::MAX`: all it claims).
    not_found_cap: Htl,
    /// A hop may wait at most `1 / hop_share` of the time left (1: all of it).
    hop_share: u32,
    /// Peers never sent this request (a second attempt's failed first hops).
    avoid: Vec<PeerId>,
}

impl Request {
    /// A request for `key` with `htl` hops left, from `upstream` (None: local), that must
    /// be over by `deadline`.
    pub fn new(kind: BlockKind, key: RoutingKey, htl: Htl, upstream: Option<PeerId>, deadline: Instant) -> Self {
        Request {
            kind,
            key,
            target: Location::of_key(&key),
            htl,
            upstream,
            tried: Vec::new(),
            waiting: None,
            deadline,
            reached: false,
            not_found_cap: Htl::MAX,
            hop_share: 1,
            avoid: Vec::new(),
        }
    }

    /// Bounds each hop's wait (accept and answer) at `1 / share` of the time the request has
    /// left when the hop is sent (`share` 2: at most half), so a peer that accepts and goes
    /// silent leaves time to try others. 0 and 1 mean no bound beyond the deadline.
    pub fn with_hop_share(mut self, share: u32) -> Self {
        self.hop_share = share.max(1);
        self
    }

    /// Caps what one DataNotFound / RouteNotFound may cost this request at `cap` hops,
    /// whatever HTL it claims is left: the black-hole defence (docs/routing.md). A black
    /// hole answers `DataNotFound { htl: 0 }` at once, which would otherwise end the
    /// request; with a cap the request backtracks to its next peer instead.
    pub fn with_not_found_cap(mut self, cap: Htl) -> Self {
        self.not_found_cap = cap;
        self
    }

    /// Never sends the request to `peers` (a second attempt routed around the first hops of
    /// the attempt that failed, `node/second_attempt.rs`).
    pub fn avoiding(mut self, peers: Vec<PeerId>) -> Self {
        self.avoid = peers;
        self
    }

    /// HTL left.
    pub fn htl(&self) -> Htl {
        self.htl
    }

    /// Peers tried so far, in order.
    pub fn tried(&self) -> &[PeerId] {
        &self.tried
    }

    /// The peer it is waiting on, if any.
    pub fn waiting(&self) -> Option<Waiting> {
        self.waiting
    }

    /// When the request must be over.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether some downstream peer accepted it (answered other than reject or timeout).
    pub fn reached(&self) -> bool {
        self.reached
    }

    /// The next step. `ranked` lists peers best first (see `PeerTable::ranked`); `id` is a
    /// fresh random id for the link, used if the step is a forward; the peer must accept
    /// within `accept_wait`, and answer within `hop_wait(htl)` of the HTL sent (both capped
    /// by the request's deadline).
    pub fn next(
        &mut self,
        now: Instant,
        ranked: &[PeerId],
        id: RequestId,
        accept_wait: Duration,
        hop_wait: impl Fn(Htl) -> Duration,
    ) -> Step {
        debug_assert!(self.waiting.is_none(), "next() while waiting on a peer");
        if now >= self.deadline {
            return Step::Finish(Outcome::TimedOut { htl: self.htl });
        }
        if self.htl == 0 {
            return Step::Finish(Outcome::HtlExhausted);
        }
        let upstream = self.upstream;
        let Some(&peer) =
            ranked.iter().find(|p| Some(**p) != upstream && !self.tried.contains(p) && !self.avoid.contains(p))
        else {
            return Step::Finish(Outcome::RouteNotFound { htl: self.htl });
        };
        let share = (now + (self.deadline - now) / self.hop_share).min(self.deadline);
        let answer_by = (now + hop_wait(self.htl)).min(share);
        let until = (now + accept_wait).min(answer_by);
        self.tried.push(peer);
        self.waiting = Some(Waiting { peer, id, until, answer_by, accepted: false });
        Step::Forward { peer, id, htl: self.htl, until }
    }

    /// The peer waited on accepted the request: returns the new, later deadline to wait
    /// until (None if not waiting or already accepted).
    pub fn on_accepted(&mut self) -> Option<Instant> {
        let w = self.waiting.as_mut().filter(|w| !w.accepted)?;
        w.accepted = true;
        w.until = w.answer_by;
        Some(w.until)
    }

    /// The peer waited on answered (or timed out): update the HTL and stop waiting.
    pub fn on_reply(&mut self, reply: Reply) {
        self.waiting = None;
        match reply {
            Reply::NotFound { htl } => {
                self.reached = true;
                self.htl = self.htl.min(htl.max(self.htl.saturating_sub(self.not_found_cap)));
            }
            Reply::TimedOut => self.htl = self.htl.saturating_sub(1),
            Reply::RejectedLoop | Reply::RejectedOverload | Reply::Forged => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ACCEPT: Duration = Duration::from_secs(100);

    fn wait(_: Htl) -> Duration {
        Duration::from_secs(10)
    }

    fn req(htl: Htl, upstream: Option<PeerId>, t0: Instant) -> Request {
        Request::new(BlockKind::Chk, RoutingKey([9; 32]), htl, upstream, t0 + Duration::from_secs(100))
    }

    #[test]
    fn tries_peers_in_rank_order_skipping_upstream_and_backtracks() {
        let t0 = Instant::now();
        let ranked = [PeerId(3), PeerId(1), PeerId(2)];
        let mut r = req(10, Some(PeerId(1)), t0);
        let s = r.next(t0, &ranked, 77, ACCEPT, wait);
        assert_eq!(s, Step::Forward { peer: PeerId(3), id: 77, htl: 10, until: t0 + Duration::from_secs(10) });
        r.on_reply(Reply::NotFound { htl: 6 });
        assert!(r.reached());
        let s = r.next(t0, &ranked, 78, ACCEPT, wait);
        assert!(matches!(s, Step::Forward { peer: PeerId(2), htl: 6, .. }), "{s:?}");
        r.on_reply(Reply::RejectedLoop);
        assert_eq!(r.next(t0, &ranked, 79, ACCEPT, wait), Step::Finish(Outcome::RouteNotFound { htl: 6 }));
        assert_eq!(r.tried(), &[PeerId(3), PeerId(2)]);
    }

    #[test]
    fn accept_then_answer_deadlines() {
        let t0 = Instant::now();
        let mut r = req(5, None, t0);
        let s = r.next(t0, &[PeerId(1)], 1, Duration::from_secs(2), wait);
        assert!(matches!(s, Step::Forward { until, .. } if until == t0 + Duration::from_secs(2)));
        assert_eq!(r.on_accepted(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(r.waiting().map(|w| w.until), Some(t0 + Duration::from_secs(10)));
    }

    #[test]
    fn htl_exhaustion_and_timeouts() {
        let t0 = Instant::now();
        let ranked = [PeerId(1), PeerId(2), PeerId(3)];
        let mut r = req(2, None, t0);
        r.next(t0, &ranked, 1, ACCEPT, wait);
        r.on_reply(Reply::TimedOut);
        assert_eq!(r.htl(), 1, "a timeout costs a hop");
        r.next(t0, &ranked, 2, ACCEPT, wait);
        r.on_reply(Reply::RejectedOverload);
        assert_eq!(r.htl(), 1, "a rejection costs none");
        r.next(t0, &ranked, 3, ACCEPT, wait);
        r.on_reply(Reply::NotFound { htl: 0 });
        assert_eq!(r.next(t0, &ranked, 4, ACCEPT, wait), Step::Finish(Outcome::HtlExhausted));
    }

    /// With a cap, one "not found" costs at most the cap while the request holds more; at or
    /// below the cap it is believed (how a relay at or below its cap ends a genuine miss).
    #[test]
    fn not_found_cap_bounds_what_one_answer_costs() {
        let t0 = Instant::now();
        let ranked = [PeerId(1), PeerId(2), PeerId(3), PeerId(4)];
        let mut r = req(17, Some(PeerId(9)), t0).with_not_found_cap(9);
        r.next(t0, &ranked, 1, ACCEPT, wait);
        r.on_reply(Reply::NotFound { htl: 0 });
        assert_eq!(r.htl(), 8, "17 hops, capped at 9");
        r.next(t0, &ranked, 2, ACCEPT, wait);
        r.on_reply(Reply::NotFound { htl: 6 });
        assert_eq!(r.htl(), 6, "an answer costing less than the cap is taken as it is");
        r.next(t0, &ranked, 3, ACCEPT, wait);
        r.on_reply(Reply::NotFound { htl: 0 });
        assert_eq!(r.next(t0, &ranked, 4, ACCEPT, wait), Step::Finish(Outcome::HtlExhausted), "6 <= 9: believed");
        let mut trusting = req(17, None, t0);
        trusting.next(t0, &ranked, 1, ACCEPT, wait);
        trusting.on_reply(Reply::NotFound { htl: 0 });
        assert_eq!(trusting.htl(), 0, "without a cap one answer ends it");
    }

    #[test]
    fn deadline_caps_the_wait_and_ends_the_request() {
        let t0 = Instant::now();
        let mut r = Request::new(BlockKind::Ssk, RoutingKey([1; 32]), 18, None, t0 + Duration::from_secs(4));
        let s = r.next(t0, &[PeerId(5)], 1, ACCEPT, wait);
        assert!(matches!(s, Step::Forward { until, .. } if until == t0 + Duration::from_secs(4)));
        assert_eq!(r.on_accepted(), Some(t0 + Duration::from_secs(4)));
        assert_eq!(r.on_accepted(), None, "accepting twice changes nothing");
        r.on_reply(Reply::TimedOut);
        let s = r.next(t0 + Duration::from_secs(4), &[PeerId(5), PeerId(6)], 2, ACCEPT, wait);
        assert_eq!(s, Step::Finish(Outcome::TimedOut { htl: 17 }));
    }

    /// With a hop share of 2, a peer that accepts and stays silent costs at most half of
    /// what is left: the next peer is tried with time to spare, and so on.
    #[test]
    fn a_hop_share_leaves_time_to_backtrack() {
        let t0 = Instant::now();
        let long = |_: Htl| Duration::from_secs(1000);
        let mut r = req(10, None, t0).with_hop_share(2);
        let s = r.next(t0, &[PeerId(1), PeerId(2)], 1, Duration::from_secs(10), long);
        assert!(matches!(s, Step::Forward { until, .. } if until == t0 + Duration::from_secs(10)));
        assert_eq!(r.on_accepted(), Some(t0 + Duration::from_secs(50)), "half of 100 s");
        r.on_reply(Reply::TimedOut);
        let t1 = t0 + Duration::from_secs(50);
        let s = r.next(t1, &[PeerId(1), PeerId(2)], 2, Duration::from_secs(10), long);
        assert!(matches!(s, Step::Forward { peer: PeerId(2), htl: 9, .. }), "{s:?}");
        assert_eq!(r.on_accepted(), Some(t1 + Duration::from_secs(25)), "half of the 50 s left");
        // Without the share the first hop takes the whole budget.
        let mut all = req(10, None, t0);
        all.next(t0, &[PeerId(1), PeerId(2)], 1, Duration::from_secs(10), long);
        assert_eq!(all.on_accepted(), Some(t0 + Duration::from_secs(100)));
    }

    fn arb_reply() -> impl Strategy<Value = Reply> {
        prop_oneof![
            (0u8..20).prop_map(|htl| Reply::NotFound { htl }),
            Just(Reply::RejectedLoop),
            Just(Reply::RejectedOverload),
            Just(Reply::TimedOut),
            Just(Reply::Forged),
        ]
    }

    proptest! {
        /// Whatever the peers answer, a request never tries a peer twice nor its upstream,
        /// never raises its HTL, and ends within one step per peer.
        #[test]
        fn terminates_without_repeats(
            n in 0u64..12,
            upstream in proptest::option::of(0u64..12),
            htl in 0u8..=18,
            replies in proptest::collection::vec(arb_reply(), 12),
        ) {
            let t0 = Instant::now();
            let ranked: Vec<PeerId> = (0..n).map(PeerId).collect();
            let mut r = req(htl, upstream.map(PeerId), t0);
            let mut steps = 0;
            let mut last_htl = htl;
            loop {
                steps += 1;
                prop_assert!(steps <= n as usize + 1);
                match r.next(t0, &ranked, steps as u64, ACCEPT, wait) {
                    Step::Forward { peer, htl, .. } => {
                        prop_assert!(Some(peer.0) != upstream);
                        prop_assert!(htl <= last_htl && htl > 0);
                        last_htl = htl;
                        r.on_reply(replies[steps - 1]);
                    }
                    Step::Finish(_) => break,
                }
            }
            let mut seen = r.tried().to_vec();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), r.tried().len());
        }
    }
}
