//! A BBR-like congestion controller (Cardwell et al., "BBR: Congestion-Based Congestion
//! Control", 2016; draft-cheng-iccrg-delivery-rate-estimation for the rate samples).
//!
//! It models the path by two numbers, the bottleneck bandwidth (the largest delivery rate
//! sampled over the last [`BW_ROUNDS`] round trips) and the minimum round trip (over
//! [`MIN_RTT_WINDOW`]), and sends at `pacing_gain × bandwidth` with at most
//! `cwnd_gain × bandwidth × min_rtt` in flight. Loss does not enter the model, so random
//! loss (a radio link, a noisy relay) costs only its retransmissions, where a loss-based
//! controller halves its rate each time (docs/wire.md, "TCP or UDP").
//!
//! Startup is gentler than BBRv1's (session 9): its window gain is BBRv2's 2, and once its
//! round trips rise by a quarter of the minimum its pacing gain drops to 1 (Hystart's
//! delay increase), so a fresh link's Startup no longer overflows a bottleneck queue of
//! one bandwidth-delay product. Two loss responses are taken from BBRv2, both only for
//! rounds that lose more than [`LOSS_THRESH`] of their datagrams (random loss below that
//! rate changes nothing):
//! Startup ends, so its overshoot does not keep overflowing a shallow queue for several
//! round trips; and later the window is bounded (`inflight_hi`, cut to 0.7, regrown by
//! 1/16 a clean round, never below one bandwidth-delay product), so a receiver or queue
//! that drops what the model lets out is not overdriven forever. Left out for now:
//! ProbeRTT (the minimum RTT is re-learnt only when its window expires; the 0.75 phase of
//! every probing cycle drains our own queue), and BBRv2's lower bounds on the bandwidth
//! (`bw_lo`); noted in docs/wire.md.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The delivery-rate filter's window, in round trips.
pub const BW_ROUNDS: u64 = 10;
/// The minimum-RTT filter's window.
pub const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// Startup's gain, 2/ln 2: doubles the rate every round trip.
const STARTUP_GAIN: f64 = 2.885;
/// Startup's window gain (BBRv2's: 2, where BBRv1 took 2.885 as for pacing): at most two
/// bandwidth-delay products in flight, so Startup's overshoot queues at most one at the
/// bottleneck (plus the send quanta and the peer's acknowledgement batch).
const STARTUP_CWND_GAIN: f64 = 2.0;
/// ProbeBW's cycle of pacing gains, one min-RTT each.
const CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// ProbeBW's window gain: room for delayed and stretched acknowledgements.
const CWND_GAIN: f64 = 2.0;
/// The share of a round's datagrams whose loss ends Startup or cuts the window (BBRv2's
/// `loss_thresh`).
pub const LOSS_THRESH: f64 = 0.02;
/// Startup's pacing gain once its round trips rose (a queue is building at the bottleneck:
/// the rate is found, and more only fills the queue until it overflows).
pub const STARTUP_CAPPED_GAIN: f64 = 1.0;
/// An RTT sample (the peer's ack delay taken off) this much above the minimum RTT (a
/// quarter of it, at least [`DELAY_RISE_FLOOR`]) says a queue is building (Hystart's delay
/// increase).
const DELAY_RISE_SHARE: u32 = 4;
/// The least rise counted: above timer noise and the pacer's 2 ms bursts.
pub const DELAY_RISE_FLOOR: Duration = Duration::from_millis(4);
/// Samples in a row that must show the rise (one acknowledgement covers up to 16
/// datagrams; Hystart++ takes the least of 8 samples a round).
const DELAY_RISE_SAMPLES: u32 = 4;
/// The sending time one quantum of the window's burst allowance covers.
const QUANTUM_TIME: Duration = Duration::from_millis(1);
/// The smallest window, in datagrams.
const MIN_WINDOW: u64 = 4;

