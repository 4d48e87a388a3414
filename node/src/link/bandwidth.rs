//! Bandwidth limits, sans-IO: one token bucket per direction, shared by every link.
//!
//! `upload_limit` / `download_limit` (config.toml, bytes per second, 0 = unlimited) are
//! each one [`TokenBucket`]: it holds at most [`TokenBucket::burst`] bytes of credit and
//! gains `rate` bytes a second. The transport (the tokio driver) asks it before each
//! socket write (and after each socket read, for the download limit) and sleeps for the
//! [`Grant::Wait`] it answers. Time is an argument, so this file never reads a clock.
//!
//! Two kinds of claim:
//! - **data** ([`TokenBucket::claim_data`]) needs the whole claim in credit before it is
//!   granted: a link's batch of frames waits until the bucket holds its bytes;
//! - **control** ([`TokenBucket::claim_control`]) needs only a non-negative balance and may
//!   drive the balance below zero by the claim, which data claims then repay. So a batch
//!   carrying requests, replies or rejections goes out ahead of every waiting data batch,
//!   and the limit still holds: the debt is at most one batch per link, and no data moves
//!   while it is unpaid.
//!
//! Fairness between peers is the driver's part: data claims wait in one FIFO turnstile
//! (each link claims one batch of at most 8 frames per turn), so every link with data gets
//! one batch per round: deficit round robin whose quantum is a batch, all frames being the
//! same size.
//!
//! Over any window of `t` seconds a bucket grants at most `rate × t + burst + debt` bytes,
//! where the debt is at most one control batch per link; the default burst is a tenth of a
//! second of the rate (at least [`MIN_BURST`]), so over 10 s the excess is about 1%.

use std::time::{Duration, Instant};

/// The smallest burst: two batches of eight 1 KiB frames, so one batch never waits for
/// credit the bucket could not hold.
pub const MIN_BURST: u64 = 16 * 1024;

/// What a claim gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Granted now; the bytes are taken from the bucket.
    Now,
    /// Not yet: ask again after this long (nothing was taken).
    Wait(Duration),
}

/// A token bucket of bytes per second, in virtual time.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    /// Bytes per second; 0: unlimited.
    rate: u64,
    /// The most credit the bucket holds.
    burst: u64,
    /// Credit now (negative: control claims borrowed it).
    tokens: f64,
    /// When `tokens` was last brought up to date (None: not yet used).
    at: Option<Instant>,
}

impl TokenBucket {
    /// A bucket of `rate` bytes per second (0: unlimited) holding a tenth of a second of
    /// it, at least [`MIN_BURST`]; it starts full.
    pub fn new(rate: u64) -> Self {
        let burst = (rate / 10).max(MIN_BURST);
        Self { rate, burst, tokens: burst as f64, at: None }
    }

    /// Bytes per second (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The most credit the bucket holds.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Whether this bucket limits anything.
    pub fn is_limited(&self) -> bool {
        self.rate > 0
    }

    fn refill(&mut self, now: Instant) {
        let at = *self.at.get_or_insert(now);
        let gained = now.saturating_duration_since(at).as_secs_f64() * self.rate as f64;
        self.tokens = (self.tokens + gained).min(self.burst as f64);
        self.at = Some(now.max(at));
    }

    /// How long until the bucket holds `need` bytes of credit.
    fn wait_for(&self, need: f64) -> Duration {
        let missing = need - self.tokens;
        // Rounded up to a whole millisecond, so the caller's timer does not wake a hair
        // early and ask again for nothing.
        let ms = (missing / self.rate as f64 * 1000.0).ceil().max(1.0);
        Duration::from_millis(ms as u64)
    }

