//! Opennet peer management, sans-IO: which strangers a node keeps, which it takes, and which
//! it drops (issue 19; docs/opennet.md).
//!
//! A darknet node talks only to friends whose references were exchanged by hand. An opennet
//! node also connects to *strangers*: first to a few seed nodes, then to the nodes its
//! announcement reaches near its own location, then to the nodes path folding introduces
//! (the node that answered a successful request offers its reference back along the return
//! path). This file holds the policy, as plain values the `Node` consults:
//!
//! - [`Mode`]: darknet (friends only, the default), opennet (strangers only) or hybrid
//!   (friends kept, strangers added; a friend is never dropped for a stranger);
//! - [`OpennetConfig`]: the floor and ceiling of the peer count, the grace period, the rate
//!   limits;
//! - [`Strangers`]: what the node knows of each stranger (how it was found, when, how
//!   useful it has been lately) and the decisions: whether the node wants another peer
//!   ([`Strangers::want`]), whom it would drop for it (the least useful stranger past its
//!   grace period: fewest recent successes, Hyphanet's LRU in spirit), and the limits that
//!   stop a stranger from churning the node's peers;
//! - link-length classes (Hyphanet's `OpennetManager.LinkLengthClass`): a stranger within
//!   `long_distance` (0.01) of the node's location is a *short* link, any other a *long*
//!   one; a full node drops for a newcomer a stranger of the newcomer's class while that
//!   class holds its share (70% short, 30% long), else one of the other class, so path
//!   folding's long links cannot push out the short links greedy routing ends on, and a
//!   node short of short links announces again ([`Strangers::short_of_local`]).
//!
//! Nothing here sends a message or reads a clock: `now` is an argument.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::id::{Htl, PeerId};
use crate::wire::message::Reference;

/// Which peers a node has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Friends only, whose references were exchanged by hand (the default: the mode for
    /// people at risk).
    #[default]
    Darknet,
    /// Strangers, found through seed nodes, announcement and path folding.
    Opennet,
    /// Friends, and strangers beside them; friends are never dropped for strangers.
    Hybrid,
}

impl Mode {
    /// The name in config.toml and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Darknet => "darknet",
            Mode::Opennet => "opennet",
            Mode::Hybrid => "hybrid",
        }
    }

    /// Whether the node takes strangers.
    pub fn strangers(self) -> bool {
        self != Mode::Darknet
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "darknet" => Ok(Mode::Darknet),
            "opennet" => Ok(Mode::Opennet),
            "hybrid" => Ok(Mode::Hybrid),
            other => Err(format!("unknown mode {other:?} (darknet, opennet or hybrid)")),
        }
    }
}

/// What a peer is to this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerKind {
    /// A friend: its reference was exchanged by hand. Never dropped by opennet.
    Friend,
    /// A stranger found by opennet.
    Stranger,
    /// A seed node this node bootstraps through (dropped once the node has its own peers).
    Seed,
}

impl PeerKind {
    /// The name `node status` prints.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Friend => "friend",
            PeerKind::Stranger => "stranger",
            PeerKind::Seed => "seed",
        }
    }
}

/// How a stranger was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Found {
    /// From the seeds file: a seed this node connected to.
    Seed,
    /// It offered its reference in answer to our announcement.
    Announcement,
    /// Its reference came back with a successful request (path folding).
    PathFold,
    /// A stranger we had before a restart (persisted reference).
    Reconnect,
    /// It connected to us (a newcomer at a seed, or a node that took our offer).
    Inbound,
}

impl Found {
    /// The name `node status` prints.
    pub fn name(self) -> &'static str {
        match self {
            Found::Seed => "seeds file",
            Found::Announcement => "announcement",
            Found::PathFold => "path folding",
            Found::Reconnect => "reconnect",
            Found::Inbound => "inbound",
        }
    }
}

