//! One direction of a WAN link as netem + tbf would make it: random loss, then a rate-limited
//! queue of bounded wait (tail drop beyond it), then delay ± jitter. Pure: times are
//! nanoseconds since the relay started and the randomness is passed in, so it is tested
//! without a clock.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::spec::LinkSpec;

/// What happened to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand it to the far side at this time (ns).
    Deliver(u64),
    /// Dropped at random (the `loss` setting).
    Lost,
    /// The link was busy for longer than `queue` allows: dropped, as a full router buffer
    /// drops (this is what tells TCP it sends faster than the link carries).
    QueueFull,
}

/// What a link carried, for `darknet status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LinkStats {
    /// Packets offered to the link.
    pub(crate) packets: u64,
    /// Bytes delivered.
    pub(crate) bytes: u64,
    /// Packets dropped at random.
    pub(crate) lost: u64,
    /// Packets dropped because the queue was full.
    pub(crate) queue_drops: u64,
}

/// One direction of a link.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    spec: LinkSpec,
    /// When the link has finished sending what it was given (rate limit).
    busy_until: u64,
    /// The latest delivery time handed out: jitter never reorders packets (netem with a
    /// FIFO child would not either, and reordering would read to TCP as loss).
    last_delivery: u64,
    pub(crate) stats: LinkStats,
}

impl Link {
    pub(crate) fn new(spec: LinkSpec) -> Self {
        Self { spec, busy_until: 0, last_delivery: 0, stats: LinkStats::default() }
    }

    /// Nanoseconds the link takes to send `len` bytes at its rate.
    fn serialization_ns(&self, len: usize) -> u64 {
        // Rate 0: unlimited.
        (len as u64 * 8).saturating_mul(1_000_000_000).checked_div(self.spec.rate_bps).unwrap_or(0)
    }

    /// A packet of `len` bytes offered at `now`.
    pub(crate) fn admit(&mut self, now: u64, len: usize, rng: &mut impl Rng) -> Verdict {
        self.stats.packets += 1;
        if self.spec.loss > 0.0 && rng.gen::<f64>() < self.spec.loss {
            self.stats.lost += 1;
            return Verdict::Lost;
        }
        let start = self.busy_until.max(now);
        if start - now > self.spec.queue_ns {
            self.stats.queue_drops += 1;
            return Verdict::QueueFull;
        }
        self.busy_until = start + self.serialization_ns(len);
        let j = self.spec.jitter_ns as i64;
        let jitter = if j == 0 { 0 } else { rng.gen_range(-j..=j) };
        let at = (self.busy_until + self.spec.delay_ns).saturating_add_signed(jitter);
        let at = at.max(self.last_delivery);
        self.last_delivery = at;
        self.stats.bytes += len as u64;
        Verdict::Deliver(at)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn an_idle_link_adds_its_delay_and_serialization() {
        let mut l = Link::new(LinkSpec { delay_ns: 40_000_000, rate_bps: 12_000_000, ..LinkSpec::default() });
        // 1500 bytes at 12 Mbit/s: 1 ms on the wire.
        assert_eq!(l.admit(5, 1500, &mut rng()), Verdict::Deliver(5 + 1_000_000 + 40_000_000));
    }

    #[test]
    fn a_busy_link_carries_its_rate_and_drops_beyond_its_queue() {
        let spec = LinkSpec { rate_bps: 8_000_000, queue_ns: 10_000_000, ..LinkSpec::default() };
        let mut l = Link::new(spec);
        let mut r = rng();
        // 1000 bytes = 1 ms at 8 Mbit/s; a burst of 100 at t=0: 11 fit (the 11th waits 10 ms).
        let verdicts: Vec<Verdict> = (0..100).map(|_| l.admit(0, 1000, &mut r)).collect();
        let delivered: Vec<u64> =
            verdicts.iter().filter_map(|v| if let Verdict::Deliver(t) = v { Some(*t) } else { None }).collect();
        assert_eq!(delivered.len(), 11);
        assert_eq!(delivered.last(), Some(&11_000_000));
        assert_eq!(l.stats.queue_drops, 89);
    }

    #[test]
    fn loss_drops_its_share_and_jitter_keeps_order() {
        let spec = LinkSpec { delay_ns: 20_000_000, jitter_ns: 5_000_000, loss: 0.01, ..LinkSpec::default() };
        let mut l = Link::new(spec);
        let mut r = rng();
        let mut last = 0;
        for i in 0..100_000u64 {
            if let Verdict::Deliver(t) = l.admit(i * 10_000, 100, &mut r) {
                assert!(t >= last, "reordered");
                assert!(t >= i * 10_000 + 15_000_000);
                last = t;
            }
        }
        let lost = l.stats.lost as f64 / 100_000.0;
        assert!((0.008..0.012).contains(&lost), "lost {lost}");
    }
}
