//! Fixed-size frames, sans-IO: messages in, equal-sized plaintext frame bodies out, and back.
//!
//! Every frame on the wire is [`FRAME_LEN`] bytes of Noise ciphertext: a [`BODY_LEN`]-byte
//! plaintext body plus the 16-byte ChaCha20-Poly1305 tag. The transport encrypts the bodies
//! this module produces; nothing here knows about keys, sockets or clocks.
//!
//! Body layout (all integers big-endian; see docs/wire.md for the diagram):
//!
//! ```text
//! 0       1           3           5                        5+len          BODY_LEN
//! | flags | stream:u16 | len:u16   | fragment (len bytes)   | zero padding |
//! ```
//!
//! - `flags`: bit 0 FIRST, bit 1 LAST; the other bits must be zero.
//! - A message that fits in one fragment travels as FIRST|LAST on stream 0.
//! - A longer message gets a stream id in 1..=65535: a FIRST fragment, zero or more middle
//!   fragments (flags 0), then a LAST fragment; every fragment but the last is full
//!   ([`MAX_FRAGMENT`] bytes), so a receiver can reject a short middle fragment at once.
//! - flags 0, stream 0, len 0 is a padding frame (cover traffic); the receiver drops it.
//!
//! Interleaving: the [`FrameWriter`] alternates between single-frame messages (FIFO) and a
//! round robin of at most [`MAX_ACTIVE_STREAMS`] multi-frame messages, so a control message
//! queued behind 32 KiB blocks waits at most a frame or two (one per message queued ahead of
//! it in the small queue, times two), never a whole block. The [`FrameReader`] bounds the
//! number of partial messages and the bytes they hold, so a peer cannot make it buffer
//! without limit.

use std::collections::{HashMap, VecDeque};

use thiserror::Error;

use super::codec::{self, CodecError, MAX_MESSAGE_LEN};
use super::message::Message;

/// Length of every ciphertext frame on the wire, the handshake messages included.
/// Chosen by measurement; see docs/wire.md ("Frame size").
pub const FRAME_LEN: usize = 1024;
/// Length of the authentication tag the AEAD appends to each body.
pub const TAG_LEN: usize = 16;
/// Length of a plaintext frame body (what the transport encrypts).
pub const BODY_LEN: usize = FRAME_LEN - TAG_LEN;
/// Length of the header at the start of each body.
pub const HEADER_LEN: usize = 5;
/// The most message bytes one frame carries.
pub const MAX_FRAGMENT: usize = BODY_LEN - HEADER_LEN;
/// How many multi-frame messages the writer interleaves at once.
pub const MAX_ACTIVE_STREAMS: usize = 4;
/// How many partial messages a reader holds at once before it calls the peer abusive (the
/// default: over TCP frames arrive in order, so at most [`MAX_ACTIVE_STREAMS`] are partial).
pub const MAX_PARTIAL_MESSAGES: usize = 16;
/// The most bytes of partial messages a reader holds at once (the default).
pub const MAX_BUFFERED_BYTES: usize = 256 * 1024;

const FIRST: u8 = 0x01;
const LAST: u8 = 0x02;

/// A frame body the peer sent that breaks the framing rules. Every variant is the peer's
/// fault (or an attacker's): the link that carried it is closed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The body is not [`BODY_LEN`] bytes.
    #[error("frame body of {0} bytes, expected {BODY_LEN}")]
    WrongBodyLength(usize),
    /// Flag bits outside FIRST|LAST are set.
    #[error("reserved flag bits set: {0:#04x}")]
    ReservedFlags(u8),
    /// The fragment length is impossible for this kind of fragment.
    #[error("bad fragment length {0}")]
    BadLength(usize),
    /// The padding after the fragment is not all zeros.
    #[error("non-zero padding")]
    NonZeroPadding,
    /// A stream id that the framing rules forbid here (0 for a multi-frame message, or
    /// non-zero for a single-frame one or for padding).
    #[error("stream id {0} not allowed here")]
    BadStream(u16),
    /// A middle or last fragment for a stream that has no FIRST.
    #[error("fragment for unknown stream {0}")]
    UnknownStream(u16),
    /// A FIRST fragment for a stream that is still open.
    #[error("stream {0} opened twice")]
    StreamAlreadyOpen(u16),
    /// More than [`MAX_PARTIAL_MESSAGES`] partial messages at once.
    #[error("too many partial messages")]
    TooManyStreams,
    /// More than [`MAX_BUFFERED_BYTES`] of partial messages at once.
    #[error("too many buffered bytes")]
    TooMuchBuffered,
    /// A message grew beyond [`MAX_MESSAGE_LEN`].
    #[error("message longer than {MAX_MESSAGE_LEN} bytes")]
    MessageTooLong,
    /// A complete message did not decode.
    #[error("bad message: {0}")]
    Codec(#[from] CodecError),
}

