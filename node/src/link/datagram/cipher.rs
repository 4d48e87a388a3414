//! A datagram link's keys: each direction's ChaCha20-Poly1305 key from the Noise
//! handshake's Split, used with explicit nonces (the packet number), and Noise's `REKEY`
//! (docs/wire.md, "Datagram links", "Rekeying").
//!
//! ```text
//! handshake ── Split (raw) ──► DatagramCipher { send: PhaseKey, recv: PhaseKey }
//! PhaseKey k_n ── REKEY: the first 32 bytes of ENCRYPT(k_n, 2^64 - 1, "", 32 zeros) ──► k_n+1
//! seal(pn)  = pn's low 32 bits (clear) || ChaChaPoly(k, nonce = 4 zero bytes || pn LE, "", plain)
//! ```
//!
//! Why not snow's `StatelessTransportState`, which sealed datagrams until session 9:
//! rekeying a datagram link needs two or three keys of one direction at once (the receiver
//! opens by trial across a key update, `keys.rs`), and snow's state holds one key per
//! direction, rekeys it in place and cannot be copied. So the Split is taken raw (snow's
//! `risky-raw-split` feature) and each key phase is a [`PhaseKey`]: 32 bytes on the heap, zeroized
//! when dropped, sealing exactly as Noise's ChaChaPoly does (through ring, by
//! `pamphlet_crypto::aead`, as snow's ring resolver did), so the bytes on the wire are
//! unchanged. `phase_keys_match_snow_byte_for_byte` checks seal, open and `REKEY` against
//! snow's own transport state.

use pamphlet_crypto::aead;
use thiserror::Error;
use zeroize::Zeroizing;

use super::packet::{self, DATAGRAM_LEN, PLAIN_LEN, PN_LEN, TAG_LEN};
use super::Dropped;

/// Bytes of a ChaCha20-Poly1305 key.
const KEY_LEN: usize = 32;

/// Packet number 2^64 - 1 is Noise's reserved nonce (the one `REKEY` uses): never sealed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("packet number 2^64 - 1 is reserved (Noise's nonce limit)")]
pub struct NonceExhausted;

/// One direction's key for one key phase. Zeroized when dropped; prints as `PhaseKey(..)`.
/// The bytes live on the heap, so moving a `PhaseKey` (into and out of the key phases,
/// `keys.rs`) moves a pointer and leaves no uncleared copy of the key behind.
pub struct PhaseKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl std::fmt::Debug for PhaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhaseKey(..)")
    }
}

impl PhaseKey {
    fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// Takes a raw key onto the heap and clears the caller's copy.
    fn from_raw(mut raw: [u8; KEY_LEN]) -> PhaseKey {
        let key = PhaseKey(Box::new(Zeroizing::new(raw)));
        zeroize::Zeroize::zeroize(&mut raw);
        key
    }

    /// Noise's ChaChaPoly nonce: 32 zero bits, then the counter little-endian.
    fn nonce(pn: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&pn.to_le_bytes());
        n
    }

    /// Seals `plain` under packet number `pn` (the whole nonce) into a whole datagram, which
    /// carries `pn`'s low 32 bits in clear.
    pub fn seal(&self, pn: u64, plain: &[u8; PLAIN_LEN]) -> Result<Vec<u8>, NonceExhausted> {
        if pn == u64::MAX {
            return Err(NonceExhausted);
        }
        let mut out = vec![0u8; DATAGRAM_LEN];
        out[..PN_LEN].copy_from_slice(&(pn as u32).to_be_bytes());
        let sealed = &mut out[PN_LEN..PN_LEN + PLAIN_LEN];
        sealed.copy_from_slice(plain);
        let tag = aead::seal_in_place(&self.0, Self::nonce(pn), &[], sealed);
        out[PN_LEN + PLAIN_LEN..].copy_from_slice(&tag);
        Ok(out)
    }

    /// Opens a datagram whose whole packet number is `pn` into `plain` (one AEAD open; on
    /// failure `plain` holds unspecified bytes).
    pub fn open(&self, pn: u64, datagram: &[u8], plain: &mut [u8; PLAIN_LEN]) -> Result<(), Dropped> {
        if datagram.len() != DATAGRAM_LEN {
            return Err(Dropped::WrongLength(datagram.len()));
        }
        if pn == u64::MAX {
            return Err(Dropped::Decrypt);
        }
        plain.copy_from_slice(&datagram[PN_LEN..PN_LEN + PLAIN_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&datagram[PN_LEN + PLAIN_LEN..]);
        aead::open_in_place(self.bytes(), Self::nonce(pn), &[], plain, &tag).map_err(|_| Dropped::Decrypt)
    }

    /// The next phase's key, Noise's `REKEY(k)`: the first 32 bytes of `ENCRYPT(k, 2^64 - 1,
    /// "", 32 zeros)`, i.e. ChaCha20 keystream under `k`. Finding `k` from it is recovering a
    /// ChaCha20 key from its output, so a key never gives away an earlier one.
    pub fn next(&self) -> PhaseKey {
        let mut k = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        // The tag is not part of the new key.
        let _ = aead::seal_in_place(self.bytes(), Self::nonce(u64::MAX), &[], &mut k[..]);
        PhaseKey(k)
    }

    /// A second copy (tests only).
    #[cfg(test)]
    pub(crate) fn copy(&self) -> PhaseKey {
        PhaseKey(self.0.clone())
    }

    /// Whether two keys are the same (tests only: compares secrets, not in constant time).
    #[cfg(test)]
    pub(crate) fn same_as(&self, other: &PhaseKey) -> bool {
        *self.0 == *other.0
    }
}

