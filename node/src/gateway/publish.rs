//! Publishing from the gateway's home page: a file, or a folder as a site, uploaded by the
//! browser (`multipart/form-data`) and inserted in the background while a progress page
//! reloads itself.
//!
//! The upload is read only after its first field, the per-session form token, matched (the
//! guard in `server.rs` has already checked the `Origin`): a page elsewhere can neither
//! publish through the gateway nor make it buffer a large body first. Uploads are held in
//! memory, so they are bounded ([`MAX_PUBLISH_BYTES`]); larger documents go through the
//! CLI, which streams from disk. A folder arrives as files named `folder/sub/file.html`
//! (the browser's `webkitdirectory` upload); the first segment, the folder's own name, is
//! dropped and every remaining path is checked like `insert --site` checks a directory.
//!
//! At most [`MAX_PUBLICATIONS`] are tracked at once; a finished one is shown for
//! [`KEEP_FINISHED`] under its random id (`/publish/<id>`), then forgotten.

// A driver: reads the wall clock for expiry and the OS random source for ids.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::multipart::{Field, Multipart};
use subtle::ConstantTimeEq;

use crate::client::site;

/// The largest upload the home page accepts, all files together.
pub const MAX_PUBLISH_BYTES: usize = 64 << 20;

/// Publications tracked at once; a new one is refused while this many are running or
/// recently finished.
pub const MAX_PUBLICATIONS: usize = 32;

/// How long a finished publication's page stays available.
pub const KEEP_FINISHED: Duration = Duration::from_secs(3600);

/// What the form sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Upload {
    /// One file, to be published as a CHK under its name.
    File {
        /// The file name the browser gave (no directories).
        name: String,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A folder, to be published as a CHK site: (path inside the site, bytes).
    Site(Vec<(String, Vec<u8>)>),
}

impl Upload {
    /// A short description for the progress page.
    pub fn describe(&self) -> String {
        match self {
            Self::File { name, data } => format!("{name} ({} bytes)", data.len()),
            Self::Site(files) => {
                let bytes: usize = files.iter().map(|(_, d)| d.len()).sum();
                format!("a site of {} file(s), {bytes} bytes", files.len())
            }
        }
    }
}

/// Why an upload was refused. Shown to the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The first field was not the form token of this gateway session.
    #[error("the form token is missing or stale; reload the gateway's home page")]
    Token,
    /// The body is not a form upload the home page makes.
    #[error("the upload could not be read: {0}")]
    Malformed(String),
    /// Nothing was chosen.
    #[error("no file was chosen")]
    Empty,
    /// Over [`MAX_PUBLISH_BYTES`].
    #[error("the upload is over {} MiB; publish it with `pamphlet insert` instead", MAX_PUBLISH_BYTES >> 20)]
    TooLarge,
    /// A path of the folder is one `insert --site` refuses too.
    #[error("{0}")]
    Site(#[from] site::SiteError),
}

/// Reads the home page's publish form: `token`, then `kind` (`file` or `site`), then the
/// files (`file` fields). Stops at the first field that breaks a rule.
pub async fn read_upload(mut form: Multipart, token: &str) -> Result<Upload, UploadError> {
    let bad = |e: axum::extract::multipart::MultipartError| UploadError::Malformed(e.body_text());
    let first = form.next_field().await.map_err(bad)?.ok_or(UploadError::Token)?;
    if first.name() != Some("token") {
        return Err(UploadError::Token);
    }
    let sent = first.text().await.map_err(bad)?;
    if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
        return Err(UploadError::Token);
    }
    let mut kind = String::new();
    let mut files = Vec::new();
    let mut total = 0usize;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("kind") => kind = field.text().await.map_err(bad)?,
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let data = read_bounded(field, &mut total).await?;
                if !name.is_empty() {
                    files.push((name, data));
                }
                if files.len() > site::MAX_FILES {
                    return Err(site::SiteError::TooLarge("too many files").into());
                }
            }
            _ => return Err(UploadError::Malformed("an unexpected form field".into())),
        }
    }
    match kind.as_str() {
        "file" => {
            let mut files = files.into_iter();
            let (name, data) = files.next().ok_or(UploadError::Empty)?;
            if files.next().is_some() {
                return Err(UploadError::Malformed("one file at a time (publish a folder as a site)".into()));
            }
            // Browsers send the bare name; keep only the last segment whatever they send.
            let name = name.rsplit(['/', '\\']).next().unwrap_or_default().to_owned();
            Ok(Upload::File { name, data })
        }
        "site" => site_files(files).map(Upload::Site),
        _ => Err(UploadError::Malformed("`kind` must be file or site".into())),
    }
}

