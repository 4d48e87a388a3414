//! The node's opennet half (issue 19; docs/opennet.md): strangers admitted and dropped,
//! announcements started, relayed and answered, path-folding offers made, relayed and
//! taken. The policy (who is wanted, who is least useful, the limits) is
//! [`crate::routing::opennet`]; this file wires it to messages and to the driver.
//!
//! The node never dials anyone: it asks its driver to with [`LinkAction::Connect`] (drained
//! by [`Node::poll_link_action`]), and the driver, once the link is up, asks the node to
//! [`Node::admit_stranger`] it. The other end's driver does the same when the link comes
//! in, so each end applies its own limits. A stranger the node drops comes out as
//! [`LinkAction::Drop`] for the driver to close.
//!
//! Announcement: a newcomer sends `Announce` to a seed; each node forwards it to its peer
//! closest to the newcomer's location while that peer is closer than itself (at most
//! `announce_htl` hops), and where no peer is closer it asks its three peers closest to the
//! location with at most one hop left (each asks its own three), so the newcomer meets a
//! neighbourhood, not one node. Seeds are never asked on the way. Every node on
//! the way that wants a peer answers `AnnounceReply` with its reference, relayed back hop
//! by hop with link-local ids; `AnnounceDone` frees the state along the path.
//!
//! Path folding: the node that answers a fetch from its store (or ends an insert) sends
//! `FoldOffer` with its reference just before the answer; each node on the way back keeps
//! it with the request and passes it upstream, or, if it wants a peer itself, with
//! probability `fold_take` connects to it and passes its own reference instead. The
//! requester connects if it wants a peer.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::Rng;

use super::Node;
use crate::id::{Htl, PeerId, RequestId};
use crate::location::Location;
use crate::routing::opennet::{Found, OpennetConfig, PeerKind, Refusal, Strangers, Want};
use crate::store::BlockStore;
use crate::wire::message::{Message, Reference};

/// What the node asks its driver to do with links (opennet, and suspending liars).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkAction {
    /// Dial this node; once the link is up, call [`Node::admit_stranger`] with `found`.
    Connect {
        /// Its location.
        location: Location,
        /// Its reference, as it gave it.
        reference: Reference,
        /// How the node learnt of it.
        found: Found,
    },
    /// Close the link to this stranger (the node already forgot it).
    Drop {
        /// The stranger.
        peer: PeerId,
    },
    /// The node has no peer left: dial the seeds again (admitting each as [`Found::Seed`]).
    NeedSeeds,
    /// Close the link to this peer (friend or stranger) for its repeated lies, and neither
    /// dial nor accept it before `until` (`node/misbehaviour.rs`). The node forgets it as a
    /// connected peer when the driver reports the link down, as for any closed link.
    Suspend {
        /// The peer.
        peer: PeerId,
        /// When it may link again.
        until: Instant,
    },
}

/// Opennet counters, for status displays, the simulator and tests. Monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpennetStats {
    /// Announcements this node started.
    pub announces_started: u64,
    /// Announcements received from peers and handled.
    pub announces_handled: u64,
    /// Announcements refused for the rate limit.
    pub announces_refused: u64,
    /// References this node offered in answer to announcements.
    pub announce_offers: u64,
    /// Path-folding offers this node made with its own reference.
    pub fold_offers: u64,
    /// Connections this node asked its driver for.
    pub connects_asked: u64,
    /// Strangers admitted.
    pub admitted: u64,
    /// Strangers refused (full, seed full, darknet).
    pub refused: u64,
    /// Of those, newcomers a seed refused at its cap.
    pub refused_seed_full: u64,
    /// Times the node asked for the seeds again (it had no peer left).
    pub need_seeds: u64,
    /// Strangers dropped to make room for another.
    pub replaced: u64,
    /// Seeds and newcomers dropped once they had other peers.
    pub bootstrap_dropped: u64,
}

/// One announcement this node started or relays.
#[derive(Clone, Debug)]
struct Ann {
    /// Who to answer (None: ours).
    up: Option<(PeerId, RequestId)>,
    /// The newcomer's location.
    target: Location,
    /// Downstream hops not yet done.
    pending: u32,
    /// Replies relayed so far (bounded).
    replies: u32,
    /// When it started here (the oldest go first when the table is full).
    started: Instant,
}

/// The most announcements relayed at once; the oldest is forgotten past it.
const MAX_ANNOUNCES: usize = 256;

