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
