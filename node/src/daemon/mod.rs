//! The node daemon (feature `net`): a data directory, the sans-IO node driven over the
//! transport, and the client API beside it.
//!
//! Data directory layout (docs/api.md):
//! ```text
//! DIR/config.toml    configuration (config.rs); written by `init` with a fixed port
//! DIR/identity.key   the static X25519 key (0600)
//! DIR/friends        friends' node references, one per line (a friend's line is replaced
//!                    when it sends a newer signed address record)
//! DIR/friends.seen  when a link to each friend was last up (0600; written at a clean stop)
//! DIR/advertised.toml the addresses this node last signed and their sequence number
//! DIR/state.toml     location and swap age (0600; a `seed` line from older versions is ignored)
//! DIR/link.secret    the secret behind the HTL coins of every link, created once (0600)
//! DIR/api.token      the client API's bearer token (0600)
//! DIR/api.addr       where the running node's API listens (removed at clean shutdown)
//! DIR/fcp.addr       where the running node's FCP server listens (docs/fcp.md; removed at
//!                    clean shutdown; absent with fcp_listen = "off")
//! DIR/fcp/           FCP requests with Persistence=forever, resumed at start (fcp/persist.rs)
//! DIR/gateway.addr   where the running node's browser gateway listens (same)
//! DIR/bookmarks.json the gateway's bookmarked sites (gateway/bookmarks.rs)
//! DIR/pins           documents to keep alive, one URI per line (`pamphlet pin`, pins.rs)
//! DIR/pins-state.json what the last keepalive pass found for each pin
//! DIR/offers.keys    store keys remembered for offers on return, sealed (0600; offer_keys.rs)
//! DIR/uptime         this node's runs and its peers' observed uptimes (0600; uptime.rs)
//! DIR/daemon.lock    held by the running node; a second one on the same DIR is refused
//! DIR/seednodes      seed nodes' references (opennet and hybrid modes; opennet.rs)
//! DIR/opennet-peers  the strangers this node had lately, dialled again at start (0600)
//! DIR/store/         the block store
//! DIR/downloads/     blocks of interrupted fetches, removed when they complete
//! ```

// A driver: reads the clock to feed the sans-IO node.
#![allow(clippy::disallowed_methods)]

pub mod backend;
pub mod config;
pub mod datadir;
mod dir_lock;
pub mod driver;
pub mod offer_keys;
pub mod opennet;
pub mod own_ref;
pub mod pins;
pub mod uptime;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use self::backend::DaemonBackend;
use self::config::Config;
use self::dir_lock::DirLock;
use crate::api::{self, AddFriendError, ApiState};
use crate::client::pipeline::Downloads;
use crate::fcp;
use crate::gateway;
use crate::link::{NodeRef, PeerAddr};
use crate::node::{DurabilityConfig, LoadConfig, Node, NodeConfig, NodeSecret};
use crate::store::disk::{DiskError, DiskStore, DiskStoreConfig};
use crate::store::{BlockStore, StoreError};
use crate::transport::{Transport, TransportConfig, TransportHandle};