/// How many `seed_hold`s a seed holds a newcomer that found no link outside its nursery.
const NURSERY_HOLDS: u32 = 3;

/// How many announcement intervals a node at its floor waits between announcements made
/// only because it is short of short links.
const SHORT_LINK_SLOWDOWN: u32 = 10;

/// Peers asked at the end of an announcement's walk (where no peer is closer).
const ANNOUNCE_FAN_OUT: usize = 3;

/// The most references relayed back for one announcement.
const MAX_REPLIES: u32 = 32;

/// The node's opennet state.
#[derive(Debug, Default)]
pub(super) struct OpennetState {
    pub(super) strangers: Strangers,
    pub(super) actions: VecDeque<LinkAction>,
    announces: BTreeMap<u64, Ann>,
    ann_by_link: BTreeMap<(PeerId, RequestId), u64>,
    next_ann: u64,
    last_announce: Option<Instant>,
    /// The node asked for the seeds ([`LinkAction::NeedSeeds`]) and has not announced
    /// through one since.
    seeds_asked: bool,
    pub(super) next_upkeep: Option<Instant>,
    pub(super) stats: OpennetStats,
}

impl<S: BlockStore> Node<S> {
    /// The next link action for the driver (opennet, and suspensions of lying peers).
    pub fn poll_link_action(&mut self) -> Option<LinkAction> {
        self.opennet.actions.pop_front()
    }

    /// Opennet counters.
    pub fn opennet_stats(&self) -> OpennetStats {
        self.opennet.stats
    }

    /// What `peer` is to this node, and how it was found (None for a friend).
    pub fn peer_kind(&self, peer: PeerId) -> (PeerKind, Option<Found>) {
        match self.opennet.strangers.get(peer) {
            Some(s) => (s.kind, Some(s.found)),
            None => (PeerKind::Friend, None),
        }
    }

    /// Strangers that are not seeds.
    pub fn stranger_count(&self) -> usize {
        self.opennet.strangers.count()
    }

    fn friends(&self) -> usize {
        self.peers.len().saturating_sub(self.opennet.strangers.iter().count())
    }

    /// Whether the node wants a stranger at `location` (its link-length class counts).
    fn want(&self, now: Instant, location: Location) -> Want {
        let link = self.config.location.distance_f64(location);
        self.opennet.strangers.want(now, self.friends(), &self.config.opennet, link)
    }

    /// Whether a peer sits at `location` already (a stranger's reference we hold is known
    /// by where it is: the driver maps references to links).
    fn has_peer_at(&self, location: Location) -> bool {
        location == self.config.location
            || self.peers.ids().any(|p| self.peers.get(p).is_some_and(|e| e.location == location))
    }

    /// A link to a stranger is up (we dialled it, `found` says why; or it dialled us,
    /// [`Found::Inbound`]): take it as a peer, within the limits, dropping the least useful
    /// stranger if that is what it takes. On `Err` the driver closes the link.
    pub fn admit_stranger(
        &mut self,
        now: Instant,
        peer: PeerId,
        location: Location,
        found: Found,
    ) -> Result<(), Refusal> {
        let c = &self.config.opennet;
        if !c.mode.strangers() {
            self.opennet.stats.refused += 1;
            return Err(Refusal::Darknet);
        }
        if self.peers.get(peer).is_some() {
            return Ok(());
        }
        if self.suspended_until(peer, now).is_some() {
            self.opennet.stats.refused += 1;
            return Err(Refusal::Suspended);
        }
        let seed_full = c.seed_node && c.limits && self.opennet.strangers.count() >= c.seed_cap;
        let verdict = match found {
            // Bootstrap links are always taken: a seed we dial, a reconnect while there is room.
            Found::Seed => Ok(None),
            Found::Inbound if c.seed_node => {
                if seed_full {
                    Err(Refusal::SeedFull)
                } else {
                    Ok(None)
                }
            }
            Found::Reconnect => match self.want(now, location) {
                Want::Room => Ok(None),
                _ => Err(Refusal::Full),
            },
            _ => match self.want(now, location) {
                Want::Room => Ok(None),
                Want::Replace(v) => Ok(Some(v)),
                Want::No => Err(Refusal::Full),
            },
        };
        let victim = match verdict {
            Ok(v) => v,
            Err(e) => {
                self.opennet.stats.refused += 1;
                self.opennet.stats.refused_seed_full += u64::from(e == Refusal::SeedFull);
                return Err(e);
            }
        };
        if let Some(v) = victim {
            self.opennet.stats.replaced += 1;
            self.opennet.strangers.replaced(now);
            self.drop_stranger(now, v);
        }
        let kind = if found == Found::Seed { PeerKind::Seed } else { PeerKind::Stranger };
        let link = self.config.location.distance_f64(location);
        self.opennet.strangers.insert(peer, kind, found, now, link);
        self.opennet.stats.admitted += 1;
        if let (None, Some(every)) = (self.opennet.next_upkeep, self.config.opennet.upkeep_interval) {
            self.opennet.next_upkeep = Some(now + every);
        }
        self.add_peer(now, peer, location);
        if found == Found::Seed && std::mem::take(&mut self.opennet.seeds_asked) {
            // Back at a seed after asking for one: announce through it now, not at the
            // next interval. Found on real processes: a node whose peers kept dropping it
            // asked for the seeds 28 times and never announced, because the seed let it go
            // (it had briefly advertised its floor of peers) before its interval was up.
            self.start_announce(now);
        }
        Ok(())
    }

