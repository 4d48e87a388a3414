//! Sites over the network (feature `net`): [`insert_site`] publishes a directory's files
//! as a site manifest (a CHK, or an SSK/USK edition), and [`resolve`] turns a fetched
//! document plus a path into the file the path names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use pamphlet_crypto::{SskInsertUri, Uri};

use super::pipeline::{self, BlockNetwork, FetchOptions, Fetched, InsertProgress, PipelineError};
use super::site::{self, SiteBody, SiteError, SiteFile, SiteManifest, DEFAULT_DOCUMENT, INLINE_MAX};
use super::splitfile::{Document, InsertOptions};
use super::ClientError;

/// MIME type recorded for a site manifest document.
pub const SITE_MIME: &str = "application/x-pamphlet-site";

/// A published site.
#[derive(Debug, Clone)]
pub struct SiteInserted {
    /// The URI that fetches the site (append `/` and a path for a file).
    pub uri: Uri,
    /// Blocks sent to the network (files, manifest, signed block).
    pub blocks_inserted: usize,
    /// Files stored outside the manifest whose key came from the previous edition, so
    /// none of their blocks were sent again.
    pub files_reused: usize,
    /// Files in the site.
    pub files: usize,
    /// Requests sent again (all documents of the site).
    pub retries: usize,
    /// Blocks a sink could not keep for good (all documents of the site).
    pub displaced: usize,
}

/// Inserts documents with the pipeline, counting the blocks sent, the retries and the
/// blocks a sink could not keep, over every document of the site.
#[derive(Default)]
struct Counter {
    blocks: AtomicUsize,
    retries: AtomicUsize,
    displaced: AtomicUsize,
}

impl Counter {
    /// A progress callback for one insert (whose counts grow from zero; its last `total`
    /// is its block count). `outer` hears the site's counts so far: those of earlier
    /// documents plus this one's.
    fn tracker<'a>(&'a self, outer: &'a (dyn Fn(InsertProgress) + Sync)) -> impl Fn(InsertProgress) + Sync + 'a {
        let last = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];
        let base = self.blocks.load(Ordering::Relaxed);
        move |p: InsertProgress| {
            let grow = |i: usize, now: usize, total: &AtomicUsize| {
                let before = last[i].swap(now, Ordering::Relaxed);
                total.fetch_add(now.saturating_sub(before), Ordering::Relaxed);
            };
            grow(0, p.total, &self.blocks);
            grow(1, p.retries, &self.retries);
            grow(2, p.displaced, &self.displaced);
            outer(InsertProgress {
                done: base + p.done,
                total: base + p.total,
                retries: self.retries.load(Ordering::Relaxed),
                displaced: self.displaced.load(Ordering::Relaxed),
            });
        }
    }
}

/// Publishes `files` (relative path, bytes) as a site: small files inline, larger ones as
/// CHK documents; [`DEFAULT_DOCUMENT`] is the default when present. Under `target` (an SSK
/// or USK edition) the manifest is signed; otherwise it is a CHK. A file whose bytes match
/// a file of `previous` (by hash) keeps that file's key and sends no block.
pub async fn insert_site<N: BlockNetwork>(
    net: &Arc<N>,
    files: Vec<(String, Vec<u8>)>,
    target: Option<SskInsertUri>,
    previous: Option<&SiteManifest>,
    parallel: usize,
) -> Result<SiteInserted, PipelineError> {
    insert_site_tracked(net, files, target, previous, parallel, &|_| {}).await
}