/// Opennet settings of a node. Every default is explained in docs/opennet.md.
#[derive(Clone, Debug, PartialEq)]
pub struct OpennetConfig {
    /// Darknet (default), opennet or hybrid.
    pub mode: Mode,
    /// Accept newcomers and their announcements (a seed node).
    pub seed_node: bool,
    /// This node's own reference, as the driver encodes it (a node reference for the real
    /// transport, a node number in the simulator). Offered to strangers in announcement
    /// replies and path folding.
    pub reference: Reference,
    /// Below this many peers (friends and strangers, seeds not counted) the node announces.
    pub floor: usize,
    /// The most peers (friends and strangers) the node keeps; past it a new stranger must
    /// replace the least useful one.
    pub ceiling: usize,
    /// The most newcomers a seed node holds at once.
    pub seed_cap: usize,
    /// How long a seed holds a newcomer at most (it drops it sooner once the newcomer
    /// advertises more than `floor` peers of its own).
    pub seed_hold: Duration,
    /// A new stranger cannot be dropped for another until it is this old (its grace period:
    /// time to prove itself useful).
    pub min_age: Duration,
    /// The shortest time between two replacements (a stranger dropped for another).
    pub replace_interval: Duration,
    /// Successful requests needed between two replacements (Hyphanet: 10).
    pub successes_per_replace: u32,
    /// The shortest time between two announcements this node starts.
    pub announce_interval: Duration,
    /// Announcements this node relays or answers per second, on average (token bucket).
    pub announce_rate: f64,
    /// The token bucket's depth.
    pub announce_burst: f64,
    /// Hops an announcement travels toward the newcomer's location.
    pub announce_htl: Htl,
    /// Probability that a node relaying a path-folding offer, which wants a peer, takes the
    /// offer itself and offers its own reference upstream instead (Hyphanet: 1 in 20): the
    /// requester cannot tell whether a reference is the data source's.
    pub fold_take: f64,
    /// Half-life of a stranger's success score (its recent successful requests).
    pub success_half_life: Duration,
    /// The limits above (grace period, replacement rate and successes, announcement rate,
    /// seed cap) on; off only to measure what they buy against a Sybil (docs/opennet.md).
    pub limits: bool,
    /// How often the node runs its opennet upkeep on its own (announce while below the
    /// floor, drop seeds once it has peers); `None`: only when the driver calls
    /// `Node::opennet_upkeep` (the simulator).
    pub upkeep_interval: Option<Duration>,
    /// Link-length classes on (Hyphanet's rule, the default): a full node replaces a
    /// stranger of the newcomer's class while that class holds its share of the ceiling,
    /// else one of the other class; and it announces while it has fewer short links than
    /// the short share of its floor. Off: one pool, least useful first (only to measure
    /// what the classes buy under churn, `pamphlet sim --topology opennet --no-link-classes`).
    pub link_classes: bool,
    /// A stranger farther than this from the node's location (circle of circumference 1)
    /// is a long link (Hyphanet: `LONG_DISTANCE` 0.01).
    pub long_distance: f64,
    /// The share of the peers meant to be long links (Hyphanet: `LONG_PROPORTION` 0.3,
    /// "close to the Kleinberg optimum, and nodes with 10 peers still have 3 long links").
    pub long_share: f64,
}

impl Default for OpennetConfig {
    fn default() -> Self {
        OpennetConfig {
            mode: Mode::Darknet,
            seed_node: false,
            reference: Reference::default(),
            floor: 8,
            ceiling: 20,
            seed_cap: 40,
            seed_hold: Duration::from_secs(30),
            min_age: Duration::from_secs(300),
            replace_interval: Duration::from_secs(30),
            successes_per_replace: 10,
            announce_interval: Duration::from_secs(30),
            announce_rate: 2.0,
            announce_burst: 20.0,
            announce_htl: 10,
            fold_take: 0.05,
            success_half_life: Duration::from_secs(3600),
            limits: true,
            upkeep_interval: Some(Duration::from_secs(10)),
            link_classes: true,
            long_distance: 0.01,
            long_share: 0.3,
        }
    }
}

