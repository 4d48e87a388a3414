//! The datagram layout and its sealing.
//!
//! ```text
//! UDP payload, always DATAGRAM_LEN (1070) bytes:
//!   packet number   u32 BE, cleartext: the low 32 bits of the Noise nonce (a u64 that is
//!                   never reused); the receiver reconstructs the rest (RFC 9000 §17.1)
//!   sealed          PLAIN_LEN (1050) bytes of plaintext + 16-byte tag:
//!     flags         u8: 0x01 carries a frame, 0x02 carries an acknowledgement
//!     frame number  u64 BE (0 without a frame): the frame's identity across retransmissions
//!     previous      u16 BE: how far back the frame it must follow (same stream) is,
//!                   `number - previous`; 0 = none (see [`encode`])
//!     ack largest   u64 BE: the largest packet number received
//!     ack delay     u32 BE: microseconds between receiving `largest` and sending this
//!     first range   u16 BE: packets just below `largest` also received
//!     range count   u8 (<= MAX_RANGES), then MAX_RANGES (4) slots of (gap u16, length u16),
//!                   the unused ones zero (QUIC's ACK frame, fixed-width)
//!     frame body    BODY_LEN (1008) bytes, the `wire::frame` body (zeros without a frame)
//! ```
//!
//! Every datagram has the same length, acknowledgement-only ones included, so an observer
//! learns nothing from sizes. 1070 bytes + 8 (UDP) + 40 (IPv6) = 1118 fit the IPv6 minimum
//! MTU of 1280: datagrams never fragment. Why these widths (session 9; docs/wire.md,
//! "Layout"): an acknowledgement's third and later ranges never acknowledged anything new
//! on the simulated paths at 0.5-2% loss (they repeat holes the sender already declared
//! lost), so 4 slots keep 2.5 times what was ever needed; a frame's predecessor is always
//! within [`super::FRAME_WINDOW`] of it when it matters; and a truncated packet number
//! reconstructed against the replay window's largest can never open under a wrong nonce
//! (the AEAD refuses it) nor twice (the replay window refuses it).

use std::time::Duration;

use crate::wire::frame::BODY_LEN;

use super::{Dropped, PeerError, FRAME_WINDOW};

/// Acknowledgement ranges one datagram carries besides the first.
pub const MAX_RANGES: usize = 4;
/// Where the sealed header's fields start: the frame number (u64).
pub const NUMBER_AT: usize = 1;
/// The previous frame's distance (u16).
pub const PREVIOUS_AT: usize = 9;
/// The largest packet number acknowledged (u64).
pub const LARGEST_AT: usize = 11;
/// The acknowledgement delay in microseconds (u32).
pub const DELAY_AT: usize = 19;
/// The first range (u16).
pub const FIRST_AT: usize = 23;
/// The number of further ranges (u8).
pub const COUNT_AT: usize = 25;
/// The (gap u16, length u16) slots.
pub const SLOTS_AT: usize = 26;
/// Bytes of the sealed header before the frame body.
pub const HEADER_LEN: usize = SLOTS_AT + 4 * MAX_RANGES;
/// Plaintext bytes sealed in each datagram.
pub const PLAIN_LEN: usize = HEADER_LEN + BODY_LEN;
/// The AEAD tag.
pub const TAG_LEN: usize = 16;
/// The cleartext packet number (its low 32 bits).
pub const PN_LEN: usize = 4;
/// Every datagram's length (the UDP payload).
pub const DATAGRAM_LEN: usize = PN_LEN + PLAIN_LEN + TAG_LEN;

// A frame's distance to its predecessor is below FRAME_WINDOW when sent: it fits a u16.
const _: () = assert!(FRAME_WINDOW <= u16::MAX as u64);

const HAS_FRAME: u8 = 0x01;
const HAS_ACK: u8 = 0x02;

/// An acknowledgement: inclusive ranges of packet numbers received, highest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Ranges `(lowest, highest)`, descending and disjoint; the first holds the largest.
    pub ranges: Vec<(u64, u64)>,
    /// How long the receiver held the largest before acknowledging it.
    pub delay: Duration,
}

