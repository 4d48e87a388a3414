//! Rekeying of datagram links (docs/wire.md, "Datagram links", "Rekeying"): across many key
//! updates over lossy, duplicating, reordering paths every frame arrives once and intact;
//! datagrams from before an update, replayed or delayed past the previous key's time, are
//! refused; junk costs at most two AEAD opens and never moves a key; nothing in clear
//! changes at an update. Virtual time, seeded (tests/datagram/path.rs).

// The base of virtual time is one real `Instant`; nothing else reads the clock.
#![allow(clippy::disallowed_methods)]

mod datagram {
    pub(crate) mod frames;
    pub(crate) mod path;
}

use std::collections::HashMap;
use std::time::{Duration, Instant};

use datagram::frames::{body, index_of};
use datagram::path::{Direction, PathConfig};
use pamphlet_node::link::datagram::{Config, DatagramCipher, DatagramError, Dropped, Session, DATAGRAM_LEN};
use proptest::prelude::*;

fn config(rekey_after: u64) -> Config {
    Config { rekey_after, ..Config::default() }
}

/// Frame `i` of a transfer over `streams` streams (0: single-frame messages).
fn frame(i: u64, streams: u64) -> [u8; pamphlet_node::wire::frame::BODY_LEN] {
    body(i, (i % streams.max(1)) as u16)
}

/// Two sessions over a simulated path, frames both ways, in virtual time.
struct Link {
    start: Instant,
    now: Instant,
    a: Session,
    b: Session,
    ab: Direction,
    ba: Direction,
    streams: u64,
    /// Frames each end still has to hand over.
    to_b: std::ops::Range<u64>,
    to_a: std::ops::Range<u64>,
    /// If set, `a` hands over one frame per this interval (a quiet link).
    spacing: Option<Duration>,
    next_handover: Instant,
    /// Frame indices delivered at `b` and at `a`, in delivery order.
    at_b: Vec<u64>,
    at_a: Vec<u64>,
    /// The clear packet numbers of every datagram `a` sent, in order.
    clear_pns: Vec<u32>,
}

impl Link {
    fn new(path: PathConfig, seed: u64, cfg: Config, to_b: u64, to_a: u64, streams: u64) -> Self {
        let start = Instant::now();
        let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
        Self {
            start,
            now: start,
            a: Session::new(ca, start, cfg.clone()),
            b: Session::new(cb, start, cfg),
            ab: Direction::new(path.clone(), seed, start),
            ba: Direction::new(path, seed ^ 0x5EED, start),
            streams,
            to_b: 0..to_b,
            to_a: 0..to_a,
            spacing: None,
            next_handover: start,
            at_b: Vec::new(),
            at_a: Vec::new(),
            clear_pns: Vec::new(),
        }
    }

    fn done(&self) -> bool {
        self.to_b.is_empty()
            && self.to_a.is_empty()
            && self.a.unacked_frames() == 0
            && self.b.unacked_frames() == 0
            && self.at_b.len() as u64 == self.to_b.end
            && self.at_a.len() as u64 == self.to_a.end
    }