/// The controller's delivery-rate bookkeeping saved with each datagram sent.
#[derive(Clone, Debug)]
pub struct SendState {
    /// Bytes delivered when it left.
    pub delivered: u64,
    /// When that count last grew.
    pub delivered_time: Instant,
    /// When the first datagram of its sending interval left.
    pub first_sent_time: Instant,
    /// When it left.
    pub sent_time: Instant,
    /// Whether the sender had nothing more to send (its samples understate the path).
    pub app_limited: bool,
}

/// The controller's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Doubling each round until the bandwidth stops growing.
    Startup,
    /// Draining the queue Startup built.
    Drain,
    /// Cruising at the bandwidth, probing up and down once per cycle.
    ProbeBw,
}

/// The controller.
#[derive(Debug)]
pub struct Bbr {
    /// The phase.
    pub mode: Mode,
    /// The ProbeBW cycle index and when it began.
    cycle: (usize, Instant),
    /// Rate samples (bytes/s) with their busy round, the newest last.
    bw_samples: VecDeque<(u64, f64)>,
    /// The minimum round trip and when it was taken.
    min_rtt: Option<(Duration, Instant)>,
    /// Bytes acknowledged so far.
    delivered: u64,
    /// When `delivered` last grew.
    delivered_time: Instant,
    /// When the first datagram of the current interval left.
    first_sent_time: Instant,
    /// Round trips counted (a round ends when a datagram sent after it began is acked).
    round: u64,
    /// Rounds that ended on a datagram sent while the sender had more to send: the clock
    /// the bandwidth filter ages by. A link mostly carries a little (swaps, requests,
    /// keepalives) between fetches; rounds of that say nothing about the path and must
    /// not age out what a busy round measured (Linux BBR's filter does not age while a
    /// connection is idle either, but here keepalives and swaps keep rounds ticking).
    busy_round: u64,
    /// `delivered` at which the current round ends.
    next_round_delivered: u64,
    /// Startup's plateau detector: the bandwidth to beat and rounds without beating it.
    full_bw: (f64, u32),
    /// Bytes lost and delivered in the current round (Startup's exit, the loss bound).
    round_loss: (u64, u64),
    /// RTT samples in a row (ack delay taken off) well above the minimum RTT.
    risen: u32,
    /// Startup's pacing gain is capped: a round's RTT rose (see [`STARTUP_CAPPED_GAIN`]).
    pub startup_capped: bool,
    /// BBRv2's `inflight_hi`: the most bytes in flight since a round lost too much
    /// (`u64::MAX` until then).
    inflight_hi: u64,
    /// Until `delivered` passes this, datagrams are marked app-limited (0: not limited).
    app_limited_until: u64,
    /// One datagram's size.
    mss: u64,
    /// The window before any estimate.
    initial_window: u64,
    /// The round trip assumed before any sample.
    initial_rtt: Duration,
    /// Datagrams the peer may receive before it acknowledges them (its `ack_every`).
    ack_batch: u64,
}

impl Bbr {
    /// A controller for datagrams of `mss` bytes, starting at `initial_window` of them,
    /// whose peer acknowledges every `ack_batch` datagrams.
    pub fn new(now: Instant, mss: u64, initial_window: u64, initial_rtt: Duration, ack_batch: u64) -> Self {
        Self {
            mode: Mode::Startup,
            cycle: (2, now),
            bw_samples: VecDeque::new(),
            min_rtt: None,
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            round: 0,
            busy_round: 0,
            next_round_delivered: 0,
            full_bw: (0.0, 0),
            round_loss: (0, 0),
            risen: 0,
            startup_capped: false,
            inflight_hi: u64::MAX,
            app_limited_until: 0,
            mss,
            initial_window: initial_window.max(MIN_WINDOW),
            initial_rtt,
            ack_batch,
        }
    }

    /// The bottleneck bandwidth estimate in bytes per second (0 before any sample).
    pub fn bandwidth(&self) -> f64 {
        self.bw_samples.iter().map(|&(_, b)| b).fold(0.0, f64::max)
    }

