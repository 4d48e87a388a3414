//! How many block requests a fetch keeps in flight, adapted to its path (issue 18).
//!
//! A fetch runs at `window × 32 KiB / block latency`. A fixed window fits one path only:
//! 16 blocks fill a 5 Mbit/s path of 4 hops × 80 ms but carry only 7.7 of 20 Mbit/s
//! (docs/benchmarks.md, "WAN links"). So the window grows while blocks keep coming back
//! about as fast as the fastest one did (the path has room: nothing queues), and shrinks
//! when their latency rises well above that (blocks queue behind each other on a link) or
//! a request times out or is refused (a relay is overloaded): additive increase,
//! multiplicative decrease, as TCP Vegas (delay) and Hyphanet's load management (rejects)
//! do, after a slow start that doubles it per round trip until the first sign of a queue.
//!
//! Sans-IO: latencies are passed in; the pipeline measures them.

use std::time::Duration;

/// The most blocks a fetch keeps in flight: the relays' per-friend cap
/// (`NodeConfig::max_requests_per_peer`), since every request of a fetch leaves through
/// the fetcher's friends and a node with one friend would see the rest refused.
pub const MAX_WINDOW: usize = 64;

/// A block latency up to this multiple of the smallest seen means "nothing queues": grow.
const GROW_BELOW: f64 = 1.5;
/// A smoothed latency above this multiple of the smallest seen means "blocks queue":
/// shrink.
const SHRINK_ABOVE: f64 = 2.0;
/// Multiplicative decrease.
const BACK_OFF: f64 = 0.75;

/// The window of one fetch.
#[derive(Debug, Clone)]
pub struct Window {
    /// Current window, fractional so additive increase can add 1/window per block.
    size: f64,
    /// Upper bound.
    max: f64,
    /// Doubling (one more per block that came back fast) until the first queue sign.
    slow_start: bool,
    /// The smallest block latency of this epoch and of the one before: the path's latency
    /// with nothing queued. Epochs (a window of answers, at least 16) let it follow a path
    /// that got slower, and forget a block that came from close by.
    epoch_min: Option<Duration>,
    previous_min: Option<Duration>,
    /// Answers in this epoch.
    in_epoch: u64,
    /// Exponentially weighted mean latency (1/8 per sample, as TCP's SRTT).
    smoothed: Option<f64>,
    /// Blocks answered so far.
    answered: u64,
    /// `answered` at the last decrease: at most one decrease per window of answers, since
    /// the blocks already in flight when the queue was seen carry the same news.
    last_decrease: Option<u64>,
}

impl Window {
    /// A window starting at `initial` blocks (the configured `parallel`), at most `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1) as f64;
        Self {
            size: (initial.max(1) as f64).min(max),
            max,
            slow_start: true,
            epoch_min: None,
            previous_min: None,
            in_epoch: 0,
            smoothed: None,
            answered: 0,
            last_decrease: None,
        }
    }

    /// Requests that may be in flight now.
    pub fn allowed(&self) -> usize {
        self.size.floor() as usize
    }

    /// A block came back `latency` after it was asked for.
    pub fn on_block(&mut self, latency: Duration) {
        let l = latency.as_secs_f64();
        // A block far faster than the usual came from this node's own store or a friend
        // that had it: it says nothing of the path the others take.
        if self.smoothed.is_some_and(|s| l < s / 4.0) {
            return;
        }
        self.answered += 1;
        self.in_epoch += 1;
        if self.in_epoch > (self.size as u64).max(16) {
            // An epoch whose minimum was a block from close by (the first block of a fetch
            // cannot be told from one yet) leaves no minimum behind.
            let typical = self.smoothed.unwrap_or(0.0) / 4.0;
            self.previous_min = self.epoch_min.take().filter(|m| m.as_secs_f64() >= typical);
            self.in_epoch = 1;
        }
        let epoch_min = self.epoch_min.map_or(latency, |m| m.min(latency));
        self.epoch_min = Some(epoch_min);
        let min = self.previous_min.map_or(epoch_min, |p| p.min(epoch_min));
        let smoothed = self.smoothed.map_or(l, |s| s + (l - s) / 8.0);
        self.smoothed = Some(smoothed);
        let base = min.as_secs_f64().max(1e-6);
        // Queueing is judged only once a whole epoch has shown the path's latency.
        if self.previous_min.is_some() && smoothed > SHRINK_ABOVE * base {
            self.decrease();
        } else if l <= GROW_BELOW * base {
            let step = if self.slow_start { 1.0 } else { 1.0 / self.size };
            self.size = (self.size + step).min(self.max);
        } else {
            // Between the two: hold, and stop doubling.
            self.slow_start = false;
        }
    }

    /// A request timed out or was refused: the path (or a relay on it) is overloaded.
    pub fn on_overload(&mut self) {
        self.decrease();
    }

    fn decrease(&mut self) {
        self.slow_start = false;
        let recent = self.last_decrease.is_some_and(|at| self.answered < at + self.size as u64);
        if !recent {
            self.size = (self.size * BACK_OFF).max(1.0);
            self.last_decrease = Some(self.answered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grows_while_blocks_come_back_at_the_path_latency() {
        let mut w = Window::new(16, MAX_WINDOW);
        for _ in 0..200 {
            w.on_block(350 * MS);
        }
        assert_eq!(w.allowed(), MAX_WINDOW);
    }

    #[test]
    fn shrinks_when_blocks_queue_and_settles_between() {
        // Latency = path + queueing of whatever exceeds what the path carries: a toy path
        // of 350 ms that carries 30 blocks per 350 ms.
        let mut w = Window::new(16, MAX_WINDOW);
        let mut sizes = Vec::new();
        for _ in 0..2000 {
            let queued = w.allowed().saturating_sub(30) as u32;
            w.on_block(350 * MS + MS * (queued * 12));
            sizes.push(w.allowed());
        }
        let last = &sizes[1000..];
        let (lo, hi) = (*last.iter().min().unwrap(), *last.iter().max().unwrap());
        assert!(lo >= 20 && hi <= 64, "window wandered over {lo}..{hi}");
        assert!(last.iter().sum::<usize>() / last.len() >= 30, "the path's 30 blocks are not kept in flight");
    }

    #[test]
    fn a_block_from_close_by_does_not_collapse_it() {
        let mut w = Window::new(16, MAX_WINDOW);
        w.on_block(MS / 2);
        for _ in 0..100 {
            w.on_block(350 * MS);
        }
        for _ in 0..5 {
            w.on_block(MS / 2);
        }
        for _ in 0..100 {
            w.on_block(350 * MS);
        }
        assert!(w.allowed() >= 16, "a local hit shrank the window to {}", w.allowed());
    }

    #[test]
    fn an_overload_cuts_it_once_per_window() {
        let mut w = Window::new(32, MAX_WINDOW);
        w.on_overload();
        assert_eq!(w.allowed(), 24);
        w.on_overload();
        assert_eq!(w.allowed(), 24, "the same news twice");
        for _ in 0..24 {
            w.on_block(100 * MS);
        }
        w.on_overload();
        assert_eq!(w.allowed(), 18);
        let mut tiny = Window::new(1, MAX_WINDOW);
        tiny.on_overload();
        assert_eq!(tiny.allowed(), 1, "never below one");
    }
}