/// [`insert_site`], reporting the blocks stored so far: `done` of `total` counts the
/// blocks of the files already inserted and of the current one (a site's total is known
/// only file by file).
pub async fn insert_site_tracked<N: BlockNetwork>(
    net: &Arc<N>,
    files: Vec<(String, Vec<u8>)>,
    target: Option<SskInsertUri>,
    previous: Option<&SiteManifest>,
    parallel: usize,
    progress: &(dyn Fn(InsertProgress) + Sync),
) -> Result<SiteInserted, PipelineError> {
    let bundle_checked = site::decode_bundle(&site::encode_bundle(&files)).map_err(ClientError::from)?;
    let counter = Counter::default();
    let mut entries = Vec::with_capacity(bundle_checked.len());
    let mut reused = 0;
    for (path, data) in bundle_checked {
        let mime = site::guess_mime(&path, &data);
        let hash = site::sha256(&data);
        let size = data.len() as u64;
        let body = if data.len() <= INLINE_MAX {
            SiteBody::Inline(data)
        } else if let Some(old) =
            previous.and_then(|p| p.files.iter().find(|f| f.sha256 == hash && matches!(f.body, SiteBody::Chk(_))))
        {
            reused += 1;
            old.body.clone()
        } else {
            let options = InsertOptions { mime: Some(mime.clone()), ..InsertOptions::default() };
            let file_progress = counter.tracker(progress);
            let uri = pipeline::insert_chk_tracked(net, data, options, parallel, &file_progress).await?;
            // The top block is inserted on its own, outside the progress count.
            counter.blocks.fetch_add(1, Ordering::Relaxed);
            SiteBody::Chk(uri.to_string())
        };
        entries.push(SiteFile { path, mime, size, sha256: hash, body });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let default = entries.iter().any(|f| f.path == DEFAULT_DOCUMENT).then(|| DEFAULT_DOCUMENT.to_owned());
    let manifest = SiteManifest { version: site::SITE_VERSION, default, files: entries };
    let count = manifest.files.len();
    let bytes = manifest.to_bytes();
    let options = InsertOptions { mime: Some(SITE_MIME.to_owned()), ..InsertOptions::default() };
    let manifest_progress = counter.tracker(progress);
    let uri = match target {
        None => {
            let uri = pipeline::insert_chk_tracked(net, bytes, options, parallel, &manifest_progress).await?;
            counter.blocks.fetch_add(1, Ordering::Relaxed);
            Uri::Chk(uri)
        }
        Some(ins) => {
            let uri = pipeline::insert_signed_tracked(net, ins, bytes, options, parallel, &manifest_progress).await?;
            counter.blocks.fetch_add(1, Ordering::Relaxed);
            Uri::SskRequest(uri)
        }
    };
    Ok(SiteInserted {
        uri,
        blocks_inserted: counter.blocks.load(Ordering::Relaxed),
        files_reused: reused,
        files: count,
        retries: counter.retries.load(Ordering::Relaxed),
        displaced: counter.displaced.load(Ordering::Relaxed),
    })
}

/// A file found through a URI and a path.
#[derive(Debug)]
pub struct Located {
    /// The file (its MIME type from the site manifest when it is in a site).
    pub document: Document,
    /// The edition fetched, for a USK.
    pub edition: Option<u64>,
    /// The URI named a site (the path was looked up in its manifest).
    pub in_site: bool,
    /// Block requests sent to the network.
    pub requests: usize,
    /// Of those, blocks the network could not find (FEC filled in).
    pub not_found: usize,
}

/// Turns a fetched document and the path that followed its key into the file they name:
/// for a site, the manifest's file at `path` (`None` or `""`: the default document),
/// fetched if it is not inline; for any other document, the document itself when the path
/// is empty or one segment (a file-name hint), else [`SiteError::NotASite`].
pub async fn resolve<N: BlockNetwork>(
    net: &Arc<N>,
    fetched: Fetched,
    path: Option<&str>,
    options: &FetchOptions,
) -> Result<Located, PipelineError> {
    resolve_with_progress(net, fetched, path, options, &|_| {}).await
}

/// [`resolve`], reporting the progress of the file's own fetch (for a site file stored
/// outside the manifest) to `progress`.
pub async fn resolve_with_progress<N: BlockNetwork>(
    net: &Arc<N>,
    fetched: Fetched,
    path: Option<&str>,
    options: &FetchOptions,
    progress: &(dyn Fn(super::splitfile::Progress) + Sync),
) -> Result<Located, PipelineError> {
    let edition = fetched.edition;
    let (mut requests, mut not_found) = (fetched.requests, fetched.not_found);
    if !SiteManifest::is_site(&fetched.document.data) {
        return match path {
            Some(p) if p.contains('/') => Err(ClientError::from(SiteError::NotASite).into()),
            _ => Ok(Located { document: fetched.document, edition, in_site: false, requests, not_found }),
        };
    }
    let manifest = SiteManifest::from_bytes(&fetched.document.data).map_err(ClientError::from)?;
    let file = manifest.lookup(path.unwrap_or("")).map_err(ClientError::from)?;
    let name = file.path.rsplit('/').next().map(str::to_owned);
    let data = match (&file.body, file.chk()) {
        (SiteBody::Inline(data), _) => data.clone(),
        (SiteBody::Chk(_), Some(chk)) => {
            let f = pipeline::fetch(net, &Uri::Chk(chk), options, progress).await?;
            requests += f.requests;
            not_found += f.not_found;
            pipeline::heal(net, f.heal).await;
            if site::sha256(&f.document.data) != file.sha256 {
                return Err(ClientError::HashMismatch.into());
            }
            f.document.data
        }
        (SiteBody::Chk(_), None) => return Err(ClientError::from(SiteError::Malformed("bad file key")).into()),
    };
    let document = Document { data, name, mime: Some(file.mime.clone()) };
    Ok(Located { document, edition, in_site: true, requests, not_found })
}

/// A fetched site manifest as it is (checked, so a mirror can trust its paths), for
/// `pamphlet fetch --site`; [`SiteError::NotASite`] when the document is not a site.
pub fn manifest_of(fetched: Fetched) -> Result<Located, PipelineError> {
    SiteManifest::from_bytes(&fetched.document.data).map_err(ClientError::from)?;
    let document = Document { data: fetched.document.data, name: None, mime: Some(SITE_MIME.to_owned()) };
    Ok(Located {
        document,
        edition: fetched.edition,
        in_site: true,
        requests: fetched.requests,
        not_found: fetched.not_found,
    })
}

/// Fetches a site's manifest, if `uri` names one (for reusing keys in a new edition).
pub async fn fetch_manifest<N: BlockNetwork>(net: &Arc<N>, uri: &Uri) -> Option<SiteManifest> {
    let f = pipeline::fetch(net, uri, &FetchOptions::default(), &|_| {}).await.ok()?;
    SiteManifest::from_bytes(&f.document.data).ok()
}

#[cfg(test)]
mod tests {
    use pamphlet_crypto::{CryptoKey, SskPrivateKey};

    use super::*;
    use crate::client::memory_net::MemoryNetwork;

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        use rand::{RngCore, SeedableRng};
        let mut v = vec![0u8; len];
        rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut v);
        v
    }

    fn files(seed: u64) -> Vec<(String, Vec<u8>)> {
        vec![
            ("index.html".into(), b"<h1>home</h1><a href=about/team.html>team</a>".to_vec()),
            ("about/team.html".into(), b"<p>the team</p>".to_vec()),
            ("img/big.png".into(), [b"\x89PNG\r\n\x1a\n".as_slice(), &noise(100_000, 1)].concat()),
            ("data/log.bin".into(), noise(200_000, seed)),
        ]
    }

    async fn get(net: &Arc<MemoryNetwork>, text: &str) -> Result<Located, PipelineError> {
        let (uri, path) = pamphlet_crypto::uri::split_site_path(text).unwrap();
        let fetched = pipeline::fetch(net, &uri, &FetchOptions::default(), &|_| {}).await?;
        resolve(net, fetched, path.as_deref(), &FetchOptions::default()).await
    }

    #[tokio::test]
    async fn a_chk_site_serves_its_files() {
        let net = Arc::new(MemoryNetwork::default());
        let done = insert_site(&net, files(2), None, None, 4).await.unwrap();
        let root = done.uri.to_string();
        let index = get(&net, &root).await.unwrap();
        assert!(index.in_site && index.document.data.starts_with(b"<h1>home"));
        assert_eq!(index.document.mime.as_deref(), Some("text/html"));
        let team = get(&net, &format!("{root}/about/team.html")).await.unwrap();
        assert_eq!(team.document.data, b"<p>the team</p>");
        let big = get(&net, &format!("{root}/img/big.png")).await.unwrap();
        assert_eq!((big.document.data.len(), big.document.mime.as_deref()), (100_008, Some("image/png")));
        let missing = get(&net, &format!("{root}/nope.html")).await.unwrap_err();
        assert!(matches!(missing, PipelineError::Client(ClientError::Site(SiteError::NoSuchFile(_)))), "{missing}");
        assert!(get(&net, &format!("{root}/../x")).await.is_err());
    }

    /// A site's retries and displaced blocks are those of all its documents (the job
    /// status reported 0 for both, whatever happened).
    #[tokio::test]
    async fn a_site_counts_retries_and_displaced_blocks_over_its_documents() {
        use crate::client::memory_net::Flaky;
        use crate::node::Failure;
        let net = Arc::new(MemoryNetwork {
            flaky: Flaky::new(Failure::TimedOut { htl_left: None, peers_tried: 1 }, 1, []),
            displace: true,
            ..MemoryNetwork::default()
        });
        let seen = std::sync::Mutex::new(InsertProgress::default());
        let done = insert_site_tracked(&net, files(2), None, None, 4, &|p| *seen.lock().unwrap() = p).await.unwrap();
        // Every block failed once (every key flaky, once) and was stored displaced.
        assert_eq!(done.retries, done.blocks_inserted, "{done:?}");
        assert_eq!(done.displaced, done.blocks_inserted, "{done:?}");
        let last = *seen.lock().unwrap();
        assert!(last.retries > 0 && last.displaced > 0, "progress carried them too: {last:?}");
    }

    #[tokio::test]
    async fn a_new_edition_inserts_only_what_changed() {
        let net = Arc::new(MemoryNetwork::default());
        let ins = SskInsertUri::new(SskPrivateKey::from_seed([7; 32]), CryptoKey::from_bytes([8; 32]), "site", 1, true);
        let first = insert_site(&net, files(2), Some(ins.clone()), None, 4).await.unwrap();
        let previous = fetch_manifest(&net, &first.uri).await.unwrap();
        // One file changes (the 200 kB one); the 100 kB image stays.
        let second = insert_site(&net, files(3), Some(ins.with_edition(2)), Some(&previous), 4).await.unwrap();
        // The figures docs/gateway.md reports: edition 1 is the 100 kB image (4 data + 2
        // check + top), the 200 kB file (7 + 4 + top) and the signed block; edition 2 sends
        // only the changed file and the signed block.
        assert_eq!((first.blocks_inserted, second.blocks_inserted), (20, 13));
        assert_eq!(second.files_reused, 1);
        assert!(
            second.blocks_inserted < first.blocks_inserted,
            "{} vs {}",
            second.blocks_inserted,
            first.blocks_inserted
        );
        // The USK finds the newest edition, and its files.
        let usk = ins.request_uri().with_edition(1).to_string();
        let got = get(&net, &format!("{usk}/about/team.html")).await.unwrap();
        assert_eq!(got.edition, Some(2));
        let log = get(&net, &format!("{usk}/data/log.bin")).await.unwrap();
        assert_eq!(log.document.data, noise(200_000, 3));
    }
}
