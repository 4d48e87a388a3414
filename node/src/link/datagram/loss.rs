//! The sending side of reliability (RFC 9002): round-trip estimates, the datagrams in
//! flight, loss detection by packet threshold and by time threshold, and the probe timeout.
//!
//! Only ack-eliciting datagrams (those carrying a frame) are tracked: acknowledgement-only
//! ones are never acknowledged, never retransmitted and do not count against the window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::congestion::SendState;
use super::packet::Ack;
use super::PeerError;

/// A datagram is lost when this many later ones were acknowledged (RFC 9002 kPacketThreshold).
pub const PACKET_THRESHOLD: u64 = 3;
/// The timer granularity below which the time threshold does not go.
const GRANULARITY: Duration = Duration::from_millis(1);

/// Round-trip estimates (RFC 9002 §5).
#[derive(Clone, Debug)]
pub struct Rtt {
    /// The most recent sample.
    pub latest: Duration,
    /// The smoothed estimate, once a sample exists.
    pub smoothed: Option<Duration>,
    /// The mean deviation.
    pub var: Duration,
    /// The smallest sample (not adjusted for ack delay).
    pub min: Option<Duration>,
    /// Used until the first sample.
    initial: Duration,
}

impl Rtt {
    /// Before any sample, `initial` stands in.
    pub fn new(initial: Duration) -> Self {
        Self { latest: initial, smoothed: None, var: initial / 2, min: None, initial }
    }

    /// Takes a sample: `latest` from send to acknowledgement, `ack_delay` as the peer said.
    pub fn update(&mut self, latest: Duration, ack_delay: Duration, max_ack_delay: Duration) {
        self.latest = latest;
        let min = self.min.map_or(latest, |m| m.min(latest));
        self.min = Some(min);
        let Some(smoothed) = self.smoothed else {
            self.smoothed = Some(latest);
            self.var = latest / 2;
            return;
        };
        let ack_delay = ack_delay.min(max_ack_delay);
        let adjusted = if latest >= min + ack_delay { latest - ack_delay } else { latest };
        let dev = smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + dev) / 4;
        self.smoothed = Some((smoothed * 7 + adjusted) / 8);
    }

    /// The smoothed estimate, or the initial guess.
    pub fn get(&self) -> Duration {
        self.smoothed.unwrap_or(self.initial)
    }

    /// The probe timeout before backoff.
    pub fn pto(&self, max_ack_delay: Duration) -> Duration {
        self.get() + (self.var * 4).max(GRANULARITY) + max_ack_delay
    }

    /// How long after a later datagram was acknowledged an earlier one counts as lost.
    fn loss_delay(&self) -> Duration {
        (self.get().max(self.latest) * 9 / 8).max(GRANULARITY)
    }
}

/// An ack-eliciting datagram in flight.
#[derive(Clone, Debug)]
pub struct SentPacket {
    /// When it left.
    pub time: Instant,
    /// The frame it carried.
    pub frame: u64,
    /// Its size in bytes.
    pub size: u64,
    /// The delivery-rate state when it left.
    pub state: SendState,
}

/// What an acknowledgement changed.
#[derive(Debug, Default)]
pub struct AckOutcome {
    /// Datagrams newly acknowledged.
    pub acked: Vec<SentPacket>,
    /// Datagrams now declared lost.
    pub lost: Vec<SentPacket>,
    /// Whether a round-trip sample was taken (the largest was newly acknowledged).
    pub rtt_sample: Option<Duration>,
}

/// The datagrams in flight and the loss-detection timers.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Ack-eliciting datagrams not yet acknowledged nor lost, by packet number.
    sent: BTreeMap<u64, SentPacket>,
    /// The largest packet number sent, ack-only ones included.
    largest_sent: Option<u64>,
    /// The largest packet number acknowledged.
    largest_acked: Option<u64>,
    /// When the earliest datagram not yet lost by time will be.
    loss_time: Option<Instant>,
    /// Consecutive probe timeouts without an acknowledgement (the backoff exponent).
    pub pto_count: u32,
    /// When the last ack-eliciting datagram left.
    last_sent: Option<Instant>,
    /// Bytes of ack-eliciting datagrams in flight.
    pub bytes: u64,
}

