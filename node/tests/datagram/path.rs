//! A seeded path model for datagram links: per direction a drop-tail bottleneck queue
//! served at a fixed rate, a one-way delay, random loss, duplication and jitter
//! (reordering), and datagrams dropped by index on request. Virtual time only.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use pamphlet_node::link::datagram::DATAGRAM_LEN;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// IPv4 + UDP header bytes the bottleneck also carries.
pub(crate) const IP_UDP: usize = 28;

/// One direction's settings.
#[derive(Clone, Debug)]
pub(crate) struct PathConfig {
    /// One-way propagation delay.
    pub(crate) delay: Duration,
    /// Bottleneck rate in bits per second (`None`: unlimited).
    pub(crate) rate_bps: Option<f64>,
    /// Datagrams the bottleneck queue holds (waiting or being serialised).
    pub(crate) queue: usize,
    /// Probability of losing a datagram (before the queue, as a noisy link does).
    pub(crate) loss: f64,
    /// Probability of delivering a datagram twice.
    pub(crate) duplicate: f64,
    /// Extra delay, uniform in [0, jitter), drawn per datagram: reorders them.
    pub(crate) jitter: Duration,
}

impl PathConfig {
    /// A clean path: `delay` one way, `rate` Mbit/s, a queue of one bandwidth-delay product.
    pub(crate) fn wan(delay: Duration, mbit: f64) -> Self {
        let bdp = mbit * 1e6 / 8.0 * 2.0 * delay.as_secs_f64() / (DATAGRAM_LEN + IP_UDP) as f64;
        Self {
            delay,
            rate_bps: Some(mbit * 1e6),
            queue: bdp.ceil() as usize,
            loss: 0.0,
            duplicate: 0.0,
            jitter: Duration::ZERO,
        }
    }
}

/// One direction of a path.
pub(crate) struct Direction {
    cfg: PathConfig,
    rng: ChaCha8Rng,
    /// When the bottleneck finishes serialising what it holds.
    free_at: Instant,
    /// Departure times of the datagrams in the queue.
    queued: VecDeque<Instant>,
    /// Datagrams on the wire: (arrival, sequence, bytes).
    wire: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>>,
    /// Datagrams offered so far (1-based index of the next is `offered + 1`).
    pub(crate) offered: u64,
    /// Indices of datagrams to drop.
    pub(crate) drop_indices: BTreeSet<u64>,
    /// The most datagrams the queue held at once.
    pub(crate) max_queue: usize,
    /// Datagrams lost at random or by index.
    pub(crate) lost: u64,
    /// Datagrams dropped by the full queue.
    pub(crate) overflowed: u64,
    /// The queue length seen by each datagram offered, and when overflows happened.
    pub(crate) queue_log: Vec<(Instant, usize)>,
    /// When each overflow happened.
    pub(crate) overflow_log: Vec<Instant>,
    /// Bytes (with IP/UDP headers) that left the bottleneck, and when the last left.
    pub(crate) carried: (u64, Option<Instant>),
}

impl Direction {
    /// A direction starting at `now`.
    pub(crate) fn new(cfg: PathConfig, seed: u64, now: Instant) -> Self {
        Self {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            free_at: now,
            queued: VecDeque::new(),
            wire: BinaryHeap::new(),
            offered: 0,
            drop_indices: BTreeSet::new(),
            max_queue: 0,
            lost: 0,
            overflowed: 0,
            carried: (0, None),
            queue_log: Vec::new(),
            overflow_log: Vec::new(),
        }
    }

    /// Offers a datagram at `now`.
    pub(crate) fn send(&mut self, now: Instant, bytes: Vec<u8>) {
        self.offered += 1;
        let lose = self.rng.gen::<f64>() < self.cfg.loss;
        let dup = self.rng.gen::<f64>() < self.cfg.duplicate;
        if lose || self.drop_indices.contains(&self.offered) {
            self.lost += 1;
            return;
        }
        while self.queued.front().is_some_and(|&t| t <= now) {
            self.queued.pop_front();
        }
        self.queue_log.push((now, self.queued.len()));
        if self.queued.len() >= self.cfg.queue.max(1) {
            self.overflowed += 1;
            self.overflow_log.push(now);
            return;
        }
        let depart = match self.cfg.rate_bps {
            Some(bps) => {
                let serialise = Duration::from_secs_f64((bytes.len() + IP_UDP) as f64 * 8.0 / bps);
                self.free_at = self.free_at.max(now) + serialise;
                self.free_at
            }
            None => now,
        };
        self.queued.push_back(depart);
        self.max_queue = self.max_queue.max(self.queued.len());
        self.carried.0 += (bytes.len() + IP_UDP) as u64;
        self.carried.1 = Some(depart);
        let copies = if dup { 2 } else { 1 };
        for _ in 0..copies {
            let jitter =
                if self.cfg.jitter.is_zero() { Duration::ZERO } else { self.cfg.jitter.mul_f64(self.rng.gen::<f64>()) };
            let seq = self.offered * 2 + self.wire.len() as u64;
            self.wire.push(Reverse((depart + self.cfg.delay + jitter, seq, bytes.clone())));
        }
    }

    /// When the next datagram arrives.
    pub(crate) fn next_arrival(&self) -> Option<Instant> {
        self.wire.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The datagrams that arrived by `now`, in arrival order.
    pub(crate) fn arrived(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while self.next_arrival().is_some_and(|t| t <= now) {
            if let Some(Reverse((_, _, b))) = self.wire.pop() {
                out.push(b);
            }
        }
        out
    }
}
