//! The listener and the responder side of handshakes: every incoming connection waits
//! in the pending table (bounded per address, per /24 or /64 and in all; the oldest is
//! evicted first) until its first message is read, answered or refused with silence.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use std::net::SocketAddr;

use super::friends::unix_now;
use super::{noise, run_link, Shared, TransportConfig};
use crate::link::SessionError;
use crate::wire::frame::FRAME_LEN;
use tokio::sync::oneshot;

/// How long the listener pauses after `accept` fails (out of file descriptors, most
/// likely), rather than spinning on the error.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// How long an incoming connection may take to deliver message 1: uniform in
/// [`handshake_timeout`/4, `handshake_timeout`], so a prober sees no fixed close time.
fn responder_deadline(config: &TransportConfig) -> Duration {
    let max = config.handshake_timeout;
    rand::thread_rng().gen_range(max / 4..=max)
}

/// An incoming connection's place in the pending table, removed when dropped.
struct PendingGuard {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.shared.pending().remove(self.id);
    }
}

pub(super) async fn listen(shared: Arc<Shared>, listener: TcpListener, _done: mpsc::Sender<()>) {
    let mut shutdown = shared.shutdown.subscribe();
    let limits = shared.config.pending_limits();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (stream, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    _ = shutdown.wait_for(|s| *s) => return,
                }
            }
        };
        // Admitting may evict the oldest pending connection of this address, network or
        // the whole table; never this one.
        let (id, evicted) = shared.pending().admit(from.ip(), limits);
        let guard = PendingGuard { shared: shared.clone(), id };
        shared.spawn(move |s, t| accept(s, stream, from, guard, evicted, t));
    }
}

/// Responder side of one incoming connection. Any failure: say nothing, read and discard
/// until the prober gives up or this connection's random deadline passes, then close. So
/// a prober can tell neither how many bytes we wanted nor, from a fixed delay, that this
/// is a pamphlet node. An evicted connection is closed at once (it was the oldest
/// pending one, so its close time is set by other connections, not by a constant).
async fn accept(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    from: SocketAddr,
    guard: PendingGuard,
    mut evicted: oneshot::Receiver<()>,
    done: mpsc::Sender<()>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let deadline = tokio::time::Instant::now() + responder_deadline(&shared.config);
    let handshake = async {
        let mut m1 = [0u8; FRAME_LEN];
        stream.read_exact(&mut m1).await.map_err(|_| None)?;
        let mut m2 = [0u8; FRAME_LEN];
        let result = {
            let mut replay = shared.replay.lock().unwrap_or_else(|p| p.into_inner());
            noise::respond(
                &shared.config.keypair,
                &m1,
                unix_now(),
                &mut replay,
                |k| shared.answers(k, from.ip()),
                shared.config.rekey_interval,
                &mut m2,
            )
        };
        let (key, sess) = result.map_err(Some)?;
        stream.write_all(&m2).await.map_err(|_| None)?;
        Ok::<_, Option<SessionError>>((key, sess))
    };
    let outcome = tokio::select! {
        r = tokio::time::timeout_at(deadline, handshake) => r,
        _ = &mut evicted => {
            tracing::debug!("pending handshake evicted by newer connections");
            return;
        }
        _ = shutdown.wait_for(|s| *s) => return,
    };
    match outcome {
        Ok(Ok((key, sess))) => {
            drop(guard);
            let friend = shared.state().friends.by_key.get(&key).map(|f| f.peer);
            let peer = friend.or_else(|| shared.register_stranger(key, from.ip(), None));
            if let Some(peer) = peer {
                run_link(&shared, super::udp_link::LinkIo::Tcp(stream, sess), key, peer, false).await;
            }
        }
        Ok(Err(e)) => {
            tracing::debug!(error = ?e, "incoming handshake refused");
            let mut sink = [0u8; 4096];
            let drain = async { while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {} };
            tokio::select! {
                _ = tokio::time::timeout_at(deadline, drain) => {}
                _ = &mut evicted => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        }
        Err(_) => tracing::debug!("incoming handshake timed out"),
    }
    drop(done);
}