/// A multi-frame message being sent.
#[derive(Debug)]
struct Outgoing {
    /// Its stream id (1..=65535), unique among active streams.
    stream: u16,
    /// The encoded message.
    data: Vec<u8>,
    /// How many bytes of `data` went out already.
    sent: usize,
}

/// Turns queued messages into fixed-size frame bodies, interleaving them.
#[derive(Debug, Default)]
pub struct FrameWriter {
    /// Encoded messages that fit in one frame, in order.
    small: VecDeque<Vec<u8>>,
    /// Multi-frame messages waiting for a stream slot, in order.
    pending: VecDeque<Vec<u8>>,
    /// Multi-frame messages being sent, served round robin.
    active: VecDeque<Outgoing>,
    /// The next stream id to try (0 is never used for multi-frame messages).
    next_stream: u16,
    /// Bytes of encoded messages not yet framed (for backpressure decisions).
    queued_bytes: usize,
    /// Whether the small queue gets the next frame when both kinds are waiting.
    small_turn: bool,
}

impl FrameWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes and queues a message.
    pub fn push(&mut self, msg: &Message) -> Result<(), CodecError> {
        let bytes = codec::encode(msg)?;
        self.push_encoded(bytes)
    }

    /// Queues an already encoded message (not checked beyond its length).
    pub fn push_encoded(&mut self, bytes: Vec<u8>) -> Result<(), CodecError> {
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(CodecError::TooLong { len: bytes.len() });
        }
        self.queued_bytes += bytes.len();
        if bytes.len() <= MAX_FRAGMENT {
            self.small.push_back(bytes);
        } else {
            self.pending.push_back(bytes);
        }
        Ok(())
    }

    /// Whether there is nothing left to send.
    pub fn is_empty(&self) -> bool {
        self.small.is_empty() && self.pending.is_empty() && self.active.is_empty()
    }

    /// Encoded bytes queued and not yet framed.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Writes the next frame body into `out`; returns `false` (leaving `out` untouched)
    /// when nothing is queued.
    pub fn next_frame(&mut self, out: &mut [u8; BODY_LEN]) -> bool {
        while self.active.len() < MAX_ACTIVE_STREAMS {
            let Some(data) = self.pending.pop_front() else { break };
            let stream = self.fresh_stream();
            self.active.push_back(Outgoing { stream, data, sent: 0 });
        }
        let take_small = !self.small.is_empty() && (self.small_turn || self.active.is_empty());
        if take_small {
            if let Some(msg) = self.small.pop_front() {
                self.queued_bytes -= msg.len();
                write_body(out, FIRST | LAST, 0, &msg);
                self.small_turn = false;
                return true;
            }
        }
        let Some(mut o) = self.active.pop_front() else { return false };
        let rest = o.data.len() - o.sent;
        let n = rest.min(MAX_FRAGMENT);
        let mut flags = 0;
        if o.sent == 0 {
            flags |= FIRST;
        }
        if n == rest {
            flags |= LAST;
        }
        write_body(out, flags, o.stream, &o.data[o.sent..o.sent + n]);
        o.sent += n;
        self.queued_bytes -= n;
        if o.sent < o.data.len() {
            self.active.push_back(o);
        }
        self.small_turn = true;
        true
    }

    /// A stream id in 1..=65535 not used by an active stream.
    fn fresh_stream(&mut self) -> u16 {
        loop {
            self.next_stream = self.next_stream.wrapping_add(1).max(1);
            let id = self.next_stream;
            if !self.active.iter().any(|o| o.stream == id) {
                return id;
            }
        }
    }
}

/// Writes a padding frame body (cover traffic the receiver drops).
pub fn padding_frame(out: &mut [u8; BODY_LEN]) {
    out.fill(0);
}

fn write_body(out: &mut [u8; BODY_LEN], flags: u8, stream: u16, fragment: &[u8]) {
    out[0] = flags;
    out[1..3].copy_from_slice(&stream.to_be_bytes());
    // Fragments are at most MAX_FRAGMENT (< 65536) bytes by construction.
    out[3..5].copy_from_slice(&(fragment.len() as u16).to_be_bytes());
    out[HEADER_LEN..HEADER_LEN + fragment.len()].copy_from_slice(fragment);
    out[HEADER_LEN + fragment.len()..].fill(0);
}