/// Why the daemon could not start or stop cleanly. Each message names the file or
/// address involved and, where it helps, what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A data-directory file is unusable.
    #[error(transparent)]
    DataDir(#[from] datadir::DataDirError),
    /// Another node process runs on this data directory.
    #[error("another pamphlet node is already running on {0}")]
    InUse(String),
    /// The data directory could not be created or locked.
    #[error("cannot use the data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The transport could not start (e.g. the listen address is taken).
    #[error("cannot listen for friends on {addr}: {message}")]
    Listen {
        /// The configured address.
        addr: SocketAddr,
        /// What failed.
        message: String,
    },
    /// A friend could not be added.
    #[error(transparent)]
    AddFriend(#[from] AddFriendError),
    /// The API could not start.
    #[error("cannot start the client API on {addr}: {source}")]
    Api {
        /// The configured address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// The FCP server could not start (e.g. its configured address is taken).
    #[error("cannot start FCP on {addr}: {source} (set fcp_listen in config.toml, or \"off\")")]
    Fcp {
        /// The configured address (or the default).
        addr: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The browser gateway's configuration is unusable.
    #[error("cannot start the browser gateway: {0}")]
    Gateway(String),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(String),
    /// The advertised addresses cannot be signed into a reference.
    #[error("cannot sign this node's addresses: {0}")]
    Advertise(String),
    /// The node task could not start (no thread or timer from the OS) or it failed while
    /// running (a bug: see the log).
    #[error("the node task {0}")]
    NodeTask(&'static str),
}

fn dir_err(dir: &Path) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Dir { path: dir.display().to_string(), source }
}

/// Creates a data directory (if needed) with a configuration whose listen port is fixed:
/// a free loopback port is picked now, so the node reference stays the same across
/// restarts. An existing configuration is left as it is.
pub fn init(dir: &Path, listen: Option<SocketAddr>) -> Result<Config, DaemonError> {
    init_with(dir, listen, &[])
}

/// [`init`] that also sets the addresses friends dial (`advertise`) in a new configuration.
pub fn init_with(dir: &Path, listen: Option<SocketAddr>, advertise: &[PeerAddr]) -> Result<Config, DaemonError> {
    // Owner-only: the directory holds the store, the friend list and interrupted downloads.
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(dir_err(dir))?;
    // The mode above applies only when DIR is new: tighten an existing one every start.
    datadir::secure_dir(dir)?;
    let path = dir.join("config.toml");
    if path.exists() {
        return Ok(Config::load(&path)?);
    }
    let mut config = Config::default();
    config.listen = match listen {
        Some(a) if a.port() != 0 => a,
        other => pick_listen_addr(other.map_or(config.listen.ip(), |a| a.ip())).map_err(dir_err(dir))?,
    };
    config.advertise = advertise.to_vec();
    config.validate().map_err(|message| config::ConfigError::Invalid { path: path.display().to_string(), message })?;
    config.save(&path)?;
    datadir::load_or_create_keypair(&dir.join("identity.key"))?;
    datadir::load_or_create_token(&dir.join("api.token"))?;
    datadir::load_or_create_state(&dir.join("state.toml"))?;
    datadir::load_or_create_link_secret(&dir.join("link.secret"))?;
    Ok(config)
}

/// The range `node init` picks a listen port from: below Linux's ephemeral range
/// (32768–60999 by default). A port from that range, free at init, can be taken by any
/// outgoing connection on the machine before the node binds it (or at a later restart),
/// and the node then fails to start on "address in use"; ports here are only taken by
/// listeners. Freenet's installer likewise picks a random fixed port.
const LISTEN_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free address on `ip` for a node's listener (TCP, and UDP on the same port for
/// datagram links): a random port in [`LISTEN_PORTS`], else any port the OS gives.
fn pick_listen_addr(ip: std::net::IpAddr) -> std::io::Result<SocketAddr> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    for _ in 0..256 {
        let addr = SocketAddr::new(ip, rng.gen_range(LISTEN_PORTS));
        if std::net::TcpListener::bind(addr).is_ok() && std::net::UdpSocket::bind(addr).is_ok() {
            return Ok(addr);
        }
    }
    std::net::TcpListener::bind((ip, 0))?.local_addr()
}

/// A running node: transport, node task and API.
pub struct Daemon<S: BlockStore + Send + 'static = DiskStore> {
    dir: PathBuf,
    handle: DaemonBackend,
    transport: TransportHandle,
    api_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    node_task: driver::NodeTask<S>,
    api_task: tokio::task::JoinHandle<()>,
    /// The FCP server, unless `fcp_listen = "off"`.
    fcp: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
    /// `DIR/offers.keys`, unless offers on return are off.
    keys_file: Option<PathBuf>,
    /// Held (locked) while the daemon runs.
    _lock: DirLock,
}

impl<S: BlockStore + Send + 'static> std::fmt::Debug for Daemon<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("dir", &self.dir).field("api_addr", &self.api_addr).finish_non_exhaustive()
    }
}

