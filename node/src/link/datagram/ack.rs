//! The receiving side of reliability: which packet numbers arrived (the replay window and
//! the ranges to acknowledge) and when to acknowledge them.

use std::time::{Duration, Instant};

use super::loss::PACKET_THRESHOLD;
use super::packet::Ack;
use super::Dropped;

/// Packet numbers below `largest - REPLAY_WINDOW` are refused unseen.
pub const REPLAY_WINDOW: u64 = 4096;
/// Ranges of received packet numbers remembered for acknowledgements (the oldest go first).
pub const TRACKED_RANGES: usize = 64;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Which packet numbers were seen, over a sliding window below the largest (IPsec's and
/// WireGuard's anti-replay bitmap): a replayed or duplicated datagram is dropped.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// The largest packet number seen, if any.
    largest: Option<u64>,
    /// Bit `pn % REPLAY_WINDOW` is set when `pn` (within the window) was seen.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self { largest: None, bits: [0; WORDS] }
    }
}

impl ReplayWindow {
    /// The largest packet number seen (authenticated), if any.
    pub fn largest(&self) -> Option<u64> {
        self.largest
    }

    /// Whether `pn` may be new (checked before the costly opening; [`Self::insert`] after).
    pub fn check(&self, pn: u64) -> Result<(), Dropped> {
        let Some(largest) = self.largest else { return Ok(()) };
        if pn > largest {
            return Ok(());
        }
        if largest - pn >= REPLAY_WINDOW || self.bit(pn) {
            return Err(Dropped::Replay);
        }
        Ok(())
    }

    /// Records an authenticated `pn`.
    pub fn insert(&mut self, pn: u64) {
        match self.largest {
            Some(l) if pn <= l => {}
            Some(l) if pn - l < REPLAY_WINDOW => {
                for p in l + 1..=pn {
                    self.set(p, false);
                }
                self.largest = Some(pn);
            }
            _ => {
                self.bits = [0; WORDS];
                self.largest = Some(pn);
            }
        }
        self.set(pn, true);
    }

    fn bit(&self, pn: u64) -> bool {
        let i = pn % REPLAY_WINDOW;
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, pn: u64, on: bool) {
        let i = pn % REPLAY_WINDOW;
        let w = &mut self.bits[(i / 64) as usize];
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }
}

/// What to acknowledge, and when (RFC 9000 §13.2: after `ack_every` ack-eliciting
/// datagrams, at once when one arrives out of order, else within `max_ack_delay`).
#[derive(Clone, Debug)]
pub struct AckState {
    /// Received packet numbers as inclusive ranges, highest first.
    ranges: Vec<(u64, u64)>,
    /// When the largest arrived (for the ack delay the sender subtracts from its RTT).
    largest_at: Option<Instant>,
    /// Ack-eliciting datagrams since the last acknowledgement sent.
    unacked: u32,
    /// Acknowledge at once.
    immediate: bool,
    /// Acknowledge by then at the latest.
    deadline: Option<Instant>,
    /// Ack after this many ack-eliciting datagrams.
    ack_every: u32,
    /// The longest an acknowledgement waits.
    max_delay: Duration,
}

impl AckState {
    /// Nothing received yet.
    pub fn new(ack_every: u32, max_delay: Duration) -> Self {
        Self {
            ranges: Vec::new(),
            largest_at: None,
            unacked: 0,
            immediate: false,
            deadline: None,
            ack_every: ack_every.max(1),
            max_delay,
        }
    }

    /// Records an authenticated, new packet number.
    pub fn on_packet(&mut self, now: Instant, pn: u64, ack_eliciting: bool) {
        let in_order = self.ranges.first().is_none_or(|&(_, hi)| pn == hi + 1);
        if self.ranges.first().is_none_or(|&(_, hi)| pn > hi) {
            self.largest_at = Some(now);
        }
        insert_range(&mut self.ranges, pn);
        if !ack_eliciting {
            return;
        }
        self.unacked += 1;
        // Just after a hole, every arrival is acknowledged at once until the sender can
        // have seen PACKET_THRESHOLD later packets: its loss detection then runs as fast
        // as if each packet were acknowledged (the QUIC ACK frequency draft's reordering
        // threshold), and only a clean stream of packets is acknowledged sparsely.
        let after_hole = self.ranges.len() > 1 && self.ranges[0].1 - self.ranges[0].0 < PACKET_THRESHOLD;
        if !in_order || after_hole || self.unacked >= self.ack_every {
            self.immediate = true;
        } else if self.deadline.is_none() {
            self.deadline = Some(now + self.max_delay);
        }
    }

