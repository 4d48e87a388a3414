//! The FCP listener: where it binds, who may connect, and one task per connection.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use super::persist::Store;
use super::persistent;
use super::queue::Queue;
use super::request::Ctx;
use super::session::{self, SessionConfig};
use crate::api::ApiBackend;

/// FCP's well-known port: where existing tools look first.
pub const DEFAULT_PORT: u16 = 9481;

/// `fcp_listen` in config.toml: an address, or `"off"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FcpListen {
    /// No FCP server.
    Off,
    /// Listen here (an error if the address is taken).
    At(SocketAddr),
}

impl Serialize for FcpListen {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FcpListen::Off => s.serialize_str("off"),
            FcpListen::At(a) => s.serialize_str(&a.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for FcpListen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.eq_ignore_ascii_case("off") {
            return Ok(FcpListen::Off);
        }
        text.parse().map(FcpListen::At).map_err(|_| {
            serde::de::Error::custom(format!(
                "fcp_listen = {text:?}: use \"off\" or an address like \"127.0.0.1:9481\""
            ))
        })
    }
}

/// Everything the server needs to know.
#[derive(Clone, Debug)]
pub struct FcpConfig {
    /// Client addresses besides loopback that may connect (fred's `allowedHosts`).
    pub allowed_hosts: Vec<IpAddr>,
    /// Per-connection knobs.
    pub session: SessionConfig,
    /// Connections served at once; more are closed at once.
    pub max_connections: usize,
    /// Block requests in flight per request.
    pub parallel: usize,
    /// Where `Persistence=forever` requests are kept (`DIR/fcp`); `None`: they last until
    /// the node stops.
    pub state_dir: Option<PathBuf>,
    /// How long resumed requests wait for the node's first link before they start anyway.
    pub resume_wait: std::time::Duration,
}

impl Default for FcpConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            session: SessionConfig::default(),
            max_connections: 64,
            parallel: 16,
            state_dir: None,
            resume_wait: std::time::Duration::from_secs(30),
        }
    }
}

/// Checks a configured listen address: loopback, or the operator listed who may connect.
pub fn validate(listen: Option<FcpListen>, allowed_hosts: &[IpAddr]) -> Result<(), String> {
    match listen {
        Some(FcpListen::At(a)) if !a.ip().is_loopback() && allowed_hosts.is_empty() => Err(format!(
            "fcp_listen = {a} is not a loopback address; FCP has no authentication, so list the client addresses \
             that may connect in fcp_allowed_hosts, or use 127.0.0.1"
        )),
        _ => Ok(()),
    }
}

/// Binds the listener. `None` (not configured): 127.0.0.1:9481, or a free loopback port if
/// another node has it (several nodes on one machine, as in a test darknet); each node
/// writes the address it got to `DIR/fcp.addr`. `Some(At(a))`: exactly `a`.
pub async fn bind(listen: Option<FcpListen>) -> std::io::Result<Option<TcpListener>> {
    match listen {
        Some(FcpListen::Off) => Ok(None),
        Some(FcpListen::At(a)) => TcpListener::bind(a).await.map(Some),
        None => match TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, DEFAULT_PORT)).await {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let l = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
                tracing::warn!(addr = ?l.local_addr().ok(), "FCP port {DEFAULT_PORT} is taken; listening elsewhere (see DIR/fcp.addr)");
                Ok(Some(l))
            }
            Err(e) => Err(e),
        },
    }
}

/// Serves FCP on `listener` until `shutdown` turns true; then closes every connection
/// (aborting their requests). Forever requests kept in `config.state_dir` are resumed
/// first. An unusable state directory is an error (the node would silently forget them).
pub fn spawn<B: ApiBackend>(
    listener: TcpListener,
    backend: Arc<B>,
    config: FcpConfig,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<JoinHandle<()>> {
    let store = config.state_dir.clone().map(Store::open).transpose()?;
    let ctx = Arc::new(Ctx { backend, parallel: config.parallel, queue: Arc::new(Queue::default()), store });
    let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let max_data = config.session.limits.max_data;
    Ok(tokio::spawn(async move {
        persistent::resume(&ctx, max_data, config.resume_wait).await;
        let mut sessions = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.wait_for(|s| *s) => break,
                Some(_) = sessions.join_next(), if !sessions.is_empty() => continue,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, typically: wait a moment rather than spin.
                    tracing::warn!(error = %e, "FCP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            if !peer.ip().is_loopback() && !config.allowed_hosts.contains(&peer.ip()) {
                tracing::warn!(peer = %peer.ip(), "FCP connection from a host not in fcp_allowed_hosts refused");
                continue;
            }
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::warn!("FCP connection refused: {} connections already open", config.max_connections);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let ctx = Arc::clone(&ctx);
            let session_config = config.session.clone();
            sessions.spawn(async move {
                session::serve(ctx, session_config, stream).await;
                drop(permit);
            });
        }
        sessions.shutdown().await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_values() {
        #[derive(Debug, Deserialize, Serialize)]
        struct C {
            fcp_listen: FcpListen,
        }
        let c: C = toml::from_str("fcp_listen = \"off\"").unwrap();
        assert_eq!(c.fcp_listen, FcpListen::Off);
        let c: C = toml::from_str("fcp_listen = \"127.0.0.1:9999\"").unwrap();
        assert_eq!(c.fcp_listen, FcpListen::At("127.0.0.1:9999".parse().unwrap()));
        assert_eq!(toml::to_string(&c).unwrap().trim(), "fcp_listen = \"127.0.0.1:9999\"");
        assert!(toml::from_str::<C>("fcp_listen = \"nine\"").unwrap_err().to_string().contains("\"off\""));
        let public = Some(FcpListen::At("0.0.0.0:9481".parse().unwrap()));
        assert!(validate(public, &[]).unwrap_err().contains("fcp_allowed_hosts"));
        assert!(validate(public, &["192.168.1.5".parse().unwrap()]).is_ok());
        assert!(validate(None, &[]).is_ok());
    }
}
