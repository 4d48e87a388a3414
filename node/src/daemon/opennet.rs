//! The daemon's opennet half (issue 19; docs/opennet.md "Running an opennet node"): the
//! `seednodes` and `opennet-peers` files, the node's [`OpennetConfig`] from config.toml,
//! and [`OpennetLinks`], which the driver uses to carry out the node's [`LinkAction`]s on
//! the transport.
//!
//! ```text
//! DIR/seednodes      seed nodes' references, one per line (# comments); opennet and hybrid
//! DIR/opennet-peers  the strangers this node had lately, one reference per line (0600),
//!                    rewritten while it runs: a restarted node dials them first, and the
//!                    seeds only if none of them answers
//! ```
//!
//! How the pieces meet: the node asks for links ([`LinkAction::Connect`] with a reference
//! it got from an announcement or a path-folding offer, [`LinkAction::NeedSeeds`]); this
//! file parses the reference, remembers how it was found, and dials it as a stranger. When
//! a stranger's link comes up (dialled by us or by it) the node is asked to admit it with
//! that provenance (`Found::Inbound` for one that dialled us); a refusal, or a later
//! [`LinkAction::Drop`], closes the link.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::config::Config;
use super::datadir::{self, DataDirError};
use crate::id::PeerId;
use crate::link::{NodeRef, PublicKey};
use crate::location::Location;
use crate::node::{LinkAction, Node};
use crate::routing::opennet::{Found, OpennetConfig, PeerKind};
use crate::store::BlockStore;
use crate::transport::{peer_id_of, TransportHandle};
use crate::wire::message::Reference;

/// The seeds file in a data directory.
pub const SEEDNODES: &str = "seednodes";
/// The saved stranger references in a data directory.
pub const OPENNET_PEERS: &str = "opennet-peers";

/// Reads a file of node references, one per line (blank lines and `#` comments skipped).
/// A missing file is an empty list; a bad line is an error naming the file, the line and
/// why.
pub fn load_refs(path: &Path) -> Result<Vec<NodeRef>, DataDirError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DataDirError::Io { path: path.display().to_string(), source }),
    };
    let mut refs: Vec<NodeRef> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let damaged = |what: String| DataDirError::Damaged {
            path: path.display().to_string(),
            what: format!("line {}: {what} (one node reference per line, as `pamphlet node noderef` prints)", n + 1),
        };
        let r: NodeRef = line.parse().map_err(|e| damaged(format!("{e}")))?;
        if refs.iter().any(|o| o.key == r.key) {
            return Err(damaged("the same node is listed twice".into()));
        }
        refs.push(r);
    }
    Ok(refs)
}

/// Writes references, one per line, atomically and readable only by the owner (whom a
/// node talks to is what an observer wants to learn).
pub fn save_refs(path: &Path, refs: &[NodeRef]) -> Result<(), DataDirError> {
    let text: String = refs.iter().map(|r| format!("{r}\n")).collect();
    datadir::write_private(path, text.as_bytes())
}

/// The node's opennet settings from config.toml, with this node's reference (offered to
/// strangers in announcement replies and path folding). The timers, and the rate of
/// announcements a node handles, keep the defaults' ratios to `opennet_upkeep_ms` (see
/// [`Config::opennet_upkeep_ms`]).
pub fn opennet_config(config: &Config, own: &NodeRef) -> OpennetConfig {
    let upkeep = Duration::from_millis(config.opennet_upkeep_ms);
    let d = OpennetConfig::default();
    OpennetConfig {
        mode: config.mode,
        seed_node: config.seed_node,
        seed_cap: config.seed_cap,
        reference: Reference::new(own.to_string().into_bytes()).unwrap_or_default(),
        upkeep_interval: Some(upkeep),
        floor: config.opennet_floor,
        ceiling: config.opennet_ceiling,
        announce_interval: upkeep * 3,
        seed_hold: upkeep * 3,
        replace_interval: upkeep * 3,
        min_age: upkeep * 30,
        // The announcement bucket refills in the same time scale (2 a second at 10 s).
        announce_rate: d.announce_rate * 10_000.0 / config.opennet_upkeep_ms as f64,
        ..d
    }
}

/// How long a node without enough peers waits before it dials the seeds again, in upkeeps.
const SEED_RETRY_UPKEEPS: u32 = 3;

