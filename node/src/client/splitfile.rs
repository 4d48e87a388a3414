//! Splitfiles: a document of any size as CHK blocks, a manifest, and one top URI.
//!
//! Inserting is a pure function ([`encode`]) from bytes to blocks. Fetching is a sans-IO
//! state machine ([`Fetch`]): it says which blocks it wants ([`Fetch::next_requests`]), is
//! told what arrived or could not be found, rebuilds segments with FEC as soon as any `k`
//! of their blocks are in, checks the whole-document hash, and lists the blocks it had to
//! rebuild so they can be inserted again ([`Fetch::heal`]). Whoever drives it decides how
//! many requests run in parallel; feeding it blocks a previous run already fetched resumes
//! that run without asking the network again.

use std::collections::{HashMap, HashSet};

use pamphlet_crypto::{chk, ChkBlock, ChkFlags, ChkUri, RoutingKey, CHK_PAYLOAD_LEN};
use sha2::{Digest, Sha256};

use super::compress;
use super::fec::{self, SHARD_LEN};
use super::manifest::{BlockRef, Body, Compression, Manifest, Segment, MANIFEST_VERSION, MAX_DEPTH, MAX_LABEL};
use super::ClientError;

/// Largest document a fetch accepts (and an insert produces): what a manifest claims is
/// checked against it before any block is requested, so a hostile manifest cannot make a
/// fetcher download or inflate more than this.
pub const MAX_DOCUMENT_BYTES: u64 = 1 << 30;
/// Largest serialized manifest followed one level down (a nested manifest).
const MAX_MANIFEST_BYTES: u64 = CHK_PAYLOAD_LEN as u64 * 1024;

/// What a publisher chooses about an insert.
#[derive(Clone, Debug, PartialEq)]
pub struct InsertOptions {
    /// File name to record in the manifest (shown to fetchers).
    pub name: Option<String>,
    /// MIME type to record in the manifest.
    pub mime: Option<String>,
    /// Check blocks per data block (0 disables FEC); see [`fec::DEFAULT_REDUNDANCY`].
    pub redundancy: f64,
    /// Compress the document first when that makes it smaller (see [`compress`]).
    pub compress: bool,
}

impl Default for InsertOptions {
    fn default() -> Self {
        Self { name: None, mime: None, redundancy: fec::DEFAULT_REDUNDANCY, compress: true }
    }
}

/// The result of encoding a document: every block to insert, and the URI that fetches it.
#[derive(Debug)]
pub struct Encoded {
    /// The URI of the top manifest block; what the publisher hands out.
    pub top: ChkUri,
    /// Every block (data, check, nested manifests, top), top last.
    pub blocks: Vec<ChkBlock>,
}

/// Encodes `data` as a splitfile: data and check blocks, manifests, and the top URI.
/// Deterministic: the same bytes and options give the same URI (convergent encryption).
pub fn encode(data: &[u8], options: &InsertOptions) -> Result<Encoded, ClientError> {
    if !(0.0..=fec::MAX_REDUNDANCY).contains(&options.redundancy) {
        return Err(ClientError::BadOption(format!("redundancy must be between 0 and {}", fec::MAX_REDUNDANCY)));
    }
    for label in [&options.name, &options.mime].into_iter().flatten() {
        if label.len() > MAX_LABEL {
            return Err(ClientError::BadOption(format!("name and MIME type must be at most {MAX_LABEL} bytes")));
        }
    }
    let mut blocks = Vec::new();
    let (mut content, mut compression) = match options.compress.then(|| compress::maybe_compress(data)).flatten() {
        Some(packed) => (packed, Compression::Deflate { len: data.len() as u64 }),
        None => (data.to_vec(), Compression::None),
    };
    let (mut name, mut mime, mut nested) = (options.name.clone(), options.mime.clone(), false);
    for _ in 0..=MAX_DEPTH {
        let sha256: [u8; 32] = Sha256::digest(&content).into();
        let small = content.len() <= CHK_PAYLOAD_LEN;
        let inline = Manifest {
            version: MANIFEST_VERSION,
            nested,
            name: name.clone(),
            mime: mime.clone(),
            sha256,
            compression,
            body: Body::Inline(if small { content.clone() } else { Vec::new() }),
        };
        // Only content that could fit is worth serializing to find out whether it does.
        let manifest = if small && inline.to_bytes().len() <= CHK_PAYLOAD_LEN {
            inline
        } else {
            let segments = split(&content, options.redundancy, &mut blocks)?;
            Manifest { body: Body::Split { len: content.len() as u64, segments }, ..inline }
        };
        let bytes = manifest.to_bytes();
        if bytes.len() <= CHK_PAYLOAD_LEN {
            let (block, top) = chk::encode(&bytes, ChkFlags { manifest: true, compressed: false })?;
            blocks.push(block);
            return Ok(Encoded { top, blocks });
        }
        // The manifest itself is too big for one block: store it as content one level down.
        content = bytes;
        (name, mime, nested, compression) = (None, None, true, Compression::None);
    }
    Err(ClientError::BadOption("document too large".into()))
}