    /// A data claim of `bytes`: granted once the bucket holds all of them. A claim larger
    /// than the burst is granted when the bucket is full (so it cannot wait forever).
    pub fn claim_data(&mut self, now: Instant, bytes: usize) -> Grant {
        if !self.is_limited() {
            return Grant::Now;
        }
        self.refill(now);
        let need = (bytes as f64).min(self.burst as f64);
        if self.tokens >= need {
            self.tokens -= bytes as f64;
            Grant::Now
        } else {
            Grant::Wait(self.wait_for(need))
        }
    }

    /// A control claim of `bytes`: granted while the balance is not negative, borrowing
    /// what the bucket lacks (see the module doc).
    pub fn claim_control(&mut self, now: Instant, bytes: usize) -> Grant {
        if !self.is_limited() {
            return Grant::Now;
        }
        self.refill(now);
        if self.tokens >= 0.0 {
            self.tokens -= bytes as f64;
            Grant::Now
        } else {
            Grant::Wait(self.wait_for(0.0))
        }
    }

    /// Takes `bytes` already moved (a socket read): the balance may go negative; the
    /// answer says how long to wait before moving more.
    pub fn charge(&mut self, now: Instant, bytes: usize) -> Grant {
        if !self.is_limited() {
            return Grant::Now;
        }
        self.refill(now);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Grant::Now
        } else {
            Grant::Wait(self.wait_for(0.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn start() -> Instant {
        // A fixed origin: the bucket only compares instants with each other.
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    #[test]
    fn unlimited_grants_everything() {
        let t = start();
        let mut b = TokenBucket::new(0);
        assert_eq!(b.claim_data(t, 1 << 30), Grant::Now);
        assert_eq!(b.claim_control(t, 1 << 30), Grant::Now);
        assert_eq!(b.charge(t, 1 << 30), Grant::Now);
    }

    #[test]
    fn data_waits_for_credit_and_control_goes_first() {
        let t = start();
        let mut b = TokenBucket::new(100_000);
        assert_eq!(b.burst(), MIN_BURST);
        assert_eq!(b.claim_data(t, 16 * 1024), Grant::Now);
        // Empty: 8 KiB of data waits 82 ms at 100 kB/s.
        assert_eq!(b.claim_data(t, 8192), Grant::Wait(Duration::from_millis(82)));
        // A control batch needs only a non-negative balance: it goes now, into debt.
        assert_eq!(b.claim_control(t, 2048), Grant::Now);
        assert!(matches!(b.claim_control(t, 1024), Grant::Wait(_)));
        // Data now waits for the debt too.
        assert_eq!(b.claim_data(t, 8192), Grant::Wait(Duration::from_millis(103)));
        assert_eq!(b.claim_data(t + Duration::from_millis(103), 8192), Grant::Now);
    }

    proptest! {
        /// Whatever the claims, the bytes granted over any span never exceed
        /// rate × span + burst + the largest control claim.
        #[test]
        fn grants_never_exceed_the_rate(
            rate in 10_000u64..2_000_000,
            claims in proptest::collection::vec((any::<bool>(), 1usize..9, 0u64..50), 1..400),
        ) {
            let t0 = start();
            let mut b = TokenBucket::new(rate);
            let mut now = t0;
            let mut granted: Vec<(Duration, usize)> = Vec::new();
            for (control, frames, gap_ms) in claims {
                now += Duration::from_millis(gap_ms);
                let bytes = frames * 1024;
                loop {
                    let g = if control { b.claim_control(now, bytes) } else { b.claim_data(now, bytes) };
                    match g {
                        Grant::Now => break,
                        Grant::Wait(d) => now += d,
                    }
                }
                granted.push((now - t0, bytes));
            }
            let slack = b.burst() as f64 + 8.0 * 1024.0;
            for (i, &(from, _)) in granted.iter().enumerate() {
                let mut sum = 0usize;
                for &(at, bytes) in &granted[i..] {
                    sum += bytes;
                    let span = (at - from).as_secs_f64();
                    prop_assert!(sum as f64 <= rate as f64 * span + slack + 1.0,
                        "{sum} bytes in {span} s at {rate} B/s");
                }
            }
        }
    }
}