/// A frame as carried in a datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame's number (from 1), kept across retransmissions.
    pub number: u64,
    /// The frame it must be delivered after, 0 for none.
    pub previous: u64,
}

/// The decoded plaintext of one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plain {
    /// The frame and its body, if any.
    pub frame: Option<(FrameHeader, Box<[u8; BODY_LEN]>)>,
    /// The acknowledgement, if any.
    pub ack: Option<Ack>,
}

/// Writes `plain` into `out` (exactly [`PLAIN_LEN`] bytes). Ranges past what the fixed
/// layout can say (more than `MAX_RANGES + 1`, or gaps/lengths over 65535) are left out:
/// the sender then thinks those packets lost and resends their frames, which the receiver
/// drops as duplicates.
///
/// A frame's `previous` must be 0 or less than 65536 frames before it, else it is sent as
/// 0 (none). The session names a predecessor only while it is unacknowledged, so within
/// [`FRAME_WINDOW`] of the frame; an acknowledged one arrived, and so did everything it
/// waits for (a frame held at the receiver waits for an unacknowledged one, which is
/// earlier), so the receiver has delivered it and "none" means the same there.
pub fn encode(frame: Option<(&FrameHeader, &[u8; BODY_LEN])>, ack: Option<&Ack>, out: &mut [u8; PLAIN_LEN]) {
    out.fill(0);
    if let Some((h, body)) = frame {
        out[0] |= HAS_FRAME;
        out[NUMBER_AT..NUMBER_AT + 8].copy_from_slice(&h.number.to_be_bytes());
        let distance = match h.previous {
            0 => 0,
            p => u16::try_from(h.number.saturating_sub(p)).unwrap_or(0),
        };
        out[PREVIOUS_AT..PREVIOUS_AT + 2].copy_from_slice(&distance.to_be_bytes());
        out[HEADER_LEN..].copy_from_slice(body);
    }
    let Some(ack) = ack else { return };
    let Some(&(lo, hi)) = ack.ranges.first() else { return };
    out[0] |= HAS_ACK;
    out[LARGEST_AT..LARGEST_AT + 8].copy_from_slice(&hi.to_be_bytes());
    let delay = u32::try_from(ack.delay.as_micros()).unwrap_or(u32::MAX);
    out[DELAY_AT..DELAY_AT + 4].copy_from_slice(&delay.to_be_bytes());
    // A first range too long for u16 is shortened (its low end reported as lost).
    let first = (hi - lo).min(u64::from(u16::MAX));
    out[FIRST_AT..FIRST_AT + 2].copy_from_slice(&(first as u16).to_be_bytes());
    let mut smallest = hi - first;
    let mut n = 0;
    for &(lo, hi) in ack.ranges.iter().skip(1).take(MAX_RANGES) {
        // QUIC: the next range's largest is `smallest - gap - 2`.
        let Some(gap) = smallest.checked_sub(hi + 2) else { break };
        let len = hi - lo;
        let (Ok(gap), Ok(len)) = (u16::try_from(gap), u16::try_from(len)) else { break };
        let at = SLOTS_AT + 4 * n;
        out[at..at + 2].copy_from_slice(&gap.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&len.to_be_bytes());
        smallest = lo;
        n += 1;
    }
    out[COUNT_AT] = n as u8;
}

