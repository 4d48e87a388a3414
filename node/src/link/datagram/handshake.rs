//! The handshake over datagrams, sans-IO: the padded IK handshake of `link::noise`, each
//! message one datagram of exactly [`DATAGRAM_LEN`] bytes (the size of every data
//! datagram), then a [`DatagramCipher`] for the link's [`super::Session`].
//!
//! ```text
//! initiator                                     responder
//! Initiator::start ── message 1 (1070 B) ──►    respond(): decrypts, friend?, fresh?,
//!   resent unchanged, 300 ms doubling,            ephemeral key new to the ReplayCache?
//!   until answered or `timeout`                   (nothing kept before all four pass)
//! Initiator::on_datagram ◄── message 2 (1070 B) ── Reply (kept with the session: a resent
//!   = DatagramCipher                                message 1 gets the same message 2 again)
//! ```
//!
//! - **No cleartext type.** Nothing says "handshake": message 1 starts with the initiator's
//!   ephemeral key, message 2 with the responder's, a data datagram with its packet number.
//!   A receiver tells them apart by what it expects from the sender's address: an address
//!   with a session gets its datagrams opened by that session (and a datagram equal to the
//!   message 1 it answered gets the [`Reply`] again); an address this node is handshaking
//!   with is expected to send message 2; any other address can only send a message 1.
//! - **No amplification.** Message 2 is no larger than message 1, and each message 1 copy
//!   gets at most one message 2: a spoofed source gets back at most what was sent.
//! - **No state before authentication.** [`respond`] keeps nothing unless message 1
//!   decrypts under our static key, comes from a friend (or whom `is_friend` admits), is
//!   within an hour of our clock and carries an ephemeral key the [`ReplayCache`] has not
//!   seen (the rules of the TCP handshake, docs/wire.md "Handshake"; the node can share
//!   one cache between both). A refused message 1 gets silence.
//! - **Its own prologue** (`pamphlet datagram link v2`): a handshake made for TCP cannot
//!   be completed over datagrams or the reverse (their lengths differ too). v2 since links
//!   rekey (session 9): a build without rekeying could not open the datagrams after the
//!   first key update, so the two refuse each other's handshake and link over TCP instead.
//! - **Resends are identical.** The initiator resends the same message 1 (same ephemeral
//!   key): a second copy reaching the responder after the first is either answered from
//!   the [`Reply`] (a lost message 2) or refused as a replay, never a second session.

use std::time::{Duration, Instant};

use crate::link::noise::{self, PublicKey, ReplayCache, SessionError, StaticKeypair};

use super::{DatagramCipher, DATAGRAM_LEN};

/// Bound into every datagram handshake's hash (differs from the TCP link's).
pub const PROLOGUE: &[u8] = b"pamphlet datagram link v2";

/// The initiator's resend schedule.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    /// The first resend of message 1 comes this long after the first send; each later one
    /// after twice the previous wait.
    pub resend_initial: Duration,
    /// The initiator gives up this long after its first send (the TCP dial's
    /// `handshake_timeout`).
    pub timeout: Duration,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        Self { resend_initial: Duration::from_millis(300), timeout: Duration::from_secs(4) }
    }
}

/// The initiator's side until message 2 arrives.
pub struct Initiator {
    /// The handshake waiting for message 2.
    hs: snow::HandshakeState,
    /// Message 1, sent again unchanged.
    msg1: Box<[u8; DATAGRAM_LEN]>,
    /// When message 1 was first due.
    started: Instant,
    /// When it is next due.
    next_send: Instant,
    /// The wait before the resend after the next.
    wait: Duration,
    /// Copies sent.
    sent: u32,
    /// The schedule.
    config: HandshakeConfig,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator").field("sent", &self.sent).finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake with `remote` at `now` (`now_unix`: seconds since the epoch,
    /// carried in message 1). Message 1 is due at once ([`Initiator::poll_transmit`]).
    pub fn start(
        local: &StaticKeypair,
        remote: &PublicKey,
        now_unix: u64,
        now: Instant,
        config: HandshakeConfig,
    ) -> Result<Self, SessionError> {
        let mut msg1 = Box::new([0u8; DATAGRAM_LEN]);
        let hs = noise::write_message1(local, remote, now_unix, PROLOGUE, &mut msg1[..])?;
        let wait = config.resend_initial;
        Ok(Self { hs, msg1, started: now, next_send: now, wait, sent: 0, config })
    }

