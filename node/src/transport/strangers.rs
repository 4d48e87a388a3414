//! Stranger links (opennet and hybrid modes, issue 19; docs/opennet.md).
//!
//! A stranger is a node that is not in the friend book. Its link is the same TCP + Noise
//! link a friend gets; only three things differ:
//!
//! - **Who may connect.** With [`TransportConfig::accept_strangers`] the responder takes
//!   an initiator whose key it does not know, as long as the initiator knows *our* key
//!   (Noise IK: without it message 1 does not decrypt, so probing without a reference
//!   still gets silence) and its address and network hold fewer stranger links than
//!   [`TransportConfig::max_strangers_per_ip`] and
//!   [`TransportConfig::max_strangers_per_subnet`] (a /24, or a /48 for IPv6). Over the
//!   bound the handshake gets the same silence as a probe. A darknet node never accepts
//!   one. The bound applies to links we dial too.
//! - **Nobody redials.** A friend has a dial task for as long as it is a friend; a
//!   stranger is dialled once, when the node asks ([`TransportHandle::dial_stranger`]),
//!   and when its link ends it is forgotten here (the daemon may dial it again from its
//!   saved references).
//! - **The node decides.** A stranger's link comes up as
//!   [`TransportEvent::StrangerConnected`]; the daemon asks the node to admit it and
//!   closes it with [`TransportHandle::drop_stranger`] if the node refuses or later drops
//!   it.
//!
//! The address record a stranger sends first on its link (signed by its key) gives its
//! reference, so a stranger that dialled us can be dialled again after a restart.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{dial, peer_id_of, run_link, LinkError, Shared, TransportError, TransportEvent, TransportHandle};
use crate::id::PeerId;
use crate::link::{AddressRecord, NodeRef, PublicKey};

/// The network an address belongs to for the subnet bound: its /24 (IPv4) or /48 (IPv6).
fn subnet(ip: IpAddr) -> (bool, [u8; 6]) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (false, [o[0], o[1], o[2], 0, 0, 0])
        }
        IpAddr::V6(v6) => {
            let mut p = [0u8; 6];
            p.copy_from_slice(&v6.octets()[..6]);
            (true, p)
        }
    }
}

/// One stranger with a link up (or coming up).
#[derive(Clone, Debug)]
pub(crate) struct Stranger {
    /// Its id.
    pub(crate) peer: PeerId,
    /// The address its link runs to (for the per-address and per-subnet bounds).
    pub(crate) ip: IpAddr,
    /// Its reference: the one we dialled, or the signed record it sent on its link.
    pub(crate) noderef: Option<NodeRef>,
}

/// The strangers this transport has links to, and the dials under way.
#[derive(Debug, Default)]
pub(crate) struct StrangerBook {
    pub(crate) by_key: HashMap<PublicKey, Stranger>,
    /// Keys being dialled now (one dial per key at a time).
    dialing: HashSet<PublicKey>,
    /// Handshakes refused for the per-address or per-subnet bound.
    pub(crate) refused_for_address: u64,
}

impl StrangerBook {
    /// Whether a new stranger link from `ip` stays within both bounds. A key that already
    /// has a link is not counted against itself (it is reconnecting).
    pub(crate) fn room_for(&self, key: &PublicKey, ip: IpAddr, per_ip: usize, per_subnet: usize) -> bool {
        let ip = ip.to_canonical();
        let net = subnet(ip);
        let others = || self.by_key.iter().filter(|(k, _)| *k != key).map(|(_, s)| s.ip.to_canonical());
        others().filter(|o| *o == ip).count() < per_ip && others().filter(|o| subnet(*o) == net).count() < per_subnet
    }

    /// A stranger's signed address record, received on its link: its reference from now
    /// on if the signature holds and it is newer than the one kept.
    pub(crate) fn offer_record(&mut self, key: &PublicKey, verified: Result<AddressRecord, crate::link::RecordError>) {
        let (Some(s), Ok(record)) = (self.by_key.get_mut(key), verified) else { return };
        if s.noderef.as_ref().is_none_or(|n| record.supersedes(n.record())) {
            s.noderef = Some(NodeRef::from_record(*key, record));
        }
    }
}

