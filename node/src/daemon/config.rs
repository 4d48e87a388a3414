//! The node's configuration file, `DIR/config.toml`.
//!
//! Every field has a default, so an empty file is a valid configuration; unknown fields are
//! an error (a typo must not silently fall back to a default). `pamphlet node init` writes a
//! commented file with a free loopback port chosen once, so the node's reference (which
//! friends keep) stays valid across restarts.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::link::record::MAX_ADDRESSES;
use crate::link::PeerAddr;
use crate::routing::opennet::Mode;

/// Default size of the store area (blocks this node is a sink for).
pub const DEFAULT_STORE_BYTES: u64 = 256 * 1024 * 1024;
/// Default size of the cache area (blocks that passed through).
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The highest `link_rate`: 1,000 frames (1 MB) per second per link. The pacing timer
/// (tokio's, 1 ms resolution) sends one frame per tick, so it cannot keep a higher rate
/// evenly.
pub const MAX_LINK_RATE: u32 = 1000;

/// How this node's friend links travel (`transport` in config.toml).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkTransport {
    /// TCP only (the default).
    #[default]
    Tcp,
    /// UDP datagrams as well, on the listening port: a link to a friend whose reference
    /// announces it too runs over UDP; any other over TCP (docs/wire.md, "Datagram links").
    Udp,
}

