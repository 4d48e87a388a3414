//! [`Failure`]: the one failure type that travels from the node to the person.
//!
//! The sans-IO node says why an operation failed with a [`FailReason`]; its client turns
//! that into a `Failure` with [`Failure::from_reason`] (one arm per reason, no wildcard),
//! the client pipelines pass it on inside their own errors without changing its kind, the
//! API serialises it once into a job's status (`"kind": "timed_out"`, …), and the CLI
//! deserialises it back and picks its message and exit status by `match`. The kinds are by
//! culprit: the network (not found, no route, timed out, busy), a peer or publisher (data
//! that does not verify or decode), the caller (bad input, collision), or this node
//! (unavailable, cancelled, a local file, a bug). docs/api.md lists the `kind` strings.
//!
//! Nothing here is sent to peers: errors on the wire stay coarse.

use serde::{Deserialize, Serialize};

use super::event::FailReason;
use crate::id::Htl;

/// Why a fetch or insert failed, end to end. Serialised with its kind in a `kind` field
/// (the strings are stable: scripts match on them) and its details beside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Failure {
    /// The network: a request's deadline passed before an answer came back.
    #[error("timed out with {} hops left after {peers_tried} peers tried", htl_text(*.htl_left))]
    TimedOut {
        /// Hops-to-live the request still had when it gave up, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        htl_left: Option<Htl>,
        /// Peers this node tried.
        peers_tried: u32,
    },
    /// The network: the request ran its hops out without finding the data (or too few
    /// blocks of a document, or no edition of it, could be found).
    #[error("not found (searched with {} hops, {} peers tried)", htl_text(*.htl), count_text(*.peers_tried))]
    NotFound {
        /// The hops-to-live the request searched with, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        htl: Option<Htl>,
        /// Peers this node tried, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peers_tried: Option<u32>,
    },
    /// The network: every route was tried (or none exists) while hops remained.
    #[serde(rename = "no_route")]
    #[error("no route with {} hops left after {peers_tried} peers tried", htl_text(*.htl_left))]
    RouteNotFound {
        /// Hops-to-live left when the routes ran out, where known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        htl_left: Option<Htl>,
        /// Peers this node tried.
        peers_tried: u32,
    },
    /// A peer or the publisher: data arrived that does not verify or decode (a forged or
    /// corrupt block, a damaged manifest, a document whose hash does not match), or the
    /// URI's decryption key is wrong.
    #[error("invalid data")]
    InvalidData,
    /// The network or this node is busy with the key: try again later.
    #[error("busy: {cause}")]
    RetryLater {
        /// Why now is the wrong moment.
        cause: RetryCause,
    },
    /// This node: it is shutting down or its node task is gone.
    #[error("the node is not available")]
    Unavailable,
    /// This node: the operation was stopped before it ended (e.g. the node shut down).
    #[error("cancelled")]
    Cancelled,
    /// The caller: an SSK name and edition already hold different content.
    #[error("the signed slot already holds different content")]
    Collision,
    /// The caller: the request itself is unusable (an option out of range, a block that
    /// does not verify given to insert).
    #[error("bad input")]
    BadInput,
    /// This node: a local file (the resume directory, the store) could not be used.
    #[error("a local file could not be used")]
    Io,
    /// This node: a bug (a task panicked); the node's log has the details.
    #[error("internal error")]
    Internal,
}

/// Why a [`Failure::RetryLater`] asks to wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RetryCause {
    /// The key failed here moments ago and is quenched (about half a minute).
    #[error("the key failed moments ago")]
    RecentlyFailed,
    /// This node is already inserting (or otherwise using) the key.
    #[error("the key is in use by another request of this node")]
    InProgress,
    /// Every route was overloaded: the friends' request windows were full or they
    /// answered RejectedOverload (issue 18's load management).
    #[error("the network is overloaded: every route refused the request for now")]
    Overloaded,
}

fn htl_text(htl: Option<Htl>) -> String {
    htl.map_or_else(|| "unknown".to_owned(), |h| h.to_string())
}

