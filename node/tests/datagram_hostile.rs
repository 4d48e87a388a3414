//! Hostile bytes against a datagram session (issue 18): whatever anyone on the path sends
//! (garbage, wrong lengths, mutated, renumbered or replayed datagrams) is `Dropped`, and
//! whatever the peer holding the keys sends (absurd acknowledgement ranges, frame numbers,
//! stream links, packet numbers) is accepted or refused as `PeerError`, never a panic;
//! the session's state stays within its stated bounds, no delivered frame is altered, and
//! an honest transfer afterwards still completes intact (docs/wire.md, "Datagram links").

// The base of virtual time is one real `Instant`; nothing else reads the clock.
#![allow(clippy::disallowed_methods)]

mod datagram {
    pub(crate) mod frames;
    pub(crate) mod path;
}

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use datagram::frames::{body, index_of};
use datagram::path::{Direction, PathConfig};
use pamphlet_node::link::datagram::ack::TRACKED_RANGES;
use pamphlet_node::link::datagram::packet::{
    self, expand_packet_number, Ack, FrameHeader, COUNT_AT, DELAY_AT, FIRST_AT, HEADER_LEN, LARGEST_AT, MAX_RANGES,
    NUMBER_AT, PLAIN_LEN, PN_LEN, PREVIOUS_AT, SLOTS_AT,
};
use pamphlet_node::link::datagram::{
    Config, DatagramCipher, DatagramError, Dropped, Session, DATAGRAM_LEN, FRAME_WINDOW,
};
use pamphlet_node::wire::frame::BODY_LEN;
use proptest::prelude::*;

/// The bounds docs/wire.md states, checked after every datagram.
fn check_bounds(s: &Session) {
    let f = s.footprint();
    assert!(f.held <= FRAME_WINDOW as usize, "{f:?}");
    assert!(f.received_above <= FRAME_WINDOW as usize, "{f:?}");
    assert!(f.ack_ranges <= TRACKED_RANGES, "{f:?}");
    assert_eq!(f.copies, f.in_flight, "every packet number remembered is in flight: {f:?}");
}

/// What an attacker on the path does to the next datagram it sees.
#[derive(Clone, Debug)]
enum Attack {
    /// Sends bytes of its own.
    Garbage(Vec<u8>),
    /// Flips bits of a datagram seen (its packet number, sealed part or tag).
    Flip { at: usize, mask: u8 },
    /// Sends a datagram seen under another packet number.
    Renumber(u64),
    /// Cuts or extends a datagram seen.
    Resize(usize),
    /// Sends a datagram seen again, now and later (inside and far outside the window).
    Replay,
}

fn attack() -> impl Strategy<Value = Attack> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1300).prop_map(Attack::Garbage),
        (0..DATAGRAM_LEN, 1u8..=255).prop_map(|(at, mask)| Attack::Flip { at, mask }),
        prop_oneof![any::<u64>(), 0u64..64].prop_map(Attack::Renumber),
        (0usize..2 * DATAGRAM_LEN).prop_map(Attack::Resize),
        Just(Attack::Replay),
    ]
}

/// An attacked honest transfer from `a` to `b` over a path with loss and jitter.
struct Attacked {
    start: Instant,
    now: Instant,
    a: Session,
    b: Session,
    ab: Direction,
    ba: Direction,
    /// Every datagram either side sent, for the attacker to reuse: (to `b`?, bytes).
    seen: Vec<(bool, Vec<u8>)>,
    /// Each frame index `b` received.
    received: Vec<u64>,
}

