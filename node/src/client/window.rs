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
    /// The smallest block latency seen: the path's latency with nothing queued. It is kept
    /// for the whole fetch (a minimum that followed recent latencies would follow a queue
    /// that stays, and the window would creep up on a narrow path), but replaced when even
    /// the smallest window stays slow (the path itself got slower).
    min_latency: Option<Duration>,
    /// Answers in this epoch (a window of answers, at least 16).
    in_epoch: u64,
    /// Epochs completed: latency-driven shrinking waits for the first.
    epochs: u64,
    /// Exponentially weighted mean latency (1/8 per sample, as TCP's SRTT).
    smoothed: Option<f64>,
    /// Blocks answered so far.
    answered: u64,
    /// `answered` at the last decrease: at most one decrease per window of answers, since
    /// the blocks already in flight when the queue was seen carry the same news.
    last_decrease: Option<u64>,
}

/// Blocks answered faster than this came from the node's own store.
const LOCAL_BELOW: Duration = Duration::from_millis(5);

/// The window never shrinks below this.
const FLOOR: f64 = 2.0;

impl Window {
    /// A window starting at `initial` blocks (the configured `parallel`), at most `max`.
    pub fn new(initial: usize, max: usize) -> Self {
        let max = max.max(1) as f64;
        Self {
            size: (initial.max(1) as f64).min(max),
            max,
            slow_start: true,
            min_latency: None,
            in_epoch: 0,
            epochs: 0,
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
        // A block this fast came from this node's own store: it says nothing of the path
        // the others take. (A relative rule, "far below the usual", took a narrow path's
        // own first blocks, before the queue built, for such blocks, and the window then
        // followed the queue up: tests/fetch_window.rs.)
        if latency < LOCAL_BELOW {
            return;
        }
        self.answered += 1;
        self.in_epoch += 1;
        let smoothed = self.smoothed.map_or(l, |s| s + (l - s) / 8.0);
        self.smoothed = Some(smoothed);
        if self.in_epoch >= (self.size as u64).max(16) {
            self.epochs += 1;
            self.in_epoch = 0;
        }
        let min = self.min_latency.map_or(latency, |m| m.min(latency));
        self.min_latency = Some(min);
        let base = min.as_secs_f64().max(1e-6);
        // Queueing is judged only once a whole epoch has shown the path's latency.
        if self.epochs > 0 && smoothed > SHRINK_ABOVE * base {
            if self.size <= FLOOR {
                // Slow even with almost nothing in flight: the path is slower now.
                self.min_latency = Some(Duration::from_secs_f64(smoothed));
            }
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
            self.size = (self.size * BACK_OFF).max(FLOOR.min(self.size));
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
    fn a_path_that_got_slower_is_followed_not_starved() {
        let mut w = Window::new(16, MAX_WINDOW);
        for _ in 0..100 {
            w.on_block(100 * MS);
        }
        for _ in 0..300 {
            w.on_block(300 * MS);
        }
        assert!(w.allowed() >= 8, "stuck at {} after the path slowed down", w.allowed());
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
        let mut small = Window::new(2, MAX_WINDOW);
        small.on_overload();
        assert_eq!(small.allowed(), 2, "never below two");
        let mut one = Window::new(1, MAX_WINDOW);
        one.on_overload();
        assert_eq!(one.allowed(), 1, "nor above what was asked for");
    }
}
