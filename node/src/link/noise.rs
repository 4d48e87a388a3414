//! The Noise session of one link, sans-IO: a padded IK handshake and frame sealing over
//! byte buffers (snow is itself sans-IO). The tokio link driver and the tests both use it.
//!
//! Pattern `Noise_IK_25519_ChaChaPoly_BLAKE2s` (see docs/wire.md for why IK, not XK):
//!
//! ```text
//! -> e, es, s, ss   [payload: unix time u64 BE, zeros]   padded to FRAME_LEN
//! <- e, ee, se      [payload: zeros]                      padded to FRAME_LEN
//! ```
//!
//! Message 1 only decrypts for someone holding the responder's static key, and it carries
//! the initiator's static key, so the responder checks its friend list *before* answering:
//! a prober with the wrong responder key or an unknown key gets nothing back. Replays of a
//! recorded message 1 are refused by a timestamp window plus a [`ReplayCache`] of
//! initiator ephemeral keys. After the handshake, each frame is one Noise transport
//! message: a [`BODY_LEN`]-byte body sealed into exactly [`FRAME_LEN`] bytes. Nonces are
//! implicit counters, so a replayed, reordered, dropped or altered frame fails to open.
//! Each direction rekeys (`rekey_outgoing` / `rekey_incoming`, Noise's REKEY) after every
//! `rekey_interval` frames, both ends counting the same frames.
//!
//! Static keys: a node is known to its friends by its static X25519 public key
//! ([`PublicKey`]); [`StaticKeypair`] holds the secret half (redacted in `Debug`, zeroized).

use std::collections::{HashMap, VecDeque};
use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::wire::frame::{BODY_LEN, FRAME_LEN};

/// A node's static X25519 public key: what friends put in their friend lists.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key in URL-safe base64 without padding (43 characters).
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A short form for logs: the first 8 base64 characters.
    pub fn short(&self) -> String {
        let mut s = self.to_base64();
        s.truncate(8);
        s
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// A node's long-term static X25519 key pair. The secret is zeroized on drop and never
/// printed.
#[derive(Clone)]
pub struct StaticKeypair {
    /// The secret scalar.
    secret: Zeroizing<[u8; 32]>,
    /// Its public key.
    public: PublicKey,
}

impl StaticKeypair {
    /// Generates a fresh key pair from the operating system's RNG (through snow's resolver).
    pub fn generate() -> Result<Self, SessionError> {
        let params = NOISE_PARAMS.parse().map_err(SessionError::Noise)?;
        let kp = snow::Builder::new(params).generate_keypair().map_err(SessionError::Noise)?;
        let secret = Zeroizing::new(to_array(&kp.private)?);
        let public = PublicKey(to_array(&kp.public)?);
        drop(Zeroizing::new(kp.private));
        Ok(Self { secret, public })
    }

    /// Rebuilds a key pair that was saved with [`StaticKeypair::expose_secret`] and
    /// [`StaticKeypair::public`]. The pair is not checked: a mismatched pair makes every
    /// handshake fail (use [`StaticKeypair::from_secret`] to derive the public half).
    pub fn from_parts(secret: [u8; 32], public: PublicKey) -> Self {
        Self { secret: Zeroizing::new(secret), public }
    }

    /// Rebuilds a key pair from its secret alone, deriving the public half (X25519 base
    /// point multiplication, through snow's resolver so the same code does the handshake).
    pub fn from_secret(secret: [u8; 32]) -> Result<Self, SessionError> {
        use snow::resolvers::{CryptoResolver, DefaultResolver};
        let choice = snow::params::DHChoice::Curve25519;
        let mut dh = DefaultResolver.resolve_dh(&choice).ok_or(SessionError::BadKeyLength(0))?;
        dh.set(&secret);
        let public = PublicKey(to_array(dh.pubkey())?);
        Ok(Self { secret: Zeroizing::new(secret), public })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The secret scalar, for saving it (and for the Noise handshake).
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair").field("public", &self.public).field("secret", &"..").finish()
    }
}

fn to_array(v: &[u8]) -> Result<[u8; 32], SessionError> {
    v.try_into().map_err(|_| SessionError::BadKeyLength(v.len()))
}

#[cfg(test)]
mod key_tests {
    use super::*;

    /// A link sealed with ring's ChaCha20-Poly1305 opens with RustCrypto's and back: a
    /// node of this version talks with one built before it switched (snow's default).
    #[test]
    fn ring_sessions_talk_with_default_ones() {
        use snow::resolvers::DefaultResolver;
        let params: snow::params::NoiseParams = NOISE_PARAMS.parse().unwrap();
        let (a, b) = (StaticKeypair::generate().unwrap(), StaticKeypair::generate().unwrap());
        let mut i = snow::Builder::with_resolver(params.clone(), resolver())
            .local_private_key(a.expose_secret())
            .remote_public_key(&b.public().0)
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::with_resolver(params, Box::new(DefaultResolver))
            .local_private_key(b.expose_secret())
            .build_responder()
            .unwrap();
        let (mut m, mut p) = (vec![0u8; 1024], vec![0u8; 1024]);
        let n = i.write_message(b"one", &mut m).unwrap();
        let got = r.read_message(&m[..n], &mut p).unwrap();
        assert_eq!(&p[..got], b"one");
        let n = r.write_message(b"two", &mut m).unwrap();
        let got = i.read_message(&m[..n], &mut p).unwrap();
        assert_eq!(&p[..got], b"two");
        let (mut i, mut r) = (i.into_transport_mode().unwrap(), r.into_transport_mode().unwrap());
        for k in 0..3u8 {
            let n = i.write_message(&[k; 1000], &mut m).unwrap();
            let got = r.read_message(&m[..n], &mut p).unwrap();
            assert_eq!(p[..got], [k; 1000]);
            let n = r.write_message(&[k; 1000], &mut m).unwrap();
            let got = i.read_message(&m[..n], &mut p).unwrap();
            assert_eq!(p[..got], [k; 1000]);
        }
    }

    #[test]
    fn the_public_half_is_derived_from_the_secret() {
        let kp = StaticKeypair::generate().unwrap();
        let again = StaticKeypair::from_secret(*kp.expose_secret()).unwrap();
        assert_eq!(again.public(), kp.public());
        let mut other = *kp.expose_secret();
        other[5] ^= 1;
        assert_ne!(StaticKeypair::from_secret(other).unwrap().public(), kp.public());
    }

    #[test]
    fn secrets_do_not_print() {
        let k = StaticKeypair::generate().unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&URL_SAFE_NO_PAD.encode(k.expose_secret())));
        assert!(dbg.contains(&k.public().short()));
    }
}