impl Attacked {
    fn new(path: PathConfig, seed: u64) -> Self {
        let start = Instant::now();
        let (ca, cb) = DatagramCipher::loopback_pair().unwrap();
        Self {
            start,
            now: start,
            a: Session::new(ca, start, Config::default()),
            b: Session::new(cb, start, Config::default()),
            ab: Direction::new(path.clone(), seed, start),
            ba: Direction::new(path, seed ^ 0xBACC, start),
            seen: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Runs one step at `self.now`: arrivals, timers, transmissions. Honest datagrams
    /// must never be blamed on the peer.
    fn step(&mut self) {
        let now = self.now;
        for d in self.ab.arrived(now) {
            honest(&mut self.b, now, &d);
        }
        for d in self.ba.arrived(now) {
            honest(&mut self.a, now, &d);
        }
        while let Some(f) = self.b.recv_frame() {
            let i = index_of(&f);
            assert!(*f == body(i, u16::from_be_bytes([f[1], f[2]])), "frame {i} arrived altered");
            self.received.push(i);
        }
        for (s, dir, to_b) in [(&mut self.a, &mut self.ab, true), (&mut self.b, &mut self.ba, false)] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.on_timeout(now);
            }
            while let Some(d) = s.poll_transmit(now) {
                self.seen.push((to_b, d.clone()));
                dir.send(now, d);
            }
        }
        check_bounds(&self.a);
        check_bounds(&self.b);
        let next = [self.ab.next_arrival(), self.ba.next_arrival(), self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        self.now = next.unwrap_or(now + Duration::from_millis(1)).max(now + Duration::from_micros(1));
    }

    /// Applies `attack` to the `pick`-th datagram seen (if any) and checks the outcome.
    fn attack(&mut self, attack: &Attack, pick: usize) {
        let now = self.now;
        let Some((to_b, seen)) = self.seen.get(pick % self.seen.len().max(1)).cloned() else { return };
        let target = if to_b { &mut self.b } else { &mut self.a };
        let dropped = target.stats().dropped;
        let (d, verbatim) = match attack {
            Attack::Garbage(g) => (g.clone(), false),
            Attack::Flip { at, mask } => {
                let mut d = seen;
                d[*at] ^= mask;
                (d, false)
            }
            Attack::Renumber(pn) => {
                let mut d = seen;
                // The clear part is the number's low 32 bits.
                let same = d[..PN_LEN] == (*pn as u32).to_be_bytes();
                d[..PN_LEN].copy_from_slice(&(*pn as u32).to_be_bytes());
                (d, same)
            }
            Attack::Resize(len) => {
                let mut d = seen;
                d.resize(*len, 0xA5);
                (d, *len == DATAGRAM_LEN)
            }
            Attack::Replay => (seen, true),
        };
        match target.on_datagram(now, &d) {
            // A verbatim copy of a datagram still on the path (or lost on it) is as
            // good as the original, which is then the replay.
            Ok(()) if verbatim => {}
            Err(DatagramError::Dropped(_)) => assert_eq!(target.stats().dropped, dropped + 1),
            r => panic!("{attack:?} gave {r:?}"),
        }
    }
}

fn honest(s: &mut Session, now: Instant, d: &[u8]) {
    match s.on_datagram(now, d) {
        Ok(()) | Err(DatagramError::Dropped(_)) => {}
        Err(e) => panic!("the honest peer was blamed: {e}"),
    }
}

/// Runs `p` until `a` handed over `frames` frames in `streams` streams, `b` received each
/// once and intact, and `a` has nothing unacknowledged; `attacks` land one per step.
fn attacked_transfer(p: &mut Attacked, frames: u64, streams: u64, attacks: &[(Attack, usize)]) {
    for i in 0..frames {
        p.a.send_frame(&body(i, (i % streams) as u16));
    }
    let mut attacks = attacks.iter();
    for _ in 0..200_000 {
        p.step();
        if let Some((a, pick)) = attacks.next() {
            p.attack(a, *pick);
        }
        if p.received.len() as u64 == frames && p.a.unacked_frames() == 0 && attacks.len() == 0 {
            break;
        }
    }
    assert_eq!(p.a.unacked_frames(), 0, "not done after {:?}: {:?}", p.now - p.start, p.a.stats());
    let got: HashSet<u64> = p.received.iter().copied().collect();
    assert_eq!((got.len(), p.received.len()), (frames as usize, frames as usize), "each frame exactly once");
}

/// An acknowledgement's raw fields: largest, first range, (gap, length) slots, delay (µs).
type RawAck = (u64, u16, Vec<(u16, u16)>, u32);

/// What the peer holding the keys puts in a datagram's sealed header.
#[derive(Clone, Debug)]
enum Hostile {
    /// A well-formed header with arbitrary values.
    Fields { frame: Option<(u64, u64)>, ack: Option<RawAck> },
    /// Arbitrary header bytes (and a body of the frame number, or zeros).
    Raw(Vec<u8>),
    /// Well-formed and plausible, so that links stay open and state builds up: a frame
    /// chained to any earlier one, and an acknowledgement of any set of the first 16
    /// packet numbers (sent or not, received or not).
    Plausible { frame: Option<(u64, u64)>, acked: u16, delay: u32 },
}

/// Mostly plausible values (so some links stay open and state builds up), some at the
/// receive window's edge, some anything.
fn small_or_any() -> impl Strategy<Value = u64> {
    prop_oneof![12 => 0u64..24, 1 => FRAME_WINDOW - 8..FRAME_WINDOW + 8, 1 => any::<u64>()]
}

fn hostile() -> impl Strategy<Value = Hostile> {
    let frame = prop::option::of((small_or_any(), small_or_any()));
    let ack = prop::option::of((
        small_or_any(),
        prop_oneof![8 => 0u16..4, 1 => any::<u16>()],
        prop::collection::vec(
            (prop_oneof![8 => 0u16..4, 1 => any::<u16>()], prop_oneof![8 => 0u16..4, 1 => any::<u16>()]),
            0..=MAX_RANGES,
        ),
        any::<u32>(),
    ));
    prop_oneof![
        3 => (frame, ack).prop_map(|(frame, ack)| Hostile::Fields { frame, ack }),
        1 => prop::collection::vec(any::<u8>(), HEADER_LEN).prop_map(Hostile::Raw),
        6 => (prop::option::of((1u64..40, any::<u64>())), any::<u16>(), any::<u32>()).prop_map(|(frame, acked, delay)| {
            Hostile::Plausible { frame: frame.map(|(n, p)| (n, p % n)), acked, delay }
        }),
    ]
}

/// The plaintext for `h`, laid out by hand (the encoder would refuse what is absurd).
fn plaintext(h: &Hostile) -> [u8; PLAIN_LEN] {
    let mut p = [0u8; PLAIN_LEN];
    match h {
        Hostile::Fields { frame, ack } => {
            if let Some((number, previous)) = frame {
                p[0] |= 1;
                p[NUMBER_AT..NUMBER_AT + 8].copy_from_slice(&number.to_be_bytes());
                // The layout says a predecessor as its distance (0: none), any u16.
                let distance = if *previous == 0 { 0 } else { number.wrapping_sub(*previous) as u16 };
                p[PREVIOUS_AT..PREVIOUS_AT + 2].copy_from_slice(&distance.to_be_bytes());
                p[HEADER_LEN..].copy_from_slice(&body(*number, 9));
            }
            if let Some((largest, first, ranges, delay)) = ack {
                p[0] |= 2;
                p[LARGEST_AT..LARGEST_AT + 8].copy_from_slice(&largest.to_be_bytes());
                p[DELAY_AT..DELAY_AT + 4].copy_from_slice(&delay.to_be_bytes());
                p[FIRST_AT..FIRST_AT + 2].copy_from_slice(&first.to_be_bytes());
                p[COUNT_AT] = ranges.len() as u8;
                for (k, (gap, len)) in ranges.iter().enumerate() {
                    let at = SLOTS_AT + 4 * k;
                    p[at..at + 2].copy_from_slice(&gap.to_be_bytes());
                    p[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        Hostile::Plausible { frame, acked, delay } => {
            let mut ranges: Vec<(u64, u64)> = Vec::new();
            for pn in (0..16u64).rev().filter(|pn| acked & (1 << pn) != 0) {
                match ranges.last_mut() {
                    Some(r) if r.0 == pn + 1 => r.0 = pn,
                    _ => ranges.push((pn, pn)),
                }
            }
            let ack = Ack { ranges, delay: Duration::from_micros(u64::from(*delay)) };
            let header = frame.map(|(number, previous)| FrameHeader { number, previous });
            let b = frame.map(|(number, _)| body(number, 9)).unwrap_or([0; BODY_LEN]);
            packet::encode(header.as_ref().map(|h| (h, &b)), (acked != &0).then_some(&ack), &mut p);
        }
        Hostile::Raw(header) => {
            p[..HEADER_LEN].copy_from_slice(header);
            let number = u64::from_be_bytes(header[NUMBER_AT..NUMBER_AT + 8].try_into().unwrap());
            if header[0] & 1 != 0 {
                p[HEADER_LEN..].copy_from_slice(&body(number, 9));
            }
        }
    }
    p
}

/// Datagrams the keys' honest owner sends (all lost, within its initial window) before the forger speaks under its
/// packet numbers: `b`'s acknowledgements of them are then no lie to it.
const OWNER_SENT: u64 = 12;

/// The peer holding the keys sends `hostile` datagrams to `b` (which has `pending` frames
/// in flight, their datagrams lost). Returns `b`, the keys' honest owner `a` (which sent
/// `OWNER_SENT` datagrams, all lost), whether the link is still open (no `PeerError`), and
/// the time.
fn hostile_peer(seed: u64, pending: u64, hostile: &[(u64, Hostile)]) -> (Session, Session, bool, Instant) {
    let start = Instant::now();
    let (ca, cb) = DatagramCipher::loopback_pair_seeded(seed).unwrap();
    let (forger, _) = DatagramCipher::loopback_pair_seeded(seed).unwrap();
    let mut a = Session::new(ca, start, Config::default());
    let mut b = Session::new(cb, start, Config::default());
    for i in 0..pending {
        b.send_frame(&body(i, 0));
    }
    for i in 0..OWNER_SENT {
        a.send_frame(&body(i, 0));
    }
    let mut now = start;
    for _ in 0..100 {
        for s in [&mut a, &mut b] {
            if s.poll_timeout().is_some_and(|t| t <= now) {
                s.on_timeout(now);
            }
            while s.poll_transmit(now).is_some() {}
        }
        now += Duration::from_millis(2);
    }
    let mut accepted: HashMap<u64, u64> = HashMap::new();
    let mut delivered: HashSet<u64> = HashSet::new();
    let mut open = true;
    // The largest packet number `b` authenticated (its owner's datagrams were all lost).
    let mut largest: Option<u64> = None;
    for (pn, h) in hostile {
        now += Duration::from_micros(300);
        let plain = plaintext(h);
        let Ok(d) = forger.seal(*pn, &plain) else { continue };
        let expect = packet::decode(&plain);
        let r = b.on_datagram(now, &d);
        if matches!(r, Ok(()) | Err(DatagramError::Peer(_))) {
            largest = Some(largest.map_or(*pn, |l| l.max(*pn)));
        }
        match r {
            // Only the low 32 bits travel: a number 2^31 or more from what `b` expects is
            // taken for another, and the datagram does not open under that nonce.
            Err(DatagramError::Dropped(Dropped::Decrypt)) if expand_packet_number(largest, *pn as u32) != *pn => {}
            Ok(()) => {
                let p = expect.expect("a malformed header was accepted");
                if let Some((FrameHeader { number, previous }, _)) = p.frame {
                    accepted.entry(number).or_insert(previous);
                }
            }
            Err(DatagramError::Dropped(Dropped::Replay)) => {}
            Err(DatagramError::Peer(e)) => {
                if let Err(de) = expect {
                    assert_eq!(e, de, "decode's verdict");
                }
                open = false;
            }
            Err(e) => panic!("an authentic datagram gave {e:?}"),
        }
        check_bounds(&b);
        while let Some(f) = b.recv_frame() {
            let n = index_of(&f);
            assert!(*f == body(n, 9), "frame {n} altered");
            let previous = accepted.get(&n).copied();
            assert!(previous.is_some(), "frame {n} delivered but never accepted");
            assert!(delivered.insert(n), "frame {n} delivered twice");
            let previous = previous.unwrap_or(0);
            assert!(previous == 0 || delivered.contains(&previous), "frame {n} before its predecessor");
        }
        if !open {
            break;
        }
    }
    (a, b, open, now)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Anyone on the path: every attack is dropped and counted, and the transfer it was
    /// aimed at delivers every frame once and intact.
    #[test]
    fn attacks_from_the_path_are_dropped(
        seed in any::<u64>(),
        frames in 1u64..300,
        streams in 1u64..5,
        loss in 0.0f64..0.1,
        jitter_ms in 0u64..20,
        attacks in prop::collection::vec((attack(), any::<usize>()), 0..200),
    ) {
        let mut path = PathConfig::wan(Duration::from_millis(10), 50.0);
        path.loss = loss;
        path.jitter = Duration::from_millis(jitter_ms);
        let mut p = Attacked::new(path, seed);
        attacked_transfer(&mut p, frames, streams, &attacks);
    }

    /// The peer holding the keys: absurd fields are accepted harmlessly or refused as its
    /// fault, never a panic, state within bounds, nothing delivered altered; and if the
    /// link stayed open, an honest transfer over it afterwards completes intact.
    #[test]
    fn a_hostile_peer_is_refused_or_harmless(
        seed in any::<u64>(),
        pending in prop_oneof![1 => 0u64..16, 4 => 16u64..40],
        hostile in prop::collection::vec((prop_oneof![12 => 0u64..OWNER_SENT, 1 => any::<u64>()], hostile()), 1..24),
        frames in 1u64..150,
    ) {
        let (mut a, mut b, open, now) = hostile_peer(seed, pending, &hostile);
        // Under a packet number its owner never used, the forger is caught by the owner
        // (`b` acknowledges a packet the owner never sent), and a number far ahead moves the
        // replay window past the owner's: the keyed peer can so cut its own link, as it
        // could by going silent.
        if !open || hostile.iter().any(|(pn, _)| *pn >= a.stats().datagrams_sent) {
            return Ok(());
        }
        // Now `b` sends fresh streams to `a`, honestly acknowledged.
        for i in 0..frames {
            b.send_frame(&body(1000 + i, 1 + (i % 3) as u16));
        }
        let path = PathConfig::wan(Duration::from_millis(10), 50.0);
        let (mut ba, mut ab) = (Direction::new(path.clone(), seed, now), Direction::new(path, !seed, now));
        let mut got = HashSet::new();
        let mut t = now;
        for _ in 0..100_000 {
            for d in ba.arrived(t) {
                honest(&mut a, t, &d);
            }
            for d in ab.arrived(t) {
                honest(&mut b, t, &d);
            }
            while let Some(f) = a.recv_frame() {
                let i = index_of(&f);
                assert!(*f == body(i, u16::from_be_bytes([f[1], f[2]])), "frame {i} altered");
                assert!(got.insert(i), "frame {i} twice");
            }
            for (s, dir) in [(&mut b, &mut ba), (&mut a, &mut ab)] {
                if s.poll_timeout().is_some_and(|x| x <= t) {
                    s.on_timeout(t);
                }
                while let Some(d) = s.poll_transmit(t) {
                    dir.send(t, d);
                }
            }
            check_bounds(&b);
            if b.unacked_frames() == 0 && (1000..1000 + frames).all(|i| got.contains(&i)) {
                break;
            }
            let next = [ba.next_arrival(), ab.next_arrival(), a.poll_timeout(), b.poll_timeout()]
                .into_iter().flatten().min();
            t = next.unwrap_or(t + Duration::from_millis(1)).max(t + Duration::from_micros(1));
        }
        prop_assert_eq!(b.unacked_frames(), 0, "{:?}", b.stats());
        prop_assert!((1000..1000 + frames).all(|i| got.contains(&i)), "fresh frames missing");
    }
}

/// An acknowledgement of a packet number never sent, however large, is the peer's fault
/// and takes nothing from what is in flight.
#[test]
fn a_huge_largest_acknowledged_is_refused() {
    let plain = plaintext(&Hostile::Fields { frame: None, ack: Some((u64::MAX - 1, u16::MAX, Vec::new(), u32::MAX)) });
    let (_, b, open, _) = hostile_peer(1, 5, &[(0, Hostile::Raw(plain[..HEADER_LEN].to_vec()))]);
    assert!(!open);
    assert_eq!(b.unacked_frames(), 5);
    assert_eq!(b.footprint().in_flight, 5, "nothing was taken from the bogus acknowledgement");
}

/// Found by the bounds check of the property tests: a frame's list of transmissions kept
/// the packet numbers of its lost copies, so a frame resent through a long outage grew it
/// without bound. Here the first 60 datagrams towards `b` are lost; the check after every
/// step requires the list to hold exactly the copies in flight.
#[test]
fn a_frame_resent_many_times_remembers_only_copies_in_flight() {
    let mut p = Attacked::new(PathConfig::wan(Duration::from_millis(10), 50.0), 3);
    p.ab.drop_indices.extend(1..=60);
    attacked_transfer(&mut p, 4, 2, &[]);
    assert!(p.a.stats().retransmissions >= 40, "{:?}", p.a.stats());
}