    /// Drops a stranger: forgets it and tells the driver to close its link.
    fn drop_stranger(&mut self, now: Instant, peer: PeerId) {
        self.remove_peer(now, peer);
        self.opennet.actions.push_back(LinkAction::Drop { peer });
    }

    /// Called by `remove_peer`: the peer is gone, whatever it was; announcements waiting on
    /// it count its hop as done.
    pub(super) fn opennet_peer_removed(&mut self, peer: PeerId) {
        self.opennet.strangers.remove(peer);
        let waiting: Vec<(PeerId, RequestId)> =
            self.opennet.ann_by_link.range((peer, 0)..=(peer, RequestId::MAX)).map(|(k, _)| *k).collect();
        for k in waiting {
            if let Some(h) = self.opennet.ann_by_link.remove(&k) {
                self.announce_hop_done(h);
            }
        }
    }

    /// A peer told its location: a stranger's link length (its link-length class) is known
    /// now. The driver admits a stranger that dialled in, a seed and a reconnecting
    /// stranger before their first `LocationUpdate`, at this node's own location; recorded
    /// as such, every one of them counted as a short link of length 0 for good, and the
    /// classes replaced the wrong peers (the 40-node real-process test split into islands).
    pub(super) fn opennet_location_known(&mut self, peer: PeerId, location: Location) {
        let link = self.config.location.distance_f64(location);
        self.opennet.strangers.set_link(peer, link);
    }

    /// A request succeeded through `peer`: its score and the count toward the next
    /// replacement grow.
    pub(super) fn opennet_success(&mut self, peer: PeerId, now: Instant) {
        let half_life = self.config.opennet.success_half_life;
        self.opennet.strangers.record_success(peer, now, half_life);
    }

