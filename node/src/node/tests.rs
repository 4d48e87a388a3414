//! Node-level property test: arbitrary inputs (requests, inserts, answers, garbage, swap
//! walks and location adverts, in any order) keep the node's indices consistent.

use std::collections::HashMap;

use pamphlet_crypto::{chk, ChkFlags};
use proptest::prelude::*;

use super::*;
use crate::routing::peers::MAX_FOAF;
use crate::routing::swap;

impl<S: BlockStore> Node<S> {
    /// The internal indices agree with each other.
    fn check_invariants(&self) {
        assert_eq!(self.by_key.len(), self.requests.len(), "one request per key");
        for (k, h) in &self.by_key {
            let f = &self.requests[h];
            assert_eq!((f.req.kind, f.req.key), *k);
        }
        let waiting = self.requests.values().filter(|f| f.req.waiting().is_some()).count();
        assert_eq!(self.by_link.len(), waiting, "every hop waited on is indexed, and only those");
        for ((peer, id), h) in &self.by_link {
            let w = self.requests[h].req.waiting().map(|w| (w.peer, w.id));
            assert_eq!(w, Some((*peer, *id)));
        }
        for peer in self.peers.ids() {
            let remote = self
                .requests
                .values()
                .filter(
                    |f| matches!(f.origin, Origin::Remote { peer: p, .. } | Origin::Orphan { peer: p } if p == peer),
                )
                .count();
            let entry = self.peers.get(peer).map_or(0, |p| p.in_flight);
            assert_eq!(entry as usize, remote, "in-flight count of {peer:?}, orphans of an earlier link included");
            assert!(entry <= self.config.max_requests_per_peer);
        }
        if let Some(t) = self.poll_timeout() {
            let swapping = self.swapper.next_deadline().is_some() || self.next_swap.is_some();
            assert!(!self.requests.is_empty() || swapping, "no wake-up without a request or a swap ({t:?})");
        }
        for peer in self.peers.ids() {
            let foaf = self.peers.get(peer).map_or(0, |p| p.foaf.len());
            assert!(foaf <= MAX_FOAF, "{peer:?} advertises {foaf} neighbours, more than are kept");
        }
        assert!(self.swapper.relays() <= 1024, "relayed swap walks are bounded");
    }
}

#[derive(Clone, Debug)]
enum Op {
    AddPeer(u8, u64),
    RemovePeer(u8),
    Request {
        peer: u8,
        key: u8,
        htl: u8,
    },
    Insert {
        peer: u8,
        key: u8,
        htl: u8,
    },
    Fetch(u8),
    LocalInsert(u8),
    /// Answer the `n`-th most recent hop this node sent (0: the latest).
    Answer {
        n: u8,
        how: u8,
    },
    Garbage {
        peer: u8,
        id: u64,
        how: u8,
    },
    Wait(u16),
    /// A peer advertises its location and `n` neighbours.
    LocationUpdate {
        peer: u8,
        location: u64,
        n: u8,
    },
    /// The node starts a swap of its own.
    StartSwap,
    /// The node starts a swap and an honest partner at `location` answers it to the end
    /// (commitment, then reveal), so swaps really complete, kept or exchanged.
    SwapExchange {
        location: u64,
    },
    /// A peer starts (or relays) a swap walk through the node.
    SwapRequest {
        peer: u8,
        htl: u8,
        location: u64,
    },
    /// Answer the `n`-th most recent swap message the node sent: 0 a commitment, 1 its
    /// matching reveal, 2 a rejection, 3 a reveal that opens no commitment.
    SwapAnswer {
        n: u8,
        how: u8,
        location: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..6, any::<u64>()).prop_map(|(p, l)| Op::AddPeer(p, l)),
        (0u8..6).prop_map(Op::RemovePeer),
        (0u8..6, 0u8..4, 0u8..=20).prop_map(|(peer, key, htl)| Op::Request { peer, key, htl }),
        (0u8..6, 0u8..4, 0u8..=20).prop_map(|(peer, key, htl)| Op::Insert { peer, key, htl }),
        (0u8..4).prop_map(Op::Fetch),
        (0u8..4).prop_map(Op::LocalInsert),
        (0u8..4, 0u8..8).prop_map(|(n, how)| Op::Answer { n, how }),
        (0u8..6, 0u64..3, 0u8..8).prop_map(|(peer, id, how)| Op::Garbage { peer, id, how }),
        (0u16..20_000).prop_map(Op::Wait),
        (0u8..6, any::<u64>(), 0u8..80).prop_map(|(peer, location, n)| Op::LocationUpdate { peer, location, n }),
        Just(Op::StartSwap),
        any::<u64>().prop_map(|location| Op::SwapExchange { location }),
        (0u8..6, 0u8..12, any::<u64>()).prop_map(|(peer, htl, location)| Op::SwapRequest { peer, htl, location }),
        (0u8..4, 0u8..4, any::<u64>()).prop_map(|(n, how, location)| Op::SwapAnswer { n, how, location }),
    ]
}