/// A field's bytes, adding to `total` and refusing past [`MAX_PUBLISH_BYTES`] as soon as
/// the running total passes it (the rest is not read).
async fn read_bounded(mut field: Field<'_>, total: &mut usize) -> Result<Vec<u8>, UploadError> {
    let mut data = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| UploadError::Malformed(e.body_text()))? {
        *total += chunk.len();
        if *total > MAX_PUBLISH_BYTES {
            return Err(UploadError::TooLarge);
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

/// The files of an uploaded folder with their paths inside the site: the folder's own name
/// (the first segment every path shares) dropped, every path checked.
fn site_files(files: Vec<(String, Vec<u8>)>) -> Result<Vec<(String, Vec<u8>)>, UploadError> {
    if files.is_empty() {
        return Err(UploadError::Empty);
    }
    let top = |p: &str| p.split_once('/').map(|(t, _)| t.to_owned());
    let shared = top(&files[0].0).filter(|t| files.iter().all(|(p, _)| top(p).as_deref() == Some(t.as_str())));
    let mut out = Vec::with_capacity(files.len());
    for (path, data) in files {
        let inside = match &shared {
            Some(t) => path[t.len() + 1..].to_owned(),
            None => path,
        };
        site::check_path(&inside)?;
        out.push((inside, data));
    }
    Ok(out)
}

/// One publication in the background.
#[derive(Debug)]
pub struct Publication {
    /// What is being published, for its page.
    pub what: String,
    /// Blocks stored and blocks in all, of the current document.
    blocks: Mutex<(usize, usize)>,
    /// The URI, or why it failed, once done.
    outcome: Mutex<Option<Result<String, String>>>,
    started: Instant,
    finished: Mutex<Option<Instant>>,
}

impl Publication {
    /// Progress of the current document: blocks stored, blocks in all.
    pub fn progress(&self, done: usize, total: usize) {
        *self.blocks.lock().unwrap_or_else(PoisonError::into_inner) = (done, total);
    }

    /// The progress last reported.
    pub fn blocks(&self) -> (usize, usize) {
        *self.blocks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the outcome.
    pub fn finish(&self, outcome: Result<String, String>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        *self.finished.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// The URI or the error, once done.
    pub fn outcome(&self) -> Option<Result<String, String>> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Time since it started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn expired(&self) -> bool {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner).is_some_and(|t| t.elapsed() > KEEP_FINISHED)
    }
}

/// The publications the gateway tracks, by id.
#[derive(Debug, Default)]
pub struct Publications {
    map: Mutex<HashMap<String, Arc<Publication>>>,
}

impl Publications {
    /// Starts tracking a publication of `what`; `None` when [`MAX_PUBLICATIONS`] are tracked.
    pub fn start(&self, what: String) -> Option<(String, Arc<Publication>)> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, p| !p.expired());
        if map.len() >= MAX_PUBLICATIONS {
            return None;
        }
        let mut raw = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let p = Arc::new(Publication {
            what,
            blocks: Mutex::new((0, 0)),
            outcome: Mutex::new(None),
            started: Instant::now(),
            finished: Mutex::new(None),
        });
        map.insert(id.clone(), Arc::clone(&p));
        Some((id, p))
    }

    /// The publication with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Publication>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<(String, Vec<u8>)> {
        paths.iter().map(|p| ((*p).to_owned(), p.as_bytes().to_vec())).collect()
    }

    #[test]
    fn a_folder_loses_its_own_name_and_keeps_its_tree() {
        let out = site_files(files(&["www/index.html", "www/img/a.png"])).unwrap();
        let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["index.html", "img/a.png"]);
        // Loose files (no shared folder) keep their names.
        let out = site_files(files(&["index.html", "b.css"])).unwrap();
        assert_eq!(out[1].0, "b.css");
    }

    #[test]
    fn bad_paths_and_empty_folders_are_refused() {
        assert!(matches!(site_files(files(&["www/../etc/passwd"])), Err(UploadError::Site(_))));
        assert!(matches!(site_files(files(&["www//x"])), Err(UploadError::Site(_))));
        assert_eq!(site_files(Vec::new()), Err(UploadError::Empty));
    }

    #[test]
    fn publications_are_bounded_and_found_by_id() {
        let p = Publications::default();
        let (id, one) = p.start("x".into()).unwrap();
        one.progress(3, 10);
        assert_eq!(p.get(&id).unwrap().blocks(), (3, 10));
        assert!(p.get("nope").is_none());
        for _ in 1..MAX_PUBLICATIONS {
            assert!(p.start("y".into()).is_some());
        }
        assert!(p.start("z".into()).is_none(), "full");
        one.finish(Ok("CHK@x".into()));
        assert_eq!(p.get(&id).unwrap().outcome(), Some(Ok("CHK@x".into())));
    }
}