impl Shared {
    /// Whether the responder answers an initiator with static key `key` connecting from
    /// `ip`: a friend always; a stranger only when strangers are accepted and its address
    /// and network are under their bounds.
    pub(super) fn answers(&self, key: &PublicKey, ip: IpAddr) -> bool {
        let st = self.state();
        if let Some(f) = st.friends.by_key.get(key) {
            // A friend suspended for its lies gets silence, like a stranger we refuse.
            return super::suspend::wait_left(f.suspended_until).is_zero();
        }
        let c = &self.config;
        c.accept_strangers && st.strangers.room_for(key, ip, c.max_strangers_per_ip, c.max_strangers_per_subnet)
    }

    /// Records a stranger whose handshake just completed (inbound or outbound), unless it
    /// is a friend, ourselves, or its address is over a bound now. Returns its id.
    pub(super) fn register_stranger(&self, key: PublicKey, ip: IpAddr, noderef: Option<NodeRef>) -> Option<PeerId> {
        let peer = peer_id_of(&key);
        let mut st = self.state();
        let c = &self.config;
        if key == *c.keypair.public() || st.friends.by_key.contains_key(&key) {
            return None;
        }
        if st.friends.by_key.values().any(|f| f.peer == peer) {
            return None; // another key with the same id (astronomically unlikely)
        }
        if !st.strangers.room_for(&key, ip, c.max_strangers_per_ip, c.max_strangers_per_subnet) {
            st.strangers.refused_for_address += 1;
            return None;
        }
        let kept = st.strangers.by_key.get(&key).and_then(|s| s.noderef.clone());
        st.strangers.by_key.insert(key, Stranger { peer, ip, noderef: noderef.or(kept) });
        Some(peer)
    }
}

impl TransportHandle {
    /// Dials a stranger once (every address of its reference, in order). When the
    /// handshake completes its link comes up as [`TransportEvent::StrangerConnected`];
    /// when every address fails, [`TransportEvent::StrangerDialFailed`]. A friend, a
    /// stranger with a link up and a dial under way are left alone. Returns its id if a
    /// dial started (and so one of those two events will follow).
    pub fn dial_stranger(&self, noderef: NodeRef) -> Result<Option<PeerId>, TransportError> {
        let key = noderef.key;
        let peer = peer_id_of(&key);
        if key == self.public_key() {
            return Err(TransportError::Conflict(peer));
        }
        {
            let mut st = self.shared.state();
            if st.friends.by_key.contains_key(&key)
                || st.strangers.by_key.contains_key(&key)
                || !st.strangers.dialing.insert(key)
            {
                return Ok(None);
            }
        }
        self.shared.spawn(move |s, t| dial_once(s, noderef, peer, t));
        Ok(Some(peer))
    }

    /// Closes a stranger's link (the node refused or dropped it). Reports
    /// `Disconnected { reason: Dropped }` if a link was up.
    pub fn drop_stranger(&self, peer: PeerId) {
        let had_link = {
            let mut st = self.shared.state();
            let Some(key) = st.strangers.by_key.iter().find(|(_, s)| s.peer == peer).map(|(k, _)| *k) else {
                return;
            };
            st.strangers.by_key.remove(&key);
            // Dropping the entry drops its queues: the link sends what they hold and
            // closes (see `connection`), reporting nothing itself.
            st.links.remove(&peer).is_some()
        };
        if had_link {
            let events = self.shared.events.clone();
            self.shared.spawn(move |_, done| async move {
                let _ = events.send(TransportEvent::Disconnected { peer, reason: LinkError::Dropped }).await;
                drop(done);
            });
        }
    }

    /// The strangers with a link up and a known reference, by id.
    pub fn stranger_refs(&self) -> Vec<(PeerId, NodeRef)> {
        let st = self.shared.state();
        let mut v: Vec<(PeerId, NodeRef)> = st
            .strangers
            .by_key
            .values()
            .filter(|s| st.links.contains_key(&s.peer))
            .filter_map(|s| Some((s.peer, s.noderef.clone()?)))
            .collect();
        v.sort_by_key(|(p, _)| *p);
        v
    }

