//! The table of incoming connections still handshaking, and who is evicted when it is full.
//!
//! A connection costs the node a task, a socket and two frame buffers from `accept` until
//! the handshake ends, and an attacker needs no key to open one. So the table is bounded
//! three ways: per source address (`per_ip`), per network (`per_prefix`: the /24 of an
//! IPv4 address, the /64 of an IPv6 one) and in all (`total`). When a new connection
//! takes a table over a bound, the **oldest** pending connection inside that bound is
//! evicted, never the newest: an honest initiator sends message 1 at once and leaves the
//! table within a round trip, so idle connections are always the old ones, and an
//! attacker who holds connections open only pushes out its own. Refusing the newest (as
//! a semaphore does) would instead hand the whole table to whoever opened it first.
//!
//! Eviction is a value: `admit` returns a receiver that completes when the entry leaves
//! the table by eviction (its sender is dropped), and the handshake task selects on it.
//! Sans-IO apart from that channel: unit-tested below without sockets.

use std::collections::BTreeMap;
use std::net::IpAddr;

use tokio::sync::oneshot;

/// Bounds of the table (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Pending connections from one source address.
    pub(crate) per_ip: usize,
    /// Pending connections from one /24 (IPv4) or /64 (IPv6).
    pub(crate) per_prefix: usize,
    /// Pending connections in all.
    pub(crate) total: usize,
}

/// The network a source address belongs to, for `per_prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prefix {
    V4([u8; 3]),
    V6([u8; 8]),
}

fn prefix_of(ip: IpAddr) -> Prefix {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Prefix::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(v6) => {
            let mut p = [0u8; 8];
            p.copy_from_slice(&v6.octets()[..8]);
            Prefix::V6(p)
        }
    }
}

#[derive(Debug)]
struct Entry {
    ip: IpAddr,
    prefix: Prefix,
    /// Dropped on eviction, which wakes the handshake task's receiver.
    _evict: oneshot::Sender<()>,
}

/// Pending handshakes, oldest first (ids only grow, so id order is age order).
#[derive(Debug, Default)]
pub(crate) struct PendingTable {
    next_id: u64,
    entries: BTreeMap<u64, Entry>,
    /// Connections evicted so far (for stats and tests).
    evicted: u64,
}

impl PendingTable {
    /// Adds a connection from `ip` and evicts the oldest entries over any bound. Returns
    /// the new entry's id (for [`PendingTable::remove`]) and a receiver that completes if
    /// the entry is evicted. The new entry itself is never evicted by its own admission.
    pub(crate) fn admit(&mut self, ip: IpAddr, limits: Limits) -> (u64, oneshot::Receiver<()>) {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d: count them as IPv4.
        let ip = ip.to_canonical();
        let prefix = prefix_of(ip);
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.entries.insert(id, Entry { ip, prefix, _evict: tx });
        self.evict_over(limits.per_ip, |e| e.ip == ip);
        self.evict_over(limits.per_prefix, |e| e.prefix == prefix);
        self.evict_over(limits.total, |_| true);
        (id, rx)
    }

    /// Evicts the oldest entries matching `which` until at most `limit` (at least 1) match.
    fn evict_over(&mut self, limit: usize, which: impl Fn(&Entry) -> bool) {
        let matching: Vec<u64> = self.entries.iter().filter(|(_, e)| which(e)).map(|(id, _)| *id).collect();
        let excess = matching.len().saturating_sub(limit.max(1));
        for id in &matching[..excess] {
            self.entries.remove(id);
            self.evicted += 1;
        }
    }

    /// Removes an entry whose handshake ended (a no-op if it was evicted).
    pub(crate) fn remove(&mut self, id: u64) {
        self.entries.remove(&id);
    }

    /// Connections pending now.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Connections evicted since start.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits { per_ip: 2, per_prefix: 3, total: 4 };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn evicted(rx: &mut oneshot::Receiver<()>) -> bool {
        matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Closed))
    }

    #[test]
    fn one_address_only_pushes_out_its_own_oldest() {
        let mut t = PendingTable::default();
        let (_, mut friend) = t.admit(ip("10.0.0.1"), LIMITS);
        let mut flood: Vec<_> = (0..100).map(|_| t.admit(ip("192.0.2.7"), LIMITS).1).collect();
        assert!(!evicted(&mut friend), "a flood from another network evicted a friend");
        assert_eq!(t.len(), 3);
        assert_eq!(flood.iter_mut().map(evicted).filter(|e| *e).count(), 98);
        // The newest two survive.
        assert!(!evicted(&mut flood[99]) && !evicted(&mut flood[98]));
        assert_eq!(t.evicted(), 98);
    }

    #[test]
    fn a_network_and_the_whole_table_are_bounded_too() {
        let mut t = PendingTable::default();
        let (_, mut old) = t.admit(ip("10.0.0.1"), LIMITS);
        // Three addresses of one /24: the fourth connection pushes out the /24's oldest.
        for i in 2..=4 {
            t.admit(ip(&format!("198.51.100.{i}")), LIMITS);
        }
        assert_eq!(t.len(), 4);
        assert!(!evicted(&mut old));
        t.admit(ip("198.51.100.9"), LIMITS);
        assert!(!evicted(&mut old));
        assert_eq!(t.len(), 4);
        // A fifth network: the table is full, the oldest of all (10.0.0.1) goes.
        t.admit(ip("203.0.113.1"), LIMITS);
        assert!(evicted(&mut old));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4_and_ipv6_by_slash_64() {
        let mut t = PendingTable::default();
        let (_, mut a) = t.admit(ip("::ffff:192.0.2.1"), LIMITS);
        t.admit(ip("192.0.2.1"), LIMITS);
        t.admit(ip("192.0.2.1"), LIMITS);
        assert!(evicted(&mut a), "the mapped form escaped the per-address bound");
        let mut t = PendingTable::default();
        let (_, mut b) = t.admit(ip("2001:db8:0:1::1"), LIMITS);
        for i in 2..=4 {
            t.admit(ip(&format!("2001:db8:0:1::{i}")), LIMITS);
        }
        assert!(evicted(&mut b));
    }

    #[test]
    fn a_finished_handshake_leaves_the_table() {
        let mut t = PendingTable::default();
        let (id, _rx) = t.admit(ip("10.0.0.1"), LIMITS);
        t.remove(id);
        t.remove(id);
        assert_eq!(t.len(), 0);
        assert_eq!(t.evicted(), 0);
    }
}