    /// Opennet upkeep (every `upkeep_interval`, or when the simulator calls it): announce
    /// while below the floor or short of short links (alone: ask the driver for the seeds again); a seed drops the
    /// newcomers that advertise peers of their own or were held `seed_hold`, keeping
    /// `floor` strangers (so seeds stay small); past the ceiling (friends added), drop the
    /// least useful strangers.
    pub fn opennet_upkeep(&mut self, now: Instant) {
        let c = self.config.opennet.clone();
        if !c.mode.strangers() {
            return;
        }
        let own = self.config.location;
        let known: Vec<f64> = self
            .peers
            .ids()
            .filter_map(|p| self.peers.get(p))
            .flat_map(|e| std::iter::once(e.location).chain(e.foaf.iter().copied()))
            .filter(|l| *l != own)
            .map(|l| own.distance_f64(l))
            .collect();
        self.opennet.strangers.set_local_reach(known, &c);
        let have = self.friends() + self.opennet.strangers.count();
        // A newcomer whose every peer is a fellow newcomer of the seed that holds it (each
        // lists that seed among its neighbours) announces through it again each interval:
        // the seed lets it go only once it links outside its nursery, and a floor of
        // fellows is not that. (Every held newcomer announcing again filled 10,000
        // simulated nodes to their ceilings while they joined, and 1,151 latecomers found
        // no room at all.)
        let seeds_at: Vec<Location> = self
            .opennet
            .strangers
            .iter()
            .filter(|(_, s)| s.kind == PeerKind::Seed && now < s.added + c.seed_hold * NURSERY_HOLDS)
            .filter_map(|(p, _)| self.peers.get(p).map(|e| e.location))
            .collect();
        let held = !seeds_at.is_empty()
            && self
                .opennet
                .strangers
                .iter()
                .filter(|(_, s)| s.kind != PeerKind::Seed)
                .all(|(p, _)| self.peers.get(p).is_some_and(|e| e.foaf.iter().any(|l| seeds_at.contains(l))));
        // Short of short links, it announces only if it could take one (room, or a
        // replacement the limits allow): full nodes announced at every interval for good.
        let short_links = self.opennet.strangers.short_of_local(&c) && self.want(now, self.config.location) != Want::No;
        // For short links alone (at its floor, not held) it announces ten times less often:
        // their nearest nodes may stay full, and it would ask them at every interval.
        let every =
            if have < c.floor || held { c.announce_interval } else { c.announce_interval * SHORT_LINK_SLOWDOWN };
        let short = have < c.floor || held || short_links;
        if !c.seed_node && short && self.opennet.last_announce.is_none_or(|t| t + every <= now) {
            if self.opennet.strangers.seeds().is_empty() && have < c.floor {
                // Below the floor without a seed: back to the seeds (the driver dials
                // them), announce through one next time, as Hyphanet's `Announcer` does.
                // Announcing through its own peers, a node in a small island (churn took
                // the links to the rest) would only ever meet that island.
                self.opennet.last_announce = Some(now);
                self.opennet.seeds_asked = true;
                self.opennet.stats.need_seeds += 1;
                self.opennet.actions.push_back(LinkAction::NeedSeeds);
            } else {
                self.start_announce(now);
            }
        }
        if c.seed_node {
            // A seed keeps its `floor` longest-held strangers (its anchors: members of the
            // network by now, through which the next newcomers' announcements reach it).
            // It lets a newcomer go once it advertises more than `floor` peers, one of them
            // outside the seed's nursery (the newcomers it holds besides the anchors); after
            // `seed_hold`, once it has one link outside or fewer than `floor` peers (it will
            // come back to a seed and announce again); in any case after NURSERY_HOLDS
            // holds. What it holds longer is a newcomer whose floor of peers are all fellow
            // newcomers: letting those go split 40 real nodes started at once into islands
            // (their clique had no link to the rest), and while held they announce again.
            let nursery = self.seed_nursery();
            let go_now = |p: PeerId, held: Duration| {
                let Some(e) = self.peers.get(p) else { return true };
                let fellow =
                    |l: &Location| nursery.iter().any(|&q| self.peers.get(q).is_some_and(|n| n.location == *l));
                let outside = e.foaf.iter().any(|l| !fellow(l));
                (outside && e.foaf.len() > c.floor)
                    || (held >= c.seed_hold && (outside || e.foaf.len() < c.floor))
                    || held >= c.seed_hold * NURSERY_HOLDS
            };
            let mut go: Vec<(Instant, PeerId)> = nursery
                .iter()
                .filter_map(|&p| self.opennet.strangers.get(p).map(|s| (s.added, p)))
                .filter(|&(added, p)| go_now(p, now.saturating_duration_since(added)))
                .collect();
            go.sort_unstable_by(|a, b| b.cmp(a));
            for (_, p) in go {
                self.opennet.stats.bootstrap_dropped += 1;
                self.drop_stranger(now, p);
            }
        }
        while self.friends() + self.opennet.strangers.count() > c.ceiling.max(if c.seed_node { c.seed_cap } else { 0 })
        {
            let Some(v) = self.opennet.strangers.least_useful(now, &OpennetConfig { limits: false, ..c.clone() })
            else {
                break;
            };
            self.drop_stranger(now, v);
        }
    }

    /// A seed's nursery: the newcomers (strangers that dialled in) it holds, except its
    /// longest-held ones, its anchors into the network: as many as make `floor`
    /// strangers with the ones it found itself.
    fn seed_nursery(&self) -> Vec<PeerId> {
        let mut inbound: Vec<(Instant, PeerId)> = self
            .opennet
            .strangers
            .iter()
            .filter(|(_, s)| s.kind == PeerKind::Stranger && s.found == Found::Inbound)
            .map(|(p, s)| (s.added, p))
            .collect();
        inbound.sort_unstable();
        let others = self.opennet.strangers.count() - inbound.len();
        let anchors = self.config.opennet.floor.saturating_sub(others);
        inbound.into_iter().skip(anchors).map(|(_, p)| p).collect()
    }

