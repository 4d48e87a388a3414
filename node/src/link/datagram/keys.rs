//! Key phases: each direction of a session moves on to its next key (Noise's `REKEY`) after
//! a number of datagrams or a time, and the receiver finds out by trial decryption, with
//! no key-phase bit an observer could read (docs/wire.md, "Datagram links", "Rekeying").
//!
//! ```text
//! sender:   k0 k0 k0 ... k0 | k1 k1 ... (pn counts on; the phase changes at a packet number)
//!           moves on after `rekey_after` datagrams or `rekey_after_time`, and only once the
//!           peer acknowledged a packet sealed under the current key (QUIC's rule, RFC 9001
//!           §6.1): the peer then holds that key as its current one and the next as `next`
//! receiver: current k_n, next k_n+1 = REKEY(k_n), previous k_n-1 for 3 PTO after the switch
//!           a datagram opens under at most two of them, chosen by its packet number:
//!             pn <= highest ever opened under an earlier phase  -> previous only
//!             pn <  lowest opened under current                 -> previous, then current
//!             pn <= highest opened under current                -> current only
//!             pn >  highest opened under current                -> current, then next
//!           and only a datagram that authenticates under `next` moves the phase on
//! ```
//!
//! Phases follow packet numbers (a later phase never seals a smaller one), which is what
//! makes those ranges exact. A datagram of a phase the receiver no longer holds (sealed
//! before the previous switch and delayed by more than 3 PTO, or two switches ago) fails as
//! `Decrypt`, like a loss: its frame is sent again under the current key.

use std::time::{Duration, Instant};

use super::cipher::{NonceExhausted, PhaseKey};
use super::packet::PLAIN_LEN;
use super::Dropped;

/// When a sender moves on to its next key.
#[derive(Clone, Copy, Debug)]
pub struct RekeyPolicy {
    /// After this many datagrams sealed under one key.
    pub after: u64,
    /// After this long under one key (the session's clock).
    pub after_time: Duration,
}

/// The sending direction: one key at a time; the one before is dropped (zeroized) at the
/// switch, since a frame sent again goes out under a new packet number and so the new key.
#[derive(Debug)]
pub struct SendKeys {
    /// The current key.
    key: PhaseKey,
    /// Key phases passed (0: the handshake's key).
    phase: u64,
    /// The first packet number sealed under `key`, once one was.
    first_pn: Option<u64>,
    /// Datagrams sealed under `key`.
    sealed: u64,
    /// When `key` came into use.
    since: Instant,
}

impl SendKeys {
    /// The handshake's key, in use from `now`.
    pub fn new(key: PhaseKey, now: Instant) -> Self {
        Self { key, phase: 0, first_pn: None, sealed: 0, since: now }
    }

    /// Key phases passed.
    pub fn phase(&self) -> u64 {
        self.phase
    }

    /// Seals datagram `pn`, first moving on to the next key if `policy` says it is time and
    /// the peer acknowledged a packet sealed under the current one (`largest_acked`: the
    /// largest packet number it acknowledged). Returns whether the key changed.
    pub fn seal(
        &mut self,
        now: Instant,
        pn: u64,
        plain: &[u8; PLAIN_LEN],
        largest_acked: Option<u64>,
        policy: &RekeyPolicy,
    ) -> Result<(Vec<u8>, bool), NonceExhausted> {
        let due = self.sealed >= policy.after || now.saturating_duration_since(self.since) >= policy.after_time;
        let peer_has_it = matches!((self.first_pn, largest_acked), (Some(f), Some(a)) if a >= f);
        let rekeyed = due && peer_has_it;
        if rekeyed {
            // The old key is dropped here, and zeroized.
            self.key = self.key.next();
            self.phase += 1;
            self.first_pn = None;
            self.sealed = 0;
            self.since = now;
        }
        let datagram = self.key.seal(pn, plain)?;
        self.first_pn.get_or_insert(pn);
        self.sealed += 1;
        Ok((datagram, rekeyed))
    }

    /// The current key (tests of forward secrecy).
    #[cfg(test)]
    pub(crate) fn current(&self) -> &PhaseKey {
        &self.key
    }
}

/// Which key opened a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The previous phase's (a datagram delayed across the switch).
    Previous,
    /// The current phase's.
    Current,
    /// The next phase's: the receiver moved on to it.
    Next,
}

