//! The initiator side: one task per friend dials it whenever no link to it is up.
//!
//! Each attempt tries the friend's addresses in the order its record lists them (read
//! afresh every attempt, so an address learned from a newer record is used at once),
//! resolving host names then, and every IP a name resolves to. The first handshake that
//! completes wins. When all fail, the most telling failure of the round is kept for
//! `pamphlet node friends` (see [`DialFailure`]), and the next round waits an exponential,
//! ±25% jittered backoff.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use super::friends::{unix_now, DialFailure};
use super::udp_endpoint::DialError;
use super::udp_link::LinkIo;
use super::{run_link, Shared};
use crate::id::PeerId;
use crate::link::noise;
use crate::link::{PeerAddr, PublicKey};
use crate::wire::frame::FRAME_LEN;

/// Whether the dial task `dialer` still serves friend `key` (it was not removed, nor
/// removed and added again with a new task).
fn still_mine(shared: &Shared, key: &PublicKey, dialer: u64) -> bool {
    shared.state().friends.by_key.get(key).is_some_and(|f| f.dialer == dialer)
}

/// Dials `key` whenever no link to it is up (whoever dialled the last one), redialling
/// with exponential backoff after failures, until the friend is removed or the transport
/// stops.
pub(super) async fn dial(
    shared: Arc<Shared>,
    key: PublicKey,
    peer: PeerId,
    dialer: u64,
    wake: Arc<Notify>,
    _done: mpsc::Sender<()>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let initial = shared.config.backoff_initial;
    let mut backoff = initial;
    // The larger key waits before its first dial: when two friends start together the
    // smaller one's dial then usually lands first, and one handshake beats a race.
    let mut delay = if shared.config.keypair.public() < &key { Duration::ZERO } else { initial };
    loop {
        // Wait while a link is up; the link's end (or the friend's removal) wakes us (a
        // stored permit, so a wake between the check and the wait is not missed).
        loop {
            if *shutdown.borrow() || !still_mine(&shared, &key, dialer) {
                return;
            }
            if !shared.state().links.contains_key(&peer) {
                break;
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
        if !delay.is_zero() {
            // ±25% jitter, so friends that lost their links together do not redial in step.
            let jittered = delay.mul_f64(rand::thread_rng().gen_range(0.75..1.25));
            tokio::select! {
                _ = tokio::time::sleep(jittered) => {}
                _ = wake.notified() => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if !still_mine(&shared, &key, dialer) {
                return;
            }
            if shared.state().links.contains_key(&peer) {
                // The friend dialled us meanwhile.
                continue;
            }
        }
        // A suspended friend (its lies, `transport/suspend.rs`) is not dialled before the
        // suspension ends.
        let suspended = shared.state().friends.by_key.get(&key).map(|f| f.suspended_until);
        let left = super::suspend::wait_left(suspended.flatten());
        if !left.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(left) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            continue;
        }
        let result = tokio::select! {
            r = dial_once(&shared, &key) => r,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        delay = match result {
            Ok(Some(io)) => {
                backoff = initial;
                run_link(&shared, io, key, peer, true).await;
                initial
            }
            Ok(None) => return,
            Err(failure) => {
                tracing::debug!(?peer, error = %failure, "dial failed");
                if let Some(f) = shared.state().friends.by_key.get_mut(&key) {
                    f.last_error = Some(failure);
                }
                let d = backoff;
                backoff = (backoff * 2).min(shared.config.backoff_max);
                d
            }
        };
    }
}

/// One round over the friend's addresses: the first completed handshake, `None` if the
/// friend is gone, or the most telling failure.
async fn dial_once(shared: &Shared, key: &PublicKey) -> Result<Option<LinkIo>, DialFailure> {
    let Some(addresses) = shared.state().friends.by_key.get(key).map(|f| f.noderef.addresses().to_vec()) else {
        return Ok(None);
    };
    dial_addresses(shared, key, addresses).await.map(Some)
}

/// Tries each address (and each IP a name resolves to) in turn: the first completed
/// handshake, or the most telling failure. With `transport = "udp"` and a friend whose
/// reference announces UDP, each address is tried over UDP first, then over TCP.
pub(super) async fn dial_addresses(
    shared: &Shared,
    key: &PublicKey,
    addresses: Vec<PeerAddr>,
) -> Result<LinkIo, DialFailure> {
    let udp = shared.udp.get().filter(|_| shared.state().friends.by_key.get(key).is_some_and(|f| f.noderef.udp));
    let timeout = shared.config.handshake_timeout;
    let mut worst: Option<DialFailure> = None;
    let mut note = |f: DialFailure| {
        if worst.as_ref().is_none_or(|w| f.rank() >= w.rank()) {
            worst = Some(f);
        }
    };
    for addr in addresses {
        let targets: Vec<SocketAddr> = match &addr {
            PeerAddr::Ip(a) => vec![*a],
            PeerAddr::Host { name, port } => {
                match tokio::time::timeout(timeout, tokio::net::lookup_host((name.as_str(), *port))).await {
                    Ok(Ok(found)) => found.collect(),
                    Ok(Err(e)) => {
                        note(DialFailure::Resolve { host: addr.to_string(), error: e.to_string() });
                        continue;
                    }
                    Err(_) => {
                        note(DialFailure::Resolve { host: addr.to_string(), error: "timed out".into() });
                        continue;
                    }
                }
            }
        };
        for target in targets {
            if let Some(endpoint) = udp {
                match endpoint.dial(target, key).await {
                    Ok(link) => return Ok(LinkIo::Udp(Box::new(link))),
                    // The friend's own dial won: its link is coming up as an incoming one,
                    // and a TCP dial now would only make a link that loses the tie.
                    Err(DialError::Superseded) => return Err(udp_failure(target, DialError::Superseded)),
                    // Unanswered costs the handshake timeout (4 s) before TCP is tried: an
                    // unconnected socket hears no ICMP "port unreachable", so a friend whose
                    // reference still says udp but who runs TCP only is found out slowly.
                    Err(e) => note(udp_failure(target, e)),
                }
            }
            match connect(shared, key, target, timeout).await {
                Ok((stream, sess)) => return Ok(LinkIo::Tcp(stream, sess)),
                Err(f) => note(f),
            }
        }
    }
    Err(worst.unwrap_or(DialFailure::Resolve { host: "(no address)".into(), error: "no address resolved".into() }))
}

/// A failed UDP dial as what the dialer reports.
fn udp_failure(target: SocketAddr, e: DialError) -> DialFailure {
    let addr = target.to_string();
    match e {
        DialError::Unanswered => DialFailure::Unanswered { addr },
        // The friend's own dial won: its link is coming up as an incoming one.
        DialError::Superseded => DialFailure::Unanswered { addr },
        e => DialFailure::Unreachable { addr, error: e.to_string() },
    }
}

/// Connects to `target` and runs the initiator's handshake, each phase within `timeout`.
async fn connect(
    shared: &Shared,
    key: &PublicKey,
    target: SocketAddr,
    timeout: Duration,
) -> Result<(TcpStream, noise::Session), DialFailure> {
    let addr = target.to_string();
    let mut stream = match tokio::time::timeout(timeout, TcpStream::connect(target)).await {
        Err(_) => return Err(DialFailure::TimedOut { addr }),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Err(DialFailure::Refused { addr }),
        Ok(Err(e)) => return Err(DialFailure::Unreachable { addr, error: e.to_string() }),
        Ok(Ok(s)) => s,
    };
    let mut m1 = [0u8; FRAME_LEN];
    let init = noise::Initiator::start(&shared.config.keypair, key, unix_now(), &mut m1)
        .map_err(|e| DialFailure::Handshake { addr: addr.clone(), error: e.to_string() })?;
    let mut m2 = [0u8; FRAME_LEN];
    let exchange = async {
        stream.write_all(&m1).await?;
        stream.read_exact(&mut m2).await.map(|_| ())
    };
    // Silence, a close or a reset after our message 1 all mean the same to a dialler: the
    // responder did not take us (it answers strangers with nothing, then closes).
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) | Err(_) => return Err(DialFailure::Unanswered { addr }),
    }
    let sess = init
        .finish(&m2, shared.config.rekey_interval)
        .map_err(|e| DialFailure::Handshake { addr: addr.clone(), error: e.to_string() })?;
    Ok((stream, sess))
}