    /// Stranger handshakes refused so far for the per-address or per-subnet bound.
    pub fn strangers_refused_for_address(&self) -> u64 {
        self.shared.state().strangers.refused_for_address
    }
}

/// One dial of a stranger: every address once, then the link (or a failure event).
async fn dial_once(shared: Arc<Shared>, noderef: NodeRef, peer: PeerId, _done: mpsc::Sender<()>) {
    let key = noderef.key;
    let mut shutdown = shared.shutdown.subscribe();
    let result = tokio::select! {
        r = dial::dial_addresses(&shared, &key, noderef.addresses().to_vec()) => r,
        _ = shutdown.wait_for(|s| *s) => return,
    };
    shared.state().strangers.dialing.remove(&key);
    let registered = match result {
        Ok(io) => match io.peer_addr() {
            Ok(addr) => shared.register_stranger(key, addr.ip(), Some(noderef)).map(|p| (io, p)),
            Err(_) => None,
        },
        Err(failure) => {
            tracing::debug!(?peer, error = %failure, "stranger dial failed");
            None
        }
    };
    match registered {
        Some((io, peer)) => run_link(&shared, io, key, peer, true).await,
        None => {
            let failed = TransportEvent::StrangerDialFailed { peer };
            tokio::select! {
                _ = shared.events.send(failed) => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::StaticKeypair;

    fn key(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    fn book(ips: &[&str]) -> StrangerBook {
        let mut b = StrangerBook::default();
        for (i, ip) in ips.iter().enumerate() {
            let s = Stranger { peer: PeerId(i as u64), ip: ip.parse().unwrap(), noderef: None };
            b.by_key.insert(key(i as u8 + 1), s);
        }
        b
    }

    #[test]
    fn strangers_are_bounded_per_address_and_per_subnet() {
        let b = book(&["192.0.2.1", "192.0.2.2"]);
        let new = key(99);
        // One per address: a second key from 192.0.2.1 is refused, one from .3 is not.
        assert!(!b.room_for(&new, "192.0.2.1".parse().unwrap(), 1, 4));
        assert!(b.room_for(&new, "192.0.2.3".parse().unwrap(), 1, 4));
        // Two per /24: the third from 192.0.2.0/24 is refused, another /24 is not.
        assert!(!b.room_for(&new, "192.0.2.3".parse().unwrap(), 1, 2));
        assert!(b.room_for(&new, "198.51.100.1".parse().unwrap(), 1, 2));
        // A key already linked reconnecting does not count against itself.
        assert!(b.room_for(&key(1), "192.0.2.1".parse().unwrap(), 1, 2));
        // IPv4-mapped IPv6 counts as the IPv4 address; IPv6 by /48.
        assert!(!b.room_for(&new, "::ffff:192.0.2.1".parse().unwrap(), 1, 4));
        let v6 = book(&["2001:db8:1:1::1", "2001:db8:1:2::1"]);
        assert!(!v6.room_for(&new, "2001:db8:1:3::1".parse().unwrap(), 1, 2));
        assert!(v6.room_for(&new, "2001:db8:2::1".parse().unwrap(), 1, 2));
    }

    #[test]
    fn a_strangers_newer_signed_record_becomes_its_reference() {
        let kp = StaticKeypair::generate().unwrap();
        let k = *kp.public();
        let mut b = StrangerBook::default();
        b.by_key.insert(k, Stranger { peer: PeerId(1), ip: "127.0.0.1".parse().unwrap(), noderef: None });
        let rec = |addr: &str, seq| AddressRecord::sign(&kp, vec![addr.parse().unwrap()], seq).unwrap();
        b.offer_record(&k, Ok(rec("127.0.0.1:5", 2)));
        assert_eq!(b.by_key[&k].noderef.as_ref().unwrap().addresses()[0].to_string(), "127.0.0.1:5");
        b.offer_record(&k, Ok(rec("127.0.0.1:6", 1)));
        assert_eq!(b.by_key[&k].noderef.as_ref().unwrap().record().seq(), 2, "an older record is ignored");
        b.offer_record(&k, Err(crate::link::RecordError::BadSignature));
        assert_eq!(b.by_key[&k].noderef.as_ref().unwrap().record().seq(), 2);
    }
}