    fn run(&mut self, limit: Duration) {
        while self.now - self.start < limit {
            let now = self.now;
            for d in self.ab.arrived(now) {
                accept(&mut self.b, now, &d);
            }
            for d in self.ba.arrived(now) {
                accept(&mut self.a, now, &d);
            }
            for (s, got) in [(&mut self.b, &mut self.at_b), (&mut self.a, &mut self.at_a)] {
                while let Some(f) = s.recv_frame() {
                    let i = index_of(&f);
                    assert!(*f == frame(i, self.streams), "frame {i} altered");
                    got.push(i);
                }
                assert!(s.footprint().recv_keys <= 3, "{:?}", s.footprint());
            }
            match self.spacing {
                Some(gap) => {
                    while self.next_handover <= now {
                        let Some(i) = self.to_b.next() else { break };
                        self.a.send_frame(&frame(i, self.streams));
                        self.next_handover += gap;
                    }
                }
                None => {
                    while self.a.queued_frames() < 256 {
                        let Some(i) = self.to_b.next() else { break };
                        self.a.send_frame(&frame(i, self.streams));
                    }
                }
            }
            while self.b.queued_frames() < 256 {
                let Some(i) = self.to_a.next() else { break };
                self.b.send_frame(&frame(i, self.streams));
            }
            for (s, dir, mut clear) in
                [(&mut self.a, &mut self.ab, Some(&mut self.clear_pns)), (&mut self.b, &mut self.ba, None)]
            {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.on_timeout(now);
                }
                while let Some(d) = s.poll_transmit(now) {
                    assert_eq!(d.len(), DATAGRAM_LEN, "every datagram has the same length");
                    if let Some(c) = clear.as_deref_mut() {
                        c.push(u32::from_be_bytes(d[..4].try_into().unwrap()));
                    }
                    dir.send(now, d);
                }
            }
            if self.done() {
                return;
            }
            let next = [
                self.ab.next_arrival(),
                self.ba.next_arrival(),
                self.a.poll_timeout(),
                self.b.poll_timeout(),
                self.spacing.filter(|_| !self.to_b.is_empty()).map(|_| self.next_handover),
            ]
            .into_iter()
            .flatten()
            .min();
            self.now = next.unwrap_or(now + Duration::from_millis(1)).max(now + Duration::from_micros(1));
        }
        panic!(
            "not done after {limit:?}: {}/{} at b, {}/{} at a; a {:?}; b {:?}",
            self.at_b.len(),
            self.to_b.end,
            self.at_a.len(),
            self.to_a.end,
            self.a.stats(),
            self.b.stats()
        );
    }

    /// Every frame arrived once, in order within its stream, both ways.
    fn check_delivery(&self) {
        for (got, total) in [(&self.at_b, self.to_b.end), (&self.at_a, self.to_a.end)] {
            let mut seen = vec![false; total as usize];
            let mut last: HashMap<u64, u64> = HashMap::new();
            for &i in got {
                assert!(!std::mem::replace(&mut seen[i as usize], true), "frame {i} twice");
                let s = i % self.streams.max(1);
                if s != 0 {
                    if let Some(p) = last.insert(s, i) {
                        assert!(p < i, "stream {s}: {i} after {p}");
                    }
                }
            }
            assert!(seen.iter().all(|&s| s), "frames missing");
        }
    }

    /// Each end's receiver followed the other's sender through every key phase (the last
    /// switch may ride on a datagram lost at the end, after which nothing was sent).
    fn check_phases(&self) {
        for (from, to) in [(&self.a, &self.b), (&self.b, &self.a)] {
            let (sent, received) = (from.stats().rekeys_sent, to.stats().rekeys_received);
            assert!(received <= sent && received + 1 >= sent, "sent {sent} switches, {received} followed");
        }
    }
}

/// Hands a datagram to a session; an honest datagram is never blamed on the peer.
fn accept(s: &mut Session, now: Instant, d: &[u8]) {
    match s.on_datagram(now, d) {
        Ok(()) | Err(DatagramError::Dropped(_)) => {}
        Err(e) => panic!("the honest peer was blamed: {e}"),
    }
}

fn bad_path() -> PathConfig {
    let mut p = PathConfig::wan(Duration::from_millis(20), 10.0);
    p.loss = 0.03;
    p.duplicate = 0.02;
    p.jitter = Duration::from_millis(8);
    p
}

#[test]
fn every_frame_arrives_across_many_rekeys_over_a_lossy_reordering_path() {
    let mut link = Link::new(bad_path(), 1, config(32), 3000, 1000, 7);
    link.run(Duration::from_secs(120));
    link.check_delivery();
    link.check_phases();
    let (a, b) = (link.a.stats(), link.b.stats());
    assert!(a.rekeys_sent >= 40 && b.rekeys_sent >= 10, "a {a:?}, b {b:?}");
    assert!(a.retransmissions > 0 && b.dropped > 0, "the path did lose and duplicate: {a:?} {b:?}");
    // Nothing in clear marks a switch: every datagram is the same size (checked as sent)
    // and the clear packet numbers just count on.
    assert!(link.clear_pns.windows(2).all(|w| w[1] == w[0] + 1), "packet numbers count on");
}

