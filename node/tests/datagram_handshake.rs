//! The handshake over datagrams (`link::datagram::handshake`, issue 18): both messages one
//! datagram of the data datagrams' size, message 1 resent unchanged until answered, a lost
//! message 2 answered again from the responder's `Reply`, replays, strangers and probers
//! refused with nothing kept, and bytes of every kind dropped without spoiling the
//! genuine handshake (docs/wire.md, "Datagram links").

// The base of virtual time is one real `Instant`; nothing else reads the clock.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use pamphlet_node::link::datagram::handshake::{respond, Answer, HandshakeConfig, Initiator};
use pamphlet_node::link::datagram::{Config, DatagramCipher, Session, DATAGRAM_LEN};
use pamphlet_node::link::noise::{self, ReplayCache, SessionError, MAX_CLOCK_SKEW_SECS};
use pamphlet_node::link::{PublicKey, StaticKeypair};
use pamphlet_node::wire::frame::{BODY_LEN, FRAME_LEN};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;

struct Ends {
    a: StaticKeypair,
    b: StaticKeypair,
    cache: ReplayCache,
    t0: Instant,
}

fn ends() -> Ends {
    Ends {
        a: StaticKeypair::generate().unwrap(),
        b: StaticKeypair::generate().unwrap(),
        cache: ReplayCache::new(),
        t0: Instant::now(),
    }
}

impl Ends {
    fn start(&self) -> Initiator {
        Initiator::start(&self.a, self.b.public(), NOW, self.t0, HandshakeConfig::default()).unwrap()
    }

    fn respond(&mut self, msg1: &[u8]) -> Result<Answer, SessionError> {
        let a = *self.a.public();
        respond(&self.b, msg1, NOW, &mut self.cache, |k: &PublicKey| *k == a)
    }
}

/// One frame each way through sessions over the two ciphers: they are the two ends of one
/// link.
fn assert_paired(ca: DatagramCipher, cb: DatagramCipher, t: Instant) {
    let (mut sa, mut sb) = (Session::new(ca, t, Config::default()), Session::new(cb, t, Config::default()));
    let one = |from: &mut Session, to: &mut Session, byte: u8| {
        from.send_frame(&[byte; BODY_LEN]);
        let d = from.poll_transmit(t).expect("a datagram");
        to.on_datagram(t, &d).unwrap();
        assert_eq!(*to.recv_frame().expect("the frame"), [byte; BODY_LEN]);
    };
    one(&mut sa, &mut sb, 1);
    one(&mut sb, &mut sa, 2);
}

#[test]
fn both_messages_are_one_datagram_and_the_keys_pair() {
    let mut e = ends();
    let mut init = e.start();
    let msg1 = init.poll_transmit(e.t0).expect("message 1 at once").to_vec();
    assert_eq!(msg1.len(), DATAGRAM_LEN);
    let answer = e.respond(&msg1).unwrap();
    assert_eq!(&answer.peer, e.a.public());
    // No amplification: message 2 is no larger than message 1.
    assert_eq!(answer.reply.datagram().len(), DATAGRAM_LEN);
    init.on_datagram(answer.reply.datagram()).unwrap();
    assert_paired(init.into_cipher().unwrap(), answer.cipher, e.t0);
}