fn count_text(n: Option<u32>) -> String {
    n.map_or_else(|| "unknown".to_owned(), |n| n.to_string())
}

impl Failure {
    /// The failure a node's [`FailReason`] means, with how many peers the node tried.
    /// One arm per reason: adding a reason fails to compile here until it has a kind.
    pub fn from_reason(reason: FailReason, peers_tried: u32) -> Self {
        match reason {
            FailReason::DataNotFound { htl } => Self::NotFound { htl: Some(htl), peers_tried: Some(peers_tried) },
            FailReason::RouteNotFound { htl_left } => Self::RouteNotFound { htl_left: Some(htl_left), peers_tried },
            FailReason::TimedOut { htl_left } => Self::TimedOut { htl_left: Some(htl_left), peers_tried },
            FailReason::RecentlyFailed => Self::RetryLater { cause: RetryCause::RecentlyFailed },
            FailReason::KeyBusy => Self::RetryLater { cause: RetryCause::InProgress },
            FailReason::InvalidBlock => Self::BadInput,
            FailReason::Overloaded => Self::RetryLater { cause: RetryCause::Overloaded },
        }
    }

    /// The stable `kind` string this failure is serialised with.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TimedOut { .. } => "timed_out",
            Self::NotFound { .. } => "not_found",
            Self::RouteNotFound { .. } => "no_route",
            Self::InvalidData => "invalid_data",
            Self::RetryLater { .. } => "retry_later",
            Self::Unavailable => "unavailable",
            Self::Cancelled => "cancelled",
            Self::Collision => "collision",
            Self::BadInput => "bad_input",
            Self::Io => "io",
            Self::Internal => "internal",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each kind, for tests that must cover them all.
    fn every_kind() -> Vec<Failure> {
        vec![
            Failure::TimedOut { htl_left: Some(3), peers_tried: 2 },
            Failure::NotFound { htl: Some(18), peers_tried: None },
            Failure::RouteNotFound { htl_left: None, peers_tried: 0 },
            Failure::InvalidData,
            Failure::RetryLater { cause: RetryCause::InProgress },
            Failure::Unavailable,
            Failure::Cancelled,
            Failure::Collision,
            Failure::BadInput,
            Failure::Io,
            Failure::Internal,
        ]
    }

    #[test]
    fn serialises_with_a_stable_kind_and_round_trips() {
        let mut kinds = std::collections::HashSet::new();
        for f in every_kind() {
            let v = serde_json::to_value(&f).unwrap();
            assert_eq!(v["kind"], f.kind(), "{v}");
            assert!(kinds.insert(f.kind()), "two kinds share {}", f.kind());
            assert_eq!(serde_json::from_value::<Failure>(v).unwrap(), f);
        }
        let v = serde_json::to_value(Failure::TimedOut { htl_left: Some(3), peers_tried: 2 }).unwrap();
        assert_eq!(v, serde_json::json!({ "kind": "timed_out", "htl_left": 3, "peers_tried": 2 }));
    }

    #[test]
    fn every_reason_has_its_own_failure() {
        let reasons = [
            FailReason::DataNotFound { htl: 18 },
            FailReason::RouteNotFound { htl_left: 7 },
            FailReason::TimedOut { htl_left: 4 },
            FailReason::RecentlyFailed,
            FailReason::KeyBusy,
            FailReason::InvalidBlock,
            FailReason::Overloaded,
        ];
        let failures: Vec<Failure> = reasons.iter().map(|r| Failure::from_reason(*r, 2)).collect();
        assert_eq!(
            failures,
            [
                Failure::NotFound { htl: Some(18), peers_tried: Some(2) },
                Failure::RouteNotFound { htl_left: Some(7), peers_tried: 2 },
                Failure::TimedOut { htl_left: Some(4), peers_tried: 2 },
                Failure::RetryLater { cause: RetryCause::RecentlyFailed },
                Failure::RetryLater { cause: RetryCause::InProgress },
                Failure::BadInput,
                Failure::RetryLater { cause: RetryCause::Overloaded },
            ]
        );
    }
}