/// Splits `content` into FEC segments, appending their blocks to `blocks`.
fn split(content: &[u8], redundancy: f64, blocks: &mut Vec<ChkBlock>) -> Result<Vec<Segment>, ClientError> {
    let mut shards = content.chunks(SHARD_LEN).map(|c| {
        let mut s = c.to_vec();
        s.resize(SHARD_LEN, 0);
        s
    });
    let mut segments = Vec::new();
    for (k, m) in fec::plan(content.len().div_ceil(SHARD_LEN), redundancy) {
        let data: Vec<Vec<u8>> = shards.by_ref().take(k).collect();
        let check = fec::encode(&data, m)?;
        let mut refs = |shards: &[Vec<u8>]| -> Result<Vec<BlockRef>, ClientError> {
            shards
                .iter()
                .map(|s| {
                    let (block, uri) = chk::encode(s, ChkFlags::default())?;
                    blocks.push(block);
                    Ok(BlockRef::of(&uri))
                })
                .collect()
        };
        segments.push(Segment { data: refs(&data)?, check: refs(&check)? });
    }
    Ok(segments)
}

/// A fetched document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The document's bytes, verified against the manifest's hash.
    pub data: Vec<u8>,
    /// The file name the publisher recorded.
    pub name: Option<String>,
    /// The MIME type the publisher recorded.
    pub mime: Option<String>,
}

/// How far a fetch has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Blocks received and decoded at the current level.
    pub blocks_have: usize,
    /// Blocks needed to finish the current level (data blocks of every segment).
    pub blocks_needed: usize,
    /// Blocks that could not be found so far.
    pub blocks_failed: usize,
    /// Manifest level being fetched (0 = top).
    pub depth: u8,
    /// Requests sent again for blocks whose request timed out or found no route (counted
    /// by the driver that sends them, `client::retry`; 0 from [`Fetch::progress`]).
    pub retries: usize,
}

/// A segment being fetched.
#[derive(Debug)]
struct SegmentFetch {
    refs: Segment,
    data: HashMap<usize, Vec<u8>>,
    check: HashMap<usize, Vec<u8>>,
    requested: HashSet<usize>,
    failed: HashSet<usize>,
    /// The rebuilt data shards, once any k blocks are in.
    done: Option<Vec<Vec<u8>>>,
}

impl SegmentFetch {
    fn k(&self) -> usize {
        self.refs.data.len()
    }

    fn have(&self) -> usize {
        self.data.len() + self.check.len()
    }

    /// Block `i` of the segment: data blocks first, then check blocks.
    fn block(&self, i: usize) -> &BlockRef {
        let k = self.k();
        if i < k {
            &self.refs.data[i]
        } else {
            &self.refs.check[i - k]
        }
    }