#[test]
fn a_lost_message_1_is_resent_unchanged_with_backoff_until_the_timeout() {
    let mut e = ends();
    let mut init = e.start();
    let t0 = e.t0;
    let first = init.poll_transmit(t0).unwrap().to_vec(); // lost
    assert!(init.poll_transmit(t0).is_none(), "one copy per due time");
    assert_eq!(init.poll_timeout(), t0 + Duration::from_millis(300));
    assert!(init.poll_transmit(t0 + Duration::from_millis(299)).is_none());
    let ms = |m| t0 + Duration::from_millis(m);
    assert_eq!(init.poll_transmit(ms(300)).unwrap(), &first[..], "the same message 1 again");
    assert!(init.poll_transmit(ms(899)).is_none());
    assert_eq!(init.poll_transmit(ms(900)).unwrap(), &first[..], "then after twice the wait");
    assert_eq!(init.poll_timeout(), ms(2100));
    let answer = e.respond(&first).unwrap();
    init.on_datagram(answer.reply.datagram()).unwrap();
    assert_paired(init.into_cipher().unwrap(), answer.cipher, ms(900));

    // Unanswered, it gives up at the timeout (4 s), after 1 + 4 resends.
    let mut init = e.start();
    let mut copies = 0;
    let mut t = t0;
    while !init.expired(t) {
        if init.poll_transmit(t).is_some() {
            copies += 1;
        }
        t = init.poll_timeout();
    }
    assert_eq!(t, ms(4000));
    assert!(init.poll_transmit(t).is_none());
    assert_eq!((copies, init.sent()), (4, 4), "sent at 0, 0.3, 0.9 and 2.1 s (the next, 4.5 s, is past it)");
}

#[test]
fn a_lost_message_2_is_answered_again_from_the_reply_not_by_a_second_session() {
    let mut e = ends();
    let mut init = e.start();
    let msg1 = init.poll_transmit(e.t0).unwrap().to_vec();
    let answer = e.respond(&msg1).unwrap(); // its message 2 is lost
    let again = init.poll_transmit(e.t0 + Duration::from_millis(300)).unwrap().to_vec();
    // The responder's socket sees a datagram from an address with a session: the copy is
    // recognised and answered with the same message 2; as a new message 1 it is a replay.
    assert!(answer.reply.answers(&again));
    assert!(matches!(e.respond(&again), Err(SessionError::Replay)));
    // Another message 1 of the same friend (a new handshake) is not taken for a copy.
    let mut other = e.start();
    assert!(!answer.reply.answers(other.poll_transmit(e.t0).unwrap()));
    init.on_datagram(answer.reply.datagram()).unwrap();
    assert_paired(init.into_cipher().unwrap(), answer.cipher, e.t0);
}

#[test]
fn a_replayed_message_1_is_refused_now_and_later() {
    let mut e = ends();
    let mut init = e.start();
    let msg1 = init.poll_transmit(e.t0).unwrap().to_vec();
    e.respond(&msg1).unwrap();
    assert!(matches!(e.respond(&msg1), Err(SessionError::Replay)));
    // Past the cache's memory the timestamp refuses it.
    let a = *e.a.public();
    let later = respond(&e.b, &msg1, NOW + 2 * MAX_CLOCK_SKEW_SECS + 1, &mut ReplayCache::new(), |k| *k == a);
    assert!(matches!(later, Err(SessionError::StaleTimestamp)));
}

#[test]
fn strangers_and_probers_get_nothing_and_leave_nothing() {
    let mut e = ends();
    // A stranger holding our key: refused before any reply.
    let stranger = StaticKeypair::generate().unwrap();
    let mut s = Initiator::start(&stranger, e.b.public(), NOW, e.t0, HandshakeConfig::default()).unwrap();
    let m = s.poll_transmit(e.t0).unwrap().to_vec();
    assert!(matches!(e.respond(&m), Err(SessionError::UnknownPeer(k)) if k == *stranger.public()));
    // A prober without our key: its message 1 does not even decrypt.
    let wrong = StaticKeypair::generate().unwrap();
    let mut p = Initiator::start(&e.a, wrong.public(), NOW, e.t0, HandshakeConfig::default()).unwrap();
    let m = p.poll_transmit(e.t0).unwrap().to_vec();
    assert!(matches!(e.respond(&m), Err(SessionError::Decrypt)));
    // A message 1 of the TCP handshake (1024 bytes, another prologue) is refused too.
    let mut tcp = [0u8; FRAME_LEN];
    noise::Initiator::start(&e.a, e.b.public(), NOW, &mut tcp).unwrap();
    assert!(matches!(e.respond(&tcp), Err(SessionError::BadLength(FRAME_LEN))));
    let mut padded = tcp.to_vec();
    padded.resize(DATAGRAM_LEN, 0);
    assert!(matches!(e.respond(&padded), Err(SessionError::Decrypt)));
    // Nothing was kept: the friend's handshake still goes through.
    let mut init = e.start();
    let msg1 = init.poll_transmit(e.t0).unwrap().to_vec();
    let answer = e.respond(&msg1).unwrap();
    init.on_datagram(answer.reply.datagram()).unwrap();
    assert_paired(init.into_cipher().unwrap(), answer.cipher, e.t0);
}