/// The two directions' first keys of one link (the handshake's Split), and sealing and
/// opening under them with explicit nonces: the packet number is the nonce, so datagrams
/// open in any order, and a retransmitted frame goes out under a new packet number, so no
/// nonce is ever reused. A [`super::Session`] takes it and moves each direction on to
/// later keys (`keys.rs`); [`DatagramCipher::seal`] and [`DatagramCipher::open`] use the
/// first keys only (tests hold a copy of a peer's to seal as it would).
pub struct DatagramCipher {
    /// Our sending direction's first key.
    send: PhaseKey,
    /// The peer's sending direction's first key.
    recv: PhaseKey,
}

impl std::fmt::Debug for DatagramCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatagramCipher(..)")
    }
}

impl DatagramCipher {
    /// Takes the keys of a finished Noise handshake (its Split; the initiator sends under
    /// the first key, as in Noise).
    pub fn from_handshake(mut hs: snow::HandshakeState) -> Result<Self, snow::Error> {
        if !hs.is_handshake_finished() {
            return Err(snow::Error::State(snow::error::StateProblem::HandshakeNotFinished));
        }
        let (i, r) = hs.dangerously_get_raw_split();
        let (i, r) = (PhaseKey::from_raw(i), PhaseKey::from_raw(r));
        Ok(if hs.is_initiator() { Self { send: i, recv: r } } else { Self { send: r, recv: i } })
    }

    /// Both ends of one link from a handshake between two fresh keys run in memory (the
    /// pattern, prologue and primitives of `link::noise`): for tests and benchmarks.
    pub fn loopback_pair() -> Result<(Self, Self), snow::Error> {
        Self::loopback_pair_with(&|| Box::new(snow::resolvers::RingResolver))
    }

    /// As [`Self::loopback_pair`], with every key drawn from `seed`: two calls with one
    /// seed give the same keys, so a test can hold a second copy of a peer's keys (to seal
    /// arbitrary plaintexts as that peer would). Never for real links.
    pub fn loopback_pair_seeded(seed: u64) -> Result<(Self, Self), snow::Error> {
        let draws = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        Self::loopback_pair_with(&|| Box::new(SeededResolver { seed, draws: draws.clone() }))
    }

    fn loopback_pair_with(
        first: &dyn Fn() -> Box<dyn snow::resolvers::CryptoResolver + Send>,
    ) -> Result<(Self, Self), snow::Error> {
        let (i, r) = loopback_handshakes(first)?;
        Ok((Self::from_handshake(i)?, Self::from_handshake(r)?))
    }

    /// Seals `plain` under packet number `pn` with the first key of our direction.
    pub fn seal(&self, pn: u64, plain: &[u8; PLAIN_LEN]) -> Result<Vec<u8>, NonceExhausted> {
        self.send.seal(pn, plain)
    }

    /// The truncated packet number of a datagram of the right length, before opening it
    /// (the whole one: [`packet::expand_packet_number`]).
    pub fn packet_number(datagram: &[u8]) -> Result<u32, Dropped> {
        packet::packet_number(datagram)
    }

    /// Opens a datagram whose packet number is `pn` with the first key of the peer's
    /// direction.
    pub fn open(&self, pn: u64, datagram: &[u8], plain: &mut [u8; PLAIN_LEN]) -> Result<(), Dropped> {
        self.recv.open(pn, datagram, plain)
    }

    /// The first keys: ours to send, the peer's to receive.
    pub(crate) fn into_keys(self) -> (PhaseKey, PhaseKey) {
        (self.send, self.recv)
    }
}