    /// Ranges of packet numbers remembered.
    pub fn ranges(&self) -> usize {
        self.ranges.len()
    }

    /// Whether an acknowledgement should go out now even without data to carry it.
    pub fn wants_ack(&self, now: Instant) -> bool {
        self.immediate || self.deadline.is_some_and(|d| d <= now)
    }

    /// When an acknowledgement falls due, if one is waiting.
    pub fn deadline(&self) -> Option<Instant> {
        if self.immediate {
            return self.largest_at;
        }
        self.deadline
    }

    /// The acknowledgement to send now (`None` before anything arrived); resets the timers.
    pub fn take_ack(&mut self, now: Instant) -> Option<Ack> {
        let at = self.largest_at?;
        self.unacked = 0;
        self.immediate = false;
        self.deadline = None;
        Some(Ack { ranges: self.ranges.clone(), delay: now.saturating_duration_since(at) })
    }
}

fn insert_range(ranges: &mut Vec<(u64, u64)>, pn: u64) {
    // Ranges are descending and never touch: the first whose low end is at or below
    // pn + 1 is the only one pn can extend or lie in.
    let i = ranges.iter().position(|&(lo, _)| lo <= pn.saturating_add(1)).unwrap_or(ranges.len());
    if let Some(r) = ranges.get_mut(i) {
        if pn <= r.1.saturating_add(1) {
            r.0 = r.0.min(pn);
            r.1 = r.1.max(pn);
            // Extended downwards: it may now touch the next lower range.
            if i + 1 < ranges.len() && ranges[i + 1].1 + 1 == ranges[i].0 {
                ranges[i].0 = ranges[i + 1].0;
                ranges.remove(i + 1);
            }
            return;
        }
    }
    ranges.insert(i, (pn, pn));
    ranges.truncate(TRACKED_RANGES);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_and_stay_descending() {
        let mut r = Vec::new();
        for pn in [5, 7, 6, 1, 2, 10, 0, 9, 8, 3] {
            insert_range(&mut r, pn);
            assert!(r.windows(2).all(|w| w[0].0 > w[1].1 + 1), "{r:?}");
        }
        assert_eq!(r, vec![(5, 10), (0, 3)]);
        insert_range(&mut r, 4);
        assert_eq!(r, vec![(0, 10)]);
        insert_range(&mut r, 4);
        assert_eq!(r, vec![(0, 10)]);
    }

    #[test]
    fn clean_arrivals_are_acknowledged_sparsely_and_a_hole_at_once() {
        let t0 = Instant::now();
        let mut a = AckState::new(16, Duration::from_millis(10));
        for pn in 0..15 {
            a.on_packet(t0, pn, true);
            assert!(!a.wants_ack(t0), "packet {pn}");
        }
        a.on_packet(t0, 15, true);
        assert!(a.wants_ack(t0), "the 16th");
        a.take_ack(t0);
        a.on_packet(t0, 16, true);
        assert!(!a.wants_ack(t0) && a.wants_ack(t0 + Duration::from_millis(10)), "or within max_ack_delay");
        a.take_ack(t0);
        // 17 is lost: 18, 19 and 20 are acknowledged one by one (the sender declares 17
        // lost on the third), then sparsely again.
        for pn in 18..=20 {
            a.on_packet(t0, pn, true);
            assert!(a.wants_ack(t0), "packet {pn} after the hole");
            a.take_ack(t0);
        }
        a.on_packet(t0, 21, true);
        assert!(!a.wants_ack(t0));
    }

    #[test]
    fn replays_and_stale_packets_are_refused() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(3), Ok(()));
        w.insert(3);
        assert_eq!(w.check(3), Err(Dropped::Replay));
        assert_eq!(w.check(2), Ok(()));
        w.insert(REPLAY_WINDOW + 10);
        assert_eq!(w.check(2), Err(Dropped::Replay), "older than the window");
        assert_eq!(w.check(REPLAY_WINDOW + 9), Ok(()));
        w.insert(REPLAY_WINDOW + 9);
        assert_eq!(w.check(REPLAY_WINDOW + 9), Err(Dropped::Replay));
        assert_eq!(w.check(REPLAY_WINDOW + 3), Ok(()), "a slot reused from packet 3 was cleared");
    }
}