impl OpennetConfig {
    /// The peer ceiling for an upload budget, Hyphanet's rule: the square root of 12 times
    /// the budget in kB/s, between 10 and 40 (11 peers at 10 kB/s, 34 at 100 kB/s). The
    /// floor is half of it.
    #[must_use]
    pub fn with_bandwidth(self, upload_bytes_per_sec: u64) -> Self {
        let ceiling = ((upload_bytes_per_sec as f64 / 1000.0 * 12.0).sqrt().round() as usize).clamp(10, 40);
        OpennetConfig { ceiling, floor: ceiling / 2, ..self }
    }

    /// Whether a link of length `link` (circular distance) is a long one.
    pub fn is_long(&self, link: f64) -> bool {
        link > self.long_distance
    }

    /// Of `total` peer slots, how many are meant for long links (the rest for short ones):
    /// Hyphanet's `(int) (target * LONG_PROPORTION)`.
    pub fn long_slots(&self, total: usize) -> usize {
        (total as f64 * self.long_share) as usize
    }
}

/// What a node knows of one stranger.
#[derive(Clone, Debug)]
pub struct Stranger {
    /// Seed or stranger.
    pub kind: PeerKind,
    /// How it was found.
    pub found: Found,
    /// When it was added.
    pub added: Instant,
    /// Its distance from this node's location (the link's length).
    pub link: f64,
    /// Recent successes, decayed with `success_half_life` (as of `scored_at`).
    score: f64,
    scored_at: Instant,
}

impl Stranger {
    /// Its success score at `now`.
    pub fn score(&self, now: Instant, half_life: Duration) -> f64 {
        let dt = now.saturating_duration_since(self.scored_at).as_secs_f64();
        self.score * 0.5f64.powf(dt / half_life.as_secs_f64().max(1e-9))
    }
}

/// Whether the node wants one more stranger now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// There is room.
    Room,
    /// Only by dropping this stranger.
    Replace(PeerId),
    /// No.
    No,
}

/// Why a stranger was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// This node runs darknet only.
    Darknet,
    /// Full, and no stranger may be dropped for it now (grace periods, rate limits).
    Full,
    /// A seed at its cap of newcomers.
    SeedFull,
    /// Suspended for its lies (`node/misbehaviour.rs`), whichever way its link came up
    /// again (it dialled in, or an announcement or a folding offer brought it back).
    Suspended,
}

/// The strangers among a node's peers, and the state of its limits.
#[derive(Clone, Debug, Default)]
pub struct Strangers {
    map: BTreeMap<PeerId, Stranger>,
    /// When a stranger was last dropped for another.
    last_replace: Option<Instant>,
    /// Successful requests since then.
    successes_since_replace: u32,
    /// Announcement tokens and when they were last refilled.
    tokens: f64,
    tokens_at: Option<Instant>,
    /// How far the node's short-link share of nearest known nodes reaches
    /// ([`Strangers::set_local_reach`]): a link up to this long is short even past
    /// `long_distance`, in a network too small to hold that many nodes within it.
    local_reach: f64,
}

impl Strangers {
    /// The stranger `peer`, if it is one.
    pub fn get(&self, peer: PeerId) -> Option<&Stranger> {
        self.map.get(&peer)
    }

    /// Every stranger (seeds included), by id.
    pub fn iter(&self) -> impl Iterator<Item = (PeerId, &Stranger)> {
        self.map.iter().map(|(p, s)| (*p, s))
    }

    /// Strangers that are not seeds.
    pub fn count(&self) -> usize {
        self.map.values().filter(|s| s.kind == PeerKind::Stranger).count()
    }

    /// Seeds among the peers.
    pub fn seeds(&self) -> Vec<PeerId> {
        self.map.iter().filter(|(_, s)| s.kind == PeerKind::Seed).map(|(p, _)| *p).collect()
    }

    /// Records a new stranger, `link` away from this node's location.
    pub fn insert(&mut self, peer: PeerId, kind: PeerKind, found: Found, now: Instant, link: f64) {
        self.map.insert(peer, Stranger { kind, found, added: now, link, score: 0.0, scored_at: now });
    }

    /// Whether a link of length `link` is a long one for this node: longer than both
    /// `long_distance` and the node's local reach.
    pub fn is_long(&self, link: f64, config: &OpennetConfig) -> bool {
        config.is_long(link) && link > self.local_reach
    }