/// The receiving direction: the current key, the next one ready, and the previous one
/// for a bounded time after a switch.
#[derive(Debug)]
pub struct RecvKeys {
    /// The peer's current key as far as we know.
    current: PhaseKey,
    /// `REKEY(current)`: what the peer switches to.
    next: PhaseKey,
    /// The key before `current`, until `previous_until`.
    previous: Option<(PhaseKey, Instant)>,
    /// Key phases passed.
    phase: u64,
    /// The lowest and highest packet numbers opened under `current`.
    current_range: Option<(u64, u64)>,
    /// The highest packet number opened under any earlier key (kept after they are gone).
    earlier_high: Option<u64>,
}

impl RecvKeys {
    /// The peer's handshake key.
    pub fn new(key: PhaseKey) -> Self {
        let next = key.next();
        Self { current: key, next, previous: None, phase: 0, current_range: None, earlier_high: None }
    }

    /// Key phases passed.
    pub fn phase(&self) -> u64 {
        self.phase
    }

    /// Keys held: 2, or 3 while the previous one is kept.
    pub fn held(&self) -> usize {
        2 + usize::from(self.previous.is_some())
    }

    /// When the previous key is to be dropped, if one is held.
    pub fn deadline(&self) -> Option<Instant> {
        self.previous.as_ref().map(|&(_, until)| until)
    }

    /// Drops (zeroizes) the previous key if its time is up.
    pub fn expire(&mut self, now: Instant) {
        if self.previous.as_ref().is_some_and(|&(_, until)| until <= now) {
            self.previous = None;
        }
    }

    /// Opens datagram `pn` (already checked against the replay window) into `plain`, with
    /// at most two AEAD opens (counted in `opens`). A datagram that opens under the next key
    /// moves the phase on, and the current key is then kept as the previous one until
    /// `now + keep_previous`.
    pub fn open(
        &mut self,
        now: Instant,
        pn: u64,
        datagram: &[u8],
        plain: &mut [u8; PLAIN_LEN],
        keep_previous: Duration,
        opens: &mut u64,
    ) -> Result<Opened, Dropped> {
        self.expire(now);
        let below_earlier = self.earlier_high.is_some_and(|h| pn <= h);
        let (lowest, highest) = match self.current_range {
            Some((lo, hi)) => (Some(lo), Some(hi)),
            None => (None, None),
        };
        let candidates: [Option<Opened>; 2] = if below_earlier {
            [Some(Opened::Previous), None]
        } else if lowest.is_some_and(|lo| pn < lo) {
            [Some(Opened::Previous), Some(Opened::Current)]
        } else if highest.is_some_and(|hi| pn > hi) {
            [Some(Opened::Current), Some(Opened::Next)]
        } else {
            // Within what `current` opened, or nothing opened yet (the peer moves on only
            // after we acknowledged a packet of `current`, so `next` cannot be in use).
            [Some(Opened::Current), None]
        };
        for which in candidates.into_iter().flatten() {
            let key = match which {
                Opened::Previous => match &self.previous {
                    Some((k, _)) => k,
                    None => continue,
                },
                Opened::Current => &self.current,
                Opened::Next => &self.next,
            };
            *opens += 1;
            if key.open(pn, datagram, plain).is_ok() {
                self.opened(now, which, pn, keep_previous);
                return Ok(which);
            }
        }
        Err(Dropped::Decrypt)
    }

    fn opened(&mut self, now: Instant, which: Opened, pn: u64, keep_previous: Duration) {
        match which {
            Opened::Previous => self.earlier_high = Some(self.earlier_high.map_or(pn, |h| h.max(pn))),
            Opened::Current => {
                self.current_range = Some(self.current_range.map_or((pn, pn), |(lo, hi)| (lo.min(pn), hi.max(pn))));
            }
            Opened::Next => {
                let after = self.next.next();
                let current = std::mem::replace(&mut self.next, after);
                let previous = std::mem::replace(&mut self.current, current);
                // The key before `previous` (if still held) is dropped here, and zeroized.
                self.previous = Some((previous, now + keep_previous));
                if let Some((_, hi)) = self.current_range {
                    self.earlier_high = Some(self.earlier_high.map_or(hi, |h| h.max(hi)));
                }
                self.current_range = Some((pn, pn));
                self.phase += 1;
            }
        }
    }