/// Reads a plaintext, strictly: reserved bits, impossible ranges and non-zero unused
/// bytes are the (authenticated) peer's fault.
pub fn decode(p: &[u8; PLAIN_LEN]) -> Result<Plain, PeerError> {
    let flags = p[0];
    if flags & !(HAS_FRAME | HAS_ACK) != 0 {
        return Err(PeerError::Malformed);
    }
    let u64_at = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().unwrap_or([0; 8]));
    let u16_at = |i: usize| u64::from(u16::from_be_bytes([p[i], p[i + 1]]));
    let frame = if flags & HAS_FRAME != 0 {
        let number = u64_at(NUMBER_AT);
        let distance = u16_at(PREVIOUS_AT);
        if number == 0 {
            return Err(PeerError::Malformed);
        }
        // A predecessor at or before frame 0 (frame numbers start at 1).
        if distance >= number {
            return Err(PeerError::BadChain(number));
        }
        let previous = if distance == 0 { 0 } else { number - distance };
        let h = FrameHeader { number, previous };
        let mut body = Box::new([0u8; BODY_LEN]);
        body.copy_from_slice(&p[HEADER_LEN..]);
        Some((h, body))
    } else {
        if p[NUMBER_AT..LARGEST_AT].iter().chain(&p[HEADER_LEN..]).any(|&b| b != 0) {
            return Err(PeerError::Malformed);
        }
        None
    };
    let ack = if flags & HAS_ACK != 0 {
        let largest = u64_at(LARGEST_AT);
        let d = DELAY_AT;
        let delay = Duration::from_micros(u64::from(u32::from_be_bytes([p[d], p[d + 1], p[d + 2], p[d + 3]])));
        let first = u16_at(FIRST_AT);
        let n = usize::from(p[COUNT_AT]);
        if n > MAX_RANGES || p[SLOTS_AT + 4 * n..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(PeerError::Malformed);
        }
        let mut smallest = largest.checked_sub(first).ok_or(PeerError::Malformed)?;
        let mut ranges = vec![(smallest, largest)];
        for i in 0..n {
            let (gap, len) = (u16_at(SLOTS_AT + 4 * i), u16_at(SLOTS_AT + 2 + 4 * i));
            let hi = smallest.checked_sub(gap + 2).ok_or(PeerError::Malformed)?;
            let lo = hi.checked_sub(len).ok_or(PeerError::Malformed)?;
            ranges.push((lo, hi));
            smallest = lo;
        }
        Some(Ack { ranges, delay })
    } else {
        if p[LARGEST_AT..HEADER_LEN].iter().any(|&b| b != 0) {
            return Err(PeerError::Malformed);
        }
        None
    };
    Ok(Plain { frame, ack })
}

/// The truncated packet number of a datagram of the right length, before opening it
/// (the whole one: [`expand_packet_number`]).
pub fn packet_number(datagram: &[u8]) -> Result<u32, Dropped> {
    if datagram.len() != DATAGRAM_LEN {
        return Err(Dropped::WrongLength(datagram.len()));
    }
    let mut pn = [0u8; PN_LEN];
    pn.copy_from_slice(&datagram[..PN_LEN]);
    Ok(u32::from_be_bytes(pn))
}