    /// Sets the local reach from the distances to the nodes this node knows of (its
    /// peers and their neighbours): the distance to the nearest ones it would link to as
    /// short links (the short share of its floor). Hyphanet's `long_distance` (0.01)
    /// assumes thousands of nodes; among 40, or a few hundred, fewer nodes than that
    /// share sit within 0.01, so every node counted itself short of short links and
    /// announced at every interval for good. Where the node knows that many within
    /// 0.01 (any network of thousands), the reach is below it and changes nothing.
    pub fn set_local_reach(&mut self, mut known: Vec<f64>, config: &OpennetConfig) {
        let want = config.floor - config.long_slots(config.floor);
        known.sort_unstable_by(f64::total_cmp);
        known.dedup();
        self.local_reach = match known.get(want.saturating_sub(1)) {
            Some(&d) => d,
            // Knowing fewer than that, the node cannot tell how dense the circle is.
            None => 0.0,
        };
    }

    /// A stranger's link length, once its location is known (no-op for anyone else).
    pub fn set_link(&mut self, peer: PeerId, link: f64) {
        if let Some(s) = self.map.get_mut(&peer) {
            s.link = link;
        }
    }

    /// Strangers (not seeds) of one link-length class.
    pub fn count_class(&self, long: bool, config: &OpennetConfig) -> usize {
        self.map.values().filter(|s| s.kind == PeerKind::Stranger && self.is_long(s.link, config) == long).count()
    }

    /// Whether the node has fewer short links than the short share of its floor, so it
    /// should announce again although it may be at its floor: churn takes the short links
    /// announcement made, and path folding mostly brings long ones (measured in
    /// docs/benchmarks.md, "Opennet bootstrap"). Always false with the classes off.
    pub fn short_of_local(&self, config: &OpennetConfig) -> bool {
        config.link_classes && self.count_class(false, config) < config.floor - config.long_slots(config.floor)
    }

    /// Forgets a stranger (it disconnected or was dropped).
    pub fn remove(&mut self, peer: PeerId) -> bool {
        self.map.remove(&peer).is_some()
    }

    /// A request succeeded through `peer` (whoever it is: the count toward the next
    /// replacement grows with every success, a stranger's score with its own).
    pub fn record_success(&mut self, peer: PeerId, now: Instant, half_life: Duration) {
        self.successes_since_replace = self.successes_since_replace.saturating_add(1);
        if let Some(s) = self.map.get_mut(&peer) {
            s.score = s.score(now, half_life) + 1.0;
            s.scored_at = now;
        }
    }

    /// The stranger to drop for a better one: fewest recent successes, then oldest, among
    /// those past their grace period (all of them, with the limits off). Seeds are not
    /// candidates (they leave on their own once the node has peers).
    pub fn least_useful(&self, now: Instant, config: &OpennetConfig) -> Option<PeerId> {
        self.least_useful_of(now, config, None)
    }

    /// [`Strangers::least_useful`] among the long links (`Some(true)`), the short ones
    /// (`Some(false)`) or all (`None`).
    pub fn least_useful_of(&self, now: Instant, config: &OpennetConfig, long: Option<bool>) -> Option<PeerId> {
        self.map
            .iter()
            .filter(|(_, s)| s.kind == PeerKind::Stranger)
            .filter(|(_, s)| long.is_none_or(|l| self.is_long(s.link, config) == l))
            .filter(|(_, s)| !config.limits || s.added + config.min_age <= now)
            .min_by(|(a, sa), (b, sb)| {
                let (x, y) = (sa.score(now, config.success_half_life), sb.score(now, config.success_half_life));
                x.total_cmp(&y).then(sa.added.cmp(&sb.added)).then(a.cmp(b))
            })
            .map(|(p, _)| *p)
    }

