//! The newest edition of each updatable site (USK) that the gateway has seen, so a page of
//! an older edition can say that a newer one exists.
//!
//! A USK lookup walks editions upward from the one asked for and stops at the first it
//! cannot find; an edition that dropped out of the network hides every later one from
//! that walk. The gateway still knows of those later editions when it served one (a link
//! named it, or a reader opened it) or when the bookmark check found it; the page then
//! gets a note with a link to the newest. The memory is bounded and kept only while the
//! node runs: it is a hint, not a record.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use pamphlet_crypto::SskRequestUri;

/// The most sites remembered; when full, the memory starts again (a hint may be lost,
/// never wrong).
pub const MAX_SITES: usize = 4096;

/// Site (its USK at edition 0) → newest edition seen.
#[derive(Debug, Default)]
pub struct Editions {
    newest: Mutex<HashMap<String, u64>>,
}

impl Editions {
    /// Records that `edition` of the site of `uri` exists.
    pub fn learn(&self, uri: &SskRequestUri, edition: u64) {
        let mut map = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        let site = uri.with_edition(0).to_string();
        if map.len() >= MAX_SITES && !map.contains_key(&site) {
            map.clear();
        }
        let e = map.entry(site).or_insert(edition);
        *e = (*e).max(edition);
    }

    /// The newest edition seen of the site of `uri`, if it is newer than `uri`'s own.
    pub fn newer_than(&self, uri: &SskRequestUri) -> Option<u64> {
        let map = self.newest.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&uri.with_edition(0).to_string()).copied().filter(|&n| n > uri.edition)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn usk(edition: u64) -> SskRequestUri {
        crate::gateway::test_usk(edition)
    }

    #[test]
    fn the_newest_edition_seen_is_remembered_per_site() {
        let e = Editions::default();
        assert_eq!(e.newer_than(&usk(1)), None);
        e.learn(&usk(3), 3);
        e.learn(&usk(2), 2);
        assert_eq!(e.newer_than(&usk(1)), Some(3));
        assert_eq!(e.newer_than(&usk(3)), None);
        assert_eq!(e.newer_than(&usk(4)), None);
    }
}