    fn total(&self) -> usize {
        self.refs.data.len() + self.refs.check.len()
    }
}

#[derive(Debug)]
enum Stage {
    /// Waiting for a single block: the top manifest, or a plain (non-manifest) CHK.
    Single { uri: ChkUri, requested: bool, manifest: bool },
    /// Fetching the segments a manifest lists.
    Split {
        manifest: Manifest,
        len: u64,
        segments: Vec<SegmentFetch>,
        /// Where each key occurs: identical shards (runs of zeros, repeated chunks) share a
        /// block, so one block can fill several places.
        by_key: HashMap<RoutingKey, Vec<(usize, usize)>>,
    },
    /// Finished.
    Done(Document),
}

/// The fetch of one document, as a state machine. See the module documentation.
#[derive(Debug)]
pub struct Fetch {
    stage: Stage,
    depth: u8,
    /// Blocks that had to be rebuilt with FEC, re-encoded for healing.
    healed: Vec<ChkBlock>,
    /// Ask for every block of every segment, not just enough to rebuild it, and rebuild a
    /// segment only when every block has been answered, so [`Fetch::heal`] lists every
    /// block the network lacks ([`Fetch::probing_every_block`], what keepalive uses).
    probe_all: bool,
}

impl Fetch {
    /// Starts fetching the document `top` names. A URI with the `manifest` flag names a
    /// manifest; one without names a single raw block.
    pub fn new(top: ChkUri) -> Self {
        let manifest = top.flags.manifest;
        Self {
            stage: Stage::Single { uri: top, requested: false, manifest },
            depth: 0,
            healed: Vec::new(),
            probe_all: false,
        }
    }

    /// Like [`Fetch::new`], but asks for every data and check block of every segment (of
    /// nested manifests too), so that [`Fetch::heal`] ends up listing every block of the
    /// document that the network could not find, rebuilt for reinsertion. A segment is
    /// rebuilt once every one of its blocks has been answered.
    pub fn probing_every_block(top: ChkUri) -> Self {
        Self { probe_all: true, ..Self::new(top) }
    }

    /// Whether segment `seg` can be rebuilt now.
    fn ready(probe_all: bool, seg: &SegmentFetch) -> bool {
        seg.have() >= seg.k() && (!probe_all || seg.have() + seg.failed.len() == seg.total())
    }

    /// Up to `max` more block URIs to request now. Each is returned once; a block reported
    /// [`Fetch::on_not_found`] makes the fetch ask for a check block instead.
    pub fn next_requests(&mut self, max: usize) -> Vec<ChkUri> {
        let mut out = Vec::new();
        match &mut self.stage {
            Stage::Single { uri, requested, .. } => {
                if !*requested && max > 0 {
                    *requested = true;
                    out.push(uri.clone());
                }
            }
            Stage::Split { segments, .. } => {
                for seg in segments.iter_mut().filter(|s| s.done.is_none()) {
                    let pending = seg.requested.len().saturating_sub(seg.have() + seg.failed.len());
                    let enough = if self.probe_all { seg.total() } else { seg.k() };
                    let mut want =
                        enough.saturating_sub(seg.have() + pending + if self.probe_all { seg.failed.len() } else { 0 });
                    let mut i = 0;
                    while want > 0 && out.len() < max && i < seg.total() {
                        if seg.requested.insert(i) {
                            out.push(seg.block(i).uri());
                            want -= 1;
                        }
                        i += 1;
                    }
                    if out.len() >= max {
                        break;
                    }
                }
            }
            Stage::Done(_) => {}
        }
        out
    }