/// The Noise protocol name of every link.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Bound into the handshake hash, so a handshake for another protocol or version fails.
pub const PROLOGUE: &[u8] = b"pamphlet link v1";
/// Frames per direction between rekeys: 2^16 frames, i.e. every 64 MiB.
pub const DEFAULT_REKEY_INTERVAL: u64 = 1 << 16;
/// How far a message 1 timestamp may be from the responder's clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 3600;
/// The most message-1 ephemeral keys a [`ReplayCache`] remembers.
pub const REPLAY_CACHE_CAPACITY: usize = 65_536;

/// Bytes of message 1 that are not payload: e (32), s (32+16), payload tag (16).
const MSG1_OVERHEAD: usize = 32 + 48 + 16;
/// Bytes of message 2 that are not payload: e (32), payload tag (16).
const MSG2_OVERHEAD: usize = 32 + 16;

/// Why a handshake or a frame failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A handshake message or frame did not authenticate: wrong keys, a prober, or a
    /// replayed, reordered, truncated or tampered frame (the peer's fault).
    #[error("decryption failed")]
    Decrypt,
    /// A handshake message or frame is not exactly `FRAME_LEN` bytes, or its padding is
    /// the wrong length (the peer's fault).
    #[error("bad length {0}")]
    BadLength(usize),
    /// The initiator's static key is not on the friend list.
    #[error("unknown initiator {0:?}")]
    UnknownPeer(PublicKey),
    /// Message 1's timestamp is outside the accepted window.
    #[error("handshake timestamp outside the window")]
    StaleTimestamp,
    /// Message 1 was seen before (a replay).
    #[error("replayed handshake")]
    Replay,
    /// A key had the wrong length (local error).
    #[error("bad key length {0}")]
    BadKeyLength(usize),
    /// snow refused an operation (local error: misconfiguration or a snow bug).
    #[error("noise: {0}")]
    Noise(snow::Error),
}

fn builder<'a>(local: &'a StaticKeypair, prologue: &'a [u8]) -> Result<snow::Builder<'a>, SessionError> {
    let params = NOISE_PARAMS.parse().map_err(SessionError::Noise)?;
    Ok(snow::Builder::with_resolver(params, resolver()).prologue(prologue).local_private_key(local.expose_secret()))
}

