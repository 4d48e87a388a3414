//! Trying a block again through other routes before giving up on it (issue 14, item 4).
//!
//! One failed request is not the network's last word. A friend that answers `Accepted` and
//! then stays silent, an overloaded route, a deadline spent on a slow path: each ends one
//! request, and the node remembers the culprit (backoff, the silence penalty), so a
//! *fresh* request for the same key is routed around it. The client pipelines therefore
//! send a failed block again, up to [`BLOCK_TRIES`] requests in all, before its failure
//! counts: an insert job fails only when a block failed every try, a fetch gives the block
//! up to FEC only then.
//!
//! Only failures a new request may not meet again are retried ([`worth_retrying`]): a
//! timeout and "no route" (every peer tried or rejected with overload while hops remained).
//! "Not found" is the network's considered answer after a full search (and the node
//! quenches the key for half a minute, so an immediate retry would only be refused), bad
//! data and local failures are not the route's fault.
//!
//! A fetch is the exception (issue 20, session 9): a block not found is asked for once
//! more ([`Tries::retry_fetch`]), and the node sends that second attempt, after the key's
//! quench, through other first hops than the failed one (`node/second_attempt.rs`): a
//! route that missed an online holder often finds it from another side. It costs one more
//! request per block not found, never more: a second "not found" is final, and the node
//! refuses a third (the quench).
//!
//! Sans-IO: [`Tries`] counts, the async pipelines send.

use std::collections::HashMap;

use pamphlet_crypto::RoutingKey;

use crate::node::{Failure, RetryCause};

/// Requests sent for one block (or one USK edition probe) before its failure counts: the
/// first and two retries. Each costs at most one request deadline, so a block that fails
/// every time delays its job by three deadlines, not forever.
pub const BLOCK_TRIES: u32 = 3;

/// Whether a block that failed with `failure` may succeed on a fresh request: the route
/// failed (timed out, or ran out of peers that would take it), not the search.
pub fn worth_retrying(failure: &Failure) -> bool {
    match failure {
        Failure::TimedOut { .. } | Failure::RouteNotFound { .. } => true,
        Failure::NotFound { .. }
        | Failure::InvalidData
        | Failure::RetryLater { .. }
        | Failure::Unavailable
        | Failure::Cancelled
        | Failure::Collision
        | Failure::BadInput
        | Failure::Io
        | Failure::Internal => false,
    }
}

/// Whether a USK edition probe that failed with `failure` says the edition does not exist
/// (yet): a full search found nothing (`not_found`), every route was tried while hops
/// remained (`no_route`, the usual answer on a small network), or the key was not found
/// here moments ago (quenched). Anything else (a timeout, a busy key, a block that did not
/// verify, a local failure) leaves the edition unknown: "not sure", and the search must
/// not take it for absent.
pub fn settles_absence(failure: &Failure) -> bool {
    match failure {
        Failure::NotFound { .. }
        | Failure::RouteNotFound { .. }
        | Failure::RetryLater { cause: RetryCause::RecentlyFailed } => true,
        Failure::TimedOut { .. }
        | Failure::RetryLater { .. }
        | Failure::InvalidData
        | Failure::Unavailable
        | Failure::Cancelled
        | Failure::Collision
        | Failure::BadInput
        | Failure::Io
        | Failure::Internal => false,
    }
}

/// Requests sent per block of one job, and the retries among them.
#[derive(Debug, Default)]
pub struct Tries {
    /// Requests sent so far per block that failed at least once.
    sent: HashMap<RoutingKey, u32>,
    /// Retries sent in all (what the job reports).
    retries: usize,
    /// Blocks a sink could not keep for good (full store area, or cache only); also
    /// reported by the job: the document may not last.
    displaced: usize,
    /// Blocks whose "not found" was asked once more, with that first failure: a second
    /// request the node answers "recently failed" (it makes no second attempt: the
    /// default, or no peer left) settles nothing new, and the block was simply not found.
    not_found: HashMap<RoutingKey, Failure>,
}

impl Tries {
    /// A request for `key` failed with `failure`: whether to send a fresh one (counted as a
    /// retry). False once the block has had [`BLOCK_TRIES`] requests, or when the failure
    /// is not worth retrying.
    pub fn retry(&mut self, key: RoutingKey, failure: &Failure) -> bool {
        if !worth_retrying(failure) {
            return false;
        }
        let sent = self.sent.entry(key).or_insert(1);
        if *sent >= BLOCK_TRIES {
            return false;
        }
        *sent += 1;
        self.retries += 1;
        true
    }