/// The driver's opennet state: the seeds, the dials under way and how each was found, and
/// the saved references.
#[derive(Debug)]
pub struct OpennetLinks {
    /// The seeds' references (without this node's own).
    seeds: Vec<NodeRef>,
    /// `DIR/opennet-peers`.
    peers_file: PathBuf,
    /// References saved there at start (dialled first).
    saved: Vec<NodeRef>,
    /// Dials under way: where the node said the stranger is and how it was found.
    dialing: HashMap<PeerId, (Location, Found)>,
    /// When the seeds were last dialled.
    seeds_dialled: Option<Instant>,
    /// Wait this long with no peer before dialling the seeds again.
    seed_retry: Duration,
    /// The stranger keys last written to the peers file.
    written: BTreeSet<PublicKey>,
}

impl OpennetLinks {
    /// Reads `DIR/seednodes` and `DIR/opennet-peers` (either may be missing).
    pub fn load(dir: &Path, config: &Config, own: &PublicKey) -> Result<Self, DataDirError> {
        let seeds: Vec<NodeRef> = load_refs(&dir.join(SEEDNODES))?.into_iter().filter(|r| r.key != *own).collect();
        let peers_file = dir.join(OPENNET_PEERS);
        // A damaged peers file is only a cache: start from the seeds, and say so.
        let saved = load_refs(&peers_file).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "opennet peers not reloaded; starting from the seeds");
            Vec::new()
        });
        if seeds.is_empty() && saved.is_empty() {
            tracing::warn!(
                "{} mode with no seed in {} and no saved stranger: this node waits for strangers to dial it",
                config.mode.name(),
                dir.join(SEEDNODES).display()
            );
        }
        let written = saved.iter().map(|r| r.key).collect();
        Ok(Self {
            seeds,
            peers_file,
            saved,
            dialing: HashMap::new(),
            seeds_dialled: None,
            seed_retry: Duration::from_millis(config.opennet_upkeep_ms) * SEED_RETRY_UPKEEPS,
            written,
        })
    }

    /// At start: the saved strangers if there are any, else the seeds.
    pub fn start<S: BlockStore>(&mut self, node: &Node<S>, transport: &TransportHandle, now: Instant) {
        if self.saved.is_empty() {
            self.dial_seeds(node, transport, now);
        } else {
            for r in std::mem::take(&mut self.saved) {
                self.dial(transport, r, node.location(), Found::Reconnect);
            }
            // The seeds only if none of them has answered by the retry time.
            self.seeds_dialled = Some(now);
        }
    }

    fn dial_seeds<S: BlockStore>(&mut self, node: &Node<S>, transport: &TransportHandle, now: Instant) {
        self.seeds_dialled = Some(now);
        for r in self.seeds.clone() {
            self.dial(transport, r, node.location(), Found::Seed);
        }
    }

    fn dial(&mut self, transport: &TransportHandle, r: NodeRef, location: Location, found: Found) {
        let peer = peer_id_of(&r.key);
        if transport.connected_peers().contains(&peer) {
            return;
        }
        match transport.dial_stranger(r) {
            Ok(Some(peer)) => {
                self.dialing.insert(peer, (location, found));
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "not dialled"),
        }
    }

    /// A stranger's link is up: ask the node to admit it, with how it was found; close
    /// the link if the node refuses.
    pub fn on_connected<S: BlockStore>(
        &mut self,
        node: &mut Node<S>,
        transport: &TransportHandle,
        now: Instant,
        peer: PeerId,
    ) {
        let (location, found) = self.dialing.remove(&peer).unwrap_or((node.location(), Found::Inbound));
        if let Err(refusal) = node.admit_stranger(now, peer, location, found) {
            tracing::debug!(?peer, ?refusal, "stranger refused");
            transport.drop_stranger(peer);
        }
    }

    /// A stranger dial failed.
    pub fn on_dial_failed(&mut self, peer: PeerId) {
        self.dialing.remove(&peer);
    }

    /// Carries out the node's link actions; with no peer, or below the floor without a
    /// seed, dials the seeds again (at most every `SEED_RETRY_UPKEEPS` upkeeps).
    pub fn carry_out<S: BlockStore>(&mut self, node: &mut Node<S>, transport: &TransportHandle, now: Instant) {
        while let Some(action) = node.poll_link_action() {
            match action {
                LinkAction::Connect { location, reference, found } => {
                    let parsed = std::str::from_utf8(reference.as_bytes()).ok().and_then(|t| t.parse::<NodeRef>().ok());
                    match parsed {
                        Some(r) => self.dial(transport, r, location, found),
                        // A stranger's garbage: nothing to dial.
                        None => tracing::debug!("an offered reference does not parse; ignored"),
                    }
                }
                LinkAction::Drop { peer } => transport.drop_stranger(peer),
                LinkAction::Suspend { peer, until } => {
                    transport.suspend(peer, until);
                }
                // The node asks whenever it is below its floor with no seed (each upkeep):
                // dial them at most once per `seed_retry`.
                LinkAction::NeedSeeds => {
                    if self.seeds_dialled.is_none_or(|t| now.duration_since(t) >= self.seed_retry) {
                        self.dial_seeds(node, transport, now);
                    }
                }
            }
        }
        // Back to the seeds when the node has no peer, or is below its floor with no seed
        // to announce through (Hyphanet's announcer does the same): newcomers that joined
        // together can pair up into islands that announcing among themselves never leaves.
        let idle = self.seeds_dialled.is_none_or(|t| now.duration_since(t) >= self.seed_retry);
        let peers = node.peer_ids();
        let has_seed = peers.iter().any(|p| node.peer_kind(*p).0 == PeerKind::Seed);
        let stranded = peers.is_empty() || (peers.len() < node.config().opennet.floor && !has_seed);
        if stranded && self.dialing.is_empty() && idle {
            self.dial_seeds(node, transport, now);
        }
    }

    /// Saves the strangers (not the seeds) this node has links to, when they changed.
    /// Never an empty list: a node that lost every peer keeps the last ones to try.
    pub fn save_peers<S: BlockStore>(&mut self, node: &Node<S>, transport: &TransportHandle) {
        let refs: Vec<NodeRef> = transport
            .stranger_refs()
            .into_iter()
            .filter(|(p, _)| node.peer_kind(*p).0 == PeerKind::Stranger)
            .map(|(_, r)| r)
            .collect();
        let keys: BTreeSet<PublicKey> = refs.iter().map(|r| r.key).collect();
        if refs.is_empty() || keys == self.written {
            return;
        }
        match save_refs(&self.peers_file, &refs) {
            Ok(()) => self.written = keys,
            Err(e) => tracing::warn!(error = %e, "cannot save the opennet peers"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::StaticKeypair;

    fn noderef(port: u16) -> NodeRef {
        let kp = StaticKeypair::generate().unwrap();
        NodeRef::signed(&kp, vec![format!("127.0.0.1:{port}").parse().unwrap()], 1).unwrap()
    }

    #[test]
    fn seednodes_round_trip_and_skip_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEEDNODES);
        let refs = vec![noderef(1), noderef(2)];
        save_refs(&path, &refs).unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "# the seeds\n\n");
        std::fs::write(&path, text).unwrap();
        assert_eq!(load_refs(&path).unwrap(), refs);
        assert_eq!(load_refs(&dir.path().join("absent")).unwrap(), Vec::new(), "a missing file is no seeds");
    }

    #[test]
    fn a_bad_seednodes_line_names_its_line_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SEEDNODES);
        let good = noderef(1);
        std::fs::write(&path, format!("{good}\n# ok\npamphlet:v2:garbage\n")).unwrap();
        let e = load_refs(&path).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("seednodes") && e.contains("one node reference per line"), "{e}");
        std::fs::write(&path, format!("{good}\n{good}\n")).unwrap();
        let e = load_refs(&path).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("twice"), "{e}");
        let mut broken = good.to_string();
        broken.pop();
        broken.push(if good.to_string().ends_with('0') { '1' } else { '0' });
        std::fs::write(&path, format!("{broken}\n")).unwrap();
        assert!(load_refs(&path).unwrap_err().to_string().contains("line 1"), "a bad checksum is caught");
        // The file itself is left as it was.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{broken}\n"));
    }

    #[test]
    fn the_config_sets_mode_seed_and_scaled_timers() {
        let config = Config {
            mode: crate::routing::opennet::Mode::Opennet,
            seed_node: true,
            opennet_upkeep_ms: 500,
            ..Config::default()
        };
        let own = noderef(9);
        let c = opennet_config(&config, &own);
        assert_eq!((c.mode, c.seed_node), (crate::routing::opennet::Mode::Opennet, true));
        assert_eq!(c.upkeep_interval, Some(Duration::from_millis(500)));
        assert_eq!((c.announce_interval, c.min_age), (Duration::from_millis(1500), Duration::from_secs(15)));
        assert_eq!(c.reference.as_bytes(), own.to_string().as_bytes());
    }
}
