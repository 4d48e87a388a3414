//! Keeping a document alive (issue 20; what Hyphanet users do with the KeepAlive plugin):
//! ask the network for every block of the document, data and check blocks alike, rebuild
//! with FEC the ones it no longer has, and insert those again, so that a document that has
//! been losing blocks to churn and full stores is whole again before it drops below what
//! FEC can rebuild. A site is kept alive file by file (its manifest, then every file stored
//! outside it).
//!
//! A plain fetch asks for only `k` blocks per segment and heals only the ones it asked for
//! and missed; keepalive's probes are the cost of knowing: one request per block of the
//! document, and one insert per block reinserted ([`KeptAlive`] counts both). It runs in
//! the background of a node's work: its probes start with the caller's `parallel` in
//! flight (not a fetch's `FIRST_WINDOW`) and follow the path from there, and its
//! reinserts go one at a time.

use std::sync::Arc;

use pamphlet_crypto::Uri;
use serde::{Deserialize, Serialize};

use super::pipeline::{self, BlockNetwork, FetchOptions, PipelineError};
use super::site::{SiteBody, SiteManifest};
use super::site_transfer::SITE_MIME;
use super::splitfile::Progress;

/// What one keepalive found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptAlive {
    /// Documents probed: 1, or for a site its manifest and every file stored outside it.
    pub documents: usize,
    /// Block requests sent (every block of every document, plus retries).
    pub probed: usize,
    /// Blocks the network could not find, rebuilt with FEC.
    pub missing: usize,
    /// Of those, blocks the network took again.
    pub reinserted: usize,
}

impl KeptAlive {
    fn add(&mut self, other: Self) {
        self.documents += other.documents;
        self.probed += other.probed;
        self.missing += other.missing;
        self.reinserted += other.reinserted;
    }
}

/// Keeps the document (or site) `uri` names alive; `progress` hears the blocks of the
/// document being probed. Fails like a fetch when a document cannot be rebuilt at all
/// (too many blocks are gone: keepalive came too late for it).
pub async fn keepalive<N: BlockNetwork>(
    net: &Arc<N>,
    uri: &Uri,
    parallel: usize,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<KeptAlive, PipelineError> {
    let options = FetchOptions { parallel, partial_dir: None };
    let fetched = pipeline::fetch_probing(net, uri, &options, true, progress).await?;
    let is_site = fetched.document.mime.as_deref() == Some(SITE_MIME);
    let missing = fetched.heal.len();
    let mut done = KeptAlive { documents: 1, probed: fetched.requests, missing, reinserted: 0 };
    done.reinserted = pipeline::heal(net, fetched.heal).await;
    if is_site {
        let manifest = SiteManifest::from_bytes(&fetched.document.data).map_err(super::ClientError::from)?;
        for file in &manifest.files {
            if let SiteBody::Chk(text) = &file.body {
                let file_uri = Uri::parse(text).map_err(|e| super::ClientError::BadOption(e.to_string()))?;
                let f = pipeline::fetch_probing(net, &file_uri, &options, true, progress).await?;
                let missing = f.heal.len();
                let probed = f.requests;
                let reinserted = pipeline::heal(net, f.heal).await;
                done.add(KeptAlive { documents: 1, probed, missing, reinserted });
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use pamphlet_crypto::{Block, BlockKind, RoutingKey};

    use super::*;
    use crate::client::memory_net::MemoryNetwork;
    use crate::client::site_transfer::insert_site;
    use crate::client::splitfile::InsertOptions;

    /// Removes every `nth` block from the network but `keep`; returns how many went.
    fn lose_every(net: &MemoryNetwork, nth: usize, keep: &[RoutingKey]) -> usize {
        let mut blocks = net.blocks.lock().unwrap();
        let mut keys: Vec<_> = blocks.keys().copied().filter(|k| !keep.contains(k)).collect();
        keys.sort_by_key(|k| k.0);
        let gone: Vec<_> = keys.into_iter().step_by(nth).collect();
        for k in &gone {
            blocks.remove(k);
        }
        gone.len()
    }

    fn held(net: &MemoryNetwork) -> usize {
        net.blocks.lock().unwrap().len()
    }

    #[tokio::test]
    async fn a_document_that_lost_blocks_is_whole_again() {
        let net = Arc::new(MemoryNetwork::default());
        let data: Vec<u8> = (0..40 * 32 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let options = InsertOptions { compress: false, ..InsertOptions::default() };
        let top = pipeline::insert_chk(&net, data.clone(), options, 4, &|_, _| {}).await.unwrap();
        let all = held(&net);
        // Not the top block: without it there is nothing to rebuild from (its URI names it).
        let lost = lose_every(&net, 4, &[top.routing_key]);
        assert!(lost > 0);
        let uri = Uri::Chk(top);
        let kept = keepalive(&net, &uri, 4, &|_| {}).await.unwrap();
        assert_eq!(kept.missing, lost, "{kept:?}");
        assert_eq!(kept.reinserted, lost);
        assert_eq!(held(&net), all, "every block is back");
        // Nothing to do the second time.
        let again = keepalive(&net, &uri, 4, &|_| {}).await.unwrap();
        assert_eq!((again.missing, again.reinserted), (0, 0));
        let f = pipeline::fetch(&net, &uri, &FetchOptions::default(), &|_| {}).await.unwrap();
        assert_eq!(f.document.data, data);
    }

    #[tokio::test]
    async fn a_site_is_kept_alive_file_by_file() {
        let net = Arc::new(MemoryNetwork::default());
        // Random bytes: they do not compress, so the file is a splitfile of several blocks.
        let mut big = vec![0u8; 200_000];
        rand::RngCore::fill_bytes(&mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(7), &mut big);
        let files = vec![("index.html".to_owned(), b"<p>hi</p>".to_vec()), ("big.bin".to_owned(), big)];
        let site = insert_site(&net, files, None, None, 4).await.unwrap();
        let Uri::Chk(top) = &site.uri else { panic!("a CHK site") };
        let all = held(&net);
        // Lose one block of the big file: not its top block, nor the site's.
        let f = pipeline::fetch(&net, &site.uri, &FetchOptions::default(), &|_| {}).await.unwrap();
        let manifest = SiteManifest::from_bytes(&f.document.data).unwrap();
        let big_top = manifest
            .files
            .iter()
            .find_map(|f| match &f.body {
                SiteBody::Chk(text) => Some(Uri::parse(text)),
                SiteBody::Inline(_) => None,
            })
            .unwrap();
        let Ok(Uri::Chk(big_top)) = big_top else { panic!("{big_top:?}") };
        let victim = {
            let blocks = net.blocks.lock().unwrap();
            let keep = [top.routing_key, big_top.routing_key];
            *blocks.keys().find(|k| !keep.contains(k) && matches!(blocks[k], Block::Chk(_))).unwrap()
        };
        net.blocks.lock().unwrap().remove(&victim);
        let kept = keepalive(&net, &site.uri, 4, &|_| {}).await.unwrap();
        assert_eq!(kept.documents, 2, "the manifest and the big file");
        assert_eq!((kept.missing, kept.reinserted), (1, 1), "{kept:?}");
        assert_eq!(held(&net), all);
        assert!(net.blocks.lock().unwrap().get(&victim).is_some_and(|b| b.kind() == BlockKind::Chk));
    }
}