    /// A fetch of `key` failed with `failure`: as [`Tries::retry`], and a "not found" is
    /// also worth one more request (the node's second attempt), once per block; that
    /// request is the block's last, however it fails.
    pub fn retry_fetch(&mut self, key: RoutingKey, failure: &Failure) -> bool {
        if !matches!(failure, Failure::NotFound { .. }) {
            return self.retry(key, failure);
        }
        let sent = self.sent.entry(key).or_insert(1);
        if *sent >= BLOCK_TRIES {
            return false;
        }
        *sent = BLOCK_TRIES;
        self.retries += 1;
        self.not_found.insert(key, failure.clone());
        true
    }

    /// The failure to report for `key`'s last request: its own, except that "recently
    /// failed" after a "not found" asked once more is that "not found" (not "try again
    /// later", nor a sign of overload).
    pub fn settle(&self, key: RoutingKey, failure: Failure) -> Failure {
        match (&failure, self.not_found.get(&key)) {
            (Failure::RetryLater { cause: RetryCause::RecentlyFailed }, Some(first)) => first.clone(),
            _ => failure,
        }
    }

    /// Retries sent so far.
    pub fn retries(&self) -> usize {
        self.retries
    }

    /// A block was stored by displacing older data somewhere on its route.
    pub fn note_displaced(&mut self) {
        self.displaced += 1;
    }

    /// Blocks stored by displacing older data, so far.
    pub fn displaced(&self) -> usize {
        self.displaced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_tried_at_most_three_times_and_only_for_route_failures() {
        let mut t = Tries::default();
        let (a, b) = (RoutingKey([1; 32]), RoutingKey([2; 32]));
        let timed_out = Failure::TimedOut { htl_left: Some(3), peers_tried: 1 };
        assert!(t.retry(a, &timed_out));
        assert!(t.retry(a, &Failure::RouteNotFound { htl_left: Some(2), peers_tried: 4 }));
        assert!(!t.retry(a, &timed_out), "three requests in all");
        assert!(!t.retry(b, &Failure::NotFound { htl: Some(18), peers_tried: Some(3) }));
        assert!(!t.retry(b, &Failure::RetryLater { cause: RetryCause::RecentlyFailed }));
        assert!(t.retry(b, &timed_out), "a key's count is its own");
        assert_eq!(t.retries(), 3);
    }

    #[test]
    fn a_fetch_asks_a_block_not_found_once_more() {
        let mut t = Tries::default();
        let (a, b) = (RoutingKey([1; 32]), RoutingKey([2; 32]));
        let not_found = Failure::NotFound { htl: Some(18), peers_tried: Some(3) };
        assert!(t.retry_fetch(a, &not_found), "the second attempt");
        let recently = Failure::RetryLater { cause: RetryCause::RecentlyFailed };
        assert_eq!(t.settle(a, recently.clone()), not_found, "no second attempt made: still not found");
        assert_eq!(t.settle(b, recently.clone()), recently, "a key never asked again keeps its failure");
        assert!(!t.retry_fetch(a, &not_found), "a second 'not found' is final");
        assert!(!t.retry_fetch(a, &Failure::RouteNotFound { htl_left: Some(4), peers_tried: 2 }), "so is all else");
        assert!(!t.retry_fetch(a, &Failure::RetryLater { cause: RetryCause::RecentlyFailed }));
        let timed_out = Failure::TimedOut { htl_left: Some(3), peers_tried: 1 };
        assert!(t.retry_fetch(b, &timed_out));
        assert!(t.retry_fetch(b, &not_found));
        assert!(!t.retry_fetch(b, &timed_out), "three requests in all");
        assert_eq!(t.retries(), 3);
        assert!(!Tries::default().retry(a, &not_found), "an insert's 'not found' is not retried");
    }

    #[test]
    fn only_a_real_search_settles_that_an_edition_is_absent() {
        assert!(settles_absence(&Failure::NotFound { htl: None, peers_tried: None }));
        assert!(settles_absence(&Failure::RouteNotFound { htl_left: Some(5), peers_tried: 3 }));
        assert!(settles_absence(&Failure::RetryLater { cause: RetryCause::RecentlyFailed }));
        assert!(!settles_absence(&Failure::TimedOut { htl_left: Some(9), peers_tried: 1 }));
        assert!(!settles_absence(&Failure::RetryLater { cause: RetryCause::InProgress }));
        assert!(!settles_absence(&Failure::InvalidData));
        assert!(!settles_absence(&Failure::Unavailable));
    }
}