#[test]
fn many_datagrams_lost_around_the_switches() {
    // Bursts lost both ways around switches: the data one way (a switch's first datagrams
    // and everything after them for a while), the acknowledgements (which let the sender
    // move on) the other.
    let mut link = Link::new(PathConfig::wan(Duration::from_millis(20), 10.0), 2, config(16), 2000, 300, 3);
    link.ab.drop_indices.extend((100..160).chain(400..440).chain(700..716));
    link.ba.drop_indices.extend((20..40).chain(100..110));
    link.run(Duration::from_secs(600));
    link.check_delivery();
    link.check_phases();
    assert!(link.a.stats().rekeys_sent >= 20, "{:?}", link.a.stats());
}

#[test]
fn a_quiet_link_rekeys_by_time() {
    let cfg = Config { rekey_after: u64::MAX, rekey_after_time: Duration::from_secs(1), ..Config::default() };
    let mut link = Link::new(bad_path(), 3, cfg, 100, 0, 2);
    link.spacing = Some(Duration::from_millis(100));
    link.run(Duration::from_secs(60));
    link.check_delivery();
    link.check_phases();
    // A frame every 100 ms for 10 s: a switch about every second.
    let n = link.a.stats().rekeys_sent;
    assert!((8..=10).contains(&n), "{n} switches in 10 s");
}

/// `a` sends `frames` frames to `b` in lockstep (1 ms steps, no path), with
/// `deliver(index, datagram)` deciding which of `a`'s datagrams reach `b`; `b`'s all reach
/// `a`. Returns `a`'s datagrams by index, and the time.
fn lockstep(
    a: &mut Session,
    b: &mut Session,
    mut now: Instant,
    frames: std::ops::Range<u64>,
    mut deliver: impl FnMut(usize, &[u8], &mut Session, Instant) -> bool,
) -> (Vec<Vec<u8>>, Instant) {
    let mut sent = Vec::new();
    for i in frames {
        a.send_frame(&frame(i, 1));
    }
    for _ in 0..20_000 {
        for s in [&mut *a, &mut *b] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.on_timeout(now);
            }
        }
        while let Some(d) = a.poll_transmit(now) {
            if deliver(sent.len(), &d, b, now) {
                accept(b, now, &d);
            }
            sent.push(d);
        }
        while let Some(d) = b.poll_transmit(now) {
            accept(a, now, &d);
        }
        if a.unacked_frames() == 0 {
            break;
        }
        now += Duration::from_millis(1);
    }
    assert_eq!(a.unacked_frames(), 0, "{:?}", a.stats());
    (sent, now)
}