/// The whole packet number of a datagram whose clear part is `truncated`, `largest` being the
/// largest authenticated one so far (RFC 9000 §17.1, Appendix A.3): the number nearest
/// `largest + 1` with those low 32 bits.
///
/// Safe with the replay window: only authenticated datagrams move `largest`, so a forger
/// cannot shift what is expected; a number reconstructed wrongly (its sender more than 2^31
/// away from the receiver's expectation, which the 4096-packet replay window and the
/// sender's window never allow for an honest datagram) is a wrong nonce, and the AEAD
/// refuses the datagram (`Dropped::Decrypt`), never opens it under another number; and
/// a datagram opens only under the one nonce it was sealed with, which the replay window
/// then refuses a second time. The sender's nonce is its whole u64 counter, never reused.
pub fn expand_packet_number(largest: Option<u64>, truncated: u32) -> u64 {
    const WIN: u64 = 1 << 32;
    const HALF: u64 = WIN / 2;
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let candidate = (expected & !(WIN - 1)) | u64::from(truncated);
    if candidate.saturating_add(HALF) <= expected {
        // Too far below what is expected: the next epoch's (unless past u64).
        candidate.checked_add(WIN).unwrap_or(candidate)
    } else if candidate > expected.saturating_add(HALF) && candidate >= WIN {
        candidate - WIN
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(ranges: &[(u64, u64)]) -> Ack {
        Ack { ranges: ranges.to_vec(), delay: Duration::from_micros(1234) }
    }

    // The layout fits the IPv6 minimum MTU with UDP and IPv6 headers.
    const _: () = assert!(DATAGRAM_LEN == 1070 && DATAGRAM_LEN + 8 + 40 <= 1280);

    #[test]
    fn frames_and_acks_round_trip() {
        let mut out = [0u8; PLAIN_LEN];
        let h = FrameHeader { number: 7, previous: 3 };
        let body = [9u8; BODY_LEN];
        let a = ack(&[(90, 100), (50, 80), (10, 10)]);
        encode(Some((&h, &body)), Some(&a), &mut out);
        let p = decode(&out).unwrap();
        assert_eq!(p.ack, Some(a));
        assert_eq!(p.frame, Some((h, Box::new(body))));
        encode(None, None, &mut out);
        assert_eq!(decode(&out).unwrap(), Plain { frame: None, ack: None });
    }

    #[test]
    fn ranges_past_the_layout_are_left_out() {
        let ranges: Vec<_> = (0..40u64).rev().map(|i| (i * 10, i * 10 + 5)).collect();
        let mut out = [0u8; PLAIN_LEN];
        encode(None, Some(&ack(&ranges)), &mut out);
        let got = decode(&out).unwrap().ack.unwrap();
        assert_eq!(got.ranges[..], ranges[..MAX_RANGES + 1]);
    }

    #[test]
    fn impossible_headers_are_the_peers_fault() {
        let mut out = [0u8; PLAIN_LEN];
        encode(None, Some(&ack(&[(5, 10)])), &mut out);
        out[FIRST_AT + 1] = 20; // first range reaches below packet 0
        assert_eq!(decode(&out), Err(PeerError::Malformed));
        let mut out = [0u8; PLAIN_LEN];
        out[0] = 0x80;
        assert_eq!(decode(&out), Err(PeerError::Malformed));
        let mut out = [0u8; PLAIN_LEN];
        out[PLAIN_LEN - 1] = 1; // a body without a frame
        assert_eq!(decode(&out), Err(PeerError::Malformed));
        let mut out = [0u8; PLAIN_LEN];
        encode(Some((&FrameHeader { number: 4, previous: 1 }, &[0; BODY_LEN])), None, &mut out);
        out[PREVIOUS_AT + 1] = 4; // a predecessor at frame 0
        assert_eq!(decode(&out), Err(PeerError::BadChain(4)));
    }

    #[test]
    fn a_predecessor_is_sent_as_its_distance() {
        let mut out = [0u8; PLAIN_LEN];
        let h = FrameHeader { number: 70_000, previous: 70_000 - 4095 };
        encode(Some((&h, &[0; BODY_LEN])), None, &mut out);
        assert_eq!(decode(&out).unwrap().frame.unwrap().0, h);
        // Farther than a u16 says: sent as none (the session never names one that far).
        let far = FrameHeader { number: 70_000, previous: 1 };
        encode(Some((&far, &[0; BODY_LEN])), None, &mut out);
        assert_eq!(decode(&out).unwrap().frame.unwrap().0, FrameHeader { number: 70_000, previous: 0 });
    }

    #[test]
    fn truncated_packet_numbers_expand_near_the_largest() {
        let w = 1u64 << 32;
        for (largest, pn) in [
            (None, 0u64),
            (None, 5),
            (Some(0), 1),
            (Some(100), 40),
            (Some(100), 4100),
            (Some(w - 3), w + 7),
            (Some(w + 7), w - 3),
            (Some(5 * w + 2), 5 * w - 4000),
            (Some(u64::MAX - 10), u64::MAX - 1),
        ] {
            assert_eq!(expand_packet_number(largest, pn as u32), pn, "{largest:?} {pn}");
        }
        // RFC 9000 A.3's example: largest 0xa82f30ea, truncated 0x9b32 of 16 bits; here 32.
        assert_eq!(expand_packet_number(Some(0xa82f_30ea), 0xa82f_9b32), 0xa82f_9b32);
        // The datagram's clear part is the low 32 bits.
        let (a, b) = super::super::cipher::DatagramCipher::loopback_pair().unwrap();
        let plain = [3u8; PLAIN_LEN];
        let d = a.seal(w + 9, &plain).unwrap();
        let t = packet_number(&d).unwrap();
        assert_eq!(t, 9);
        let mut out = [0u8; PLAIN_LEN];
        assert_eq!(b.open(expand_packet_number(Some(w + 2), t), &d, &mut out), Ok(()));
        // Reconstructed against a largest 2^31 or more away it is another nonce: refused.
        assert_eq!(b.open(expand_packet_number(Some(3 * w), t), &d, &mut out), Err(Dropped::Decrypt));
    }
}