impl InFlight {
    /// Records a datagram sent (`packet` is `None` for acknowledgement-only ones).
    pub fn on_sent(&mut self, pn: u64, packet: Option<SentPacket>) {
        self.largest_sent = Some(pn);
        if let Some(p) = packet {
            self.bytes += p.size;
            self.last_sent = Some(p.time);
            self.sent.insert(pn, p);
        }
    }

    /// Stops counting `pn` as in flight without any signal (another copy of its frame was
    /// acknowledged).
    pub fn forget(&mut self, pn: u64) {
        if let Some(p) = self.sent.remove(&pn) {
            self.bytes -= p.size;
        }
    }

    /// The largest packet number the peer acknowledged (so authenticated), if any.
    pub fn largest_acked(&self) -> Option<u64> {
        self.largest_acked
    }

    /// Whether `pn` is an ack-eliciting datagram in flight.
    pub fn contains(&self, pn: u64) -> bool {
        self.sent.contains_key(&pn)
    }

    /// Ack-eliciting datagrams in flight.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether nothing ack-eliciting is in flight.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// The frames of the oldest datagrams in flight (for probes).
    pub fn oldest_frames(&self, n: usize) -> Vec<u64> {
        self.sent.values().take(n).map(|p| p.frame).collect()
    }

    /// Processes an acknowledgement.
    pub fn on_ack(
        &mut self,
        now: Instant,
        ack: &Ack,
        rtt: &mut Rtt,
        max_ack_delay: Duration,
    ) -> Result<AckOutcome, PeerError> {
        let mut out = AckOutcome::default();
        let Some(&(_, largest)) = ack.ranges.first() else { return Ok(out) };
        if self.largest_sent.is_none_or(|s| largest > s) {
            return Err(PeerError::AckOfUnsent(largest));
        }
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        for &(lo, hi) in &ack.ranges {
            let pns: Vec<u64> = self.sent.range(lo..=hi).map(|(&pn, _)| pn).collect();
            for pn in pns {
                if let Some(p) = self.sent.remove(&pn) {
                    if pn == largest {
                        let sample = now.saturating_duration_since(p.time);
                        rtt.update(sample, ack.delay, max_ack_delay);
                        out.rtt_sample = Some(sample);
                    }
                    self.bytes -= p.size;
                    out.acked.push(p);
                }
            }
        }
        if out.acked.is_empty() {
            return Ok(out);
        }
        self.pto_count = 0;
        out.lost = self.detect_lost(now, rtt);
        Ok(out)
    }

    /// Declares lost what the thresholds say is lost, and sets the time-threshold timer.
    fn detect_lost(&mut self, now: Instant, rtt: &Rtt) -> Vec<SentPacket> {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else { return Vec::new() };
        let delay = rtt.loss_delay();
        let mut lost_pns = Vec::new();
        for (&pn, p) in self.sent.range(..largest) {
            if largest - pn >= PACKET_THRESHOLD || p.time + delay <= now {
                lost_pns.push(pn);
            } else {
                let t = p.time + delay;
                self.loss_time = Some(self.loss_time.map_or(t, |l| l.min(t)));
            }
        }
        let mut lost = Vec::with_capacity(lost_pns.len());
        for pn in lost_pns {
            if let Some(p) = self.sent.remove(&pn) {
                self.bytes -= p.size;
                lost.push(p);
            }
        }
        lost
    }

    /// When the loss timer or the probe timeout fires.
    pub fn timeout(&self, rtt: &Rtt, max_ack_delay: Duration) -> Option<Instant> {
        if self.loss_time.is_some() {
            return self.loss_time;
        }
        if self.sent.is_empty() {
            return None;
        }
        let backoff = 1u32 << self.pto_count.min(16);
        self.last_sent.map(|t| t + rtt.pto(max_ack_delay) * backoff)
    }