#[test]
fn datagrams_from_before_a_rekey_are_refused_later() {
    let t0 = Instant::now();
    let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
    let (mut a, mut b) = (Session::new(ca, t0, config(8)), Session::new(cb, t0, config(8)));
    // Datagram 3 (the first key's) is held back by the path and never delivered.
    let (sent, now) = lockstep(&mut a, &mut b, t0, 0..200, |i, _, _, _| i != 3);
    let delivered: Vec<u64> = std::iter::from_fn(|| b.recv_frame()).map(|f| index_of(&f)).collect();
    assert_eq!(delivered.len(), 200, "its frame was sent again under a later key");
    let switches = b.stats().rekeys_received;
    assert!(switches >= 3, "{:?}", b.stats());
    // Long after (the previous key's 3 PTO are past): the first key's datagrams, replayed,
    // and the one never delivered, are all refused; nothing moves, nothing is delivered.
    let later = now + Duration::from_secs(10);
    b.on_timeout(later);
    assert_eq!(b.footprint().recv_keys, 2, "the previous key was dropped");
    for (i, d) in sent.iter().enumerate().take(8) {
        let r = b.on_datagram(later, d);
        let expect = if i == 3 { Dropped::Decrypt } else { Dropped::Replay };
        assert_eq!(r, Err(DatagramError::Dropped(expect)), "datagram {i}");
    }
    assert!(b.recv_frame().is_none());
    assert_eq!(b.stats().rekeys_received, switches);
    // Delivered late but within the previous key's time, a datagram of the phase before
    // the switch still opens (reordering across a switch costs nothing).
    let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
    let (mut a, mut b) = (Session::new(ca, t0, config(8)), Session::new(cb, t0, config(8)));
    let mut held = None;
    let mut late_ok = None;
    lockstep(&mut a, &mut b, t0, 0..40, |i, d, b, now| {
        if i == 7 {
            held = Some(d.to_vec());
            return false;
        }
        if b.stats().rekeys_received == 1 && late_ok.is_none() {
            if let Some(h) = held.take() {
                late_ok = Some(b.on_datagram(now, &h));
            }
        }
        true
    });
    assert_eq!(late_ok, Some(Ok(())), "a datagram of the previous key, just after the switch");
}

#[test]
fn junk_during_rekeying_costs_at_most_two_opens_and_never_moves_a_key() {
    let t0 = Instant::now();
    let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
    let (mut a, mut b) = (Session::new(ca, t0, config(8)), Session::new(cb, t0, config(8)));
    let mut junk_sent = 0u64;
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (_, _) = lockstep(&mut a, &mut b, t0, 0..300, |_, d, b, now| {
        // Before each genuine datagram, junk of every kind: random bytes, the datagram
        // with a bit flipped (sealed part, tag, clear packet number) and renumbered ahead.
        let mut kinds: Vec<Vec<u8>> = Vec::new();
        kinds.push((0..DATAGRAM_LEN).map(|_| next() as u8).collect());
        for at in [20, DATAGRAM_LEN - 1, 3] {
            let mut f = d.to_vec();
            f[at] ^= 1 << (next() % 8);
            kinds.push(f);
        }
        let mut renumbered = d.to_vec();
        let pn = u32::from_be_bytes(d[..4].try_into().unwrap()).wrapping_add(1 + (next() % 5) as u32);
        renumbered[..4].copy_from_slice(&pn.to_be_bytes());
        kinds.push(renumbered);
        for k in kinds {
            let (opens, phase) = (b.stats().aead_opens, b.stats().rekeys_received);
            let r = b.on_datagram(now, &k);
            assert!(matches!(r, Err(DatagramError::Dropped(_))), "junk accepted: {r:?}");
            assert!(b.stats().aead_opens - opens <= 2, "{} opens", b.stats().aead_opens - opens);
            assert_eq!(b.stats().rekeys_received, phase, "junk moved the key");
            junk_sent += 1;
        }
        true
    });
    let delivered = std::iter::from_fn(|| b.recv_frame()).count();
    assert_eq!(delivered, 300);
    assert!(b.stats().rekeys_received >= 5 && junk_sent >= 1500, "{:?}", b.stats());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the path does and however often the keys change (down to every datagram),
    /// every frame arrives exactly once, intact, in order within its stream, both ways.
    #[test]
    fn no_path_and_no_rekey_interval_corrupts_the_frames(
        seed in any::<u64>(),
        to_b in 1u64..400,
        to_a in 0u64..100,
        streams in 1u64..6,
        loss in 0.0f64..0.3,
        duplicate in 0.0f64..0.3,
        jitter_ms in 0u64..60,
        rekey_after in 1u64..64,
    ) {
        let mut path = PathConfig::wan(Duration::from_millis(10), 50.0);
        path.loss = loss;
        path.duplicate = duplicate;
        path.jitter = Duration::from_millis(jitter_ms);
        let mut link = Link::new(path, seed, config(rekey_after), to_b, to_a, streams);
        link.run(Duration::from_secs(3600));
        link.check_delivery();
        link.check_phases();
    }
}