    /// The minimum round trip, once sampled.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(d, _)| d)
    }

    fn bdp(&self) -> Option<f64> {
        let bw = self.bandwidth();
        let rtt = self.min_rtt()?;
        (bw > 0.0).then_some(bw * rtt.as_secs_f64())
    }

    fn gains(&self) -> (f64, f64) {
        match self.mode {
            Mode::Startup if self.startup_capped => (STARTUP_CAPPED_GAIN, STARTUP_CWND_GAIN),
            Mode::Startup => (STARTUP_GAIN, STARTUP_CWND_GAIN),
            Mode::Drain => (1.0 / STARTUP_GAIN, STARTUP_GAIN),
            Mode::ProbeBw => (CYCLE[self.cycle.0], CWND_GAIN),
        }
    }

    /// How many bytes may be in flight: the gain times the bandwidth-delay product, plus
    /// three send quanta (a millisecond of sending, 2-64 datagrams), as Linux BBR's
    /// `bbr_quantization_budget` adds for TSO bursts. Here the bursts are the driver's:
    /// on a path of microseconds (loopback, a LAN) the acknowledgements come in batches
    /// far slower than the minimum RTT, and a window of 2 × BDP (a few datagrams) alone
    /// would stall the link between batches.
    pub fn window(&self) -> u64 {
        let floor = MIN_WINDOW * self.mss;
        let Some(bdp) = self.bdp() else { return self.initial_window * self.mss };
        let quantum = (self.bandwidth() * QUANTUM_TIME.as_secs_f64() / self.mss as f64).clamp(2.0, 64.0) as u64;
        // The peer holds back up to `ack_batch` datagrams before acknowledging: a window
        // without room for them idles until its acknowledgement timer (10 ms) fires, the
        // delivery rate sinks with it, and the model never grows back (a one-way transfer
        // on loopback stalled at 600 datagrams a second with a window of 6).
        let model = (bdp * self.gains().1) as u64 + (3 * quantum + self.ack_batch) * self.mss;
        // The loss bound never cuts below one bandwidth-delay product and what the peer
        // holds back before acknowledging (the acknowledged batch must be replaced before
        // the next arrives, else the link idles and the delivery rate, so the model,
        // shrinks): random loss can then cost the window its headroom, never the path's
        // rate.
        let least = bdp as u64 + (3 * quantum + self.ack_batch) * self.mss;
        model.min(self.inflight_hi.max(least)).max(floor).max(self.startup_floor())
    }

    /// In Startup, neither the window nor the pacing rate falls below where they began
    /// (Linux BBR's window only grows in Startup too): a link that has carried only light
    /// traffic (swaps, requests) has measured a bandwidth of a few datagrams a round trip,
    /// and sending its first block at that estimate took extra round trips at every hop.
    fn startup_floor(&self) -> u64 {
        if self.mode == Mode::Startup {
            self.initial_window * self.mss
        } else {
            0
        }
    }

    /// Startup's pacing before any estimate: the initial window per round trip, doubled
    /// each round trip.
    fn initial_pacing_rate(&self) -> f64 {
        let rtt = self.min_rtt().unwrap_or(self.initial_rtt).max(Duration::from_millis(1));
        STARTUP_GAIN * (self.initial_window * self.mss) as f64 / rtt.as_secs_f64()
    }

    /// The pacing rate in bytes per second.
    pub fn pacing_rate(&self) -> f64 {
        let bw = self.bandwidth();
        match self.mode {
            _ if bw <= 0.0 => self.initial_pacing_rate(),
            Mode::Startup => (bw * self.gains().0).max(self.initial_pacing_rate()),
            _ => bw * self.gains().0,
        }
    }

    /// Counts bytes declared lost.
    pub fn on_loss(&mut self, bytes: u64) {
        self.round_loss.0 += bytes;
    }

    /// Marks the sender as having nothing to send while `in_flight` bytes are out.
    pub fn on_app_limited(&mut self, in_flight: u64) {
        self.app_limited_until = (self.delivered + in_flight).max(1);
    }

    /// The state to save with a datagram leaving now.
    pub fn on_sent(&mut self, now: Instant, in_flight_before: u64) -> SendState {
        if in_flight_before == 0 {
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        SendState {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            sent_time: now,
            app_limited: self.app_limited_until != 0,
        }
    }

    /// Hystart's delay increase, for Startup, sample by sample: round trips well above the
    /// minimum mean the bottleneck holds a queue, so the rate is found, and Startup's 2.885
    /// would only fill the queue until it overflows (the relay's 100 ms on the WAN
    /// darknet). Checking a round's smallest sample at its end came too late (session 9:
    /// on a simulated 20 Mbit/s, 80 ms path the round in which the queue built began with
    /// samples at the minimum and overflowed the queue before it ended), so each sample
    /// counts, with the peer's ack delay taken off, and [`DELAY_RISE_SAMPLES`] in a row
    /// over the mark cap the pacing gain at 1: the plateau check then ends Startup and
    /// Drain empties the queue. The signal lags a round trip, so this alone still let
    /// 179 of 197 overflows through; Startup's window gain of 2 bounds what the lag can
    /// queue (35 overflows alone, 8 with both).
    fn check_delay_rise(&mut self, sample: Duration, app_limited: bool) {
        if self.mode != Mode::Startup || app_limited {
            return;
        }
        let Some(min) = self.min_rtt() else { return };
        if sample > min + (min / DELAY_RISE_SHARE).max(DELAY_RISE_FLOOR) {
            self.risen += 1;
            if self.risen >= DELAY_RISE_SAMPLES {
                self.startup_capped = true;
            }
        } else {
            self.risen = 0;
        }
    }

    /// Takes one acknowledgement's newly acknowledged datagrams (`acked`: their states and
    /// sizes), the round-trip sample with the ack delay the peer reported (at most its
    /// `max_ack_delay`), and the bytes still in flight.
    pub fn on_ack(
        &mut self,
        now: Instant,
        acked: &[(&SendState, u64)],
        rtt_sample: Option<Duration>,
        ack_delay: Duration,
        in_flight: u64,
    ) {
        let Some(newest) = acked.iter().map(|(s, _)| *s).max_by_key(|s| (s.delivered, s.sent_time)) else {
            return;
        };
        let bytes = acked.iter().map(|&(_, size)| size).sum::<u64>();
        self.delivered += bytes;
        self.round_loss.1 += bytes;
        self.delivered_time = now;
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        // A new round begins once a datagram sent after the last round began is acked.
        let round_start = newest.delivered >= self.next_round_delivered;
        if round_start {
            self.next_round_delivered = self.delivered;
            self.round += 1;
            if !newest.app_limited {
                self.busy_round += 1;
            }
        }
        self.first_sent_time = newest.sent_time;
        let send_elapsed = newest.sent_time.saturating_duration_since(newest.first_sent_time);
        let ack_elapsed = now.saturating_duration_since(newest.delivered_time);
        let interval = send_elapsed.max(ack_elapsed).as_secs_f64();
        if interval > 0.0 {
            let rate = (self.delivered - newest.delivered) as f64 / interval;
            if !newest.app_limited || rate > self.bandwidth() {
                self.bw_samples.push_back((self.busy_round, rate));
            }
        }
        while self.bw_samples.front().is_some_and(|&(r, _)| r + BW_ROUNDS < self.busy_round) {
            self.bw_samples.pop_front();
        }
        // Keep the filter small: a sample below a newer one never becomes the maximum.
        while self.bw_samples.len() > 1 {
            let n = self.bw_samples.len();
            if self.bw_samples[n - 2].1 <= self.bw_samples[n - 1].1 {
                self.bw_samples.remove(n - 2);
            } else {
                break;
            }
        }
        if let Some(s) = rtt_sample {
            self.check_delay_rise(s.saturating_sub(ack_delay), newest.app_limited);
            let expired =
                self.min_rtt.is_none_or(|(d, at)| s <= d || now.saturating_duration_since(at) > MIN_RTT_WINDOW);
            if expired {
                self.min_rtt = Some((s, now));
            }
        }
        self.advance(now, round_start, newest.app_limited, in_flight);
    }

    /// `app_limited`: whether the datagram that ended the round left while the sender had
    /// nothing more to send.
    fn advance(&mut self, now: Instant, round_start: bool, app_limited: bool, in_flight: u64) {
        let bw = self.bandwidth();
        let lossy = round_start && {
            let (lost, delivered) = std::mem::take(&mut self.round_loss);
            lost as f64 > LOSS_THRESH * (lost + delivered) as f64 && lost >= 3 * self.mss
        };
        if round_start && self.mode != Mode::Startup {
            // BBRv2's loss bound, simplified: a round that lost more than LOSS_THRESH cuts
            // the window to 0.7 of what it was; each clean round gives back 1/16.
            if lossy {
                self.inflight_hi = (self.window() as f64 * 0.7) as u64;
            } else if self.inflight_hi != u64::MAX {
                self.inflight_hi = self.inflight_hi.saturating_add((self.inflight_hi / 16).max(self.mss));
            }
        }
        match self.mode {
            Mode::Startup if round_start => {
                if lossy {
                    self.mode = Mode::Drain;
                } else if app_limited {
                    // The bandwidth did not grow because the sender had too little to
                    // send, not because the path is full: not a plateau (Linux BBR's
                    // `bbr_check_full_bw_reached` skips these rounds too). Without this a
                    // link left Startup during its first light traffic, at a bandwidth of
                    // a few datagrams a round trip, and a fetch later crept up from there
                    // at ProbeBW's 1.25 per cycle.
                } else if bw >= self.full_bw.0 * 1.25 {
                    self.full_bw = (bw, 0);
                } else {
                    self.full_bw.1 += 1;
                    if self.full_bw.1 >= 3 {
                        self.mode = Mode::Drain;
                    }
                }
            }
            Mode::Startup => {}
            Mode::Drain => {
                if self.bdp().is_some_and(|bdp| in_flight as f64 <= bdp) {
                    self.mode = Mode::ProbeBw;
                    self.cycle = (2, now);
                }
            }
            Mode::ProbeBw => {
                let rtt = self.min_rtt().unwrap_or(self.initial_rtt);
                if now.saturating_duration_since(self.cycle.1) > rtt {
                    self.cycle = ((self.cycle.0 + 1) % CYCLE.len(), now);
                }
            }
        }
    }
}

