//! Pinned documents (issue 20): documents and sites the node's owner wants kept alive.
//! `DIR/pins` lists their URIs, one per line (`pamphlet pin URI` adds one); every
//! `keepalive_interval_secs` the daemon runs keepalive on each (probe every block,
//! reinsert the missing ones: [`crate::client::keepalive`]) and records the outcome in
//! `DIR/pins-state.json`, which `pamphlet pin` shows.
//!
//! The list is a file rather than an API call so that pins survive the node being down
//! when they are added; the daemon reads it afresh at every pass. Both files are
//! owner-only: what someone keeps alive says what they care about.

// A driver: sleeps on tokio's clock and stamps outcomes with the wall clock.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pamphlet_crypto::Uri;
use serde::{Deserialize, Serialize};

use super::datadir::{self, DataDirError};
use crate::client::keepalive::{keepalive, KeptAlive};
use crate::client::pipeline::BlockNetwork;

/// The list of pinned URIs, in the data directory.
pub const PINS_FILE: &str = "pins";

/// The outcome of each pinned URI's last keepalive, in the data directory.
pub const PINS_STATE_FILE: &str = "pins-state.json";

/// The most pins kept (each costs one request per block per pass).
pub const MAX_PINS: usize = 1000;

/// Block requests in flight while keeping a pin alive: the pass runs beside the node's
/// other work and is never urgent.
const PIN_PARALLEL: usize = 4;

/// Why a pin was not added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinError {
    /// The text is not a pamphlet URI, or names a file inside a site.
    #[error("cannot pin that: {0}")]
    BadUri(String),
    /// There are already [`MAX_PINS`].
    #[error("there are already {MAX_PINS} pins; remove some first")]
    Full,
    /// The files could not be read or written.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
}

/// The last keepalive of one pin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinState {
    /// The pinned URI.
    pub uri: String,
    /// When the pass ended (seconds since the Unix epoch).
    pub at_unix: u64,
    /// What it found and did, when it succeeded.
    pub kept: Option<KeptAlive>,
    /// Why it failed (too many blocks gone, no route, …), when it did.
    pub error: Option<String>,
}

/// The pinned URIs (none when the file is missing).
pub fn list(dir: &Path) -> Result<Vec<String>, DataDirError> {
    let path = dir.join(PINS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(DataDirError::Io { path: path.display().to_string(), source }),
    }
}

/// The document's or site's URI `text` names, in its canonical form; `freenet:` prefixes
/// are fine, a path inside a site is not (a site is kept alive whole). An insert URI is
/// kept as its request URI: the pins file never holds a secret. Errors never echo the
/// text (it may be an insert URI).
fn canonical(text: &str) -> Result<String, PinError> {
    match pamphlet_crypto::uri::split_site_path(text.trim()) {
        Ok((Uri::SskInsert(i), None)) => Ok(Uri::SskRequest(i.request_uri()).to_string()),
        Ok((uri, None)) => Ok(uri.to_string()),
        Ok((_, Some(_))) => Err(PinError::BadUri("pin the site itself, without a path inside it".into())),
        Err(e) => Err(PinError::BadUri(e.to_string())),
    }
}

/// Pins `text`; returns false if it was pinned already.
pub fn add(dir: &Path, text: &str) -> Result<bool, PinError> {
    let uri = canonical(text)?;
    let mut pins = list(dir)?;
    if pins.contains(&uri) {
        return Ok(false);
    }
    if pins.len() >= MAX_PINS {
        return Err(PinError::Full);
    }
    pins.push(uri);
    save(dir, &pins)?;
    Ok(true)
}

/// Unpins `text`; returns false if it was not pinned.
pub fn remove(dir: &Path, text: &str) -> Result<bool, PinError> {
    let uri = canonical(text)?;
    let mut pins = list(dir)?;
    let before = pins.len();
    pins.retain(|p| *p != uri);
    if pins.len() == before {
        return Ok(false);
    }
    save(dir, &pins)?;
    Ok(true)
}

fn save(dir: &Path, pins: &[String]) -> Result<(), DataDirError> {
    let text: String = pins.iter().map(|p| format!("{p}\n")).collect();
    datadir::write_private(&dir.join(PINS_FILE), text.as_bytes())
}