/// `DIR/config.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where friends connect to this node (TCP). Loopback by default.
    pub listen: SocketAddr,
    /// The addresses friends should dial, as they put them in their node reference: IP
    /// literals (`[…]` for IPv6) or host names (resolved when dialling), each with its
    /// port; at most 8, the preferred first. Separate from `listen` because the address
    /// a node binds (`0.0.0.0:4000`, or a private one behind a port forward) is often not
    /// one anybody else can dial. Empty: the listen address.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advertise: Vec<PeerAddr>,
    /// Where the local client API listens (HTTP). Must be a loopback address.
    pub api_listen: SocketAddr,
    /// Bytes of the store area.
    pub store_bytes: u64,
    /// Bytes of the cache area; 0: no cache (keep only what this node is a sink for, no
    /// copies of blocks passing through).
    pub cache_bytes: u64,
    /// Hops-to-live of requests this node starts (at most 18).
    pub max_htl: u8,
    /// Block requests in flight per insert; a fetch starts at this or
    /// `client::window::FIRST_WINDOW` (32), whichever is more, and its window then follows
    /// the path, up to `client::window::MAX_WINDOW`.
    pub parallel: usize,
    /// Milliseconds between the location swaps this node starts (0: never start one; swap
    /// requests from friends are always answered). Swapping is what makes a darknet of
    /// friends routable; see docs/routing.md.
    pub swap_interval_ms: u64,
    /// Whether the node may start with a `store_bytes` lower than what its store holds,
    /// dropping the least recently used blocks that no longer fit. Off by default: lowering
    /// `store_bytes` by mistake must not lose data silently (`node run --shrink-store` does
    /// the same for one start).
    pub shrink_store: bool,
    /// Where FCP (Hyphanet's client protocol, docs/fcp.md) listens: an address, or "off".
    /// Unset: 127.0.0.1:9481, or a free loopback port if another node has that one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fcp_listen: Option<crate::fcp::FcpListen>,
    /// Client addresses besides loopback allowed to connect to FCP; needed for a
    /// non-loopback `fcp_listen` (FCP has no authentication).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fcp_allowed_hosts: Vec<IpAddr>,
    /// Where the browser gateway listens (a loopback `ADDR:PORT`, port 0 for a free one),
    /// or `off`. When the address is taken the node runs without a gateway (and says so).
    pub gateway_listen: String,
    /// Seconds between two keepalive passes over the pinned documents (`pamphlet pin`,
    /// docs/durability.md: every 3 days kept as many documents as daily passes, at half
    /// the traffic); 0: never. The first pass runs one interval after the start.
    pub keepalive_interval_secs: u64,
    /// How long a request this node starts may take, in seconds (relayed ones get a
    /// share of it by their HTL; docs/routing.md). Lower it on fast test networks, where a
    /// friend that accepts and stays silent then costs seconds, not a minute.
    pub request_timeout_secs: u64,
    /// Which peers the node has: "darknet" (friends only, the default), "opennet"
    /// (strangers found through seed nodes, announcement and path folding) or "hybrid"
    /// (friends, and strangers beside them). docs/opennet.md.
    #[serde(with = "mode_text")]
    pub mode: Mode,
    /// Accept newcomers and their announcements (a seed node; opennet or hybrid only).
    pub seed_node: bool,
    /// The most newcomers a seed node holds at once (it lets each go once it has peers).
    pub seed_cap: usize,
    /// Milliseconds between two opennet upkeeps (default 10 s); the other opennet timers
    /// keep their ratio to it (announce interval, seed hold and replacement interval 3x,
    /// a new peer's grace period 30x; the announcement rate as much faster). Lowered only
    /// by test networks (`darknet up --opennet`).
    pub opennet_upkeep_ms: u64,
    /// Below this many peers (friends and strangers) an opennet node announces itself.
    pub opennet_floor: usize,
    /// The most peers (friends and strangers) an opennet node keeps; past it a new
    /// stranger replaces the least useful one (within the limits of docs/opennet.md).
    pub opennet_ceiling: usize,
    /// Stranger peers at most from one IP address (friends do not count).
    pub strangers_per_ip: usize,
    /// Stranger peers at most from one /24 (IPv4) or /48 (IPv6) network.
    pub strangers_per_subnet: usize,
    /// Bytes per second this node sends over all its links together (0: unlimited).
    /// Requests and replies go ahead of blocks; friends with blocks waiting take turns.
    pub upload_limit: u64,
    /// Bytes per second this node reads from all its links together (0: unlimited).
    pub download_limit: u64,
    /// Cover traffic: frames (1 KiB) per second each link sends, padding when it has
    /// nothing to send (0: off, the default). docs/wire.md says what it hides and costs.
    pub link_rate: u32,
    /// A document's top block (flagged by its inserter) is kept in this node's store area
    /// when fewer than this many peers are closer to its key (docs/durability.md; 0 or 1:
    /// only as a sink, as every other block).
    pub top_sinks: u32,
    /// Blocks this node offers a second, after a swap moved it, to the peers now closer to
    /// them (docs/durability.md; 0: no offers).
    pub offers_per_second: u32,
    /// Offers on return: after `offers_away_secs` without peers, or after a restart, offer
    /// the stored blocks to the peers now closer to them. Keeps the keys of the store's
    /// most recent writes in `DIR/offers.keys` (sealed; docs/security.md says what a disk
    /// seizer learns from it); false writes no such file and removes an old one.
    pub offers_on_return: bool,
    /// Offers on return: how long without any peer counts as away (60 to 604800 s).
    pub offers_away_secs: u64,
    /// Steady backups on return: a node online less than this percentage of the time (over
    /// the last week, from `DIR/uptime`) hands the blocks it is still the closest to to a
    /// peer it saw online at least that often (docs/durability.md; rides on offers on
    /// return; 0, or `offers_on_return = false`: off, and `DIR/uptime` is removed and
    /// never written).
    pub steady_backup_percent: u32,
    /// "tcp" (the default) or "udp": friend links over UDP datagrams where the friend's
    /// reference announces them too (the node's reference then says so), else TCP.
    pub transport: LinkTransport,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: Vec::new(),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store_bytes: DEFAULT_STORE_BYTES,
            cache_bytes: DEFAULT_CACHE_BYTES,
            max_htl: 18,
            parallel: 16,
            swap_interval_ms: 10_000,
            shrink_store: false,
            fcp_listen: None,
            fcp_allowed_hosts: Vec::new(),
            gateway_listen: "127.0.0.1:8888".into(),
            keepalive_interval_secs: 3 * 24 * 3600,
            request_timeout_secs: 120,
            mode: Mode::Darknet,
            seed_node: false,
            seed_cap: 40,
            opennet_upkeep_ms: 10_000,
            opennet_floor: 8,
            opennet_ceiling: 20,
            strangers_per_ip: 1,
            strangers_per_subnet: 4,
            upload_limit: 0,
            download_limit: 0,
            link_rate: 0,
            top_sinks: 4,
            offers_per_second: 8,
            offers_on_return: true,
            offers_away_secs: 600,
            steady_backup_percent: 50,
            transport: LinkTransport::Tcp,
        }
    }
}

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped fields.
    #[error("{path} is invalid: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of range.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// The shortest tick offers are paced at (at 1000 offers a second: 10 a tick).
const MIN_OFFER_TICK: std::time::Duration = std::time::Duration::from_millis(10);