/// The primitives of a session: ring's ChaCha20-Poly1305 (and RNG), the rest (X25519,
/// BLAKE2s) from snow's default RustCrypto resolver. Sealing a 1 KiB frame, the AEAD of
/// every byte a link carries, took 3.0 µs with RustCrypto's ChaCha20-Poly1305 and 0.83 µs
/// with ring's on this machine (docs/benchmarks.md, "Links"; the choice in docs/wire.md).
/// The two are the same cipher (RFC 8439 with Noise's nonces): peers on either interoperate.
fn resolver() -> Box<dyn snow::resolvers::CryptoResolver + Send> {
    use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
    Box::new(FallbackResolver::new(Box::new(RingResolver), Box::new(DefaultResolver)))
}

/// Remembers the ephemeral keys of accepted message-1s so a replay is refused.
#[derive(Debug, Default)]
pub struct ReplayCache {
    /// Ephemeral key → the unix time it may be forgotten.
    seen: HashMap<[u8; 32], u64>,
    /// Keys in arrival order, for expiry and the capacity bound.
    order: VecDeque<[u8; 32]>,
}

impl ReplayCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `e`; returns false if it was already there.
    fn insert(&mut self, e: [u8; 32], now: u64) -> bool {
        while let Some(old) = self.order.front() {
            let expired = self.seen.get(old).is_none_or(|&t| t <= now);
            if !expired && self.order.len() < REPLAY_CACHE_CAPACITY {
                break;
            }
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(&e) {
            return false;
        }
        self.seen.insert(e, now + 2 * MAX_CLOCK_SKEW_SECS);
        self.order.push_back(e);
        true
    }
}

/// The initiator's side between message 1 and message 2.
pub struct Initiator {
    hs: snow::HandshakeState,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Initiator(..)")
    }
}

impl Initiator {
    /// Starts a handshake to `remote`, writing message 1 (exactly `FRAME_LEN` bytes) to
    /// `out`. `now_unix` is the current time in seconds since the epoch.
    pub fn start(
        local: &StaticKeypair,
        remote: &PublicKey,
        now_unix: u64,
        out: &mut [u8; FRAME_LEN],
    ) -> Result<Self, SessionError> {
        Ok(Self { hs: write_message1(local, remote, now_unix, PROLOGUE, out)? })
    }

    /// Reads message 2 and finishes the handshake.
    pub fn finish(mut self, msg2: &[u8], rekey_interval: u64) -> Result<Session, SessionError> {
        read_message2(&mut self.hs, msg2, FRAME_LEN)?;
        Session::new(self.hs, rekey_interval)
    }
}

/// Writes message 1 of the padded IK handshake to `remote`, exactly `out.len()` bytes
/// (`FRAME_LEN` over TCP, one datagram over UDP), under `prologue`: the unix time, then
/// zeros. Returns the handshake waiting for message 2.
pub(crate) fn write_message1(
    local: &StaticKeypair,
    remote: &PublicKey,
    now_unix: u64,
    prologue: &[u8],
    out: &mut [u8],
) -> Result<snow::HandshakeState, SessionError> {
    let len = out.len();
    if len < MSG1_OVERHEAD + 8 {
        return Err(SessionError::BadLength(len));
    }
    let mut hs = builder(local, prologue)?
        .remote_public_key(remote.as_bytes())
        .build_initiator()
        .map_err(SessionError::Noise)?;
    let mut payload = vec![0u8; len - MSG1_OVERHEAD];
    payload[..8].copy_from_slice(&now_unix.to_be_bytes());
    let n = hs.write_message(&payload, out).map_err(SessionError::Noise)?;
    if n != len {
        return Err(SessionError::BadLength(n));
    }
    Ok(hs)
}

/// Reads message 2 (exactly `len` bytes) into the initiator's handshake. On an error the
/// handshake is as before (snow restores its state), so a forged message 2 does not spoil
/// a later genuine one.
pub(crate) fn read_message2(hs: &mut snow::HandshakeState, msg2: &[u8], len: usize) -> Result<(), SessionError> {
    if msg2.len() != len {
        return Err(SessionError::BadLength(msg2.len()));
    }
    let mut payload = vec![0u8; len];
    let n = hs.read_message(msg2, &mut payload).map_err(|_| SessionError::Decrypt)?;
    if n != len - MSG2_OVERHEAD {
        return Err(SessionError::BadLength(n));
    }
    Ok(())
}

