//! `DIR/offers.keys`: the store keys the node remembers for offers on return, sealed
//! (`node::durability::remembered`), kept across restarts (docs/durability.md).
//!
//! Written at a clean stop and every [`SAVE_EVERY`] while the node runs (if it stored
//! anything since); loaded at start. A missing file means nothing to offer; a damaged one
//! is logged and ignored (the node runs on and offers nothing until it stores again). With
//! `offers_on_return = false` the file is removed at start and never written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::node::Node;
use crate::store::BlockStore;

use super::datadir;

/// The file's name in the data directory.
pub const FILE: &str = "offers.keys";

/// How often a running node writes its remembered keys again (if it stored anything since).
pub const SAVE_EVERY: Duration = Duration::from_secs(600);

/// The keys file of `dir`, if offers on return are on; with them off, removes an old file.
pub fn path(dir: &Path, on: bool) -> Option<PathBuf> {
    let path = dir.join(FILE);
    if on {
        return Some(path);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(file = %path.display(), "offers on return are off: removed the remembered keys"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot remove the remembered keys"),
    }
    None
}

/// Loads the remembered keys into `node`; every failure is a log line, never an error.
pub fn load<S: BlockStore>(path: &Path, node: &mut Node<S>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(file = %path.display(), "no remembered keys: nothing to offer on return");
            return;
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the remembered keys: nothing to offer on return");
            return;
        }
    };
    match node.load_remembered_keys(&bytes) {
        Ok(n) => tracing::info!(file = %path.display(), keys = n, "remembered keys loaded: offered on return"),
        Err(e) => tracing::warn!(
            file = %path.display(),
            error = %e,
            "remembered keys ignored: nothing to offer on return (the file is rewritten as the node stores)"
        ),
    }
}

/// Writes the remembered keys of `node` (atomically, owner-only).
pub fn save<S: BlockStore>(path: &Path, node: &mut Node<S>) {
    if let Err(e) = datadir::write_private(path, &node.remembered_keys_sealed()) {
        tracing::warn!(error = %e, "cannot save the remembered keys");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use crate::store::memory::MemoryStore;

    #[test]
    fn switched_off_the_file_is_removed_and_never_named() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(path(dir.path(), true), Some(dir.path().join(FILE)));
        std::fs::write(dir.path().join(FILE), b"keys").unwrap();
        assert_eq!(path(dir.path(), false), None);
        assert!(!dir.path().join(FILE).exists(), "an old file is removed when offers on return are off");
        assert_eq!(path(dir.path(), false), None, "and a missing one is no error");
    }

    #[test]
    fn saved_keys_load_again_and_bad_files_load_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE);
        let mut node = Node::new(NodeConfig::default(), MemoryStore::default());
        save(&file, &mut node);
        let mut again = Node::new(NodeConfig::default(), MemoryStore::default());
        load(&file, &mut again);
        assert_eq!(again.stats().keys_loaded, 0, "an empty memory saves and loads as empty");
        for bad in [&b"not a keys file"[..], &[]] {
            std::fs::write(&file, bad).unwrap();
            let mut node = Node::new(NodeConfig::default(), MemoryStore::default());
            load(&file, &mut node);
            assert_eq!(node.stats().keys_loaded, 0);
        }
        load(&dir.path().join("missing"), &mut again);
    }
}
