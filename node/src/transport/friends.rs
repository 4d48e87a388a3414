//! The transport's friend book: each friend's current addresses (its latest address
//! record), how its link is doing (for `pamphlet node friends`), and what happens when it
//! sends a new address record.
//!
//! A friend's addresses change only through `FriendBook::offer_record`: a record signed
//! by the friend's own static key with a sequence number higher than the one kept. A
//! record arriving over the friend's authenticated link, or inside a newer reference
//! added by hand, go the same way. Refusals (a stale or replayed sequence, a bad
//! signature, a malformed list) are counted per friend and logged; the link stays up,
//! since a stale copy is no attack and the addresses kept are unchanged.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::id::PeerId;
use crate::link::{AddressRecord, NodeRef, PublicKey, RecordError};

/// Seconds since the Unix epoch, now (status only: the routing core never sees it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Why the last dial of a friend failed, by what was seen on the wire. Each message says
/// what it probably means.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialFailure {
    /// TCP connected but the handshake got silence: the friend's node does not know our
    /// key (a Noise IK responder stays silent to strangers) or another node listens there.
    #[error(
        "{addr} accepted the connection but did not answer the handshake: they have not added you as a friend \
         (or another node listens there)"
    )]
    Unanswered {
        /// The address dialled.
        addr: String,
    },
    /// The answer did not complete the handshake.
    #[error("{addr} answered the handshake wrongly ({error}): a different node listens there")]
    Handshake {
        /// The address dialled.
        addr: String,
        /// The handshake error.
        error: String,
    },
    /// No TCP answer within the handshake time-out.
    #[error("no answer from {addr}: the machine is down, the address is wrong or a firewall drops it")]
    TimedOut {
        /// The address dialled.
        addr: String,
    },
    /// The machine answered that nothing listens on that port.
    #[error("{addr} refused the connection: their node is not running, or listens on another port")]
    Refused {
        /// The address dialled.
        addr: String,
    },
    /// Another socket error (no route, network unreachable, …).
    #[error("cannot reach {addr}: {error}")]
    Unreachable {
        /// The address dialled.
        addr: String,
        /// The OS's error.
        error: String,
    },
    /// A host name did not resolve.
    #[error("cannot resolve {host}: {error}")]
    Resolve {
        /// The name and port.
        host: String,
        /// The resolver's error.
        error: String,
    },
}

impl DialFailure {
    /// A stable name for scripts (`--json`).
    pub fn kind(&self) -> &'static str {
        match self {
            DialFailure::Unanswered { .. } => "unanswered",
            DialFailure::Handshake { .. } => "handshake",
            DialFailure::TimedOut { .. } => "timed_out",
            DialFailure::Refused { .. } => "refused",
            DialFailure::Unreachable { .. } => "unreachable",
            DialFailure::Resolve { .. } => "resolve",
        }
    }

    /// How much this failure tells about the friend, to report the most telling one of a
    /// round over several addresses: a listener that went silent says more than a
    /// name that did not resolve.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            DialFailure::Unanswered { .. } => 5,
            DialFailure::Handshake { .. } => 4,
            DialFailure::TimedOut { .. } => 3,
            DialFailure::Refused { .. } => 2,
            DialFailure::Unreachable { .. } => 1,
            DialFailure::Resolve { .. } => 0,
        }
    }
}

/// Called with a friend's new reference whenever its addresses change (to persist them).
#[derive(Clone)]
pub struct FriendUpdateHook(pub Arc<dyn Fn(&NodeRef) + Send + Sync>);

impl fmt::Debug for FriendUpdateHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FriendUpdateHook(..)")
    }
}

/// One friend as `pamphlet node friends` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FriendInfo {
    /// Its id on this node.
    pub peer: PeerId,
    /// Its reference as kept now (the latest addresses).
    pub noderef: NodeRef,
    /// Since when (Unix seconds) its link is up; `None` when it is down.
    pub connected_since: Option<u64>,
    /// Since when (Unix seconds) this node has been trying to reach it without a link.
    pub connecting_since: Option<u64>,
    /// When (Unix seconds) a link to it was last up (`None`: never, as far as this data
    /// directory remembers).
    pub last_seen: Option<u64>,
    /// Why the last dial failed (cleared when a link comes up).
    pub last_error: Option<DialFailure>,
    /// Address records from it that replaced its addresses.
    pub records_accepted: u64,
    /// Address records from it refused: stale or replayed sequence, bad signature,
    /// malformed.
    pub records_refused: u64,
}

/// A friend's entry.
#[derive(Debug)]
pub(crate) struct Friend {
    pub(crate) peer: PeerId,
    pub(crate) noderef: NodeRef,
    /// The dial task serving this entry; a task that finds another id here ends (the
    /// friend was removed, or removed and added again).
    pub(crate) dialer: u64,
    pub(crate) connected_since: Option<u64>,
    pub(crate) connecting_since: Option<u64>,
    pub(crate) last_seen: Option<u64>,
    pub(crate) last_error: Option<DialFailure>,
    pub(crate) records_accepted: u64,
    pub(crate) records_refused: u64,
    /// No link before this instant: the node suspended the friend for its lies.
    pub(crate) suspended_until: Option<std::time::Instant>,
}

impl Friend {
    pub(crate) fn new(peer: PeerId, noderef: NodeRef, dialer: u64) -> Self {
        Self {
            peer,
            noderef,
            dialer,
            connected_since: None,
            connecting_since: Some(unix_now()),
            last_seen: None,
            last_error: None,
            records_accepted: 0,
            records_refused: 0,
            suspended_until: None,
        }
    }

