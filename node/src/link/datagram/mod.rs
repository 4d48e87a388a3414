//! Datagram links, sans-IO: one link's reliable, congestion-controlled session that carries
//! each fixed-size frame body in one UDP datagram (issue 18; docs/wire.md, "Datagram
//! links"). No sockets, no clocks, no randomness: `now` is an argument, as in quinn-proto.
//!
//! - [`packet`]: the datagram layout (cleartext packet number, sealed header + frame body);
//! - [`cipher`]: the link's keys, [`DatagramCipher`] (the handshake's Split, sealed with
//!   explicit nonces as Noise's ChaChaPoly) and each key phase's [`cipher::PhaseKey`]
//!   (Noise's `REKEY`);
//! - [`keys`]: key phases: each direction moves on to its next key after
//!   [`Config::rekey_after`] datagrams or [`Config::rekey_after_time`], and the receiver
//!   finds out by trial decryption (no key-phase bit in clear);
//! - [`ack`]: what the receiver saw: the replay window and the ranges it acknowledges;
//! - [`loss`]: what the sender has in flight: RTT estimates, loss detection by packet and
//!   time thresholds, and the probe timeout (RFC 9002);
//! - [`congestion`]: a BBR-like rate-based controller (delivery rate and minimum RTT in,
//!   pacing rate and window out; random loss does not shrink it);
//! - [`reorder`]: delivery to the layer above as soon as a frame arrives, in order only
//!   among the frames of one message stream (what `wire::frame::FrameReader` needs);
//! - [`session`]: the [`Session`] gluing them: `send_frame`, `poll_transmit`,
//!   `on_datagram`, `recv_frame`, `poll_timeout`, `on_timeout`;
//! - [`handshake`]: the padded IK handshake of `link::noise`, each message one datagram,
//!   resent until answered, giving the [`DatagramCipher`] of a session.
//!
//! The tokio drivers are `transport::udp` (one session), `transport::udp_endpoint` (one
//! socket for every session of a node) and `transport::udp_link` (a friend link over a
//! session, with `transport = "udp"`; docs/wire.md, "Datagram links").

pub mod ack;
pub mod cipher;
pub mod congestion;
pub mod handshake;
pub mod keys;
pub mod loss;
pub mod packet;
pub mod reorder;
pub mod session;

use std::time::Duration;

use thiserror::Error;

pub use cipher::DatagramCipher;
pub use packet::DATAGRAM_LEN;
pub use session::{Footprint, Session, Stats};

/// The most frames a sender keeps unacknowledged past its oldest unacknowledged one, and
/// so the most a receiver holds waiting for an earlier frame of the same stream (4 MiB).
pub const FRAME_WINDOW: u64 = 4096;

/// A session's tunable constants (named fields, never positional numbers).
#[derive(Clone, Debug)]
pub struct Config {
    /// Acknowledge after this many ack-eliciting datagrams (at once on a gap and for the
    /// few arrivals after one). The sender assumes its peer uses the same value: its
    /// window keeps room for one such batch (docs/wire.md, "Datagram links").
    pub ack_every: u32,
    /// The longest a receiver delays an acknowledgement (QUIC's `max_ack_delay`).
    pub max_ack_delay: Duration,
    /// The round trip assumed before the first sample (RFC 9002: 333 ms; ours is a
    /// friend link, usually nearer).
    pub initial_rtt: Duration,
    /// The congestion window before any estimate, in datagrams: 40, room for one whole
    /// block (33 datagrams) and a few requests, so a link's first block leaves without
    /// waiting a round trip for acknowledgements (with 16 it waited one at every hop:
    /// `a_block_after_light_traffic_crosses_in_one_trip`; docs/wire.md, session 10).
    pub initial_window: u64,
    /// Our sending direction moves on to its next key (Noise's `REKEY`) after this many
    /// datagrams under one key (2^16, as TCP links' frames), once the peer acknowledged
    /// one of them (docs/wire.md, "Rekeying").
    pub rekey_after: u64,
    /// ... or after this long under one key (2 minutes, WireGuard's `REKEY_AFTER_TIME`),
    /// checked when the next datagram is sealed.
    pub rekey_after_time: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ack_every: 16,
            max_ack_delay: Duration::from_millis(10),
            initial_rtt: Duration::from_millis(200),
            initial_window: 40,
            rekey_after: crate::link::noise::DEFAULT_REKEY_INTERVAL,
            rekey_after_time: Duration::from_secs(120),
        }
    }
}

/// Why an incoming datagram was dropped without harm: anyone on the path can send such a
/// datagram, so none of these closes the link (the driver counts them).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dropped {
    /// The datagram is not [`DATAGRAM_LEN`] bytes.
    #[error("datagram of {0} bytes, expected {DATAGRAM_LEN}")]
    WrongLength(usize),
    /// It did not authenticate under the link's keys (a forgery, or another link's).
    #[error("datagram did not authenticate")]
    Decrypt,
    /// Its packet number was seen already or is older than the replay window.
    #[error("replayed or too old packet number")]
    Replay,
}

/// An authenticated datagram broke the protocol: only the peer holding the link's keys can
/// have sent it, so the link is closed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerError {
    /// Reserved bits or an impossible field in the sealed header.
    #[error("malformed datagram header")]
    Malformed,
    /// An acknowledgement of a packet number never sent.
    #[error("acknowledged packet {0} that was never sent")]
    AckOfUnsent(u64),
    /// A frame beyond the receive window (see [`FRAME_WINDOW`]).
    #[error("frame {0} beyond the receive window")]
    BeyondWindow(u64),
    /// A frame whose predecessor in its stream is not earlier than itself.
    #[error("frame {0} chained to a later frame")]
    BadChain(u64),
}

/// What went wrong with an incoming datagram, by culprit.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatagramError {
    /// Dropped harmlessly (anyone could have sent it).
    #[error("dropped: {0}")]
    Dropped(#[from] Dropped),
    /// The authenticated peer broke the protocol: close the link.
    #[error("peer misbehaved: {0}")]
    Peer(#[from] PeerError),
}
