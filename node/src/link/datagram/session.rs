//! One link's datagram session: frames in, datagrams out, and back (quinn-proto's shape).
//!
//! ```text
//! send_frame(body) ──► queue ──► poll_transmit(now) ──► datagram ──► (driver) ──► peer
//! peer ──► (driver) ──► on_datagram(now, bytes) ──► recv_frame() ──► FrameReader
//!                        poll_timeout() / on_timeout(now): loss, probe and ack timers
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use crate::wire::frame::BODY_LEN;

use super::ack::{AckState, ReplayWindow};
use super::congestion::{Bbr, Pacer};
use super::keys::{Opened, RecvKeys, RekeyPolicy, SendKeys};
use super::loss::{InFlight, Rtt, SentPacket};
use super::packet::{self, FrameHeader, PLAIN_LEN};
use super::reorder::Reorder;
use super::{Config, DatagramCipher, DatagramError, PeerError, DATAGRAM_LEN, FRAME_WINDOW};

const MSS: u64 = DATAGRAM_LEN as u64;
/// Datagrams sent when the probe timeout fires (RFC 9002 sends one or two).
const PROBES: u32 = 2;

/// Counters for tests, benchmarks and the driver's status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams sent, acknowledgement-only ones included.
    pub datagrams_sent: u64,
    /// Acknowledgement-only datagrams sent.
    pub ack_only_sent: u64,
    /// Frames sent again after a loss or a probe timeout.
    pub retransmissions: u64,
    /// Datagrams declared lost.
    pub lost: u64,
    /// Probe timeouts.
    pub ptos: u64,
    /// Authenticated datagrams received.
    pub datagrams_received: u64,
    /// Frames received twice (spurious retransmissions), dropped.
    pub duplicate_frames: u64,
    /// Datagrams dropped unopened or unauthenticated (replays, forgeries, wrong sizes).
    pub dropped: u64,
    /// AEAD opens tried (at most two per datagram that passes the replay window).
    pub aead_opens: u64,
    /// Times our sending direction moved on to its next key.
    pub rekeys_sent: u64,
    /// Times the peer's direction moved on to its next key (a datagram opened under it).
    pub rekeys_received: u64,
}

/// How much a session holds, part by part: what the bounds of docs/wire.md ("Datagram
/// links") are stated over, for tests and the driver's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Frames queued or sent and not yet acknowledged (the sender's own; never more than
    /// the layer above handed over).
    pub unacked_frames: usize,
    /// Ack-eliciting datagrams in flight.
    pub in_flight: usize,
    /// Packet numbers remembered as carrying an unacknowledged frame.
    pub copies: usize,
    /// Received frames waiting for an earlier one (at most [`FRAME_WINDOW`]).
    pub held: usize,
    /// Frame numbers remembered above the contiguous prefix (at most [`FRAME_WINDOW`]).
    pub received_above: usize,
    /// Ranges of packet numbers remembered for acknowledgements (at most 64).
    pub ack_ranges: usize,
    /// Frames ready for the layer above and not yet taken.
    pub ready: usize,
    /// Receiving keys held: the current and next, and the previous for 3 PTO after a switch.
    pub recv_keys: usize,
}

/// A frame sent and not yet acknowledged.
#[derive(Debug)]
struct Outgoing {
    /// The frame it follows in its stream (0 for none).
    previous: u64,
    /// The body.
    body: Box<[u8; BODY_LEN]>,
    /// Whether it waits in the retransmission queue.
    queued: bool,
    /// The packet numbers that carried it: once one is acknowledged, the others no longer
    /// count as in flight (else a probe timeout would wait on a copy nobody needs).
    copies: Vec<u64>,
}