#[test]
fn a_data_datagram_or_message_2_is_no_message_1() {
    let mut e = ends();
    let mut init = e.start();
    let msg1 = init.poll_transmit(e.t0).unwrap().to_vec();
    let answer = e.respond(&msg1).unwrap();
    assert!(e.respond(answer.reply.datagram()).is_err());
    let mut s = Session::new(answer.cipher, e.t0, Config::default());
    s.send_frame(&[3; BODY_LEN]);
    let data = s.poll_transmit(e.t0).unwrap();
    assert!(e.respond(&data).is_err());
    // And the initiator takes neither a data datagram nor message 1 for message 2.
    assert!(init.on_datagram(&data).is_err());
    assert!(init.on_datagram(&msg1).is_err());
    init.on_datagram(answer.reply.datagram()).unwrap();
}

/// What an attacker sends in place of a handshake message.
#[derive(Clone, Debug)]
enum Forgery {
    /// Bytes of any length.
    Garbage(Vec<u8>),
    /// The genuine message with one byte changed.
    Flip { at: usize, mask: u8 },
    /// The genuine message cut or extended.
    Resize(usize),
}

fn forgery() -> impl Strategy<Value = Forgery> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..1300).prop_map(Forgery::Garbage),
        (0..DATAGRAM_LEN, 1u8..=255).prop_map(|(at, mask)| Forgery::Flip { at, mask }),
        (0usize..2 * DATAGRAM_LEN).prop_map(Forgery::Resize),
    ]
}

fn forge(f: &Forgery, genuine: &[u8]) -> Vec<u8> {
    match f {
        Forgery::Garbage(b) => b.clone(),
        Forgery::Flip { at, mask } => {
            let mut d = genuine.to_vec();
            d[*at] ^= mask;
            d
        }
        Forgery::Resize(n) => {
            let mut d = genuine.to_vec();
            d.resize(*n, 0);
            d
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Forged messages 1 before the genuine one and forged messages 2 before the genuine
    /// one: every forgery is refused, none is answered, and the genuine handshake then
    /// completes (a forgery neither fills the replay cache with the genuine ephemeral key
    /// nor spoils the initiator's state).
    #[test]
    fn forgeries_are_refused_and_spoil_nothing(
        ones in prop::collection::vec(forgery(), 1..6),
        twos in prop::collection::vec(forgery(), 1..6),
    ) {
        let mut e = ends();
        let mut init = e.start();
        let msg1 = init.poll_transmit(e.t0).unwrap().to_vec();
        for f in &ones {
            let d = forge(f, &msg1);
            if d != msg1 {
                prop_assert!(e.respond(&d).is_err(), "forged message 1 answered: {f:?}");
            }
        }
        let answer = e.respond(&msg1).unwrap();
        let msg2 = answer.reply.datagram().to_vec();
        for f in &twos {
            let d = forge(f, &msg2);
            if d != msg2 {
                prop_assert!(init.on_datagram(&d).is_err(), "forged message 2 taken: {f:?}");
                prop_assert!(!answer.reply.answers(&d) || d == msg1);
            }
        }
        init.on_datagram(&msg2).unwrap();
        assert_paired(init.into_cipher().unwrap(), answer.cipher, e.t0);
    }
}
