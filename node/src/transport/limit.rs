//! The tokio side of the bandwidth limits: one [`Limiter`] per direction shared by every
//! link, and the byte counters the status page and the limit test read.
//!
//! The bucket itself is sans-IO (`crate::link::bandwidth`); this file reads the clock,
//! sleeps for what the bucket answers, and makes data claims take turns: a data claim
//! holds a FIFO turnstile (tokio's `Mutex` is fair) while it waits for credit, so the
//! links with data are served one batch each in turn, whatever their queue lengths.
//! Control claims never take the turnstile: they pass every waiting data claim.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::link::bandwidth::{Grant, TokenBucket};

/// One direction's limit, shared by every link.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// The bucket (a std lock: held for a few arithmetic operations, never across a sleep).
    bucket: Mutex<TokenBucket>,
    /// Data claims wait here in arrival order (see the module doc).
    turn: tokio::sync::Mutex<()>,
    /// Bytes moved through this direction since start.
    moved: AtomicU64,
    /// Whether a limit is set (fixed at start, so the unlimited path takes no lock).
    limited: bool,
}

impl Limiter {
    /// A limiter of `rate` bytes per second (0: unlimited).
    pub(crate) fn new(rate: u64) -> Self {
        Self {
            bucket: Mutex::new(TokenBucket::new(rate)),
            turn: tokio::sync::Mutex::new(()),
            moved: AtomicU64::new(0),
            limited: rate > 0,
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes moved since start.
    pub(crate) fn moved(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }

    /// Whether a limit is set.
    pub(crate) fn limited(&self) -> bool {
        self.limited
    }

    /// Waits until a batch of `bytes` may be sent, then counts it. A batch of `control`
    /// frames passes every waiting data batch (see `link::bandwidth`).
    pub(crate) async fn send(&self, bytes: usize, control: bool) {
        if bytes == 0 {
            return;
        }
        if self.limited() {
            // Data claims take turns; control claims skip the line.
            let _turn = if control { None } else { Some(self.turn.lock().await) };
            loop {
                let now = tokio::time::Instant::now().into_std();
                let g = if control {
                    self.bucket().claim_control(now, bytes)
                } else {
                    self.bucket().claim_data(now, bytes)
                };
                match g {
                    Grant::Now => break,
                    Grant::Wait(d) => tokio::time::sleep(d).await,
                }
            }
        }
        self.moved.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts `bytes` just read and waits, before the next read, until the balance is
    /// paid (TCP then pushes back on the sender). Readers take turns like data claims.
    pub(crate) async fn received(&self, bytes: usize) {
        self.moved.fetch_add(bytes as u64, Ordering::Relaxed);
        if !self.limited || bytes == 0 {
            return;
        }
        let _turn = self.turn.lock().await;
        let mut g = self.bucket().charge(tokio::time::Instant::now().into_std(), bytes);
        while let Grant::Wait(d) = g {
            tokio::time::sleep(d).await;
            g = self.bucket().charge(tokio::time::Instant::now().into_std(), 0);
        }
    }
}

/// Both directions' limiters.
#[derive(Debug)]
pub(crate) struct Limits {
    /// What every link sends (`upload_limit`); shared with the datagram links' drivers.
    pub(crate) up: std::sync::Arc<Limiter>,
    /// What every link reads (`download_limit`).
    pub(crate) down: Limiter,
}

impl Limits {
    /// Limits of `up` and `down` bytes per second (0: unlimited).
    pub(crate) fn new(up: u64, down: u64) -> Self {
        Limits { up: std::sync::Arc::new(Limiter::new(up)), down: Limiter::new(down) }
    }
}