/// One link's reliable, congestion-controlled datagram session.
#[derive(Debug)]
pub struct Session {
    /// Our sending direction's key phases.
    send_keys: SendKeys,
    /// The peer's direction's key phases.
    recv_keys: RecvKeys,
    /// Tunables.
    config: Config,
    /// The next packet number (the nonce: never reused).
    next_pn: u64,
    /// Frames not yet acknowledged, sent or not, by number.
    frames: BTreeMap<u64, Outgoing>,
    /// Frame numbers never sent yet, in order.
    fresh: VecDeque<u64>,
    /// Frames to send again (lost), oldest first.
    retransmit: VecDeque<u64>,
    /// The next frame number.
    next_frame: u64,
    /// The last frame number of each message stream (`wire::frame` stream id).
    last_in_stream: HashMap<u16, u64>,
    /// The last frame of no stream sent with [`Session::send_frame_ordered`] (0: none).
    last_single: u64,
    /// Datagrams in flight and the loss timers.
    in_flight: InFlight,
    /// Round-trip estimates.
    rtt: Rtt,
    /// The congestion controller.
    cc: Bbr,
    /// The pacer.
    pacer: Pacer,
    /// Probe datagrams still to send after a probe timeout.
    probes: u32,
    /// Packet numbers seen.
    replay: ReplayWindow,
    /// What to acknowledge, and when.
    acks: AckState,
    /// Frames received, held or ready.
    reorder: Reorder,
    /// Counters.
    stats: Stats,
}

impl Session {
    /// A session over `cipher`'s keys, starting at `now`.
    pub fn new(cipher: DatagramCipher, now: Instant, config: Config) -> Self {
        let (send, recv) = cipher.into_keys();
        Self {
            send_keys: SendKeys::new(send, now),
            recv_keys: RecvKeys::new(recv),
            next_pn: 0,
            frames: BTreeMap::new(),
            fresh: VecDeque::new(),
            retransmit: VecDeque::new(),
            next_frame: 1,
            last_in_stream: HashMap::new(),
            last_single: 0,
            in_flight: InFlight::default(),
            rtt: Rtt::new(config.initial_rtt),
            cc: Bbr::new(now, MSS, config.initial_window, config.initial_rtt, u64::from(config.ack_every)),
            pacer: Pacer::default(),
            probes: 0,
            replay: ReplayWindow::default(),
            acks: AckState::new(config.ack_every, config.max_ack_delay),
            reorder: Reorder::default(),
            stats: Stats::default(),
            config,
        }
    }

    /// Queues a frame body (from `wire::frame::FrameWriter`). Frames of one message
    /// stream (bytes 1..3 of the body, non-zero) reach the peer in order; all others as soon
    /// as they arrive.
    pub fn send_frame(&mut self, body: &[u8; BODY_LEN]) {
        self.queue_frame(body, false);
    }

    /// As [`Session::send_frame`], but frames of no stream (one-frame messages, padding)
    /// are chained too, in a chain of their own: they reach the peer in the order sent, as
    /// over a TCP link, and a lost one holds back the later ones (a friend link's control
    /// messages, whose order matters: a `LocationUpdate` must not be overtaken by an
    /// older one).
    pub fn send_frame_ordered(&mut self, body: &[u8; BODY_LEN]) {
        self.queue_frame(body, true);
    }

    fn queue_frame(&mut self, body: &[u8; BODY_LEN], chain_singles: bool) {
        let n = self.next_frame;
        self.next_frame += 1;
        let stream = u16::from_be_bytes([body[1], body[2]]);
        let previous = match stream {
            0 if chain_singles => std::mem::replace(&mut self.last_single, n),
            0 => 0,
            _ => self.last_in_stream.insert(stream, n).unwrap_or(0),
        };
        self.frames.insert(n, Outgoing { previous, body: Box::new(*body), queued: false, copies: Vec::new() });
        self.fresh.push_back(n);
    }

    /// Frames queued and never sent (for the driver's backpressure).
    pub fn queued_frames(&self) -> usize {
        self.fresh.len()
    }

    /// Frames sent or queued and not yet acknowledged.
    pub fn unacked_frames(&self) -> usize {
        self.frames.len()
    }