    /// Starts an announcement through a seed (or, with no seed left, any peer); returns
    /// whether one went out.
    pub fn start_announce(&mut self, now: Instant) -> bool {
        let seeds = self.opennet.strangers.seeds();
        let pool = if seeds.is_empty() { self.peer_ids() } else { seeds };
        if pool.is_empty() || !self.config.opennet.mode.strangers() {
            return false;
        }
        let to = pool[self.rng.gen_range(0..pool.len())];
        self.opennet.last_announce = Some(now);
        self.opennet.stats.announces_started += 1;
        let target = self.config.location;
        let h = self.new_announce(None, target, now);
        let id: RequestId = self.rng.gen();
        self.opennet.ann_by_link.insert((to, id), h);
        if let Some(a) = self.opennet.announces.get_mut(&h) {
            a.pending = 1;
        }
        let (htl, reference) = (self.config.opennet.announce_htl, self.config.opennet.reference.clone());
        self.transmits.push_back((to, Message::Announce { id, htl, location: target, reference }));
        true
    }

    fn new_announce(&mut self, up: Option<(PeerId, RequestId)>, target: Location, now: Instant) -> u64 {
        if self.opennet.announces.len() >= MAX_ANNOUNCES {
            let oldest = self.opennet.announces.iter().min_by_key(|(h, a)| (a.started, **h)).map(|(h, _)| *h);
            if let Some(h) = oldest {
                self.opennet.announces.remove(&h);
                self.opennet.ann_by_link.retain(|_, v| *v != h);
            }
        }
        let h = self.opennet.next_ann;
        self.opennet.next_ann += 1;
        self.opennet.announces.insert(h, Ann { up, target, pending: 0, replies: 0, started: now });
        h
    }

    /// Handles an opennet message (a darknet node ignores them all).
    pub(super) fn on_opennet_message(&mut self, now: Instant, peer: PeerId, msg: Message) {
        if !self.config.opennet.mode.strangers() {
            return;
        }
        match msg {
            Message::Announce { id, htl, location, reference } => {
                self.on_announce(now, peer, id, htl, location, reference)
            }
            Message::AnnounceReply { id, location, reference } => {
                let Some(&h) = self.opennet.ann_by_link.get(&(peer, id)) else { return };
                let Some(a) = self.opennet.announces.get_mut(&h) else { return };
                if a.replies >= MAX_REPLIES {
                    return;
                }
                a.replies += 1;
                match a.up {
                    Some((u, uid)) => {
                        self.transmits.push_back((u, Message::AnnounceReply { id: uid, location, reference }))
                    }
                    None => self.ask_connect(location, reference, Found::Announcement),
                }
            }
            Message::AnnounceDone { id } => {
                let Some(h) = self.opennet.ann_by_link.remove(&(peer, id)) else { return };
                self.announce_hop_done(h);
            }
            Message::FoldOffer { id, location, reference } => {
                let Some(&h) = self.by_link.get(&(peer, id)) else { return };
                if let Some(f) = self.requests.get_mut(&h) {
                    f.fold.get_or_insert((location, reference));
                }
            }
            _ => {}
        }
    }

    fn announce_hop_done(&mut self, h: u64) {
        let Some(a) = self.opennet.announces.get_mut(&h) else { return };
        a.pending = a.pending.saturating_sub(1);
        if a.pending == 0 {
            if let Some((u, uid)) = a.up {
                self.transmits.push_back((u, Message::AnnounceDone { id: uid }));
            }
            self.opennet.announces.remove(&h);
        }
    }