/// The outcome of every pin's last pass (none before the first).
pub fn states(dir: &Path) -> Vec<PinState> {
    std::fs::read(dir.join(PINS_STATE_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Keeps every pinned URI alive once, one after the other, and records the outcomes.
/// A URI in the file that does not parse is recorded as failed, not dropped.
pub async fn keep_pins_once<N: BlockNetwork>(dir: &Path, net: &Arc<N>) -> Result<Vec<PinState>, DataDirError> {
    let mut out = Vec::new();
    for text in list(dir)? {
        let outcome = match Uri::parse(&text) {
            Ok(uri) => keepalive(net, &uri, PIN_PARALLEL, &|_| {}).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("not a URI: {e}")),
        };
        let at_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match &outcome {
            Ok(k) => tracing::info!(uri = %text, missing = k.missing, reinserted = k.reinserted, "kept a pin alive"),
            Err(e) => tracing::warn!(uri = %text, error = %e, "could not keep a pin alive"),
        }
        let (kept, error) = match outcome {
            Ok(k) => (Some(k), None),
            Err(e) => (None, Some(e)),
        };
        out.push(PinState { uri: text, at_unix, kept, error });
    }
    let bytes = serde_json::to_vec_pretty(&out).unwrap_or_default();
    datadir::write_private(&dir.join(PINS_STATE_FILE), &bytes)?;
    Ok(out)
}

/// Runs [`keep_pins_once`] every `every` (the first pass one `every` after start) until
/// `shutdown` turns true.
pub fn spawn<N: BlockNetwork>(
    dir: std::path::PathBuf,
    net: Arc<N>,
    every: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if let Err(e) = keep_pins_once(&dir, &net).await {
                tracing::warn!(error = %e, "cannot record the pins' keepalive");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::memory_net::MemoryNetwork;
    use crate::client::pipeline;
    use crate::client::splitfile::InsertOptions;

    #[test]
    fn pins_are_added_once_removed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (_, chk) = pamphlet_crypto::chk::encode(b"a leaflet", pamphlet_crypto::ChkFlags::default()).unwrap();
        let uri = &chk.to_string();
        assert!(matches!(add(dir.path(), "nonsense"), Err(PinError::BadUri(_))));
        assert!(matches!(add(dir.path(), &format!("{uri}/index.html")), Err(PinError::BadUri(_))));
        assert_eq!(list(dir.path()).unwrap(), Vec::<String>::new());
        assert!(add(dir.path(), uri).unwrap());
        assert!(!add(dir.path(), &format!("freenet:{uri}")).unwrap(), "the same URI");
        assert_eq!(list(dir.path()).unwrap().len(), 1);
        assert!(remove(dir.path(), uri).unwrap());
        assert!(!remove(dir.path(), uri).unwrap());
        assert!(list(dir.path()).unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_pass_keeps_every_pin_alive_and_records_it() {
        let dir = tempfile::tempdir().unwrap();
        let net = Arc::new(MemoryNetwork::default());
        let mut data = vec![0u8; 300_000];
        rand::RngCore::fill_bytes(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3), &mut data);
        let top = pipeline::insert_chk(&net, data, InsertOptions::default(), 4, &|_, _| {}).await.unwrap();
        let victim = *net.blocks.lock().unwrap().keys().find(|k| **k != top.routing_key).unwrap();
        net.blocks.lock().unwrap().remove(&victim);
        add(dir.path(), &Uri::Chk(top).to_string()).unwrap();
        // A line that is not a URI (edited by hand) is reported, not fatal.
        let mut text = std::fs::read_to_string(dir.path().join(PINS_FILE)).unwrap();
        text.push_str("CHK@broken\n");
        std::fs::write(dir.path().join(PINS_FILE), text).unwrap();

        let done = keep_pins_once(dir.path(), &net).await.unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].kept.map(|k| (k.missing, k.reinserted)), Some((1, 1)), "{done:?}");
        assert!(done[1].error.is_some());
        assert!(net.blocks.lock().unwrap().contains_key(&victim), "the lost block is back");
        assert_eq!(states(dir.path()), done);
    }
}