/// How [`Daemon::start_with_options`] starts a node, beyond its configuration file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StartOptions {
    /// Drop stored blocks that no longer fit a lowered `store_bytes` (as `shrink_store =
    /// true` in the configuration does).
    pub shrink_store: bool,
}

impl StartOptions {
    /// Options that allow, or not, dropping stored blocks that no longer fit.
    pub fn shrinking(shrink_store: bool) -> Self {
        Self { shrink_store }
    }
}

impl Daemon<DiskStore> {
    /// Starts the node of `dir` (initialising the directory first if needed) with its
    /// on-disk store in `DIR/store`.
    pub async fn start(dir: &Path) -> Result<Self, DaemonError> {
        Self::start_with_options(dir, StartOptions::default()).await
    }

    /// [`Daemon::start`] with options.
    pub async fn start_with_options(dir: &Path, options: StartOptions) -> Result<Self, DaemonError> {
        let config = init(dir, None)?;
        // Lock the directory before touching the store, so a second node on the same DIR
        // is told exactly that (the store has its own lock too).
        let lock = lock_dir(dir)?;
        let store_dir = dir.join("store");
        let mut store_config = DiskStoreConfig::new(config.store_bytes, config.cache_bytes);
        store_config.shrink_store = config.shrink_store || options.shrink_store;
        let store = tokio::task::spawn_blocking(move || DiskStore::open(store_dir, store_config))
            .await
            .map_err(|e| DaemonError::Store(e.to_string()))?
            .map_err(|e| match e {
                StoreError::Disk(DiskError::ShrinkRefused { held_bytes, .. }) => DaemonError::Store(format!(
                    "{e}; to keep them, set store_bytes in {} back to at least {held_bytes}; to drop the least \
                     recently used ones, start once with `pamphlet node run --shrink-store` (or set shrink_store = \
                     true in config.toml)",
                    dir.join("config.toml").display()
                )),
                e => DaemonError::Store(e.to_string()),
            })?;
        Self::start_locked(dir, config, store, lock).await
    }

    /// Stops the node and flushes and closes its store: everything it acknowledged is on
    /// disk when this returns.
    pub async fn shutdown(self) -> Result<(), DaemonError> {
        let store = self.stop().await?;
        tokio::task::spawn_blocking(move || store.close())
            .await
            .map_err(|e| DaemonError::Store(e.to_string()))?
            .map_err(|e| DaemonError::Store(e.to_string()))
    }
}

/// The configuration the node of `dir` starts with: its persisted routing state (location,
/// swap age), its link-coin secret, the settings of `config`, and an RNG seed of 32 fresh
/// bytes from the OS. Fresh at every start: a persisted seed replayed the first request
/// id and swap commitment of every run (issue 14). Drawn here because the daemon is a
/// driver; the sans-IO `Node` never asks the OS for anything.
pub fn node_config(dir: &Path, config: &Config) -> Result<NodeConfig, DaemonError> {
    use rand::RngCore;
    let state = datadir::load_or_create_state(&dir.join("state.toml"))?;
    let link_secret = datadir::load_or_create_link_secret(&dir.join("link.secret"))?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let seed = NodeSecret::new(seed);
    let (offers_per_tick, offer_tick) = config.offer_pace();
    let swap_interval =
        (config.swap_interval_ms > 0).then(|| std::time::Duration::from_millis(config.swap_interval_ms));
    Ok(NodeConfig {
        location: state.location(),
        seed,
        link_secret,
        swap_age: state.swap_age,
        max_htl: config.max_htl,
        swap_interval,
        cache_passing: config.cache_bytes > 0,
        request_timeout: std::time::Duration::from_secs(config.request_timeout_secs),
        load: LoadConfig { upload_limit: config.upload_limit, peer_windows: true },
        durability: DurabilityConfig {
            top_sinks: config.top_sinks,
            offers_per_tick,
            offer_tick,
            offers_on_return: config.offers_on_return,
            away: std::time::Duration::from_secs(config.offers_away_secs),
            steady_backup: f64::from(config.steady_backup_percent) / 100.0,
            ..DurabilityConfig::default()
        },
        ..NodeConfig::default()
    })
}