/// Spaces datagrams at the pacing rate, allowing a burst of up to [`BURST_TIME`] of them
/// to catch up after a late wake-up: a tokio timer fires on a 1 ms wheel, so without it a
/// driver could not pace faster than one datagram per millisecond (quinn-proto's pacer
/// does the same with a 2 ms burst interval). The simulator's wake-ups are never late.
#[derive(Debug, Default)]
pub struct Pacer {
    /// When the next datagram may leave.
    next: Option<Instant>,
}

/// The pacing time a late sender may catch up at once.
pub const BURST_TIME: Duration = Duration::from_millis(2);
/// The fewest and most datagrams in a catch-up burst.
const BURST: (u32, u32) = (4, 128);

impl Pacer {
    /// When the next datagram may leave (`None`: now).
    pub fn next_send_at(&self) -> Option<Instant> {
        self.next
    }

    /// Whether a datagram may leave now.
    pub fn ready(&self, now: Instant) -> bool {
        self.next.is_none_or(|t| t <= now)
    }

    /// Records a datagram of `size` bytes leaving now at `rate` bytes per second.
    pub fn on_sent(&mut self, now: Instant, size: u64, rate: f64) {
        let gap = Duration::from_secs_f64(size as f64 / rate.max(1.0));
        let burst = (BURST_TIME.as_secs_f64() / gap.as_secs_f64().max(1e-9)) as u32;
        let earliest = now.checked_sub(gap * burst.clamp(BURST.0, BURST.1)).unwrap_or(now);
        let base = self.next.map_or(now, |t| t.max(earliest));
        self.next = Some(base + gap);
    }
}