/// A finished in-memory handshake between two fresh keys: (initiator, responder).
fn loopback_handshakes(
    first: &dyn Fn() -> Box<dyn snow::resolvers::CryptoResolver + Send>,
) -> Result<(snow::HandshakeState, snow::HandshakeState), snow::Error> {
    use super::super::noise::{NOISE_PARAMS, PROLOGUE};
    use snow::resolvers::{DefaultResolver, FallbackResolver};
    let builder = || -> Result<snow::Builder<'static>, snow::Error> {
        let resolver = FallbackResolver::new(first(), Box::new(DefaultResolver));
        Ok(snow::Builder::with_resolver(NOISE_PARAMS.parse()?, Box::new(resolver)).prologue(PROLOGUE))
    };
    let a = builder()?.generate_keypair()?;
    let b = builder()?.generate_keypair()?;
    let mut i = builder()?.local_private_key(&a.private).remote_public_key(&b.public).build_initiator()?;
    let mut r = builder()?.local_private_key(&b.private).build_responder()?;
    let (mut m, mut p) = ([0u8; 256], [0u8; 256]);
    let n = i.write_message(&[], &mut m)?;
    r.read_message(&m[..n], &mut p)?;
    let n = r.write_message(&[], &mut m)?;
    i.read_message(&m[..n], &mut p)?;
    Ok((i, r))
}

/// Randomness for [`DatagramCipher::loopback_pair_seeded`]: the n-th generator asked for is
/// ChaCha seeded by `(seed, n)`, the rest of the primitives from the fallback.
struct SeededResolver {
    seed: u64,
    draws: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A seeded ChaCha generator as snow's `Random`.
struct SeededRandom(rand_chacha::ChaCha20Rng);

impl rand_core::RngCore for SeededRandom {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl rand_core::CryptoRng for SeededRandom {}
impl snow::types::Random for SeededRandom {}

impl snow::resolvers::CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        use rand_core::SeedableRng;
        let n = self.draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        key[8..16].copy_from_slice(&n.to_le_bytes());
        Some(Box::new(SeededRandom(rand_chacha::ChaCha20Rng::from_seed(key))))
    }
    fn resolve_dh(&self, _: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        None
    }
    fn resolve_hash(&self, _: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        None
    }
    fn resolve_cipher(&self, _: &snow::params::CipherChoice) -> Option<Box<dyn snow::types::Cipher>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key phase is a pointer to its bytes: moving one between phases copies no key
    /// (only the heap copy exists, and it is zeroized on drop).
    #[test]
    fn a_phase_key_moves_as_a_pointer() {
        assert_eq!(std::mem::size_of::<PhaseKey>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn seeded_pairs_share_their_keys() {
        let (a, _) = DatagramCipher::loopback_pair_seeded(5).unwrap();
        let (_, b) = DatagramCipher::loopback_pair_seeded(5).unwrap();
        let (c, _) = DatagramCipher::loopback_pair_seeded(6).unwrap();
        let plain = [7u8; PLAIN_LEN];
        let mut out = [0u8; PLAIN_LEN];
        assert_eq!(b.open(3, &a.seal(3, &plain).unwrap(), &mut out), Ok(()));
        assert_eq!(out, plain);
        assert_eq!(b.open(3, &c.seal(3, &plain).unwrap(), &mut out), Err(Dropped::Decrypt));
        assert_eq!(a.seal(u64::MAX, &plain), Err(NonceExhausted));
    }

    /// Our keys seal, open and rekey exactly as snow's transport state (Noise's
    /// ChaChaPoly and REKEY, what TCP links use): the same bytes, each way, across rekeys.
    #[test]
    fn phase_keys_match_snow_byte_for_byte() {
        let (mut i, r) = loopback_handshakes(&|| Box::new(snow::resolvers::RingResolver)).unwrap();
        let (k1, k2) = i.dangerously_get_raw_split();
        let (mut send, mut recv) = (PhaseKey::from_raw(k1), PhaseKey::from_raw(k2));
        let mut snow_i = i.into_stateless_transport_mode().unwrap();
        let mut snow_r = r.into_stateless_transport_mode().unwrap();
        let plain: [u8; PLAIN_LEN] = std::array::from_fn(|n| (n * 7) as u8);
        for phase in 0..4u64 {
            for pn in [phase * 1000, phase * 1000 + 1, (1 << 40) + phase] {
                let ours = send.seal(pn, &plain).unwrap();
                let mut theirs = [0u8; PLAIN_LEN + TAG_LEN];
                snow_i.write_message(pn, &plain, &mut theirs).unwrap();
                assert_eq!(ours[PN_LEN..], theirs[..], "phase {phase}, packet {pn}");
                let mut out = [0u8; PLAIN_LEN];
                assert_eq!(snow_r.read_message(pn, &ours[PN_LEN..], &mut out).unwrap(), PLAIN_LEN);
                assert_eq!(out, plain);
                // And back: the responder seals, our receiving key opens.
                let mut back = vec![0u8; DATAGRAM_LEN];
                snow_r.write_message(pn, &plain, &mut back[PN_LEN..]).unwrap();
                back[..PN_LEN].copy_from_slice(&(pn as u32).to_be_bytes());
                assert_eq!(recv.open(pn, &back, &mut out), Ok(()));
                assert_eq!(out, plain);
            }
            (send, recv) = (send.next(), recv.next());
            snow_i.rekey_outgoing();
            snow_i.rekey_incoming();
            snow_r.rekey_outgoing();
            snow_r.rekey_incoming();
        }
    }
}
