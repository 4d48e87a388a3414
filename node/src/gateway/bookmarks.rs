//! Bookmarks of updatable sites (USKs) on the gateway's home page, kept in the node's data
//! directory (`DIR/bookmarks.json`), each with the newest edition the gateway knows of
//! and the newest one the reader has opened, so the home page can say "new edition".
//!
//! The newest edition is learnt whenever the gateway serves the site and by
//! [`check_editions`], which the daemon runs periodically (docs/gateway.md). Adding and
//! removing are form posts from the home page, behind the gateway's Origin and token
//! checks: a web page elsewhere cannot bookmark anything.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use pamphlet_crypto::{SskRequestUri, Uri};
use serde::{Deserialize, Serialize};

/// The most bookmarks kept (a full list refuses more).
pub const MAX_BOOKMARKS: usize = 500;

/// The longest title kept, in characters (longer ones are cut).
pub const MAX_TITLE: usize = 200;

/// One bookmarked site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bookmark {
    /// The site at edition 0 (`USK@…/name/0`): its identity, whatever the edition.
    pub site: String,
    /// What the reader called it.
    pub title: String,
    /// The newest edition the gateway has seen.
    pub newest: u64,
    /// The newest edition the reader has opened through the gateway.
    pub seen: u64,
}

/// Why a bookmark was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BookmarkError {
    /// Only updatable sites (`USK@…/name/N`) can be followed for new editions.
    #[error("only USK@… addresses can be bookmarked (they are the ones with new editions)")]
    NotUpdatable,
    /// The list is full.
    #[error("there are already {MAX_BOOKMARKS} bookmarks; remove some first")]
    Full,
    /// The bookmarks file could not be written.
    #[error("the bookmarks could not be saved: {0}")]
    Save(String),
}

/// The list, and where it is kept.
#[derive(Debug, Default)]
pub struct Bookmarks {
    /// The file (`None`: in memory only, for tests).
    path: Option<PathBuf>,
    list: Mutex<Vec<Bookmark>>,
}

/// The identity of a USK: the same site at edition 0.
fn site_of(uri: &SskRequestUri) -> String {
    uri.with_edition(0).to_string()
}

impl Bookmarks {
    /// The bookmarks kept in `path`; a missing file is an empty list, and so is an
    /// unreadable one (it is then replaced at the next change, after a warning in the log).
    pub fn load(path: PathBuf) -> Self {
        let list = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Vec<Bookmark>>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the bookmarks file does not parse; starting with none");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        Self { path: Some(path), list: Mutex::new(list) }
    }

    /// The bookmarks, in the order they were added.
    pub fn list(&self) -> Vec<Bookmark> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Adds `uri` (a USK) under `title`; a site already bookmarked gets the new title.
    pub fn add(&self, uri: &Uri, title: &str) -> Result<(), BookmarkError> {
        let Uri::SskRequest(r) = uri else { return Err(BookmarkError::NotUpdatable) };
        if !r.updatable {
            return Err(BookmarkError::NotUpdatable);
        }
        let title: String = title.trim().chars().filter(|c| !c.is_control()).take(MAX_TITLE).collect();
        let title = if title.is_empty() { r.name.clone() } else { title };
        let site = site_of(r);
        self.change(|list| {
            if let Some(b) = list.iter_mut().find(|b| b.site == site) {
                b.title = title;
                return Ok(());
            }
            if list.len() >= MAX_BOOKMARKS {
                return Err(BookmarkError::Full);
            }
            list.push(Bookmark { site, title, newest: r.edition, seen: r.edition });
            Ok(())
        })
    }

    /// Removes the bookmark of the site `uri` names (any edition).
    pub fn remove(&self, uri: &Uri) -> Result<(), BookmarkError> {
        let Uri::SskRequest(r) = uri else { return Ok(()) };
        let site = site_of(r);
        self.change(|list| {
            list.retain(|b| b.site != site);
            Ok(())
        })
    }

    /// The newest edition known of the site of `uri`, if it is bookmarked.
    pub fn newest(&self, uri: &SskRequestUri) -> Option<u64> {
        let site = site_of(uri);
        self.list.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|b| b.site == site).map(|b| b.newest)
    }

    /// Records that edition `edition` of the site of `uri` exists, and (with `opened`)
    /// that the reader opened it. Changes nothing for a site not bookmarked.
    pub fn saw(&self, uri: &SskRequestUri, edition: u64, opened: bool) {
        let site = site_of(uri);
        let known = self.list().iter().any(|b| b.site == site && (b.newest < edition || (opened && b.seen < edition)));
        if known {
            let _ = self.change(|list| {
                for b in list.iter_mut().filter(|b| b.site == site) {
                    b.newest = b.newest.max(edition);
                    if opened {
                        b.seen = b.seen.max(edition);
                    }
                }
                Ok(())
            });
        }
    }

    /// Applies `f` to the list and saves it (written beside the file, then renamed over it).
    fn change(&self, f: impl FnOnce(&mut Vec<Bookmark>) -> Result<(), BookmarkError>) -> Result<(), BookmarkError> {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let mut new = list.clone();
        f(&mut new)?;
        if let Some(path) = &self.path {
            let bytes = serde_json::to_vec_pretty(&new).map_err(|e| BookmarkError::Save(e.to_string()))?;
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| BookmarkError::Save(e.to_string()))?;
        }
        *list = new;
        Ok(())
    }
}

/// Looks for a newer edition of every bookmarked site (one USK lookup each, from the
/// newest known edition on) and records what it finds.
pub async fn check_editions<N: crate::client::pipeline::BlockNetwork>(
    net: &std::sync::Arc<N>,
    bookmarks: &Bookmarks,
    parallel: usize,
) {
    let options = crate::client::pipeline::FetchOptions { parallel, partial_dir: None };
    for b in bookmarks.list() {
        let Ok(Uri::SskRequest(site)) = Uri::parse(&b.site) else { continue };
        let uri = Uri::SskRequest(site.with_edition(b.newest));
        if let Ok(f) = crate::client::pipeline::fetch(net, &uri, &options, &|_| {}).await {
            if let Some(found) = f.edition {
                bookmarks.saw(&site, found, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn usk(edition: u64) -> SskRequestUri {
        crate::gateway::test_usk(edition)
    }

    #[test]
    fn bookmarks_persist_and_follow_editions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bookmarks.json");
        let b = Bookmarks::load(path.clone());
        b.add(&Uri::SskRequest(usk(3)), "My blog\u{7}").unwrap();
        assert_eq!(
            b.add(&Uri::SskRequest(SskRequestUri { updatable: false, ..usk(0) }), "x"),
            Err(BookmarkError::NotUpdatable)
        );
        b.saw(&usk(5), 5, false);
        let again = Bookmarks::load(path.clone());
        let list = again.list();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].title.as_str(), list[0].newest, list[0].seen), ("My blog", 5, 3));
        // Opening the new edition marks it seen; an older one changes nothing.
        again.saw(&usk(5), 5, true);
        again.saw(&usk(1), 1, true);
        assert_eq!((again.list()[0].newest, again.list()[0].seen), (5, 5));
        // The same site at another edition is the same bookmark.
        again.add(&Uri::SskRequest(usk(9)), "Renamed").unwrap();
        assert_eq!(again.list().len(), 1);
        again.remove(&Uri::SskRequest(usk(2))).unwrap();
        assert!(Bookmarks::load(path).list().is_empty());
    }

    #[test]
    fn a_corrupt_file_is_an_empty_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bookmarks.json");
        std::fs::write(&path, b"{ not json").unwrap();
        assert!(Bookmarks::load(path).list().is_empty());
    }
}
