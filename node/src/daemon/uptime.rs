//! `DIR/uptime`: the node's own runs and its peers' observed uptimes, for steady backups
//! (`node::durability`, docs/durability.md "Steady backups in the node").
//!
//! At start the driver reads the file, tells the node its online share over the last week
//! (`Node::set_own_uptime`) and the peers' counters it saved (`Node::load_peer_uptimes`),
//! and starts a new session; every [`ALIVE_EVERY`] while the node runs, and at a clean
//! stop, it records the session as alive until then, refreshes the node's own share and
//! writes the file again with the peers' counters. A crash loses at most `ALIVE_EVERY` of
//! the session. A missing file is a first start; one that is too large or does not parse
//! is logged and replaced by a fresh history (the node does not know its own share until
//! it has one again, and so makes no steady backups meanwhile); the node runs on either way.
//! With `steady_backup_percent = 0` the file is removed at start and never written.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::node::{Node, UptimeFileError, UptimeHistory, MAX_UPTIME_FILE};
use crate::store::BlockStore;

use super::datadir;

/// The file's name in the data directory.
pub const FILE: &str = "uptime";

/// How often a running node records that it is alive (and saves the peers' counters).
pub const ALIVE_EVERY: Duration = Duration::from_secs(300);

/// The uptime file of a running node.
#[derive(Debug)]
pub struct UptimeFile {
    path: PathBuf,
    history: UptimeHistory,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Reads `path`, refusing a file larger than [`MAX_UPTIME_FILE`] before reading it.
/// `Ok(None)`: no file.
pub fn read(path: &Path) -> Result<Option<UptimeHistory>, ReadError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReadError::Io(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_UPTIME_FILE + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    Ok(Some(UptimeHistory::decode(&bytes)?))
}

/// Why the uptime file was not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// It could not be read.
    #[error("cannot read the uptime file: {0}")]
    Io(std::io::Error),
    /// It was read and refused.
    #[error(transparent)]
    Format(#[from] UptimeFileError),
}

impl UptimeFile {
    /// Loads `DIR/uptime` into `node` (its own share, its peers' counters) and starts this
    /// run's session. Every failure is a log line: the node starts with a fresh history.
    /// With steady backups off (`on` false), removes an old file and keeps none.
    pub fn open<S: BlockStore>(dir: &Path, node: &mut Node<S>, on: bool) -> Option<Self> {
        let path = dir.join(FILE);
        if !on {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(file = %path.display(), "steady backups are off: removed the uptime history"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot remove the uptime history"),
            }
            return None;
        }
        let history = match read(&path) {
            Ok(Some(h)) => h,
            Ok(None) => {
                tracing::info!(file = %path.display(), "no uptime history yet: own uptime unknown");
                UptimeHistory::default()
            }
            Err(e) => {
                tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "uptime history ignored and started afresh: own uptime unknown, no steady backups until it is known"
                );
                UptimeHistory::default()
            }
        };
        let now = unix_now();
        let share = history.own_share(now);
        node.set_own_uptime(share);
        node.load_peer_uptimes(&history.peers);
        tracing::info!(own_uptime = ?share, peers = history.peers.len(), "uptime history loaded");
        let mut file = UptimeFile { path, history };
        file.history.start_session(now);
        file.write();
        Some(file)
    }

    /// Records the session alive now, refreshes the node's own share and saves the file
    /// with the peers' counters.
    pub fn save<S: BlockStore>(&mut self, node: &mut Node<S>) {
        let now = unix_now();
        self.history.alive(now);
        node.set_own_uptime(self.history.own_share(now));
        self.history.peers = node.peer_uptimes(Instant::now());
        self.write();
    }

    fn write(&self) {
        if let Err(e) = datadir::write_private(&self.path, &self.history.encode()) {
            tracing::warn!(error = %e, "cannot save the uptime history");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use crate::store::memory::MemoryStore;

    fn node() -> Node<MemoryStore> {
        Node::new(NodeConfig::default(), MemoryStore::default())
    }

    #[test]
    fn a_run_is_recorded_and_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut n = node();
        let mut f = UptimeFile::open(dir.path(), &mut n, true).unwrap();
        assert_eq!(n.own_uptime(), None, "a first start knows no share");
        f.save(&mut n);
        let mut h = read(&dir.path().join(FILE)).unwrap().unwrap();
        assert_eq!(h.sessions.len(), 1);
        // That run, as if it had been two hours an hour ago.
        let now = unix_now();
        h.sessions[0] = crate::node::Session { start: now - 3 * 3600, end: now - 3600 };
        std::fs::write(dir.path().join(FILE), h.encode()).unwrap();
        let mut again = node();
        let _ = UptimeFile::open(dir.path(), &mut again, true);
        let share = again.own_uptime().unwrap();
        assert!((share - 2.0 / 24.0).abs() < 0.01, "two hours of at least a day: {share}");
        assert_eq!(read(&dir.path().join(FILE)).unwrap().unwrap().sessions.len(), 2);
    }

    #[test]
    fn a_bad_or_huge_file_is_refused_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        let huge = vec![b's'; MAX_UPTIME_FILE as usize * 4];
        for (bad, what) in [(&b"junk"[..], "junk"), (&huge[..], "huge"), (&[0xff, 0xfe][..], "not text")] {
            std::fs::write(&path, bad).unwrap();
            assert!(read(&path).is_err(), "{what}");
            let mut n = node();
            let _ = UptimeFile::open(dir.path(), &mut n, true);
            assert_eq!(n.own_uptime(), None, "{what}: the share is unknown");
            let h = read(&path).unwrap().unwrap();
            assert_eq!(h.sessions.len(), 1, "{what}: a fresh history with this run");
        }
        assert!(matches!(read(&path.with_file_name("missing")), Ok(None)));
    }
}
