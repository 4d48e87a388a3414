//! One established link: a reader and a writer over a TCP stream, both polled by one task.
//!
//! A link has two bounded queues: *small* messages (those that fit in one frame: every
//! request, reply, rejection, swap message and keepalive) and *bulk* ones (blocks). Before
//! each batch the writer moves every waiting small message into its framer, and bulk
//! messages only while the framer holds less than [`LOW_WATER`] bytes; the framer then
//! gives small messages every other frame. So a control message queued behind any number
//! of blocks goes out within the batch being written plus two frames: at most
//! [`BATCH_FRAMES`] + 2 frames later, whatever the bulk queue holds. Messages of the two
//! kinds may overtake each other; each kind stays in order.
//!
//! The writer seals up to [`BATCH_FRAMES`] frames per socket write and sends a
//! `Keepalive` after `keepalive` of silence. When the peer stops reading, `write_all`
//! stops completing, the writer stops pulling, the queues fill, and
//! `TransportHandle::send` waits (or `try_send` says `Full`): memory per link is bounded
//! by the queue capacities times the largest message of each kind, plus `LOW_WATER`, plus
//! one batch.
//!
//! The reader reads whole frames, opens them, reassembles messages, and delivers them on
//! the bounded event channel (so a node that stops draining events stops reading, and TCP
//! pushes back on the peer). Nothing received for `idle_timeout` closes the link.
//!
//! Both halves live in one `select!`, so when either ends (error, peer gone, shutdown)
//! the other is dropped with it: no task outlives its link.
//!
//! The exception is retiring a link, when a newer one replaced it (see
//! `transport::run_link`): its queues are dropped, its writer sends what they held and
//! closes its half of the connection, and its reader goes on delivering until the friend
//! closes its half too. The friend, reading that clean close, stops queueing on the link,
//! sends what it had queued and closes. Either phase lasts [`LinkTimers::drain`] at most.
//! So when both friends dial at once, or one restarts, what either end queued on the
//! link that lost is still delivered, not dropped with the socket.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::limit::Limits;
use super::pacing;
use super::TransportEvent;
use crate::id::PeerId;
use crate::link::noise::{Session, SessionError};
use crate::wire::frame::{padding_frame, FrameError, FrameReader, FrameWriter, BODY_LEN, FRAME_LEN};
use crate::wire::{CodecError, Message};

/// The writer takes more messages from its queue only below this many framed-but-unsent bytes.
pub const LOW_WATER: usize = 64 * 1024;
/// Frames sealed per socket write.
pub const BATCH_FRAMES: usize = 8;
/// Small messages moved into the framer per batch at most (bounds one iteration).
const SMALL_DRAIN: usize = 64;
/// Frames read per socket read at most.
const READ_FRAMES: usize = 64;