/// Reassembles frame bodies into messages, strictly and with bounded memory.
#[derive(Debug)]
pub struct FrameReader {
    /// Partial multi-frame messages by stream id.
    partial: HashMap<u16, Vec<u8>>,
    /// Sum of the partial messages' lengths.
    buffered: usize,
    /// The most partial messages held at once.
    max_partial: usize,
    /// The most bytes of partial messages held at once.
    max_buffered: usize,
}

impl Default for FrameReader {
    fn default() -> Self {
        Self::with_limits(MAX_PARTIAL_MESSAGES, MAX_BUFFERED_BYTES)
    }
}

impl FrameReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// A reader holding at most `max_partial` partial messages of `max_buffered` bytes in
    /// all. A datagram link needs more than the default: a message with a lost frame stays
    /// partial until the frame is resent, while later messages keep arriving.
    pub fn with_limits(max_partial: usize, max_buffered: usize) -> Self {
        Self { partial: HashMap::new(), buffered: 0, max_partial, max_buffered }
    }

    /// Bytes held in partial messages.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Takes one decrypted frame body; returns the message it completes, if any.
    pub fn read_frame(&mut self, body: &[u8]) -> Result<Option<Message>, FrameError> {
        if body.len() != BODY_LEN {
            return Err(FrameError::WrongBodyLength(body.len()));
        }
        let flags = body[0];
        let stream = u16::from_be_bytes([body[1], body[2]]);
        let len = usize::from(u16::from_be_bytes([body[3], body[4]]));
        if flags & !(FIRST | LAST) != 0 {
            return Err(FrameError::ReservedFlags(flags));
        }
        if len > MAX_FRAGMENT {
            return Err(FrameError::BadLength(len));
        }
        let (fragment, padding) = body[HEADER_LEN..].split_at(len);
        if padding.iter().any(|&b| b != 0) {
            return Err(FrameError::NonZeroPadding);
        }
        let first = flags & FIRST != 0;
        let last = flags & LAST != 0;
        if stream == 0 {
            return match (first, last) {
                (false, false) if len == 0 => Ok(None),
                (false, false) => Err(FrameError::BadLength(len)),
                (true, true) if len > 0 => Ok(Some(codec::decode(fragment)?)),
                (true, true) => Err(FrameError::BadLength(len)),
                _ => Err(FrameError::BadStream(0)),
            };
        }
        if first && last {
            return Err(FrameError::BadStream(stream));
        }
        if !last && len != MAX_FRAGMENT {
            return Err(FrameError::BadLength(len));
        }
        if last && len == 0 {
            return Err(FrameError::BadLength(0));
        }
        if first {
            if self.partial.contains_key(&stream) {
                return Err(FrameError::StreamAlreadyOpen(stream));
            }
            if self.partial.len() >= self.max_partial {
                return Err(FrameError::TooManyStreams);
            }
        }
        if self.buffered + len > self.max_buffered {
            return Err(FrameError::TooMuchBuffered);
        }
        let buf = if first {
            self.partial.entry(stream).or_default()
        } else {
            self.partial.get_mut(&stream).ok_or(FrameError::UnknownStream(stream))?
        };
        if buf.len() + len > MAX_MESSAGE_LEN {
            return Err(FrameError::MessageTooLong);
        }
        buf.extend_from_slice(fragment);
        self.buffered += len;
        if !last {
            return Ok(None);
        }
        let data = self.partial.remove(&stream).unwrap_or_default();
        self.buffered -= data.len();
        Ok(Some(codec::decode(&data)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testing::{arb_message, big_block_message};
    use proptest::prelude::*;

    fn drain(w: &mut FrameWriter) -> Vec<[u8; BODY_LEN]> {
        let mut frames = Vec::new();
        let mut f = [0u8; BODY_LEN];
        while w.next_frame(&mut f) {
            frames.push(f);
        }
        frames
    }

    #[test]
    fn small_message_waits_at_most_two_frames_behind_blocks() {
        let mut w = FrameWriter::new();
        for i in 0..3 {
            w.push(&big_block_message(i)).unwrap();
        }
        let mut f = [0u8; BODY_LEN];
        assert!(w.next_frame(&mut f)); // a block fragment is already on its way
        w.push(&Message::RejectedOverload { id: 9 }).unwrap();
        let frames = drain(&mut w);
        let mut r = FrameReader::new();
        let pos = frames.iter().position(|f| r.read_frame(f).unwrap() == Some(Message::RejectedOverload { id: 9 }));
        assert_eq!(pos, Some(0), "the control message goes out in the very next frame");
        assert!(frames.len() > 3 * 32, "the blocks still follow");
    }

    #[test]
    fn padding_frames_are_ignored() {
        let mut f = [0u8; BODY_LEN];
        padding_frame(&mut f);
        assert_eq!(FrameReader::new().read_frame(&f), Ok(None));
    }

    #[test]
    fn rule_breaking_frames_are_rejected() {
        let mut r = FrameReader::new();
        let mut f = [0u8; BODY_LEN];
        f[0] = 0x80;
        assert_eq!(r.read_frame(&f), Err(FrameError::ReservedFlags(0x80)));
        f[0] = 0;
        f[50] = 1;
        assert_eq!(r.read_frame(&f), Err(FrameError::NonZeroPadding));
        let mut f = [0u8; BODY_LEN];
        f[0] = LAST;
        f[2] = 5;
        f[4] = 1;
        assert_eq!(r.read_frame(&f), Err(FrameError::UnknownStream(5)));
        f[0] = FIRST;
        assert_eq!(r.read_frame(&f), Err(FrameError::BadLength(1)), "short non-last fragment");
        f[3..5].copy_from_slice(&(MAX_FRAGMENT as u16 + 1).to_be_bytes());
        assert_eq!(r.read_frame(&f), Err(FrameError::BadLength(MAX_FRAGMENT + 1)));
        assert_eq!(r.read_frame(&f[..10]), Err(FrameError::WrongBodyLength(10)));
    }

    /// Opens partial messages (one first frame each) until the reader refuses; returns how
    /// many it took and the error.
    fn open_partials(r: &mut FrameReader) -> (u16, Option<FrameError>) {
        let mut f = [0u8; BODY_LEN];
        f[0] = FIRST;
        f[3..5].copy_from_slice(&(MAX_FRAGMENT as u16).to_be_bytes());
        f[HEADER_LEN..].fill(0xAA);
        for s in 1..=1000u16 {
            f[1..3].copy_from_slice(&s.to_be_bytes());
            if let Err(e) = r.read_frame(&f) {
                return (s - 1, Some(e));
            }
        }
        (1000, None)
    }

    #[test]
    fn a_peer_cannot_open_unbounded_partial_messages() {
        let mut r = FrameReader::new();
        let (_, err) = open_partials(&mut r);
        assert_eq!(err, Some(FrameError::TooManyStreams));
        assert!(r.buffered_bytes() <= MAX_BUFFERED_BYTES);
    }

    /// A datagram link's reader is built with wider limits (messages stay partial while
    /// a lost frame is resent), still bounded.
    #[test]
    fn wider_limits_hold_more_partial_messages_and_still_end() {
        let mut r = FrameReader::with_limits(64, 2 * 1024 * 1024);
        let (opened, err) = open_partials(&mut r);
        assert_eq!((opened, err), (64, Some(FrameError::TooManyStreams)));
        let mut r = FrameReader::with_limits(1000, 100 * 1024);
        let (opened, err) = open_partials(&mut r);
        assert_eq!(err, Some(FrameError::TooMuchBuffered));
        assert!(opened < 110 && r.buffered_bytes() <= 100 * 1024, "{opened}");
    }

    #[test]
    fn an_endless_message_is_cut_at_the_maximum() {
        let mut r = FrameReader::new();
        let mut f = [0u8; BODY_LEN];
        f[0] = FIRST;
        f[2] = 1;
        f[3..5].copy_from_slice(&(MAX_FRAGMENT as u16).to_be_bytes());
        f[HEADER_LEN..].fill(0xAA);
        let mut res = r.read_frame(&f);
        f[0] = 0;
        for _ in 0..100 {
            if res.is_err() {
                break;
            }
            res = r.read_frame(&f);
        }
        assert_eq!(res, Err(FrameError::MessageTooLong));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any mix of messages, framed and reassembled, comes back whole and in per-size order.
        #[test]
        fn frames_round_trip(msgs in proptest::collection::vec(arb_message(), 1..6)) {
            let mut w = FrameWriter::new();
            for m in &msgs {
                w.push(m).unwrap();
            }
            let mut r = FrameReader::new();
            let mut out = Vec::new();
            for f in drain(&mut w) {
                if let Some(m) = r.read_frame(&f).unwrap() {
                    out.push(m);
                }
            }
            prop_assert_eq!(w.queued_bytes(), 0);
            prop_assert_eq!(r.buffered_bytes(), 0);
            let mut a: Vec<_> = msgs.iter().map(|m| codec::encode(m).unwrap()).collect();
            let mut b: Vec<_> = out.iter().map(|m| codec::encode(m).unwrap()).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
        }

        /// Arbitrary bodies never panic the reader.
        #[test]
        fn arbitrary_bodies_do_not_panic(bodies in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), BODY_LEN..=BODY_LEN), 1..8)) {
            let mut r = FrameReader::new();
            for b in bodies {
                let _ = r.read_frame(&b);
            }
        }
    }
}