    pub(crate) fn info(&self) -> FriendInfo {
        FriendInfo {
            peer: self.peer,
            noderef: self.noderef.clone(),
            connected_since: self.connected_since,
            connecting_since: self.connecting_since,
            last_seen: self.connected_since.map(|_| unix_now()).or(self.last_seen),
            last_error: self.last_error.clone(),
            records_accepted: self.records_accepted,
            records_refused: self.records_refused,
        }
    }

    pub(crate) fn link_up(&mut self) {
        let now = unix_now();
        self.connected_since = Some(now);
        self.connecting_since = None;
        self.last_seen = Some(now);
        self.last_error = None;
    }

    pub(crate) fn link_down(&mut self) {
        let now = unix_now();
        self.connected_since = None;
        self.connecting_since = Some(now);
        self.last_seen = Some(now);
    }
}

/// What became of an offered record.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Offer {
    /// It replaced the friend's addresses: persist this reference.
    Replaced(NodeRef),
    /// The same record as kept (sent again on every new link): nothing to do.
    Same,
    /// Refused, and counted.
    Refused(RefusedRecord),
}

/// Why a record was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum RefusedRecord {
    /// Unsigned, malformed, or not signed by the friend's key.
    #[error(transparent)]
    Invalid(#[from] RecordError),
    /// Its sequence number is not above the one kept (a replay or a stale copy).
    #[error("sequence {got} is not above the {kept} already kept")]
    Stale {
        /// The offered sequence.
        got: u64,
        /// The kept sequence.
        kept: u64,
    },
}

/// The friend table, by static key.
#[derive(Debug, Default)]
pub(crate) struct FriendBook {
    pub(crate) by_key: HashMap<PublicKey, Friend>,
}

impl FriendBook {
    /// Offers `record`, verified or not (`verified` holds the result of checking it
    /// against `key`), as `key`'s new addresses.
    pub(crate) fn offer_record(&mut self, key: &PublicKey, verified: Result<AddressRecord, RecordError>) -> Offer {
        let Some(friend) = self.by_key.get_mut(key) else {
            return Offer::Same;
        };
        let refused = |friend: &mut Friend, why: RefusedRecord| {
            friend.records_refused += 1;
            Offer::Refused(why)
        };
        let record = match verified {
            Ok(r) => r,
            Err(e) => return refused(friend, e.into()),
        };
        let kept = friend.noderef.record();
        if &record == kept {
            return Offer::Same;
        }
        if !record.supersedes(kept) {
            let why = RefusedRecord::Stale { got: record.seq(), kept: kept.seq() };
            return refused(friend, why);
        }
        // The record moves the addresses; whether the friend takes UDP is its reference's.
        let udp = friend.noderef.udp;
        friend.noderef = NodeRef::from_record(*key, record).with_udp(udp);
        friend.records_accepted += 1;
        Offer::Replaced(friend.noderef.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::StaticKeypair;

    fn book_with(friend: &NodeRef) -> FriendBook {
        let mut book = FriendBook::default();
        book.by_key.insert(friend.key, Friend::new(PeerId(1), friend.clone(), 1));
        book
    }

    fn record(kp: &StaticKeypair, addr: &str, seq: u64) -> AddressRecord {
        AddressRecord::sign(kp, vec![addr.parse().unwrap()], seq).unwrap()
    }

    #[test]
    fn only_a_newer_record_signed_by_the_friend_replaces_its_addresses() {
        let kp = StaticKeypair::generate().unwrap();
        let old = NodeRef::from_record(*kp.public(), record(&kp, "10.231.0.1:1", 2));
        let mut book = book_with(&old);
        let key = *kp.public();

        // The same record again (every new link re-sends it): nothing, nothing counted.
        assert_eq!(book.offer_record(&key, Ok(record(&kp, "10.231.0.1:1", 2))), Offer::Same);
        // Equal sequence, other addresses: refused.
        assert!(matches!(book.offer_record(&key, Ok(record(&kp, "10.231.0.9:1", 2))), Offer::Refused(_)));
        // Lower: refused.
        assert_eq!(
            book.offer_record(&key, Ok(record(&kp, "10.231.0.9:1", 1))),
            Offer::Refused(RefusedRecord::Stale { got: 1, kept: 2 })
        );
        // Bad signature (the caller's verification failed): refused.
        assert!(matches!(book.offer_record(&key, Err(RecordError::BadSignature)), Offer::Refused(_)));
        assert_eq!(book.by_key[&key].noderef, old, "nothing refused changed the addresses");
        assert_eq!(book.by_key[&key].records_refused, 3);

        // Higher and signed: replaces.
        let Offer::Replaced(new) = book.offer_record(&key, Ok(record(&kp, "10.231.0.3:1", 3))) else {
            panic!("a newer record was not taken")
        };
        assert_eq!(new.addresses()[0].to_string(), "10.231.0.3:1");
        assert_eq!(book.by_key[&key].noderef, new);
        assert_eq!(book.by_key[&key].records_accepted, 1);
    }

    #[test]
    fn a_signed_record_replaces_a_version_1_reference() {
        let kp = StaticKeypair::generate().unwrap();
        let v1 = NodeRef::v1("127.0.0.1:4000".parse().unwrap(), *kp.public());
        let mut book = book_with(&v1);
        assert!(matches!(book.offer_record(kp.public(), Ok(record(&kp, "10.231.0.3:1", 1))), Offer::Replaced(_)));
    }
}