/// A partner's reveal: `location` with a few neighbours spread around it, settled.
fn reveal(location: u64, salt: u64) -> swap::Reveal {
    let neighbours = (1..4u64).map(|k| Location(location.wrapping_add(k << 58))).collect();
    let mut random = [0u8; 32];
    random[..8].copy_from_slice(&salt.to_be_bytes());
    swap::Reveal { location: Location(location), neighbours, age: swap::COOLING_SWAPS, random }
}

fn answer(id: RequestId, how: u8, block: &Block, key: &RoutingKey) -> Message {
    let mut bad = block.as_bytes().to_vec();
    bad[7] ^= 0x80;
    match how {
        0 => Message::DataNotFound { id, htl: 3 },
        1 => Message::RouteNotFound { id, htl: 9 },
        2 => Message::RejectedLoop { id },
        3 => Message::RejectedOverload { id },
        4 => Message::Accepted { id },
        5 => Message::InsertReply { id },
        6 if block.routing_key() == *key => Message::DataFound { id, block: block.clone() },
        _ => Message::DataFound { id, block: Block::from_bytes(block.kind(), bad).unwrap() },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever peers send, in whatever order, the node never panics, its indices stay
    /// consistent, and nothing unverified reaches its store.
    #[test]
    fn arbitrary_inputs_keep_the_node_consistent(ops in proptest::collection::vec(op(), 1..80)) {
        let blocks: Vec<Block> =
            (0u8..4).map(|i| Block::Chk(chk::encode(&[i; 3], ChkFlags::default()).unwrap().0)).collect();
        let keys: Vec<RoutingKey> = blocks.iter().map(Block::routing_key).collect();
        let config = NodeConfig {
            max_requests_per_peer: 2,
            swap_interval: Some(Duration::from_secs(5)),
            ..NodeConfig::default()
        };
        let mut node = Node::new(config, MemoryStore::default());
        let mut now = Instant::now();
        let mut sent: Vec<(PeerId, RequestId, RoutingKey)> = Vec::new();
        // Swap messages the node sent (peer, id), and the reveal each partner committed to.
        let mut swaps: Vec<(PeerId, RequestId)> = Vec::new();
        let mut committed: HashMap<(PeerId, RequestId), swap::Reveal> = HashMap::new();
        let mut next_walk: RequestId = 1000;
        let mut location = node.location();
        let mut moves = node.stats().swaps_done + node.stats().location_resets;
        for op in ops {
            match op {
                Op::AddPeer(p, l) => node.add_peer(now, PeerId(p.into()), Location(l)),
                Op::RemovePeer(p) => node.remove_peer(now, PeerId(p.into())),
                Op::Request { peer, key, htl } => node.handle_message(
                    now,
                    PeerId(peer.into()),
                    Message::DataRequest { id: 7, kind: BlockKind::Chk, key: keys[key as usize], htl },
                ),
                Op::Insert { peer, key, htl } => node.handle_message(
                    now,
                    PeerId(peer.into()),
                    Message::InsertRequest { id: 8, htl, block: blocks[key as usize].clone(), top: false },
                ),
                Op::Fetch(k) => {
                    node.start_fetch(now, BlockKind::Chk, keys[k as usize]);
                }
                Op::LocalInsert(k) => {
                    node.start_insert(now, blocks[k as usize].clone());
                }
                Op::Answer { n, how } => {
                    if let Some(&(peer, id, key)) = sent.iter().rev().nth(n.into()) {
                        let block = blocks.iter().find(|b| b.routing_key() == key).unwrap_or(&blocks[0]);
                        node.handle_message(now, peer, answer(id, how, block, &key));
                    }
                }
                Op::Garbage { peer, id, how } => {
                    node.handle_message(now, PeerId(peer.into()), answer(id, how, &blocks[0], &keys[1]))
                }
                Op::Wait(ms) => {
                    now += Duration::from_millis(ms.into());
                    node.handle_timeout(now);
                }
                Op::LocationUpdate { peer, location, n } => {
                    let neighbours = (0..u64::from(n)).map(|k| Location(location ^ (k << 40))).collect();
                    node.handle_message(now, PeerId(peer.into()), Message::LocationUpdate { location: Location(location), neighbours });
                }
                Op::StartSwap => {
                    node.start_swap(now);
                }
                Op::SwapExchange { location } => {
                    node.start_swap(now);
                    let out: Vec<(PeerId, Message)> = std::iter::from_fn(|| node.poll_transmit()).collect();
                    for (peer, msg) in out {
                        if let Message::SwapRequest { id, .. } = msg {
                            let r = reveal(location, id);
                            node.handle_message(now, peer, Message::SwapReply { id, commitment: r.commitment() });
                            let ours = std::iter::from_fn(|| node.poll_transmit())
                                .any(|(p, m)| p == peer && matches!(m, Message::SwapReveal { id: i, .. } if i == id));
                            if ours {
                                node.handle_message(now, peer, r.message(id));
                            }
                        }
                    }
                }
                Op::SwapRequest { peer, htl, location } => {
                    next_walk += 1;
                    let r = reveal(location, next_walk);
                    let (peer, id) = (PeerId(peer.into()), next_walk);
                    let commitment = r.commitment();
                    committed.insert((peer, id), r);
                    node.handle_message(now, peer, Message::SwapRequest { id, htl, commitment });
                }
                Op::SwapAnswer { n, how, location } => {
                    if let Some(&(peer, id)) = swaps.iter().rev().nth(n.into()) {
                        let msg = match how {
                            0 => {
                                let r = reveal(location, id);
                                let commitment = r.commitment();
                                committed.insert((peer, id), r);
                                Message::SwapReply { id, commitment }
                            }
                            1 => committed.get(&(peer, id)).map_or(Message::SwapRejected { id }, |r| r.message(id)),
                            2 => Message::SwapRejected { id },
                            _ => reveal(location, 7).message(id),
                        };
                        node.handle_message(now, peer, msg);
                    }
                }
            }
            while let Some((peer, msg)) = node.poll_transmit() {
                match msg {
                    Message::DataRequest { id, key, .. } => sent.push((peer, id, key)),
                    Message::InsertRequest { id, block, .. } => sent.push((peer, id, block.routing_key())),
                    Message::SwapRequest { id, .. }
                    | Message::SwapReply { id, .. }
                    | Message::SwapReveal { id, .. } => swaps.push((peer, id)),
                    _ => {}
                }
            }
            while let Some(event) = node.poll_event() {
                if let Event::FetchSucceeded { block, .. } = &event {
                    prop_assert!(keys.contains(&block.routing_key()), "only genuine blocks reach the client");
                }
            }
            node.check_invariants();
            // The node's own location moves only through a swap it completed (or a reset).
            let now_moves = node.stats().swaps_done + node.stats().location_resets;
            prop_assert!(node.location() == location || now_moves > moves, "location changed without a swap");
            (location, moves) = (node.location(), now_moves);
            for (k, b) in keys.iter().zip(&blocks) {
                if let Some(held) = node.store().peek(BlockKind::Chk, k) {
                    prop_assert_eq!(held, b);
                }
            }
        }
    }
}