impl Config {
    /// `offers_per_second` as the node's pace: (blocks per tick, tick), one block a tick
    /// where the tick can be 10 ms or longer. Evenly spaced, not a second's worth at once:
    /// the friend an offer goes to stores it in its store area, `fdatasync`ed on its node
    /// thread, and eight of those back to back held that thread about 100 ms, every
    /// block it was relaying waiting behind them (a 10 MiB fetch across such a relay lost
    /// 0.1 s a second on the WAN darknet: docs/benchmarks.md, "Session 11").
    pub fn offer_pace(&self) -> (u32, std::time::Duration) {
        let per_second = self.offers_per_second;
        if per_second == 0 {
            return (0, std::time::Duration::from_secs(1));
        }
        // The fewest blocks a tick that keeps the tick at MIN_OFFER_TICK or longer, and the
        // tick that makes them exactly the rate asked.
        let min_tick_ms = MIN_OFFER_TICK.as_millis() as u32;
        let per_tick = (per_second * min_tick_ms).div_ceil(1000).max(1);
        (per_tick, std::time::Duration::from_secs(1) * per_tick / per_second)
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: shown.clone(), source })?;
        let config: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: shown.clone(), message: e.to_string() })?;
        config.validate().map_err(|message| ConfigError::Invalid { path: shown, message })?;
        Ok(config)
    }

    /// Writes the configuration as a commented TOML file (atomically: temp file + rename).
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let body =
            toml::to_string(self).map_err(|e| ConfigError::Parse { path: shown.clone(), message: e.to_string() })?;
        let text = format!(
            "# pamphlet node configuration. Every field is optional; unknown fields are errors.\n\
             # listen: where friends connect (TCP). api_listen: the local client API (loopback only).\n\
             # advertise: the addresses friends dial, in your node reference, e.g. [\"192.0.2.7:4000\", \"node.example.org:4000\"]\n\
             #   (default: the listen address; set it when listening on 0.0.0.0 or behind a port forward).\n\
             # store_bytes / cache_bytes: sizes of the two store areas (cache 0: no cache). max_htl: at most 18.\n\
             # parallel: block requests in flight per insert; a fetch starts at this or 32, whichever is more (it then adapts, 1 to 64).\n\
             # swap_interval_ms: how often this node starts a location swap (0: never).\n\
             # shrink_store: allow a lower store_bytes to drop stored blocks at start (else refused).\n\
             # fcp_listen: FCP for Freenet tools (default 127.0.0.1:9481; \"off\"). fcp_allowed_hosts: non-loopback clients.\n\
             # keepalive_interval_secs: how often the node keeps its pinned documents alive (`pamphlet pin`; 0: never).\n\
             # request_timeout_secs: how long a request this node starts may take (2 to 600; default 120).\n\
             # mode: \"darknet\" (friends only), \"opennet\" (strangers, through the seeds in DIR/seednodes) or \"hybrid\".\n\
             # seed_node: accept newcomers' announcements. strangers_per_ip / strangers_per_subnet: stranger peers per address / /24.\n\
             # upload_limit / download_limit: bytes per second over all links (0: unlimited).\n\
             # link_rate: cover traffic, frames per second per link, padding when idle (0: off).\n\
             # top_sinks: keep documents' top blocks if fewer than this many peers are closer (default 4).\n\
             # offers_per_second: blocks handed to closer peers after a swap moved the node (0: off).\n\
             # offers_on_return: the same after offers_away_secs without peers or a restart (keeps DIR/offers.keys).\n\
             # steady_backup_percent: online less than this, back up to a peer online at least this (keeps DIR/uptime; 0: off).\n\
             # transport: \"tcp\" or \"udp\" (links over UDP datagrams to friends whose reference says udp too).\n{body}"
        );
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|source| ConfigError::Io { path: shown, source })
    }

    /// Checks ranges; the message says what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if self.transport == LinkTransport::Udp && self.link_rate > 0 {
            return Err(format!(
                "link_rate = {} (cover traffic) is built for TCP links only: with transport = \"udp\" set link_rate = 0",
                self.link_rate
            ));
        }
        if !self.api_listen.ip().is_loopback() {
            return Err(format!(
                "api_listen = {} is not a loopback address; the client API must only be reachable from this machine",
                self.api_listen
            ));
        }
        if self.advertise.len() > MAX_ADDRESSES {
            return Err(format!("advertise lists {} addresses: at most {MAX_ADDRESSES}", self.advertise.len()));
        }
        for (i, a) in self.advertise.iter().enumerate() {
            if self.advertise[..i].contains(a) {
                return Err(format!("advertise lists {a} twice"));
            }
        }
        if !(1..=18).contains(&self.max_htl) {
            return Err(format!("max_htl = {} is out of range: use 1 to 18", self.max_htl));
        }
        if !(2..=600).contains(&self.request_timeout_secs) {
            return Err(format!("request_timeout_secs = {} is out of range: use 2 to 600", self.request_timeout_secs));
        }
        if !(1..=256).contains(&self.parallel) {
            return Err(format!("parallel = {} is out of range: use 1 to 256", self.parallel));
        }
        crate::fcp::server::validate(self.fcp_listen, &self.fcp_allowed_hosts)?;
        if self.link_rate > MAX_LINK_RATE {
            return Err(format!(
                "link_rate = {} frames per second per link is too high: at most {MAX_LINK_RATE} (0: off)",
                self.link_rate
            ));
        }
        if self.top_sinks > 64 {
            return Err(format!("top_sinks = {} is out of range: use 0 to 64", self.top_sinks));
        }
        if self.offers_per_second > 1000 {
            return Err(format!("offers_per_second = {} is out of range: use 0 to 1000", self.offers_per_second));
        }
        if self.steady_backup_percent > 100 {
            return Err(format!(
                "steady_backup_percent = {} is out of range: use 0 to 100",
                self.steady_backup_percent
            ));
        }
        if !(60..=7 * 24 * 3600).contains(&self.offers_away_secs) {
            return Err(format!("offers_away_secs = {} is out of range: use 60 to 604800", self.offers_away_secs));
        }
        let min = 1024 * 1024;
        if self.store_bytes < min {
            return Err("store_bytes must be at least 1 MiB (1048576)".into());
        }
        if self.cache_bytes != 0 && self.cache_bytes < min {
            return Err("cache_bytes must be 0 (no cache) or at least 1 MiB (1048576)".into());
        }
        if self.seed_node && !self.mode.strangers() {
            return Err(
                "seed_node = true needs mode = \"opennet\" or \"hybrid\" (a darknet node takes no strangers)".into()
            );
        }
        if !(1..=10_000).contains(&self.seed_cap) {
            return Err(format!("seed_cap = {} is out of range: use 1 to 10000", self.seed_cap));
        }
        if !(100..=3_600_000).contains(&self.opennet_upkeep_ms) {
            return Err(format!("opennet_upkeep_ms = {} is out of range: use 100 to 3600000", self.opennet_upkeep_ms));
        }
        if self.opennet_floor == 0 || self.opennet_ceiling < self.opennet_floor || self.opennet_ceiling > 1000 {
            return Err(format!(
                "opennet_floor = {} and opennet_ceiling = {}: use a floor of at least 1 and a ceiling between the \
                 floor and 1000",
                self.opennet_floor, self.opennet_ceiling
            ));
        }
        if self.strangers_per_ip == 0 || self.strangers_per_subnet < self.strangers_per_ip {
            return Err(format!(
                "strangers_per_ip = {} and strangers_per_subnet = {}: use at least 1, and a subnet limit no lower \
                 than the address limit",
                self.strangers_per_ip, self.strangers_per_subnet
            ));
        }
        Ok(())
    }
}