/// The responder's side: reads message 1 and, if the initiator is a friend and the
/// message is fresh, writes message 2 (exactly `FRAME_LEN` bytes) to `out`. On any error
/// nothing has been written and the caller must close without replying.
#[allow(clippy::too_many_arguments)]
pub fn respond(
    local: &StaticKeypair,
    msg1: &[u8],
    now_unix: u64,
    replay: &mut ReplayCache,
    is_friend: impl Fn(&PublicKey) -> bool,
    rekey_interval: u64,
    out: &mut [u8; FRAME_LEN],
) -> Result<(PublicKey, Session), SessionError> {
    let (remote, mut hs) = read_message1(local, msg1, FRAME_LEN, now_unix, PROLOGUE, replay, is_friend)?;
    write_message2(&mut hs, out)?;
    Ok((remote, Session::new(hs, rekey_interval)?))
}

/// Reads message 1 (exactly `len` bytes, under `prologue`) and checks, in this order, that
/// it decrypts, that the initiator passes `is_friend`, that its time is within
/// [`MAX_CLOCK_SKEW_SECS`] of `now_unix`, and that its ephemeral key is new to `replay`
/// (which then remembers it). Nothing is kept on any error.
pub(crate) fn read_message1(
    local: &StaticKeypair,
    msg1: &[u8],
    len: usize,
    now_unix: u64,
    prologue: &[u8],
    replay: &mut ReplayCache,
    is_friend: impl Fn(&PublicKey) -> bool,
) -> Result<(PublicKey, snow::HandshakeState), SessionError> {
    if msg1.len() != len || len < MSG1_OVERHEAD + 8 {
        return Err(SessionError::BadLength(msg1.len()));
    }
    let mut hs = builder(local, prologue)?.build_responder().map_err(SessionError::Noise)?;
    let mut payload = vec![0u8; len];
    let n = hs.read_message(msg1, &mut payload).map_err(|_| SessionError::Decrypt)?;
    if n != len - MSG1_OVERHEAD {
        return Err(SessionError::BadLength(n));
    }
    let remote = hs.get_remote_static().ok_or(SessionError::Decrypt)?;
    let remote = PublicKey(remote.try_into().map_err(|_| SessionError::BadKeyLength(remote.len()))?);
    if !is_friend(&remote) {
        return Err(SessionError::UnknownPeer(remote));
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&payload[..8]);
    if u64::from_be_bytes(ts).abs_diff(now_unix) > MAX_CLOCK_SKEW_SECS {
        return Err(SessionError::StaleTimestamp);
    }
    let mut e = [0u8; 32];
    e.copy_from_slice(&msg1[..32]);
    if !replay.insert(e, now_unix) {
        return Err(SessionError::Replay);
    }
    Ok((remote, hs))
}

/// Writes message 2, exactly `out.len()` bytes of zeros sealed (no longer than message 1
/// was: a spoofed message 1 cannot be amplified).
pub(crate) fn write_message2(hs: &mut snow::HandshakeState, out: &mut [u8]) -> Result<(), SessionError> {
    let len = out.len();
    if len < MSG2_OVERHEAD {
        return Err(SessionError::BadLength(len));
    }
    let n = hs.write_message(&vec![0u8; len - MSG2_OVERHEAD], out).map_err(SessionError::Noise)?;
    if n != len {
        return Err(SessionError::BadLength(n));
    }
    Ok(())
}

/// An established link session: seals and opens fixed-size frames.
pub struct Session {
    /// snow's transport state (implicit nonce counters per direction).
    ts: snow::TransportState,
    /// Frames sealed since the last outgoing rekey.
    sent: u64,
    /// Frames opened since the last incoming rekey.
    received: u64,
    /// Frames per direction between rekeys.
    rekey_interval: u64,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("sent", &self.sent).field("received", &self.received).finish()
    }
}

impl Session {
    fn new(hs: snow::HandshakeState, rekey_interval: u64) -> Result<Self, SessionError> {
        let ts = hs.into_transport_mode().map_err(SessionError::Noise)?;
        Ok(Self { ts, sent: 0, received: 0, rekey_interval: rekey_interval.max(1) })
    }

    /// Seals one frame body into exactly `FRAME_LEN` bytes of `out`.
    pub fn seal(&mut self, body: &[u8; BODY_LEN], out: &mut [u8; FRAME_LEN]) -> Result<(), SessionError> {
        let n = self.ts.write_message(body, out).map_err(SessionError::Noise)?;
        if n != FRAME_LEN {
            return Err(SessionError::BadLength(n));
        }
        self.sent += 1;
        if self.sent == self.rekey_interval {
            self.ts.rekey_outgoing();
            self.sent = 0;
        }
        Ok(())
    }

