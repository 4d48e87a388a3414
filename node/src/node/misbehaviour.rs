//! Closing the link to a peer that keeps lying, for a time that grows each time.
//!
//! A lie is an answer no honest node gives: a block that does not verify, "not found" to an
//! insert, an insert with no hops left. Each one already backs the peer off for long
//! (`PeerTable::penalise_forgery`), but backoff only ranks it last: the link stays up, the
//! peer keeps costing a slot, a signature check now and then and a share of every request
//! it sends. Issue 14 asks that repeated misbehaviour close the link. Lies are counted in a
//! leaky bucket per peer id (kept across reconnects, like the rest of its record); at
//! `NodeConfig::close_after_lies` the node asks its driver to close the link and keep it
//! closed until a deadline ([`LinkAction::Suspend`]): 10 minutes the first time, doubling
//! each time, at most a day. Silence is not counted: an honest peer whose own next hops are
//! silent is late too (`PeerTable::excuse_silence`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::opennet::LinkAction;
use super::Node;
use crate::id::PeerId;
use crate::store::BlockStore;

/// How long the first suspension lasts; each further one doubles it.
pub const FIRST_SUSPENSION: Duration = Duration::from_secs(600);
/// The longest suspension.
pub const MAX_SUSPENSION: Duration = Duration::from_secs(24 * 3600);
/// One counted lie leaks away per this long.
const LEAK: Duration = Duration::from_secs(600);
/// Peers whose records are kept at most (the oldest-touched are forgotten first).
const MAX_RECORDS: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Record {
    /// Lies counted, less one per [`LEAK`] since `at`.
    lies: u32,
    /// When the last whole lie leaked away (or the first was counted).
    at: Instant,
    /// Suspensions so far.
    suspensions: u32,
    /// Until when the current one lasts.
    until: Option<Instant>,
}

/// Every peer's lies and suspensions.
#[derive(Debug, Default)]
pub(super) struct Misbehaviour {
    records: HashMap<PeerId, Record>,
}

impl<S: BlockStore> Node<S> {
    /// `peer` told a lie at `now`: count it, and suspend the link if it is one too many.
    pub(super) fn lie(&mut self, now: Instant, peer: PeerId) {
        let Some(limit) = self.config.close_after_lies else { return };
        let table = &mut self.misbehaviour.records;
        if table.len() >= MAX_RECORDS && !table.contains_key(&peer) {
            if let Some(oldest) = table.iter().min_by_key(|(id, r)| (r.at, **id)).map(|(id, _)| *id) {
                table.remove(&oldest);
            }
        }
        let r = table.entry(peer).or_insert(Record { lies: 0, at: now, suspensions: 0, until: None });
        let periods = now.saturating_duration_since(r.at).as_secs() / LEAK.as_secs();
        if r.lies == 0 {
            r.at = now;
        } else if periods > 0 {
            r.lies = r.lies.saturating_sub(u32::try_from(periods).unwrap_or(u32::MAX));
            r.at += LEAK * u32::try_from(periods).unwrap_or(u32::MAX).min(1 << 20);
        }
        r.lies += 1;
        if r.lies < limit {
            return;
        }
        r.lies = 0;
        r.suspensions += 1;
        let len = FIRST_SUSPENSION.saturating_mul(1 << (r.suspensions - 1).min(16)).min(MAX_SUSPENSION);
        let until = now + len;
        r.until = Some(until);
        self.stats.links_suspended += 1;
        tracing::info!(peer = peer.0, secs = len.as_secs(), "closing the link to a peer that keeps lying");
        self.opennet.actions.push_back(LinkAction::Suspend { peer, until });
    }

    /// Until when the link to `peer` stays closed for its lies, if it is suspended at `now`.
    /// Drivers neither dial nor accept it before then.
    pub fn suspended_until(&self, peer: PeerId, now: Instant) -> Option<Instant> {
        self.misbehaviour.records.get(&peer).and_then(|r| r.until).filter(|t| *t > now)
    }
}