/// `mode` as its name in the file; a wrong name is a parse error with its line.
mod mode_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::routing::opennet::Mode;

    pub(super) fn serialize<S: Serializer>(mode: &Mode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(mode.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn offers_leave_one_at_a_time_at_the_rate_asked() {
        let pace = |n| Config { offers_per_second: n, ..Config::default() }.offer_pace();
        let ms = std::time::Duration::from_millis;
        assert_eq!(pace(0).0, 0, "0 is off");
        assert_eq!(pace(8), (1, ms(125)), "the default: one every 125 ms, not 8 each second at once");
        assert_eq!(pace(1), (1, ms(1000)));
        assert_eq!(pace(100), (1, ms(10)));
        assert_eq!(pace(1000), (10, ms(10)), "the tick stays at 10 ms or more");
        assert_eq!(pace(250), (3, ms(12)));
        for n in [3, 7, 8, 30, 99, 250, 1000] {
            let (per_tick, tick) = pace(n);
            let rate = f64::from(per_tick) / tick.as_secs_f64();
            assert!((rate - f64::from(n)).abs() <= 0.02 * f64::from(n), "{n}/s paced as {per_tick} per {tick:?}");
        }
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let (_d, p) = write("");
        assert_eq!(Config::load(&p).unwrap(), Config::default());
    }

    #[test]
    fn save_and_load_round_trip() {
        let (_d, p) = write("");
        let advertise = vec![
            "10.231.0.1:4100".parse().unwrap(),
            "[2001:db8::1]:4100".parse().unwrap(),
            "n.example.org:1".parse().unwrap(),
        ];
        let c = Config { max_htl: 10, listen: "0.0.0.0:4100".parse().unwrap(), advertise, ..Config::default() };
        c.save(&p).unwrap();
        assert_eq!(Config::load(&p).unwrap(), c);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let (_d, p) = write("max_hlt = 3\n");
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("max_hlt"), "{e}");
        let (_d, p) = write("max_htl = 30\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("1 to 18"));
        let (_d, p) = write("api_listen = \"0.0.0.0:8080\"\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("loopback"));
        let (_d, p) = write("listen = 5\n");
        assert!(matches!(Config::load(&p), Err(ConfigError::Parse { .. })));
        let (_d, p) = write("cache_bytes = 1000\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("0 (no cache)"));
        let (_d, p) = write("cache_bytes = 0\n");
        assert_eq!(Config::load(&p).unwrap().cache_bytes, 0, "0 turns the cache off");
        let (_d, p) = write("link_rate = 5000\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("at most 1000"));
        let (_d, p) = write("upload_limit = 1000000\ndownload_limit = 2000000\nlink_rate = 500\n");
        let c = Config::load(&p).unwrap();
        assert_eq!((c.upload_limit, c.download_limit, c.link_rate), (1_000_000, 2_000_000, 500));
        let (_d, p) = write("transport = \"udp\"\n");
        assert_eq!(Config::load(&p).unwrap().transport, LinkTransport::Udp);
        assert_eq!(Config::default().transport, LinkTransport::Tcp);
        let (_d, p) = write("transport = \"udp\"\nlink_rate = 100\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("TCP links only"));
        let (_d, p) = write("transport = \"quic\"\n");
        assert!(Config::load(&p).is_err());
        let (_d, p) = write("upload_limit = -1\n");
        assert!(matches!(Config::load(&p), Err(ConfigError::Parse { .. })), "a negative limit is refused");
        let (_d, p) = write("advertise = [\"10.231.0.1\"]\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("no port"));
        let (_d, p) = write("advertise = [\"10.231.0.1:1\", \"10.231.0.1:1\"]\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("twice"));
        let nine: Vec<String> = (1..=9).map(|i| format!("\"10.0.0.{i}:1\"")).collect();
        let (_d, p) = write(&format!("advertise = [{}]\n", nine.join(", ")));
        assert!(Config::load(&p).unwrap_err().to_string().contains("at most 8"));
        let (_d, p) = write("max_htl = 9\nmode = \"open\"\n");
        let e = Config::load(&p).unwrap_err().to_string();
        assert!(e.contains("unknown mode \"open\"") && e.contains("hybrid") && e.contains("line 2"), "{e}");
        let (_d, p) = write("seed_node = true\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("needs mode"));
        let (_d, p) = write("mode = \"hybrid\"\nseed_node = true\n");
        let c = Config::load(&p).unwrap();
        assert_eq!((c.mode, c.seed_node), (Mode::Hybrid, true));
        c.save(&p).unwrap();
        assert_eq!(Config::load(&p).unwrap(), c, "mode and seed_node survive a save");
        let (_d, p) = write("mode = \"opennet\"\nstrangers_per_ip = 0\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("strangers_per_ip = 0"));
        let (_d, p) = write("opennet_floor = 9\nopennet_ceiling = 4\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("ceiling between the floor and 1000"));
        let (_d, p) = write("seed_node = \"yes\"\n");
        assert!(matches!(Config::load(&p), Err(ConfigError::Parse { .. })));
        let (_d, p) = write("offers_away_secs = 5\n");
        assert!(Config::load(&p).unwrap_err().to_string().contains("60 to 604800"));
        let (_d, p) = write("offers_on_return = false\noffers_away_secs = 3600\n");
        let c = Config::load(&p).unwrap();
        assert_eq!((c.offers_on_return, c.offers_away_secs), (false, 3600));
        let missing = Config::load(Path::new("/nonexistent/pamphlet/config.toml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Io { .. }));
    }
}