    /// Runs an expired timer: returns what it declared lost, and whether probes are due.
    pub fn on_timeout(&mut self, now: Instant, rtt: &Rtt, max_ack_delay: Duration) -> (Vec<SentPacket>, bool) {
        if self.loss_time.is_some_and(|t| t <= now) {
            return (self.detect_lost(now, rtt), false);
        }
        if self.timeout(rtt, max_ack_delay).is_some_and(|t| t <= now) {
            self.pto_count += 1;
            return (Vec::new(), true);
        }
        (Vec::new(), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(now: Instant) -> SendState {
        SendState { delivered: 0, delivered_time: now, first_sent_time: now, sent_time: now, app_limited: false }
    }

    fn send(f: &mut InFlight, pn: u64, at: Instant) {
        f.on_sent(pn, Some(SentPacket { time: at, frame: pn + 1, size: 1000, state: state(at) }));
    }

    fn ack(ranges: &[(u64, u64)]) -> Ack {
        Ack { ranges: ranges.to_vec(), delay: Duration::ZERO }
    }

    const MAD: Duration = Duration::from_millis(10);

    #[test]
    fn packet_and_time_thresholds_declare_losses() {
        let t0 = Instant::now();
        let mut rtt = Rtt::new(Duration::from_millis(100));
        let mut f = InFlight::default();
        for pn in 0..6 {
            send(&mut f, pn, t0 + Duration::from_millis(pn));
        }
        // 1 and 2 missing; 3..=5 acknowledged: 1 and 2 are 3+ below the largest.
        let at = t0 + Duration::from_millis(60);
        let out = f.on_ack(at, &ack(&[(3, 5), (0, 0)]), &mut rtt, MAD).unwrap();
        assert_eq!(out.acked.len(), 4);
        let lost: Vec<u64> = out.lost.iter().map(|p| p.frame - 1).collect();
        assert_eq!(lost, vec![1, 2]);
        assert!(f.is_empty() && f.bytes == 0);
        // 6 and 7 sent, 7 acknowledged: 6 is lost only after 9/8 of a round trip.
        send(&mut f, 6, at);
        send(&mut f, 7, at);
        let out = f.on_ack(at + Duration::from_millis(55), &ack(&[(7, 7)]), &mut rtt, MAD).unwrap();
        assert!(out.lost.is_empty());
        let t = f.timeout(&rtt, MAD).unwrap();
        assert!(t > at + Duration::from_millis(55));
        let (lost, probe) = f.on_timeout(t, &rtt, MAD);
        assert_eq!((lost.len(), probe), (1, false));
    }

    #[test]
    fn silence_fires_backed_off_probes() {
        let t0 = Instant::now();
        let rtt = Rtt::new(Duration::from_millis(100));
        let mut f = InFlight::default();
        send(&mut f, 0, t0);
        let first = f.timeout(&rtt, MAD).unwrap();
        let (lost, probe) = f.on_timeout(first, &rtt, MAD);
        assert!(lost.is_empty() && probe);
        let second = f.timeout(&rtt, MAD).unwrap();
        assert_eq!(second - t0, (first - t0) * 2, "exponential backoff");
    }

    #[test]
    fn acknowledging_unsent_packets_is_the_peers_fault() {
        let t0 = Instant::now();
        let mut rtt = Rtt::new(Duration::from_millis(100));
        let mut f = InFlight::default();
        assert_eq!(f.on_ack(t0, &ack(&[(0, 0)]), &mut rtt, MAD).err(), Some(PeerError::AckOfUnsent(0)));
        send(&mut f, 0, t0);
        assert_eq!(f.on_ack(t0, &ack(&[(0, 9)]), &mut rtt, MAD).err(), Some(PeerError::AckOfUnsent(9)));
        assert_eq!(f.len(), 1, "nothing was taken from the bogus acknowledgement");
    }
}
