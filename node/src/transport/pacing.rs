//! Kernel pacing of a cover-traffic link's socket (`link_rate`, docs/wire.md "Cover
//! traffic").
//!
//! With `link_rate` on, the process no longer decides when a frame leaves: the kernel does.
//! `SO_MAX_PACING_RATE` caps the TCP socket at `link_rate` frames of [`FRAME_LEN`] bytes a
//! second, and Linux TCP paces on its own (an hrtimer per socket since 4.13, no `fq` qdisc
//! needed). Each frame is written with `MSG_EOR`, so TCP never merges it with the next one:
//! one frame, one paced packet, one gap of exactly 1/`link_rate` (without it, loopback's
//! TSO autosizing sent whatever was queued as one 64 KiB burst). `TCP_NOTSENT_LOWAT` keeps
//! the queue of frames already chosen but not yet sent short ([`QUEUE_FRAMES`]): the socket
//! becomes writable again when half of it has left, and the writer then chooses the next
//! frames, data or padding. That choice, and how late the writer's runtime gets to it,
//! does not show on the wire as long as the queue never runs dry.

use std::io;
use std::num::NonZeroU32;
use std::os::fd::AsRawFd;

use nix::sys::socket::{send, setsockopt, MsgFlags};
// The macro calls itself and its helper unqualified.
use nix::{setsockopt_impl, sockopt_impl};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::wire::frame::FRAME_LEN;

/// Frames a paced socket holds unsent at most (`TCP_NOTSENT_LOWAT`): the latency cover
/// traffic adds, in frame times (16 frames = 32 ms at 500 frames/s). The kernel wakes the
/// writer when half of them have left, so the writer's runtime has half of this long to
/// answer before the link would go quiet and show it. With 2 frames the queue ran dry
/// (the wake-up came with the last frame leaving); with 8 a busy sender ran it dry twice
/// as often as an idle one; 32 measured no better than 16 (docs/wire.md, "Cover traffic").
pub(crate) const QUEUE_FRAMES: u32 = 16;

sockopt_impl!(
    /// `SO_MAX_PACING_RATE`, bytes per second: the socket's ceiling, which TCP enforces
    /// by pacing every packet.
    MaxPacingRate,
    SetOnly,
    libc::SOL_SOCKET,
    libc::SO_MAX_PACING_RATE,
    u32
);

sockopt_impl!(
    /// `TCP_NOTSENT_LOWAT`, bytes: a write waits while this much is queued unsent.
    NotsentLowat,
    SetOnly,
    libc::IPPROTO_TCP,
    libc::TCP_NOTSENT_LOWAT,
    u32
);

/// Has the kernel pace `stream` at `link_rate` frames a second, with a short unsent queue.
pub(crate) fn pace(stream: &TcpStream, link_rate: NonZeroU32) -> io::Result<()> {
    let frame = FRAME_LEN as u32;
    setsockopt(stream, MaxPacingRate, &link_rate.get().saturating_mul(frame))?;
    setsockopt(stream, NotsentLowat, &(QUEUE_FRAMES * frame))?;
    Ok(())
}

/// Writes the rest of a frame as a record of its own (`MSG_EOR`: TCP appends nothing to
/// it), without waiting: how many bytes the socket took, or `WouldBlock` while its unsent
/// queue is full (then `stream.writable()` waits for room).
pub(crate) fn try_send_frame(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    stream.try_io(Interest::WRITABLE, || {
        send(stream.as_raw_fd(), bytes, MsgFlags::MSG_EOR | MsgFlags::MSG_NOSIGNAL).map_err(io::Error::from)
    })
}