    /// Whether the node wants one more stranger `link` away from its location, having
    /// `friends` friends. When it is full, the stranger it would drop is of the newcomer's
    /// link-length class if that class holds its share of the slots, else of the other
    /// class (with the classes on; Hyphanet's per-class LRUs over one shared ceiling).
    pub fn want(&self, now: Instant, friends: usize, config: &OpennetConfig, link: f64) -> Want {
        if !config.mode.strangers() {
            return Want::No;
        }
        if friends + self.count() < config.ceiling {
            return Want::Room;
        }
        if config.limits {
            let too_soon = self.last_replace.is_some_and(|t| now < t + config.replace_interval);
            if too_soon || self.successes_since_replace < config.successes_per_replace {
                return Want::No;
            }
        }
        let class = if config.link_classes {
            let long = self.is_long(link, config);
            let slots = config.ceiling.saturating_sub(friends);
            let share = if long { config.long_slots(slots) } else { slots - config.long_slots(slots) };
            Some(if self.count_class(long, config) < share { !long } else { long })
        } else {
            None
        };
        self.least_useful_of(now, config, class).map_or(Want::No, Want::Replace)
    }

    /// A stranger was dropped to make room for another: the limits start over.
    pub fn replaced(&mut self, now: Instant) {
        self.last_replace = Some(now);
        self.successes_since_replace = 0;
    }