    /// The next frame received, in the order described at [`Session::send_frame`].
    pub fn recv_frame(&mut self) -> Option<Box<[u8; BODY_LEN]>> {
        self.reorder.pop()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// How much state the session holds.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            unacked_frames: self.frames.len(),
            in_flight: self.in_flight.len(),
            copies: self.frames.values().map(|f| f.copies.len()).sum(),
            held: self.reorder.held(),
            received_above: self.reorder.received_above(),
            ack_ranges: self.acks.ranges(),
            ready: self.reorder.ready(),
            recv_keys: self.recv_keys.held(),
        }
    }

    /// The round-trip estimates.
    pub fn rtt(&self) -> &Rtt {
        &self.rtt
    }

    /// The congestion controller (its bandwidth estimate, window and phase).
    pub fn congestion(&self) -> &Bbr {
        &self.cc
    }

    /// Takes one datagram from the peer. A [`DatagramError::Dropped`] harms nothing (count
    /// it and go on); a [`DatagramError::Peer`] means the peer broke the protocol.
    pub fn on_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DatagramError> {
        let r = self.open(now, datagram);
        if matches!(r, Err(DatagramError::Dropped(_))) {
            self.stats.dropped += 1;
        }
        r
    }

    fn open(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DatagramError> {
        let pn = packet::expand_packet_number(self.replay.largest(), packet::packet_number(datagram)?);
        self.replay.check(pn)?;
        let mut plain = Box::new([0u8; PLAIN_LEN]);
        // The previous key serves datagrams delayed across a switch for 3 PTO (RFC 9001
        // §6.5): by then the sender declared any still missing lost and sent their frames
        // again under the new key.
        let keep_previous = self.rtt.pto(self.config.max_ack_delay) * 3;
        let opened = self.recv_keys.open(now, pn, datagram, &mut plain, keep_previous, &mut self.stats.aead_opens)?;
        if opened == Opened::Next {
            self.stats.rekeys_received += 1;
        }
        self.replay.insert(pn);
        self.stats.datagrams_received += 1;
        let p = packet::decode(&plain)?;
        self.acks.on_packet(now, pn, p.frame.is_some());
        if let Some(ack) = p.ack {
            self.on_ack(now, &ack)?;
        }
        if let Some((h, body)) = p.frame {
            if !self.reorder.on_frame(&h, body)? {
                self.stats.duplicate_frames += 1;
            }
        }
        Ok(())
    }

    fn on_ack(&mut self, now: Instant, ack: &packet::Ack) -> Result<(), PeerError> {
        let out = self.in_flight.on_ack(now, ack, &mut self.rtt, self.config.max_ack_delay)?;
        for p in &out.acked {
            if let Some(f) = self.frames.remove(&p.frame) {
                for pn in f.copies {
                    self.in_flight.forget(pn);
                }
            }
        }
        let acked: Vec<_> = out.acked.iter().map(|p| (&p.state, p.size)).collect();
        let ack_delay = ack.delay.min(self.config.max_ack_delay);
        self.cc.on_ack(now, &acked, out.rtt_sample, ack_delay, self.in_flight.bytes);
        self.on_lost(out.lost);
        Ok(())
    }

    fn on_lost(&mut self, lost: Vec<SentPacket>) {
        self.stats.lost += lost.len() as u64;
        self.cc.on_loss(lost.iter().map(|p| p.size).sum());
        for p in lost {
            if let Some(f) = self.frames.get_mut(&p.frame) {
                // A lost copy is no longer in flight: forget its number, so a frame sent
                // many times (probes through a long outage) keeps no list of them.
                f.copies.retain(|&pn| self.in_flight.contains(pn));
                if !f.queued {
                    f.queued = true;
                    self.retransmit.push_back(p.frame);
                }
            }
        }
    }

    /// When [`Session::on_timeout`] or [`Session::poll_transmit`] next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.in_flight.timeout(&self.rtt, self.config.max_ack_delay);
        let mut earliest = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        earliest(self.acks.deadline());
        earliest(self.recv_keys.deadline());
        if self.has_sendable() && self.in_flight.bytes + MSS <= self.cc.window() {
            earliest(self.pacer.next_send_at());
        }
        t
    }

    /// Runs the loss and probe timers.
    pub fn on_timeout(&mut self, now: Instant) {
        self.recv_keys.expire(now);
        let (lost, probe) = self.in_flight.on_timeout(now, &self.rtt, self.config.max_ack_delay);
        self.on_lost(lost);
        if probe {
            self.stats.ptos += 1;
            self.probes = PROBES;
        }
    }

    fn has_sendable(&self) -> bool {
        self.retransmit.iter().any(|n| self.frames.contains_key(n)) || self.fresh_allowed()
    }

    /// Whether the next fresh frame is inside the window the receiver accepts.
    fn fresh_allowed(&self) -> bool {
        let lowest = self.frames.keys().next().copied().unwrap_or(self.next_frame);
        self.fresh.front().is_some_and(|&n| n < lowest + FRAME_WINDOW)
    }

    /// The frame the next datagram carries, and whether it is a retransmission.
    fn next_frame(&mut self, now: Instant) -> Option<(u64, bool)> {
        if self.probes > 0 {
            self.probes -= 1;
            // A probe bypasses the window and the pacer; it carries the oldest frame still
            // in flight (its loss is the likeliest cause of the silence), or new data.
            if let Some(n) = self.pop_retransmit() {
                return Some((n, true));
            }
            if self.fresh_allowed() {
                return self.fresh.pop_front().map(|n| (n, false));
            }
            return self.in_flight.oldest_frames(1).first().map(|&n| (n, true));
        }
        if !self.pacer.ready(now) || self.in_flight.bytes + MSS > self.cc.window() {
            return None;
        }
        if let Some(n) = self.pop_retransmit() {
            return Some((n, true));
        }
        if self.fresh_allowed() {
            return self.fresh.pop_front().map(|n| (n, false));
        }
        None
    }

    fn pop_retransmit(&mut self) -> Option<u64> {
        while let Some(n) = self.retransmit.pop_front() {
            if let Some(f) = self.frames.get_mut(&n) {
                f.queued = false;
                return Some(n);
            }
        }
        None
    }

    /// The next datagram to send now, if any (call until `None`, then wait for
    /// [`Session::poll_timeout`] or the next datagram).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        let frame = self.next_frame(now);
        if frame.is_none() {
            if self.retransmit.is_empty() && self.fresh.is_empty() {
                self.cc.on_app_limited(self.in_flight.bytes);
            }
            if !self.acks.wants_ack(now) {
                return None;
            }
        }
        let ack = self.acks.take_ack(now);
        let mut plain = Box::new([0u8; PLAIN_LEN]);
        // A predecessor already acknowledged arrived, and so did all it waits for: the peer
        // delivered it, and naming none says the same (and keeps the distance in a u16).
        let lowest = self.frames.keys().next().copied().unwrap_or(0);
        let header = frame.and_then(|(n, _)| {
            self.frames.get(&n).map(|f| {
                let previous = if f.previous >= lowest { f.previous } else { 0 };
                (FrameHeader { number: n, previous }, n)
            })
        });
        match &header {
            Some((h, n)) => {
                let body = self.frames.get(n).map(|f| &*f.body)?;
                packet::encode(Some((h, body)), ack.as_ref(), &mut plain);
            }
            None => packet::encode(None, ack.as_ref(), &mut plain),
        }
        let pn = self.next_pn;
        let policy = RekeyPolicy { after: self.config.rekey_after, after_time: self.config.rekey_after_time };
        // Sealing fails only for a nonce of u64::MAX, after 2^64 datagrams.
        let (datagram, rekeyed) = self.send_keys.seal(now, pn, &plain, self.in_flight.largest_acked(), &policy).ok()?;
        if rekeyed {
            self.stats.rekeys_sent += 1;
        }
        self.next_pn += 1;
        self.stats.datagrams_sent += 1;
        let sent = header.map(|(h, _)| {
            let state = self.cc.on_sent(now, self.in_flight.bytes);
            self.pacer.on_sent(now, MSS, self.cc.pacing_rate());
            SentPacket { time: now, frame: h.number, size: MSS, state }
        });
        if let Some(p) = &sent {
            if let Some(f) = self.frames.get_mut(&p.frame) {
                f.copies.push(pn);
            }
        }
        match (&sent, frame) {
            (None, _) => self.stats.ack_only_sent += 1,
            (Some(_), Some((_, true))) => self.stats.retransmissions += 1,
            _ => {}
        }
        self.in_flight.on_sent(pn, sent);
        Some(datagram)
    }
}