    fn on_announce(
        &mut self,
        now: Instant,
        peer: PeerId,
        id: RequestId,
        htl: Htl,
        target: Location,
        reference: Reference,
    ) {
        let looping = self.opennet.announces.values().any(|a| a.target == target && a.up.is_some());
        if looping || !self.opennet.strangers.take_announce_token(now, &self.config.opennet) {
            self.opennet.stats.announces_refused += u64::from(!looping);
            self.transmits.push_back((peer, Message::AnnounceDone { id }));
            return;
        }
        self.opennet.stats.announces_handled += 1;
        let own = self.config.opennet.reference.clone();
        if !self.has_peer_at(target) && self.want(now, target) != Want::No && !own.as_bytes().is_empty() {
            self.opennet.stats.announce_offers += 1;
            let location = self.config.location;
            self.transmits.push_back((peer, Message::AnnounceReply { id, location, reference: own }));
        }
        // Where next: the closest peer if it is closer than us, else the closest few with at
        // most one hop left (they ask their own closest few). Never a seed: the newcomer
        // knows the seeds already, and a walk that ends at a seed finds nobody new.
        let me = self.config.location.distance(target);
        let ranked_peers = |established: bool| -> Vec<(u64, PeerId)> {
            let mut v: Vec<(u64, PeerId)> = self
                .peers
                .ids()
                .filter(|&p| p != peer)
                .filter(|&p| self.opennet.strangers.get(p).is_none_or(|s| s.kind != PeerKind::Seed))
                .filter_map(|p| self.peers.get(p).map(|e| (e, p)))
                .filter(|(e, _)| !established || e.foaf.len() >= self.config.opennet.floor)
                .filter(|(e, _)| e.location != target)
                .map(|(e, p)| (e.location.distance(target), p))
                .collect();
            v.sort_unstable();
            v
        };
        let ranked = ranked_peers(false);
        let mut next: Vec<(PeerId, Htl)> = match ranked.first() {
            _ if htl == 0 => Vec::new(),
            Some(&(d, p)) if d < me => vec![(p, htl - 1)],
            _ => {
                // Three of the six closest, at random: a newcomer that announces again meets
                // more of its neighbourhood than the same three nodes.
                let mut near: Vec<PeerId> = ranked.iter().take(2 * ANNOUNCE_FAN_OUT).map(|&(_, p)| p).collect();
                rand::seq::SliceRandom::shuffle(&mut near[..], &mut self.rng);
                near.into_iter().take(ANNOUNCE_FAN_OUT).map(|p| (p, (htl - 1).min(1))).collect()
            }
        };
        // A seed also sends the announcement into the network through its established
        // peer closest to the newcomer (one with as many neighbours as the floor):
        // newcomers that joined together sit near each other with few peers, and a walk
        // among the ones the seed holds finds nobody new (measured on real processes: 5 of
        // 40 nodes started at once stayed at 3 peers for a minute).
        if self.config.opennet.seed_node && htl > 0 {
            let established = ranked_peers(true).into_iter().map(|(_, p)| p).find(|p| next.iter().all(|(q, _)| q != p));
            if let Some(p) = established {
                next.push((p, htl - 1));
            }
        }
        if next.is_empty() {
            self.transmits.push_back((peer, Message::AnnounceDone { id }));
            return;
        }
        let h = self.new_announce(Some((peer, id)), target, now);
        if let Some(a) = self.opennet.announces.get_mut(&h) {
            a.pending = next.len() as u32;
        }
        for (p, htl) in next {
            let nid: RequestId = self.rng.gen();
            self.opennet.ann_by_link.insert((p, nid), h);
            self.transmits
                .push_back((p, Message::Announce { id: nid, htl, location: target, reference: reference.clone() }));
        }
    }

    fn ask_connect(&mut self, location: Location, reference: Reference, found: Found) {
        if self.has_peer_at(location) || reference.as_bytes().is_empty() {
            return;
        }
        self.opennet.stats.connects_asked += 1;
        self.opennet.actions.push_back(LinkAction::Connect { location, reference, found });
    }

    /// Path folding when a request ends well: `offer` is the reference that came back with
    /// the answer (None when this node is where the data was: `originate`), `upstream`
    /// whom the answer goes to (None: a local request).
    pub(super) fn fold(
        &mut self,
        now: Instant,
        offer: Option<(Location, Reference)>,
        originate: bool,
        upstream: Option<(PeerId, RequestId)>,
    ) {
        let c = &self.config.opennet;
        if !c.mode.strangers() {
            return;
        }
        let own = (self.config.location, c.reference.clone());
        let offer = if originate { Some(own.clone()) } else { offer };
        let Some((location, reference)) = offer else { return };
        if reference.as_bytes().is_empty() {
            return;
        }
        let wants = !self.has_peer_at(location) && self.want(now, location) != Want::No;
        match upstream {
            None => {
                if wants {
                    self.ask_connect(location, reference, Found::PathFold);
                }
            }
            Some((u, uid)) => {
                let take = self.config.opennet.fold_take;
                let (location, reference) =
                    if !originate && wants && !own.1.as_bytes().is_empty() && self.rng.gen::<f64>() < take {
                        self.ask_connect(location, reference, Found::PathFold);
                        own
                    } else {
                        (location, reference)
                    };
                if location == self.config.location {
                    self.opennet.stats.fold_offers += 1;
                }
                self.transmits.push_back((u, Message::FoldOffer { id: uid, location, reference }));
            }
        }
    }
}