/// Starts the browser gateway unless `gateway_listen` is `off`; an address already taken
/// (another node on 8888) leaves the node without a gateway and a warning, not a failure.
async fn start_gateway(
    dir: &Path,
    config: &Config,
    handle: &DaemonBackend,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    let text = config.gateway_listen.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(());
    }
    let addr: SocketAddr =
        text.parse().map_err(|_| DaemonError::Gateway(format!("gateway_listen {text:?} is not ADDR:PORT or off")))?;
    if !addr.ip().is_loopback() {
        return Err(DaemonError::Gateway(format!("gateway_listen {addr} must be a loopback address")));
    }
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "browser gateway not started: its address is not available");
            return Ok(());
        }
    };
    let bound = listener.local_addr().map_err(|e| DaemonError::Gateway(e.to_string()))?;
    let backend = handle.clone();
    let status: gateway::server::StatusFn = Box::new(move || {
        let s = crate::api::ApiBackend::status(&backend);
        (s.location, s.peers.len())
    });
    let backend = handle.clone();
    let kinds: gateway::server::PeerKindsFn =
        Box::new(move || peer_kinds_text(&crate::api::ApiBackend::status(&backend)));
    let state = gateway::server::GatewayState::new(Arc::new(handle.clone()), bound, config.parallel, status)
        .with_bookmarks(dir.join("bookmarks.json"))
        .with_peer_kinds(kinds);
    let state = Arc::new(state);
    // New editions of bookmarked sites: looked for at start and then every ten minutes.
    let checker = Arc::clone(&state);
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(BOOKMARK_CHECK_INTERVAL);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    gateway::bookmarks::check_editions(&checker.net, &checker.bookmarks, checker.parallel).await;
                }
                () = async { let _ = stop.wait_for(|s| *s).await; } => return,
            }
        }
    });
    let app = gateway::server::router(state);
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "browser gateway stopped");
        }
    });
    datadir::write_private(&dir.join("gateway.addr"), bound.to_string().as_bytes())?;
    Ok(())
}

/// The peers by kind and by how they were found, in words (the gateway's home page):
/// `stranger 6, seed 2; found by announcement 4, seeds file 2`.
fn peer_kinds_text(s: &crate::api::backend::NodeSnapshot) -> String {
    let count = |label: fn(&crate::api::backend::PeerSnapshot) -> &str| {
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        for p in &s.peers {
            *counts.entry(label(p)).or_default() += 1;
        }
        counts.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", ")
    };
    let kinds = count(|p| &p.kind);
    if kinds.is_empty() {
        return kinds;
    }
    format!("{kinds}; found by {}", count(|p| &p.found))
}

/// The hook that saves a friend's newer reference (a signed address record it sent) in the
/// friends file. A failure is logged: the friend stays reachable now, and at the next
/// start it sends its record again.
fn save_updated_friends(friends_file: PathBuf, lock: Arc<std::sync::Mutex<()>>) -> crate::transport::FriendUpdateHook {
    crate::transport::FriendUpdateHook(Arc::new(move |friend: &NodeRef| {
        let _held = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = datadir::replace_friend(&friends_file, friend) {
            tracing::warn!(error = %e, "cannot save a friend's new addresses");
        }
    }))
}

/// How often the gateway looks for new editions of bookmarked sites.
const BOOKMARK_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(600);

fn lock_dir(dir: &Path) -> Result<DirLock, DaemonError> {
    DirLock::acquire(dir).map_err(|e| match e {
        dir_lock::LockError::InUse => DaemonError::InUse(dir.display().to_string()),
        dir_lock::LockError::Io(e) => dir_err(dir)(e),
    })
}