    /// Takes one announcement token if there is one (always, with the limits off).
    pub fn take_announce_token(&mut self, now: Instant, config: &OpennetConfig) -> bool {
        if !config.limits {
            return true;
        }
        let elapsed = self
            .tokens_at
            .map_or(config.announce_burst, |t| now.saturating_duration_since(t).as_secs_f64() * config.announce_rate);
        self.tokens = (self.tokens + elapsed).min(config.announce_burst);
        self.tokens_at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OpennetConfig {
        OpennetConfig { mode: Mode::Opennet, ceiling: 3, ..OpennetConfig::default() }
    }

    #[test]
    fn darknet_wants_no_strangers() {
        let s = Strangers::default();
        let c = OpennetConfig::default();
        assert_eq!(s.want(Instant::now(), 0, &c, 0.2), Want::No);
    }

    #[test]
    fn room_until_the_ceiling_counting_friends_but_not_seeds() {
        let t = Instant::now();
        let c = config();
        let mut s = Strangers::default();
        s.insert(PeerId(1), PeerKind::Seed, Found::Seed, t, 0.2);
        s.insert(PeerId(2), PeerKind::Stranger, Found::Announcement, t, 0.2);
        assert_eq!(s.want(t, 1, &c, 0.2), Want::Room);
        assert_eq!(s.want(t, 2, &c, 0.2), Want::No, "full, and nobody past the grace period");
    }

    #[test]
    fn replacement_needs_grace_period_successes_and_time() {
        let t = Instant::now();
        let c = config();
        let mut s = Strangers::default();
        for p in 1..=3 {
            s.insert(PeerId(p), PeerKind::Stranger, Found::PathFold, t, 0.2);
        }
        let later = t + c.min_age;
        assert_eq!(s.want(later, 0, &c, 0.2), Want::No, "no successes yet");
        for _ in 0..c.successes_per_replace {
            s.record_success(PeerId(1), later, c.success_half_life);
            s.record_success(PeerId(3), later, c.success_half_life);
        }
        assert_eq!(s.want(later, 0, &c, 0.2), Want::Replace(PeerId(2)), "the one with no successes");
        s.replaced(later);
        assert_eq!(s.want(later, 0, &c, 0.2), Want::No, "the limits start over");
        // With the limits off, a stranger is replaced at once, grace period or not.
        let off = OpennetConfig { limits: false, ..c };
        assert_eq!(s.want(t, 0, &off, 0.2), Want::Replace(PeerId(2)));
    }

    /// Hyphanet's link-length classes: a full node drops a long link for a short newcomer
    /// while short links are under their share (so folding's long links cannot push out
    /// the short ones), and a short one for a short newcomer once they hold it.
    #[test]
    fn a_full_node_replaces_within_the_newcomers_class_once_it_holds_its_share() {
        let t = Instant::now();
        let c = OpennetConfig { ceiling: 10, floor: 5, limits: false, ..config() };
        let mut s = Strangers::default();
        for p in 0..10 {
            s.insert(PeerId(p), PeerKind::Stranger, Found::PathFold, t, 0.1 + p as f64 * 0.01);
        }
        assert!(s.short_of_local(&c), "no short links: announce again");
        // 10 long links: a short newcomer (under its share of 7) replaces a long one, a
        // long newcomer (over its share of 3) too.
        assert!(matches!(s.want(t, 0, &c, 0.001), Want::Replace(p) if s.get(p).unwrap().link > c.long_distance));
        // 7 short links and 3 long: a short newcomer replaces a short one, a long one a long.
        let mut s = Strangers::default();
        for p in 0..10 {
            let link = if p < 7 { 0.001 * (p + 1) as f64 } else { 0.2 };
            s.insert(PeerId(p), PeerKind::Stranger, Found::PathFold, t, link);
        }
        assert!(!s.short_of_local(&c));
        assert!(matches!(s.want(t, 0, &c, 0.002), Want::Replace(p) if p.0 < 7));
        assert!(matches!(s.want(t, 0, &c, 0.3), Want::Replace(p) if p.0 >= 7));
        // With the classes off: the least useful whatever its class (the oldest: p 0).
        let off = OpennetConfig { link_classes: false, ..c };
        assert_eq!(s.want(t, 0, &off, 0.3), Want::Replace(PeerId(0)));
        assert!(!s.short_of_local(&off));
    }

    /// Among 40 nodes fewer than the short share of the floor sit within 0.01 of a node:
    /// with the reach set from the nodes it knows, its nearest few count as short links
    /// and it stops announcing for more; where the circle is dense the reach stays below
    /// 0.01 and nothing changes.
    #[test]
    fn the_local_reach_follows_the_density_of_known_nodes() {
        let t = Instant::now();
        let c = OpennetConfig { ceiling: 16, floor: 5, ..config() };
        let mut s = Strangers::default();
        // Four nearest links 0.02–0.08 away, one long: 40 nodes spread evenly.
        for (p, link) in [0.02, 0.04, 0.06, 0.08, 0.3].into_iter().enumerate() {
            s.insert(PeerId(p as u64), PeerKind::Stranger, Found::Announcement, t, link);
        }
        assert!(s.short_of_local(&c), "by 0.01 alone, no short link at all");
        let known: Vec<f64> = (1..20).map(|k| k as f64 * 0.025).collect();
        s.set_local_reach(known, &c);
        assert!(!s.short_of_local(&c), "its four nearest are short links for a network this sparse");
        // A dense circle (10,000 nodes): the fourth nearest known node is far within 0.01.
        let dense: Vec<f64> = (1..200).map(|k| k as f64 * 0.0001).collect();
        s.set_local_reach(dense, &c);
        assert!(s.short_of_local(&c), "0.01 rules where the circle is dense");
    }

    #[test]
    fn scores_decay() {
        let t = Instant::now();
        let c = config();
        let mut s = Strangers::default();
        s.insert(PeerId(1), PeerKind::Stranger, Found::PathFold, t, 0.2);
        s.record_success(PeerId(1), t, c.success_half_life);
        let later = t + c.success_half_life;
        assert!((s.get(PeerId(1)).unwrap().score(later, c.success_half_life) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn announcement_tokens_refill_at_the_rate() {
        let t = Instant::now();
        let c = OpennetConfig { announce_rate: 1.0, announce_burst: 2.0, ..config() };
        let mut s = Strangers::default();
        assert!(s.take_announce_token(t, &c) && s.take_announce_token(t, &c));
        assert!(!s.take_announce_token(t, &c));
        assert!(s.take_announce_token(t + Duration::from_secs(1), &c));
    }

    #[test]
    fn ceiling_follows_bandwidth() {
        let c = OpennetConfig::default();
        assert_eq!(c.clone().with_bandwidth(10_000).ceiling, 11);
        assert_eq!(c.clone().with_bandwidth(1_000).ceiling, 10);
        assert_eq!(c.with_bandwidth(10_000_000).ceiling, 40);
    }
}