    /// A block arrived for a URI this fetch asked for. The block is decoded here, so a block
    /// that does not match is an error, not data.
    pub fn on_block(&mut self, key: &RoutingKey, block: &ChkBlock) -> Result<(), ClientError> {
        match &mut self.stage {
            Stage::Single { uri, manifest, .. } if uri.routing_key == *key => {
                let plain = chk::decode(block, uri)?;
                if *manifest {
                    let m = Manifest::from_bytes(&plain)?;
                    self.enter(m)
                } else {
                    self.stage = Stage::Done(Document { data: plain, name: uri.name.clone(), mime: None });
                    Ok(())
                }
            }
            Stage::Split { segments, by_key, .. } => {
                let Some(places) = by_key.get(key) else { return Ok(()) };
                let mut complete = Vec::new();
                for &(s, i) in places {
                    let seg = &mut segments[s];
                    if seg.done.is_some() {
                        continue;
                    }
                    let shard = chk::decode(block, &seg.block(i).uri())?;
                    if shard.len() != SHARD_LEN {
                        return Err(ClientError::BadManifest("splitfile block is not a full shard"));
                    }
                    let k = seg.k();
                    seg.requested.insert(i);
                    seg.failed.remove(&i);
                    if i < k {
                        seg.data.insert(i, shard);
                    } else {
                        seg.check.insert(i - k, shard);
                    }
                    if Self::ready(self.probe_all, seg) && !complete.contains(&s) {
                        complete.push(s);
                    }
                }
                for s in complete {
                    self.rebuild(s)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// A block this fetch asked for could not be found. Returns an error once some segment
    /// can no longer be rebuilt (or the single block is missing).
    pub fn on_not_found(&mut self, key: &RoutingKey) -> Result<(), ClientError> {
        match &mut self.stage {
            Stage::Single { uri, .. } if uri.routing_key == *key => Err(ClientError::NotFound { missing: 1, of: 1 }),
            Stage::Split { segments, by_key, .. } => {
                let Some(places) = by_key.get(key) else { return Ok(()) };
                let mut complete = Vec::new();
                for &(s, i) in places {
                    let seg = &mut segments[s];
                    let k = seg.k();
                    let have = if i < k { seg.data.contains_key(&i) } else { seg.check.contains_key(&(i - k)) };
                    if seg.done.is_some() || have {
                        continue;
                    }
                    seg.failed.insert(i);
                    seg.requested.insert(i);
                    if seg.total() - seg.failed.len() < seg.k() {
                        return Err(ClientError::NotFound { missing: seg.failed.len(), of: seg.total() });
                    }
                    // Probing every block, the last answer of a segment may be a miss.
                    if self.probe_all && Self::ready(true, seg) && !complete.contains(&s) {
                        complete.push(s);
                    }
                }
                for s in complete {
                    self.rebuild(s)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The document, once the fetch is complete.
    pub fn document(&self) -> Option<&Document> {
        match &self.stage {
            Stage::Done(d) => Some(d),
            _ => None,
        }
    }

    /// Takes the finished document out of the fetch.
    pub fn into_document(self) -> Option<Document> {
        match self.stage {
            Stage::Done(d) => Some(d),
            _ => None,
        }
    }

    /// Blocks that were not found but were rebuilt from the others: insert them again so
    /// the next fetcher finds them (healing).
    pub fn heal(&self) -> &[ChkBlock] {
        &self.healed
    }

    /// How far the fetch has come.
    pub fn progress(&self) -> Progress {
        let mut p = Progress { depth: self.depth, ..Progress::default() };
        match &self.stage {
            Stage::Single { .. } => p.blocks_needed = 1,
            Stage::Split { segments, .. } => {
                for s in segments {
                    p.blocks_needed += s.k();
                    p.blocks_have += if s.done.is_some() { s.k() } else { s.have().min(s.k()) };
                    p.blocks_failed += s.failed.len();
                }
            }
            Stage::Done(_) => (p.blocks_have, p.blocks_needed) = (1, 1),
        }
        p
    }

    /// Moves to the content a manifest describes.
    fn enter(&mut self, manifest: Manifest) -> Result<(), ClientError> {
        if let Compression::Deflate { len } = manifest.compression {
            if len > MAX_DOCUMENT_BYTES {
                return Err(ClientError::BadManifest("the document is larger than this node fetches"));
            }
        }
        match &manifest.body {
            Body::Inline(data) => {
                let data = data.clone();
                self.complete(manifest, data)
            }
            Body::Split { len, segments } => {
                let limit = if manifest.nested { MAX_MANIFEST_BYTES } else { MAX_DOCUMENT_BYTES };
                if *len > limit {
                    return Err(ClientError::BadManifest("the document is larger than this node fetches"));
                }
                let mut by_key = HashMap::new();
                let fetches = segments
                    .iter()
                    .enumerate()
                    .map(|(s, seg)| {
                        for (i, r) in seg.data.iter().chain(&seg.check).enumerate() {
                            by_key.entry(RoutingKey(r.routing_key)).or_insert_with(Vec::new).push((s, i));
                        }
                        SegmentFetch {
                            refs: seg.clone(),
                            data: HashMap::new(),
                            check: HashMap::new(),
                            requested: HashSet::new(),
                            failed: HashSet::new(),
                            done: None,
                        }
                    })
                    .collect();
                let len = *len;
                self.stage = Stage::Split { manifest, len, segments: fetches, by_key };
                self.finish_if_complete()
            }
        }
    }

    /// Rebuilds segment `s` from any k of its blocks and records healing blocks.
    fn rebuild(&mut self, s: usize) -> Result<(), ClientError> {
        let Stage::Split { segments, .. } = &mut self.stage else { return Ok(()) };
        let seg = &mut segments[s];
        let (k, m) = (seg.k(), seg.refs.check.len());
        let data = fec::recover(k, m, &seg.data, &seg.check)?;
        for (i, shard) in data.iter().enumerate() {
            if seg.failed.contains(&i) {
                let (block, uri) = chk::encode(shard, ChkFlags::default())?;
                if BlockRef::of(&uri) != seg.refs.data[i] {
                    return Err(ClientError::BadManifest("rebuilt block does not match the manifest"));
                }
                self.healed.push(block);
            }
        }
        if seg.failed.iter().any(|&i| i >= k) {
            let check = fec::encode(&data, m)?;
            for &i in seg.failed.iter().filter(|&&i| i >= k) {
                let (block, uri) = chk::encode(&check[i - k], ChkFlags::default())?;
                if BlockRef::of(&uri) == seg.refs.check[i - k] {
                    self.healed.push(block);
                }
            }
        }
        seg.data.clear();
        seg.check.clear();
        seg.done = Some(data);
        self.finish_if_complete()
    }

    fn finish_if_complete(&mut self) -> Result<(), ClientError> {
        let Stage::Split { segments, len, manifest, .. } = &mut self.stage else { return Ok(()) };
        if segments.iter().any(|s| s.done.is_none()) {
            return Ok(());
        }
        let mut data = Vec::with_capacity(*len as usize);
        for s in segments.iter_mut() {
            for shard in s.done.take().unwrap_or_default() {
                data.extend_from_slice(&shard);
            }
        }
        data.truncate(*len as usize);
        let manifest = manifest.clone();
        self.complete(manifest, data)
    }

    fn complete(&mut self, manifest: Manifest, data: Vec<u8>) -> Result<(), ClientError> {
        if <[u8; 32]>::from(Sha256::digest(&data)) != manifest.sha256 {
            return Err(ClientError::HashMismatch);
        }
        if manifest.nested {
            if self.depth >= MAX_DEPTH {
                return Err(ClientError::BadManifest("manifests nested too deep"));
            }
            self.depth += 1;
            let inner = Manifest::from_bytes(&data)?;
            return self.enter(inner);
        }
        let data = match manifest.compression {
            Compression::None => data,
            Compression::Deflate { len } => compress::decompress(&data, len)?,
        };
        self.stage = Stage::Done(Document { data, name: manifest.name, mime: manifest.mime });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Drives a fetch against a map of blocks; returns the result and how many blocks were
    /// requested.
    fn fetch(top: &ChkUri, blocks: &HashMap<RoutingKey, ChkBlock>) -> (Result<Document, ClientError>, Fetch, usize) {
        drive(Fetch::new(top.clone()), blocks)
    }

    fn drive(mut f: Fetch, blocks: &HashMap<RoutingKey, ChkBlock>) -> (Result<Document, ClientError>, Fetch, usize) {
        let mut asked = 0;
        loop {
            if f.document().is_some() {
                let doc = f.document().cloned().ok_or(ClientError::HashMismatch);
                return (doc, f, asked);
            }
            let reqs = f.next_requests(16);
            if reqs.is_empty() {
                return (Err(ClientError::BadManifest("stalled")), f, asked);
            }
            for uri in reqs {
                asked += 1;
                let r = match blocks.get(&uri.routing_key) {
                    Some(b) => f.on_block(&uri.routing_key, b),
                    None => f.on_not_found(&uri.routing_key),
                };
                if let Err(e) = r {
                    return (Err(e), f, asked);
                }
            }
        }
    }

    fn store(e: &Encoded) -> HashMap<RoutingKey, ChkBlock> {
        e.blocks.iter().map(|b| (b.routing_key(), b.clone())).collect()
    }

    /// A manifest with nothing but `body` (no name, no compression, a zero hash), for
    /// tests that hand-craft bad manifests.
    fn bare_manifest(body: Body) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            nested: false,
            name: None,
            mime: None,
            sha256: [0; 32],
            compression: Compression::None,
            body,
        }
    }

    /// Seeded random bytes: incompressible and without repeated shards, so block counts are
    /// those of the FEC layout alone.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        use rand::{RngCore, SeedableRng};
        let mut v = vec![0u8; len];
        rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(seed)).fill_bytes(&mut v);
        v
    }

    #[test]
    fn round_trip_sizes() {
        for len in [0, 1, 1000, CHK_PAYLOAD_LEN, CHK_PAYLOAD_LEN + 1, 129 * SHARD_LEN + 5] {
            let data = pattern(len, 1);
            let opts = InsertOptions { name: Some("f.bin".into()), ..InsertOptions::default() };
            let e = encode(&data, &opts).unwrap();
            let (doc, _, _) = fetch(&e.top, &store(&e));
            let doc = doc.unwrap_or_else(|err| panic!("len {len}: {err}"));
            assert_eq!(doc.data, data, "len {len}");
            assert_eq!(doc.name.as_deref(), Some("f.bin"));
        }
    }

    #[test]
    fn repeated_shards_share_blocks() {
        // 12 identical all-zero shards and a 1-block segment whose check shard equals its
        // data shard: one block fills many places, and the fetch still completes.
        for len in [12 * SHARD_LEN, SHARD_LEN] {
            let data = vec![0u8; len];
            let e = encode(&data, &InsertOptions::default()).unwrap();
            let (doc, _, _) = fetch(&e.top, &store(&e));
            assert_eq!(doc.unwrap().data, data, "len {len}");
        }
    }

    #[test]
    fn compressible_documents_shrink_and_round_trip() {
        let text = "pamphlet: a small leaflet or booklet. ".repeat(30_000).into_bytes();
        let e = encode(&text, &InsertOptions::default()).unwrap();
        assert!(e.blocks.len() < 3, "{} blocks for highly compressible text", e.blocks.len());
        let (doc, _, _) = fetch(&e.top, &store(&e));
        assert_eq!(doc.unwrap().data, text);
        let raw = encode(&text, &InsertOptions { compress: false, ..InsertOptions::default() }).unwrap();
        assert!(raw.blocks.len() > 30);
        assert_ne!(raw.top, e.top);
    }

    #[test]
    fn oversized_claims_are_refused_before_any_block_is_requested() {
        for (compression, body) in [
            (Compression::None, Body::Split { len: MAX_DOCUMENT_BYTES + 1, segments: vec![] }),
            (Compression::Deflate { len: u64::MAX }, Body::Inline(vec![1, 2, 3])),
        ] {
            let bytes = Manifest { compression, ..bare_manifest(body) }.to_bytes();
            let (block, uri) = chk::encode(&bytes, ChkFlags { manifest: true, compressed: false }).unwrap();
            let mut f = Fetch::new(uri.clone());
            f.next_requests(1);
            let r = f.on_block(&uri.routing_key, &block);
            assert!(matches!(r, Err(ClientError::BadManifest(_))), "{r:?}");
            assert!(f.next_requests(16).is_empty());
        }
    }

    #[test]
    fn small_documents_are_one_block() {
        let e = encode(b"hello", &InsertOptions::default()).unwrap();
        assert_eq!(e.blocks.len(), 1);
        assert!(e.top.flags.manifest);
    }

    #[test]
    fn convergent_uris() {
        let data = pattern(100_000, 2);
        let a = encode(&data, &InsertOptions::default()).unwrap();
        let b = encode(&data, &InsertOptions::default()).unwrap();
        assert_eq!(a.top, b.top);
    }

    #[test]
    fn large_manifests_nest() {
        // 5 check blocks per data block makes the manifest outgrow one block quickly.
        let data = pattern(120 * SHARD_LEN, 3);
        let e = encode(&data, &InsertOptions { redundancy: 4.0, ..InsertOptions::default() }).unwrap();
        let (doc, f, _) = fetch(&e.top, &store(&e));
        assert_eq!(doc.unwrap().data, data);
        assert_eq!(f.progress().depth, 1, "the manifest should have been nested once");
    }

    #[test]
    fn fec_rebuilds_missing_blocks_and_heals_them() {
        let data = pattern(10 * SHARD_LEN + 7, 4);
        let e = encode(&data, &InsertOptions::default()).unwrap();
        // One segment: 11 data blocks + 6 check blocks. Delete 6 blocks: 4 data, 2 check.
        let mut blocks = store(&e);
        let manifest = Manifest::from_bytes(&chk::decode(&blocks[&e.top.routing_key], &e.top).unwrap()).unwrap();
        let Body::Split { segments, .. } = &manifest.body else { panic!("expected a split body") };
        let seg = &segments[0];
        assert_eq!((seg.data.len(), seg.check.len()), (11, 6));
        let lost: Vec<RoutingKey> =
            [&seg.data[0], &seg.data[3], &seg.data[7], &seg.data[10], &seg.check[0], &seg.check[5]]
                .iter()
                .map(|r| RoutingKey(r.routing_key))
                .collect();
        for k in &lost {
            blocks.remove(k);
        }
        let (doc, f, _) = fetch(&e.top, &blocks);
        assert_eq!(doc.unwrap().data, data);
        let healed: HashSet<RoutingKey> = f.heal().iter().map(ChkBlock::routing_key).collect();
        for k in &lost[..4] {
            assert!(healed.contains(k), "data block {k:?} should be healed");
        }
        // One more loss than the check blocks cover: a clear error, not a wrong document.
        blocks.remove(&RoutingKey(seg.data[1].routing_key));
        blocks.remove(&RoutingKey(seg.check[1].routing_key));
        blocks.remove(&RoutingKey(seg.check[2].routing_key));
        blocks.remove(&RoutingKey(seg.check[3].routing_key));
        let (doc, _, _) = fetch(&e.top, &blocks);
        assert!(matches!(doc, Err(ClientError::NotFound { .. })), "{doc:?}");
    }

    /// Keepalive's mode: every block of every segment is asked for, and every one the
    /// network lacks (data or check) is rebuilt for reinsertion, not just the data blocks
    /// a plain fetch happened to ask for.
    #[test]
    fn probing_every_block_heals_every_missing_block() {
        let data = pattern(300 * SHARD_LEN + 9, 6);
        let e = encode(&data, &InsertOptions::default()).unwrap();
        let mut blocks = store(&e);
        let all = blocks.len();
        let manifest = Manifest::from_bytes(&chk::decode(&blocks[&e.top.routing_key], &e.top).unwrap()).unwrap();
        let Body::Split { segments, .. } = &manifest.body else { panic!("expected a split body") };
        assert!(segments.len() > 1, "several segments");
        let mut lost = HashSet::new();
        for seg in segments {
            for r in [&seg.data[1], &seg.data[2], &seg.check[0], &seg.check[seg.check.len() - 1]] {
                lost.insert(RoutingKey(r.routing_key));
            }
        }
        for k in &lost {
            blocks.remove(k);
        }
        let (doc, f, asked) = drive(Fetch::probing_every_block(e.top.clone()), &blocks);
        assert_eq!(doc.unwrap().data, data);
        assert_eq!(asked, all, "every block was asked for");
        let healed: HashSet<RoutingKey> = f.heal().iter().map(ChkBlock::routing_key).collect();
        assert_eq!(healed, lost, "exactly the missing blocks, check blocks included");
        // A plain fetch asks for less and heals only what it asked for.
        let (_, plain, plain_asked) = fetch(&e.top, &blocks);
        assert!(plain_asked < all && plain.heal().len() < lost.len());
    }

    #[test]
    fn resume_feeds_known_blocks_first() {
        let data = pattern(20 * SHARD_LEN, 5);
        let e = encode(&data, &InsertOptions::default()).unwrap();
        let blocks = store(&e);
        // A first run fetched the top and 10 blocks, then died. The second run gets those
        // from its local cache and asks the network only for the rest.
        let mut cache: HashMap<RoutingKey, ChkBlock> = HashMap::new();
        let mut first = Fetch::new(e.top.clone());
        for uri in first.next_requests(1) {
            cache.insert(uri.routing_key, blocks[&uri.routing_key].clone());
            first.on_block(&uri.routing_key, &blocks[&uri.routing_key]).unwrap();
        }
        for uri in first.next_requests(10) {
            cache.insert(uri.routing_key, blocks[&uri.routing_key].clone());
        }
        let mut second = Fetch::new(e.top.clone());
        let mut network = 0;
        while second.document().is_none() {
            for uri in second.next_requests(8) {
                let b = match cache.get(&uri.routing_key) {
                    Some(b) => b,
                    None => {
                        network += 1;
                        &blocks[&uri.routing_key]
                    }
                };
                second.on_block(&uri.routing_key, b).unwrap();
            }
        }
        assert_eq!(second.document().unwrap().data, data);
        assert_eq!(network, 20 - 10, "only the blocks the first run lacked go to the network");
    }

    #[test]
    fn tampered_manifest_is_rejected() {
        assert!(matches!(Manifest::from_bytes(b"\x07garbage"), Err(ClientError::BadManifest(_))));
        let m = bare_manifest(Body::Split { len: 10 * SHARD_LEN as u64, segments: vec![] });
        assert!(matches!(Manifest::from_bytes(&m.to_bytes()), Err(ClientError::BadManifest(_))));
        let mut bytes = Manifest { body: Body::Inline(vec![1, 2, 3]), ..m }.to_bytes();
        bytes.push(0);
        assert!(matches!(Manifest::from_bytes(&bytes), Err(ClientError::BadManifest("trailing bytes"))));
    }

    #[test]
    fn wrong_hash_is_detected() {
        let m = Manifest { sha256: [1; 32], ..bare_manifest(Body::Inline(b"lies".to_vec())) };
        let (block, uri) = chk::encode(&m.to_bytes(), ChkFlags { manifest: true, compressed: false }).unwrap();
        let mut f = Fetch::new(uri.clone());
        f.next_requests(1);
        assert!(matches!(f.on_block(&uri.routing_key, &block), Err(ClientError::HashMismatch)));
    }
}