impl<S: BlockStore + Send + 'static> Daemon<S> {
    /// Starts the node of `dir` with the given configuration and store (tests use a
    /// memory store here).
    pub async fn start_with(dir: &Path, config: Config, store: S) -> Result<Self, DaemonError> {
        let lock = lock_dir(dir)?;
        Self::start_locked(dir, config, store, lock).await
    }

    async fn start_locked(dir: &Path, config: Config, store: S, lock: DirLock) -> Result<Self, DaemonError> {
        let keypair = datadir::load_or_create_keypair(&dir.join("identity.key"))?;
        let token = datadir::load_or_create_token(&dir.join("api.token"))?;
        let friends_file = dir.join("friends");
        // One lock for every writer of the friends file: the API adding and removing
        // friends, and links saving a friend's newer addresses.
        let friends_lock = Arc::new(std::sync::Mutex::new(()));
        let mut tconfig = TransportConfig::new(config.listen, keypair);
        tconfig.friends = datadir::load_friends(&friends_file)?;
        tconfig.last_seen = datadir::load_seen(&dir.join("friends.seen"))?;
        tconfig.upload_limit = config.upload_limit;
        tconfig.download_limit = config.download_limit;
        tconfig.link_rate = config.link_rate;
        tconfig.udp = config.transport == config::LinkTransport::Udp;
        tconfig.on_friend_update = Some(save_updated_friends(friends_file.clone(), Arc::clone(&friends_lock)));
        tconfig.accept_strangers = config.mode.strangers();
        tconfig.max_strangers_per_ip = config.strangers_per_ip;
        tconfig.max_strangers_per_subnet = config.strangers_per_subnet;
        let (transport, events) = Transport::start(tconfig)
            .await
            .map_err(|e| DaemonError::Listen { addr: config.listen, message: e.to_string() })?;
        let own = own_ref::own_noderef(dir, &config, transport.local_addr())?;
        for warning in own_ref::unroutable_warnings(&own, transport.local_addr()) {
            tracing::warn!("{warning}");
        }
        transport.set_own_ref(own);

        let mut nconfig = node_config(dir, &config)?;
        let links = if config.mode.strangers() {
            let own = transport.node_ref();
            nconfig.opennet = opennet::opennet_config(&config, &own);
            Some(opennet::OpennetLinks::load(dir, &config, &own.key)?)
        } else {
            None
        };
        let mut node = Node::new(nconfig, store);
        let keys_file = offer_keys::path(dir, config.offers_on_return);
        if let Some(path) = &keys_file {
            offer_keys::load(path, &mut node);
        }
        // Steady backups ride on offers on return: without them the history would be kept
        // (a local trace of when the node ran) for nothing.
        let uptime =
            uptime::UptimeFile::open(dir, &mut node, config.steady_backup_percent > 0 && config.offers_on_return);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (node_handle, node_task) = driver::spawn(
            node,
            transport.clone(),
            events,
            shutdown_rx.clone(),
            driver::Kept { opennet: links, keys_file: keys_file.clone(), uptime },
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot start the node thread");
            DaemonError::NodeTask("could not start: the OS refused a thread or a timer")
        })?;
        let handle = DaemonBackend::new(node_handle, transport.clone(), friends_file, friends_lock);

        let listener = tokio::net::TcpListener::bind(config.api_listen)
            .await
            .map_err(|source| DaemonError::Api { addr: config.api_listen, source })?;
        let api_addr = listener.local_addr().map_err(|source| DaemonError::Api { addr: config.api_listen, source })?;
        // The token keys the resume directories' names.
        let downloads = Downloads::new(dir.join("downloads"), token.as_bytes());
        let jobs = Arc::default();
        // Finished jobs expire on a timer, not only when another job starts (issue 14).
        api::spawn_job_expiry(&jobs, shutdown_rx.clone());
        if config.keepalive_interval_secs > 0 {
            let every = std::time::Duration::from_secs(config.keepalive_interval_secs);
            pins::spawn(dir.to_path_buf(), Arc::new(handle.clone()), every, shutdown_rx.clone());
        }
        let state = ApiState { backend: Arc::new(handle.clone()), jobs, token, downloads, parallel: config.parallel };
        let app = api::router(Arc::new(state));
        let fcp_err = |source| DaemonError::Fcp {
            addr: match config.fcp_listen {
                Some(fcp::FcpListen::At(a)) => a.to_string(),
                _ => format!("127.0.0.1:{}", fcp::server::DEFAULT_PORT),
            },
            source,
        };
        let fcp = match fcp::server::bind(config.fcp_listen).await.map_err(fcp_err)? {
            None => None,
            Some(listener) => {
                let addr = listener.local_addr().map_err(fcp_err)?;
                let fcp_config = fcp::FcpConfig {
                    allowed_hosts: config.fcp_allowed_hosts.clone(),
                    parallel: config.parallel,
                    state_dir: Some(dir.join("fcp")),
                    ..fcp::FcpConfig::default()
                };
                let task = fcp::server::spawn(listener, Arc::new(handle.clone()), fcp_config, shutdown_rx.clone())
                    .map_err(fcp_err)?;
                datadir::write_private(&dir.join("fcp.addr"), addr.to_string().as_bytes())?;
                Some((addr, task))
            }
        };
        start_gateway(dir, &config, &handle, shutdown_rx.clone()).await?;
        let mut api_shutdown = shutdown_rx;
        let api_task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = api_shutdown.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "client API stopped");
            }
        });
        // Written last: its presence tells the CLI the node is ready.
        datadir::write_private(&dir.join("api.addr"), api_addr.to_string().as_bytes())?;
        let fcp_addr = fcp.as_ref().map(|(a, _)| *a);
        tracing::info!(listen = %transport.local_addr(), api = %api_addr, fcp = ?fcp_addr, "node running");
        Ok(Self {
            dir: dir.to_owned(),
            handle,
            transport,
            api_addr,
            shutdown,
            node_task,
            api_task,
            fcp,
            keys_file,
            _lock: lock,
        })
    }

    /// This node's reference, to give to friends.
    pub fn noderef(&self) -> NodeRef {
        self.transport.node_ref()
    }

    /// The transport's counters (links up, over UDP, bytes moved).
    pub fn transport_stats(&self) -> crate::transport::TransportStats {
        self.transport.stats()
    }

    /// Where the client API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the FCP server listens (`None` with `fcp_listen = "off"`).
    pub fn fcp_addr(&self) -> Option<SocketAddr> {
        self.fcp.as_ref().map(|(a, _)| *a)
    }

    /// The handle the API uses (a [`crate::client::pipeline::BlockNetwork`] and
    /// [`crate::api::ApiBackend`]).
    pub fn handle(&self) -> &DaemonBackend {
        &self.handle
    }

    /// Adds a friend while running (and remembers it).
    pub fn add_friend(&self, friend: &NodeRef) -> Result<(), DaemonError> {
        self.handle.add(friend.clone())?;
        Ok(())
    }

    /// Stops the API, the node task and every link; saves the routing state; returns the
    /// node's store so the caller can flush it.
    pub async fn stop(self) -> Result<S, DaemonError> {
        let _ = std::fs::remove_file(self.dir.join("api.addr"));
        let _ = std::fs::remove_file(self.dir.join("fcp.addr"));
        let _ = std::fs::remove_file(self.dir.join("gateway.addr"));
        let _ = self.shutdown.send(true);
        let _ = self.api_task.await;
        if let Some((_, task)) = self.fcp {
            let _ = task.await;
        }
        let mut node = self
            .node_task
            .join()
            .await
            .ok_or(DaemonError::NodeTask("failed (see the log); the store recovers at the next start"))?;
        if let Some(path) = &self.keys_file {
            offer_keys::save(path, &mut node);
        }
        self.transport.shutdown().await;
        let seen: Vec<_> =
            self.transport.friends().iter().filter_map(|f| Some((f.noderef.key, f.last_seen?))).collect();
        datadir::save_seen(&self.dir.join("friends.seen"), &seen)?;
        let state_path = self.dir.join("state.toml");
        let mut state = datadir::load_or_create_state(&state_path)?;
        state.location = node.location().0;
        state.swap_age = node.swap_age();
        datadir::save_state(&state_path, &state)?;
        Ok(node.into_store())
    }
}