    /// Every key held: previous (if any), current, next (tests of forward secrecy).
    #[cfg(test)]
    pub(crate) fn held_keys(&self) -> Vec<&PhaseKey> {
        self.previous.iter().map(|(k, _)| k).chain([&self.current, &self.next]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::cipher::DatagramCipher;
    use super::*;

    const KEEP: Duration = Duration::from_millis(900);

    fn plain(pn: u64) -> [u8; PLAIN_LEN] {
        std::array::from_fn(|i| (pn as usize).wrapping_mul(31).wrapping_add(i) as u8)
    }

    /// A sender and receiver of one direction (seed 1), and a second copy of the sender's
    /// first key (what recording the link and stealing that key later would give).
    fn direction() -> (SendKeys, RecvKeys, PhaseKey, Instant) {
        let t0 = Instant::now();
        let (a, b) = DatagramCipher::loopback_pair_seeded(1).unwrap();
        let (copy, _) = DatagramCipher::loopback_pair_seeded(1).unwrap();
        (SendKeys::new(a.into_keys().0, t0), RecvKeys::new(b.into_keys().1), copy.into_keys().0, t0)
    }

    /// Seals `pns` in order, each with everything before it acknowledged.
    fn seal_all(
        send: &mut SendKeys,
        now: Instant,
        pns: std::ops::Range<u64>,
        policy: &RekeyPolicy,
    ) -> Vec<(u64, u64, Vec<u8>)> {
        pns.map(|pn| {
            let (d, _) = send.seal(now, pn, &plain(pn), pn.checked_sub(1), policy).unwrap();
            (pn, send.phase(), d)
        })
        .collect()
    }

    #[test]
    fn a_sender_moves_on_only_once_its_current_key_was_acknowledged() {
        let (mut send, _, _, t0) = direction();
        let policy = RekeyPolicy { after: 4, after_time: Duration::from_secs(60) };
        // Nothing acknowledged: the key stays however many datagrams it sealed.
        for pn in 0..20 {
            send.seal(t0, pn, &plain(pn), None, &policy).unwrap();
        }
        assert_eq!(send.phase(), 0);
        // An acknowledgement of a packet of this phase: the next datagram moves on.
        let (_, moved) = send.seal(t0, 20, &plain(20), Some(3), &policy).unwrap();
        assert!(moved && send.phase() == 1);
        // Acknowledgements of the old phase only do not move it again.
        for pn in 21..40 {
            assert!(!send.seal(t0, pn, &plain(pn), Some(19), &policy).unwrap().1);
        }
        // Time alone, with the current phase acknowledged.
        let later = t0 + Duration::from_secs(60);
        let policy = RekeyPolicy { after: u64::MAX, ..policy };
        assert!(send.seal(later, 40, &plain(40), Some(21), &policy).unwrap().1);
        assert_eq!(send.phase(), 2);
    }

    #[test]
    fn datagrams_reordered_across_switches_open_and_phases_follow() {
        let (mut send, mut recv, _, t0) = direction();
        let policy = RekeyPolicy { after: 8, after_time: Duration::from_secs(60) };
        let sent = seal_all(&mut send, t0, 0..64, &policy);
        assert_eq!(send.phase(), 7);
        let mut out = [0u8; PLAIN_LEN];
        let mut opens = 0;
        // Pairs swapped (each switch's first datagram arrives before the last of the
        // phase before), every 8th lost.
        for chunk in sent.chunks(2) {
            for (pn, phase, d) in chunk.iter().rev() {
                if pn % 8 == 5 {
                    continue;
                }
                recv.open(t0, *pn, d, &mut out, KEEP, &mut opens).unwrap();
                assert_eq!(out, plain(*pn));
                assert!(recv.phase() >= *phase, "a datagram of phase {phase} opened at {}", recv.phase());
            }
        }
        assert_eq!(recv.phase(), 7);
        assert!(opens <= 2 * 56, "{opens} opens for 56 datagrams");
    }

    #[test]
    fn junk_costs_at_most_two_opens_and_never_moves_the_phase() {
        let (mut send, mut recv, _, t0) = direction();
        let policy = RekeyPolicy { after: 8, after_time: Duration::from_secs(60) };
        let sent = seal_all(&mut send, t0, 0..34, &policy);
        let mut out = [0u8; PLAIN_LEN];
        let mut opens = 0;
        for (pn, _, d) in &sent[..28] {
            recv.open(t0, *pn, d, &mut out, KEEP, &mut opens).unwrap();
        }
        let phase = recv.phase();
        assert_eq!(phase, 3);
        // Junk under every packet number class: below earlier phases, between, within the
        // current one, past it, far ahead; random bytes, and real datagrams altered.
        let mut junk = Vec::new();
        for pn in [0, 5, 15, 22, 23, 24, 25, 27, 28, 29, 1000, u64::MAX - 1, u64::MAX] {
            let mut flipped = sent[(pn % 34) as usize].2.clone();
            flipped[100] ^= 0x40;
            junk.push((pn, flipped));
            junk.push((pn, vec![(pn % 251) as u8; super::super::DATAGRAM_LEN]));
            // The next phase's datagram (packet 33) under another packet number.
            junk.push((pn, sent[33].2.clone()));
        }
        assert_eq!(sent[33].1, 4);
        for (pn, d) in &junk {
            let before = opens;
            assert_eq!(recv.open(t0, *pn, d, &mut out, KEEP, &mut opens), Err(Dropped::Decrypt), "pn {pn}");
            assert!(opens - before <= 2, "pn {pn}: {} opens", opens - before);
            assert_eq!(recv.phase(), phase, "junk moved the phase");
        }
        // The genuine datagrams still open, and the next phase's moves it on.
        for (pn, _, d) in &sent[28..] {
            recv.open(t0, *pn, d, &mut out, KEEP, &mut opens).unwrap();
        }
        assert_eq!(recv.phase(), 4);
    }

    #[test]
    fn the_previous_key_is_dropped_after_its_time_and_old_datagrams_then_fail() {
        let (mut send, mut recv, _, t0) = direction();
        let policy = RekeyPolicy { after: 4, after_time: Duration::from_secs(60) };
        let sent = seal_all(&mut send, t0, 0..8, &policy);
        let mut out = [0u8; PLAIN_LEN];
        let mut opens = 0;
        // Datagrams 2 and 3 (phase 0) are delayed; 4 (phase 1) arrives and moves the
        // receiver on.
        for (pn, _, d) in sent.iter().filter(|s| s.0 != 2 && s.0 != 3) {
            recv.open(t0, *pn, d, &mut out, KEEP, &mut opens).unwrap();
        }
        assert_eq!((recv.phase(), recv.held(), recv.deadline()), (1, 3, Some(t0 + KEEP)));
        // Within its time datagram 2 still opens under the previous key ...
        assert_eq!(recv.open(t0 + KEEP / 2, 2, &sent[2].2, &mut out, KEEP, &mut opens), Ok(Opened::Previous));
        // ... after, the key is gone (zeroized) and datagram 3 fails, as a loss would.
        recv.expire(t0 + KEEP);
        assert_eq!((recv.held(), recv.deadline()), (2, None));
        assert_eq!(recv.open(t0 + KEEP, 3, &sent[3].2, &mut out, KEEP, &mut opens), Err(Dropped::Decrypt));
        assert_eq!(recv.phase(), 1);
    }

    /// Forward secrecy: every key a node holds at some moment (the sender's current key,
    /// the receiver's previous, current and next), and every key derived from them by
    /// `REKEY`, fails to open any datagram sealed before the previous switch, while the
    /// first key (recorded with them, say) opens those of its phase: the old keys are gone
    /// and cannot be recomputed from the new ones.
    #[test]
    fn stolen_keys_do_not_open_datagrams_from_before_the_previous_switch() {
        let (mut send, mut recv, first, t0) = direction();
        let policy = RekeyPolicy { after: 4, after_time: Duration::from_secs(60) };
        let sent = seal_all(&mut send, t0, 0..40, &policy);
        let mut out = [0u8; PLAIN_LEN];
        let mut opens = 0;
        for (pn, _, d) in &sent {
            recv.open(t0, *pn, d, &mut out, KEEP, &mut opens).unwrap();
        }
        assert_eq!((send.phase(), recv.phase()), (9, 9));
        // The recording is meaningful: the first key opens phase 0.
        for (pn, _, d) in sent.iter().filter(|s| s.1 == 0) {
            assert_eq!(first.open(*pn, d, &mut out), Ok(()));
        }
        // Everything a thief finds in memory now, and every key derived from it by REKEY.
        let mut stolen: Vec<PhaseKey> = Vec::new();
        for held in std::iter::once(send.current()).chain(recv.held_keys()) {
            let mut k = held.copy();
            for _ in 0..64 {
                let n = k.next();
                stolen.push(std::mem::replace(&mut k, n));
            }
        }
        let old: Vec<&(u64, u64, Vec<u8>)> = sent.iter().filter(|s| s.1 + 1 < recv.phase()).collect();
        assert_eq!(old.len(), 32);
        for key in &stolen {
            for (pn, phase, d) in &old {
                assert_eq!(key.open(*pn, d, &mut out), Err(Dropped::Decrypt), "phase {phase}, packet {pn}");
            }
        }
        // No key reachable forward is one of the old keys (REKEY never cycles back).
        let mut old_key = first;
        for phase in 0..recv.phase() - 1 {
            assert!(stolen.iter().all(|s| !s.same_as(&old_key)), "phase {phase}'s key recomputed");
            old_key = old_key.next();
        }
    }
}