/// Why a link closed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The peer closed the connection cleanly (at a frame boundary).
    #[error("peer closed the connection")]
    Closed,
    /// The connection ended in the middle of a frame (the peer's fault, or the network's).
    #[error("connection ended mid-frame")]
    Truncated,
    /// A frame did not open: replayed, reordered, tampered or garbage (the peer's fault).
    #[error("bad frame: {0}")]
    Session(#[from] SessionError),
    /// A frame broke the framing rules or carried a bad message (the peer's fault).
    #[error("bad framing: {0}")]
    Frame(#[from] FrameError),
    /// Nothing arrived for the idle timeout.
    #[error("idle timeout")]
    IdleTimeout,
    /// A socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A newer link to the same friend replaced this one.
    #[error("replaced by a newer link")]
    Replaced,
    /// The transport is shutting down.
    #[error("shutting down")]
    Shutdown,
    /// The friend was removed from the friend list.
    #[error("the friend was removed")]
    Removed,
    /// The node dropped this stranger (opennet: refused, replaced, or no longer needed).
    #[error("the stranger was dropped")]
    Dropped,
    /// The node suspended the link for the peer's repeated lies (`transport/suspend.rs`).
    #[error("suspended for repeated misbehaviour")]
    Suspended,
    /// A message could not be encoded (local error).
    #[error("local codec error: {0}")]
    Codec(#[from] CodecError),
    /// An authenticated datagram broke the datagram protocol (the peer's fault; links
    /// over UDP, `udp_link`).
    #[error("bad datagram: {0}")]
    Datagram(#[from] crate::link::datagram::PeerError),
}

/// Timers of a link.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LinkTimers {
    /// Send a keepalive after this long without sending.
    pub(crate) keepalive: Duration,
    /// Close after this long without receiving.
    pub(crate) idle_timeout: Duration,
    /// How long a retired link goes on reading, at most, for what the friend wrote on it
    /// before it closed its half.
    pub(crate) drain: Duration,
    /// Cover traffic: `link_rate` frames a second, data or padding, paced by the kernel
    /// (None: frames only when there is something to send).
    pub(crate) link_rate: Option<NonZeroU32>,
}

/// The receiving ends of a link's two queues.
#[derive(Debug)]
pub(crate) struct Queues {
    /// Messages that fit in one frame.
    pub(crate) small: mpsc::Receiver<Vec<u8>>,
    /// Longer messages (blocks).
    pub(crate) bulk: mpsc::Receiver<Vec<u8>>,
}

/// Runs a link until it ends; returns why.
///
/// `unregister` is called when the friend closes its half cleanly: it must stop further
/// sends to this link (drop its queues' senders) so the writer can send what they hold,
/// which the friend, retiring the link, still reads. `on_record` takes the link-level
/// `Message::AddressRecord`s the friend sends (the transport keeps its friends'
/// addresses); every other message goes to `events`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run(
    stream: TcpStream,
    session: Session,
    peer: PeerId,
    queues: Queues,
    events: mpsc::Sender<TransportEvent>,
    timers: LinkTimers,
    mut shutdown: watch::Receiver<bool>,
    unregister: &(dyn Fn() + Sync),
    on_record: &(dyn Fn(Message) + Sync),
    limits: &Limits,
) -> LinkError {
    let _ = stream.set_nodelay(true);
    if let Some(rate) = timers.link_rate {
        // Unpaced, a cover-traffic link would show its idle and busy times: no link then.
        if let Err(e) = pacing::pace(&stream, rate) {
            return LinkError::Io(e);
        }
    }
    let (rd, wr) = stream.into_split();
    // One task polls both halves, so this lock is never contended; it only lets the two
    // futures share the session's two directions.
    let session = Mutex::new(session);
    let reader = read_loop(rd, &session, peer, &events, timers.idle_timeout, on_record, limits);
    let writer = write_loop(wr, &session, queues, timers, limits);
    tokio::pin!(reader, writer);
    let (reason, rest) = tokio::select! {
        e = &mut reader => match e {
            // The friend retired the link (or stopped): send it what we queued.
            LinkError::Closed => {
                unregister();
                (LinkError::Closed, Either::Write(writer))
            }
            e => return e,
        },
        e = &mut writer => match e {
            // We retired it: read what the friend wrote until it closes its half.
            LinkError::Replaced => (LinkError::Replaced, Either::Read(reader)),
            e => return e,
        },
        _ = shutdown.wait_for(|s| *s) => return LinkError::Shutdown,
    };
    let finish = async {
        match rest {
            Either::Write(w) => drop(w.await),
            Either::Read(r) => drop(r.await),
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(timers.drain, finish) => reason,
        _ = shutdown.wait_for(|s| *s) => LinkError::Shutdown,
    }
}

/// The half of a link still running after the other ended.
enum Either<R, W> {
    Read(R),
    Write(W),
}

fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    // A panic while holding the lock cannot leave a half-sealed frame we would then send:
    // the link ends with the panic. Recover the guard rather than propagate poisoning.
    session.lock().unwrap_or_else(|p| p.into_inner())
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    session: &Mutex<Session>,
    peer: PeerId,
    events: &mpsc::Sender<TransportEvent>,
    idle: Duration,
    on_record: &(dyn Fn(Message) + Sync),
    limits: &Limits,
) -> LinkError {
    let mut buf = vec![0u8; FRAME_LEN * READ_FRAMES];
    let mut filled = 0;
    let mut reader = FrameReader::new();
    let mut body = [0u8; BODY_LEN];
    let mut msgs = Vec::new();
    loop {
        let n = match tokio::time::timeout(idle, rd.read(&mut buf[filled..])).await {
            Err(_) => return LinkError::IdleTimeout,
            Ok(Err(e)) => return LinkError::Io(e),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return if filled == 0 { LinkError::Closed } else { LinkError::Truncated };
        }
        // The download limit: wait until these bytes are paid for before reading more.
        limits.down.received(n).await;
        filled += n;
        let whole = filled - filled % FRAME_LEN;
        // Messages completed by frames before a bad one were authenticated in order and
        // are delivered; the bad frame then closes the link.
        let mut failure: Option<LinkError> = None;
        {
            let mut s = lock(session);
            for frame in buf[..whole].chunks_exact(FRAME_LEN) {
                if let Err(e) = s.open(frame, &mut body) {
                    failure = Some(e.into());
                    break;
                }
                match reader.read_frame(&body) {
                    Ok(Some(m)) => msgs.push(m),
                    Ok(None) => {}
                    Err(e) => {
                        failure = Some(e.into());
                        break;
                    }
                }
            }
        }
        for message in msgs.drain(..) {
            if matches!(message, Message::AddressRecord { .. }) {
                on_record(message);
                continue;
            }
            if events.send(TransportEvent::Received { peer, message }).await.is_err() {
                return LinkError::Shutdown;
            }
        }
        if let Some(e) = failure {
            return e;
        }
        buf.copy_within(whole..filled, 0);
        filled -= whole;
    }
}

async fn write_loop(
    mut wr: OwnedWriteHalf,
    session: &Mutex<Session>,
    mut queues: Queues,
    timers: LinkTimers,
    limits: &Limits,
) -> LinkError {
    if timers.link_rate.is_some() {
        return paced_write_loop(wr, session, queues, limits).await;
    }
    let keepalive = timers.keepalive;
    let mut framer = FrameWriter::new();
    let mut out = vec![0u8; FRAME_LEN * BATCH_FRAMES];
    let mut body = [0u8; BODY_LEN];
    // A frame body taken from the framer but left for the next batch.
    let mut held: Option<[u8; BODY_LEN]> = None;
    loop {
        if framer.is_empty() && held.is_none() {
            let next = tokio::time::timeout(keepalive, async {
                tokio::select! {
                    biased;
                    m = queues.small.recv() => m,
                    m = queues.bulk.recv() => m,
                }
            });
            let pushed = match next.await {
                Ok(Some(m)) => framer.push_encoded(m),
                // Both senders went together (the link was retired, or the transport
                // stopped): send what the other queue still holds, then close our half.
                Ok(None) => match queues.small.try_recv().or_else(|_| queues.bulk.try_recv()) {
                    Ok(m) => framer.push_encoded(m),
                    Err(_) => {
                        let _ = wr.shutdown().await;
                        return LinkError::Replaced;
                    }
                },
                Err(_) => framer.push(&Message::Keepalive),
            };
            if let Err(e) = pushed {
                return e.into();
            }
        }
        for _ in 0..SMALL_DRAIN {
            let Ok(m) = queues.small.try_recv() else { break };
            if let Err(e) = framer.push_encoded(m) {
                return e.into();
            }
        }
        while framer.queued_bytes() < LOW_WATER {
            let Ok(m) = queues.bulk.try_recv() else { break };
            if let Err(e) = framer.push_encoded(m) {
                return e.into();
            }
        }
        // Under an upload limit a batch is all control frames or all data frames, so the
        // control ones can pass other links' waiting data (see `limit`): the first frame
        // of the other kind is kept back (unsealed) for the next batch.
        let split = limits.up.limited();
        let mut len = 0;
        let mut control: Option<bool> = None;
        {
            let mut s = lock(session);
            while len < out.len() {
                match held.take() {
                    Some(b) => body = b,
                    None if framer.next_frame(&mut body) => {}
                    None => break,
                }
                // Stream 0 carries the one-frame messages: requests, replies, rejections.
                let is_control = body[1..3] == [0, 0];
                if split && *control.get_or_insert(is_control) != is_control {
                    held = Some(body);
                    break;
                }
                let frame: &mut [u8; FRAME_LEN] = match (&mut out[len..len + FRAME_LEN]).try_into() {
                    Ok(f) => f,
                    Err(_) => break,
                };
                if let Err(e) = s.seal(&body, frame) {
                    return e.into();
                }
                len += FRAME_LEN;
            }
        }
        // The upload limit, shared by every link (see `limit`).
        limits.up.send(len, control.unwrap_or(false)).await;
        if let Err(e) = wr.write_all(&out[..len]).await {
            return e.into();
        }
    }
}

/// Moves messages waiting in `rx` into `framer` while `more` says so (asked before each);
/// `Ok(false)` once the queue is closed (every sender gone).
fn drain_into(
    rx: &mut mpsc::Receiver<Vec<u8>>,
    framer: &mut FrameWriter,
    mut more: impl FnMut(&FrameWriter) -> bool,
) -> Result<bool, CodecError> {
    use tokio::sync::mpsc::error::TryRecvError;
    while more(framer) {
        match rx.try_recv() {
            Ok(m) => framer.push_encoded(m)?,
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Disconnected) => return Ok(false),
        }
    }
    Ok(true)
}