    /// Opens one frame (exactly `FRAME_LEN` bytes) into `body`.
    pub fn open(&mut self, frame: &[u8], body: &mut [u8; BODY_LEN]) -> Result<(), SessionError> {
        if frame.len() != FRAME_LEN {
            return Err(SessionError::BadLength(frame.len()));
        }
        // snow writes only the plaintext (FRAME_LEN - 16 bytes), so decrypt straight into
        // the body. On failure the body holds garbage, and the caller closes the link.
        let n = self.ts.read_message(frame, body).map_err(|_| SessionError::Decrypt)?;
        if n != BODY_LEN {
            return Err(SessionError::BadLength(n));
        }
        self.received += 1;
        if self.received == self.rekey_interval {
            self.ts.rekey_incoming();
            self.received = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn pair(rekey: u64) -> (Session, Session) {
        let a = StaticKeypair::generate().unwrap();
        let b = StaticKeypair::generate().unwrap();
        let mut m1 = [0u8; FRAME_LEN];
        let init = Initiator::start(&a, b.public(), NOW, &mut m1).unwrap();
        let mut m2 = [0u8; FRAME_LEN];
        let (who, sb) = respond(&b, &m1, NOW, &mut ReplayCache::new(), |k| k == a.public(), rekey, &mut m2).unwrap();
        assert_eq!(&who, a.public());
        (init.finish(&m2, rekey).unwrap(), sb)
    }

    #[test]
    fn frames_survive_many_rekeys_and_replays_fail() {
        let (mut a, mut b) = pair(3);
        let mut out = [0u8; FRAME_LEN];
        let mut body = [0u8; BODY_LEN];
        let mut last = [0u8; FRAME_LEN];
        for i in 0..20u8 {
            a.seal(&[i; BODY_LEN], &mut out).unwrap();
            b.open(&out, &mut body).unwrap();
            assert_eq!(body, [i; BODY_LEN]);
            last = out;
        }
        assert!(matches!(b.open(&last, &mut body), Err(SessionError::Decrypt)));
    }

    #[test]
    fn tampered_and_reordered_frames_fail() {
        let (mut a, mut b) = pair(DEFAULT_REKEY_INTERVAL);
        let mut f1 = [0u8; FRAME_LEN];
        let mut f2 = [0u8; FRAME_LEN];
        a.seal(&[1; BODY_LEN], &mut f1).unwrap();
        a.seal(&[2; BODY_LEN], &mut f2).unwrap();
        let mut body = [0u8; BODY_LEN];
        assert!(matches!(b.open(&f2, &mut body), Err(SessionError::Decrypt)));
        f1[100] ^= 1;
        assert!(matches!(b.open(&f1, &mut body), Err(SessionError::Decrypt)));
    }

    #[test]
    fn probers_and_strangers_and_replays_are_refused() {
        let a = StaticKeypair::generate().unwrap();
        let b = StaticKeypair::generate().unwrap();
        let wrong = StaticKeypair::generate().unwrap();
        let mut m1 = [0u8; FRAME_LEN];
        let mut m2 = [0u8; FRAME_LEN];
        let friend = |k: &PublicKey| k == a.public();
        let mut cache = ReplayCache::new();
        // Wrong responder key: fails at message 1.
        Initiator::start(&a, wrong.public(), NOW, &mut m1).unwrap();
        let r = respond(&b, &m1, NOW, &mut cache, friend, 1 << 16, &mut m2);
        assert!(matches!(r, Err(SessionError::Decrypt)));
        // A stranger with the right key: refused before any reply.
        Initiator::start(&wrong, b.public(), NOW, &mut m1).unwrap();
        let r = respond(&b, &m1, NOW, &mut cache, friend, 1 << 16, &mut m2);
        assert!(matches!(r, Err(SessionError::UnknownPeer(_))));
        // A friend, too late; then fresh; then the same message replayed.
        Initiator::start(&a, b.public(), NOW - 2 * MAX_CLOCK_SKEW_SECS, &mut m1).unwrap();
        let r = respond(&b, &m1, NOW, &mut cache, friend, 1 << 16, &mut m2);
        assert!(matches!(r, Err(SessionError::StaleTimestamp)));
        Initiator::start(&a, b.public(), NOW, &mut m1).unwrap();
        assert!(respond(&b, &m1, NOW, &mut cache, friend, 1 << 16, &mut m2).is_ok());
        let r = respond(&b, &m1, NOW + 1, &mut cache, friend, 1 << 16, &mut m2);
        assert!(matches!(r, Err(SessionError::Replay)));
    }
}