    /// Message 1 if a copy is due at `now` (the first at once, then after 300 ms, 600 ms,
    /// ... by default), until the handshake has expired.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        if now < self.next_send || self.expired(now) {
            return None;
        }
        self.sent += 1;
        self.next_send = now + self.wait;
        self.wait = self.wait.saturating_mul(2);
        Some(&self.msg1[..])
    }

    /// When to call [`Initiator::poll_transmit`] (or check [`Initiator::expired`]) next.
    pub fn poll_timeout(&self) -> Instant {
        self.next_send.min(self.started + self.config.timeout)
    }

    /// Whether the handshake has gone unanswered for the whole `timeout`.
    pub fn expired(&self, now: Instant) -> bool {
        now >= self.started + self.config.timeout
    }

    /// Copies of message 1 sent so far.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// Takes a datagram from the responder's address: `Ok` if it was message 2 (then
    /// [`Initiator::into_cipher`]). An error leaves the initiator as it was (snow restores
    /// its state), so a forged or stray datagram does not spoil the genuine message 2:
    /// drop it and keep waiting.
    pub fn on_datagram(&mut self, datagram: &[u8]) -> Result<(), SessionError> {
        noise::read_message2(&mut self.hs, datagram, DATAGRAM_LEN)
    }

    /// The link's keys, once [`Initiator::on_datagram`] took message 2 (an error before).
    pub fn into_cipher(self) -> Result<DatagramCipher, SessionError> {
        DatagramCipher::from_handshake(self.hs).map_err(SessionError::Noise)
    }
}

/// What the responder keeps with a session it answered: message 1 and its message 2, so a
/// copy of message 1 (the initiator resending because message 2 was lost) is answered
/// again, once per copy, instead of being refused as a replay.
#[derive(Clone)]
pub struct Reply {
    msg1: Box<[u8; DATAGRAM_LEN]>,
    msg2: Box<[u8; DATAGRAM_LEN]>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply(..)")
    }
}

impl Reply {
    /// Message 2.
    pub fn datagram(&self) -> &[u8] {
        &self.msg2[..]
    }

    /// Whether `datagram` is a copy of the message 1 this reply answers (then send
    /// [`Reply::datagram`] again).
    pub fn answers(&self, datagram: &[u8]) -> bool {
        datagram == &self.msg1[..]
    }
}

/// An accepted message 1: who called, the link's keys, and message 2 to send back.
#[derive(Debug)]
pub struct Answer {
    /// The initiator's static key.
    pub peer: PublicKey,
    /// The link's keys.
    pub cipher: DatagramCipher,
    /// Message 2 (send [`Reply::datagram`]), kept to answer resends of message 1.
    pub reply: Reply,
}

/// The responder's side: reads a datagram from an address without a session as message
/// 1 and, if it passes every check (see the module), answers. On any error nothing is
/// kept and nothing may be sent back.
pub fn respond(
    local: &StaticKeypair,
    datagram: &[u8],
    now_unix: u64,
    replay: &mut ReplayCache,
    is_friend: impl Fn(&PublicKey) -> bool,
) -> Result<Answer, SessionError> {
    let (peer, mut hs) = noise::read_message1(local, datagram, DATAGRAM_LEN, now_unix, PROLOGUE, replay, is_friend)?;
    let mut msg2 = Box::new([0u8; DATAGRAM_LEN]);
    noise::write_message2(&mut hs, &mut msg2[..])?;
    let cipher = DatagramCipher::from_handshake(hs).map_err(SessionError::Noise)?;
    let mut msg1 = Box::new([0u8; DATAGRAM_LEN]);
    msg1.copy_from_slice(datagram);
    Ok(Answer { peer, cipher, reply: Reply { msg1, msg2 } })
}