/// The writer under cover traffic: the kernel paces the socket at `link_rate` frames a
/// second (see `pacing`), and this loop keeps its short unsent queue full: whenever the
/// socket has room it takes the next data frame if there is one, else a padding frame. So
/// an observer of the link sees the same frames at the same times whether it is idle or
/// busy, and how busy this runtime is does not move them (a timer in the process did:
/// docs/wire.md, "Cover traffic"). Small messages still go first (the framer alternates
/// them with blocks); no keepalive is needed. Under an upload limit each frame is claimed
/// like a batch of one.
async fn paced_write_loop(
    mut wr: OwnedWriteHalf,
    session: &Mutex<Session>,
    mut queues: Queues,
    limits: &Limits,
) -> LinkError {
    let mut framer = FrameWriter::new();
    let mut body = [0u8; BODY_LEN];
    let mut frame = [0u8; FRAME_LEN];
    // Bytes at the end of `frame` not yet written; 0: the next frame is still to choose.
    let mut unsent = 0;
    loop {
        // Returns at once while the socket takes frames; waits once it said WouldBlock.
        if let Err(e) = wr.as_ref().writable().await {
            return e.into();
        }
        if unsent == 0 {
            let mut taken = 0;
            let small_open = match drain_into(&mut queues.small, &mut framer, |_| {
                taken += 1;
                taken <= SMALL_DRAIN
            }) {
                Ok(open) => open,
                Err(e) => return e.into(),
            };
            let bulk_open = match drain_into(&mut queues.bulk, &mut framer, |f| f.queued_bytes() < LOW_WATER) {
                Ok(open) => open,
                Err(e) => return e.into(),
            };
            if framer.is_empty() && !small_open && !bulk_open {
                // Retired and drained (see `write_loop`).
                let _ = wr.shutdown().await;
                return LinkError::Replaced;
            }
            if !framer.next_frame(&mut body) {
                padding_frame(&mut body);
            }
            let control = body[1..3] == [0, 0];
            if let Err(e) = lock(session).seal(&body, &mut frame) {
                return e.into();
            }
            limits.up.send(FRAME_LEN, control).await;
            unsent = FRAME_LEN;
        }
        // A frame that finds the queue full waits in `frame`, already chosen, for the
        // next wake-up: one frame more of latency, no change on the wire.
        match pacing::try_send_frame(wr.as_ref(), &frame[FRAME_LEN - unsent..]) {
            Ok(n) => unsent -= n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return e.into(),
        }
    }
}
