//! Signed documents: what goes inside an SSK block, and finding a USK's latest edition.
//!
//! An SSK block holds at most 1 KiB. A document that fits (with a few bytes of framing) is
//! stored inline; a larger one is inserted as a CHK splitfile and the SSK block holds a
//! redirect to its top URI. Either way the fetcher needs only the SSK/USK/KSK URI.

use std::collections::HashMap;

use pamphlet_crypto::{
    ssk, ChkFlags, ChkUri, DecryptionKey, RoutingKey, SskBlock, SskInsertUri, SskRequestUri, SSK_PAYLOAD_LEN,
};
use serde::{Deserialize, Serialize};

use super::retry::BLOCK_TRIES;
use super::splitfile::{self, Encoded, InsertOptions};
use super::ClientError;

/// The plaintext of an SSK block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SskPayload {
    /// The document itself.
    Inline(Vec<u8>),
    /// The document is a CHK splitfile; this is its top URI (routing key, decryption key,
    /// flag byte of a manifest CHK).
    Redirect {
        /// Routing key of the top manifest block.
        routing_key: [u8; 32],
        /// Its decryption key.
        key: [u8; 32],
    },
}

impl SskPayload {
    /// Parses an SSK block's plaintext.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ClientError> {
        let (p, rest): (SskPayload, _) =
            postcard::take_from_bytes(bytes).map_err(|_| ClientError::BadManifest("not a pamphlet SSK payload"))?;
        if !rest.is_empty() {
            return Err(ClientError::BadManifest("trailing bytes after the SSK payload"));
        }
        Ok(p)
    }

    /// The top URI of a redirect.
    pub fn redirect_uri(routing_key: [u8; 32], key: [u8; 32]) -> ChkUri {
        ChkUri::new(
            RoutingKey(routing_key),
            DecryptionKey::from_bytes(key),
            ChkFlags { manifest: true, compressed: false },
        )
    }
}

/// What to insert for a signed document: the SSK block, and the CHK splitfile it redirects
/// to when the document is too large to be inline.
#[derive(Debug)]
pub struct SignedInsert {
    /// The signed block.
    pub block: SskBlock,
    /// The public URI that fetches it.
    pub request: SskRequestUri,
    /// The CHK splitfile behind a redirect (insert these first).
    pub splitfile: Option<Encoded>,
}

/// Encodes `data` for publication under `insert` (an SSK, USK edition or KSK-derived URI).
pub fn encode(insert: &SskInsertUri, data: &[u8], options: &InsertOptions) -> Result<SignedInsert, ClientError> {
    let inline = postcard::to_allocvec(&SskPayload::Inline(data.to_vec())).unwrap_or_default();
    let (payload, splitfile) = if !inline.is_empty() && inline.len() <= SSK_PAYLOAD_LEN {
        (inline, None)
    } else {
        let e = splitfile::encode(data, options)?;
        let p = SskPayload::Redirect { routing_key: e.top.routing_key.0, key: *e.top.key.expose() };
        (postcard::to_allocvec(&p).unwrap_or_default(), Some(e))
    };
    let (block, request) = ssk::encode(insert, &payload)?;
    Ok(SignedInsert { block, request, splitfile })
}

/// Decodes a fetched SSK block into its payload.
pub fn decode(block: &SskBlock, request: &SskRequestUri) -> Result<SskPayload, ClientError> {
    SskPayload::from_bytes(&ssk::decode(block, request)?)
}

/// How many editions past the highest one found a search probes before it concludes
/// there are no newer ones (publishers may skip an edition now and then).
pub const SEARCH_WINDOW: u64 = 4;

/// Finds the latest edition of a USK, as a sans-IO state machine: probe the editions it
/// asks for, report what was found, until it says it is done.
///
/// It probes a window of [`SEARCH_WINDOW`] editions from the hint, moves the window past
/// every edition it finds, and finishes when a whole window past the highest find is empty.
///
/// A probe has three answers, not two (issue 14, item 4): found, absent (a real search
/// found nothing: [`LatestSearch::on_not_found`]) and "not sure" (it timed out, the key was
/// busy: [`LatestSearch::on_unsure`]). A probe that is not sure is asked again, up to
/// [`BLOCK_TRIES`] times; an edition still unknown after that and above the best one found
/// makes the result [`LatestSearch::may_be_stale`], so one stalled probe cannot pass off an
/// old edition as the latest.
#[derive(Debug)]
pub struct LatestSearch {
    base: SskRequestUri,
    /// Highest edition found, with its block.
    best: Option<(u64, SskBlock)>,
    /// Next edition not yet asked for.
    next: u64,
    /// Editions asked for and not answered.
    pending: Vec<u64>,
    /// Probes sent per edition that was not sure at least once.
    tries: HashMap<u64, u32>,
    /// Editions to probe again (still pending).
    again: Vec<u64>,
    /// Editions that stayed unknown after every try.
    unsure: Vec<u64>,
    /// Probes sent again in all.
    retries: usize,
}

impl LatestSearch {
    /// Searches from the edition `uri` names (its hint) upward.
    pub fn new(uri: &SskRequestUri) -> Self {
        Self {
            base: uri.clone(),
            best: None,
            next: uri.edition,
            pending: Vec::new(),
            tries: HashMap::new(),
            again: Vec::new(),
            unsure: Vec::new(),
            retries: 0,
        }
    }

    fn horizon(&self) -> u64 {
        let from = self.best.as_ref().map_or(self.base.edition, |(e, _)| e + 1);
        from.saturating_add(SEARCH_WINDOW)
    }

    /// Editions to probe now, with their URIs.
    pub fn next_requests(&mut self) -> Vec<SskRequestUri> {
        let mut out: Vec<SskRequestUri> = self.again.drain(..).map(|e| self.base.with_edition(e)).collect();
        while self.next < self.horizon() {
            self.pending.push(self.next);
            out.push(self.base.with_edition(self.next));
            self.next += 1;
        }
        out
    }

    /// An edition was found. The block must verify against that edition's routing key.
    pub fn on_found(&mut self, edition: u64, block: SskBlock) -> Result<(), ClientError> {
        block.verify(&self.base.with_edition(edition).routing_key())?;
        self.pending.retain(|&e| e != edition);
        if self.best.as_ref().is_none_or(|(e, _)| edition > *e) {
            self.best = Some((edition, block));
        }
        Ok(())
    }

    /// An edition could not be found: a real search says it does not exist (yet).
    pub fn on_not_found(&mut self, edition: u64) {
        self.pending.retain(|&e| e != edition);
    }

    /// The probe of an edition could not tell (it timed out, the key was busy): it is asked
    /// again by the next [`LatestSearch::next_requests`] unless it had [`BLOCK_TRIES`]
    /// probes; then the edition stays unknown. Returns whether it will be probed again.
    pub fn on_unsure(&mut self, edition: u64) -> bool {
        let sent = self.tries.entry(edition).or_insert(1);
        if *sent < BLOCK_TRIES {
            *sent += 1;
            self.retries += 1;
            self.again.push(edition);
            return true;
        }
        self.pending.retain(|&e| e != edition);
        self.unsure.push(edition);
        false
    }

    /// Whether the search is over: nothing pending and the window past the best is probed.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty() && self.next >= self.horizon()
    }

    /// Whether a newer edition than the result may exist: some edition above it stayed
    /// unknown after every probe. The result is then the best *found*, not surely the
    /// latest, and must be reported as such.
    pub fn may_be_stale(&self) -> bool {
        let best = self.best.as_ref().map(|(e, _)| *e);
        self.unsure.iter().any(|&e| best.is_none_or(|b| e > b))
    }

    /// Probes sent again because the first could not tell.
    pub fn retries(&self) -> usize {
        self.retries
    }

    /// The latest edition found and its block (`None`: no edition at or after the hint).
    pub fn result(&self) -> Option<(u64, &SskBlock)> {
        self.best.as_ref().map(|(e, b)| (*e, b))
    }
}

#[cfg(test)]
mod tests {
    use pamphlet_crypto::{CryptoKey, SskPrivateKey};

    use super::*;

    fn insert_uri() -> SskInsertUri {
        SskInsertUri::new(SskPrivateKey::from_seed([8; 32]), CryptoKey::from_bytes([9; 32]), "site", 0, true)
    }

    #[test]
    fn small_is_inline_large_redirects() {
        let small = encode(&insert_uri(), b"short note", &InsertOptions::default()).unwrap();
        assert!(small.splitfile.is_none());
        assert_eq!(decode(&small.block, &small.request).unwrap(), SskPayload::Inline(b"short note".to_vec()));

        let big = vec![7u8; 5000];
        let red = encode(&insert_uri(), &big, &InsertOptions::default()).unwrap();
        let e = red.splitfile.as_ref().unwrap();
        let SskPayload::Redirect { routing_key, key } = decode(&red.block, &red.request).unwrap() else {
            panic!("expected a redirect")
        };
        assert_eq!(SskPayload::redirect_uri(routing_key, key), e.top);
    }

    #[test]
    fn latest_edition_search() {
        let ins = insert_uri();
        // Editions 0..=3 and 5 published (4 skipped); 12 far beyond the window.
        let mut net: HashMap<u64, SskBlock> = HashMap::new();
        for e in [0, 1, 2, 3, 5, 12] {
            let s = encode(&ins.with_edition(e), format!("v{e}").as_bytes(), &InsertOptions::default()).unwrap();
            net.insert(e, s.block);
        }
        let mut search = LatestSearch::new(&ins.request_uri().with_edition(1));
        let mut probes = 0;
        while !search.is_done() {
            for uri in search.next_requests() {
                probes += 1;
                match net.get(&uri.edition) {
                    Some(b) => search.on_found(uri.edition, b.clone()).unwrap(),
                    None => search.on_not_found(uri.edition),
                }
            }
        }
        assert_eq!(search.result().unwrap().0, 5, "4 is skipped, 12 is beyond the window");
        assert_eq!(probes, 9, "editions 1..=9");
        // A probe that is not sure is asked again; one never sure leaves the result
        // flagged, and only if it is above the best found.
        let mut s = LatestSearch::new(&ins.request_uri().with_edition(4));
        let first: Vec<u64> = s.next_requests().iter().map(|u| u.edition).collect();
        assert_eq!(first, [4, 5, 6, 7]);
        s.on_not_found(4);
        s.on_found(5, net[&5].clone()).unwrap();
        s.on_not_found(7);
        assert!(s.on_unsure(6));
        let again: Vec<u64> = s.next_requests().iter().map(|u| u.edition).collect();
        assert_eq!(again, [6, 8, 9], "6 again, then the window past 5");
        for e in [8, 9] {
            s.on_not_found(e);
        }
        assert!(s.on_unsure(6));
        assert_eq!(s.next_requests().iter().map(|u| u.edition).collect::<Vec<_>>(), [6]);
        assert!(!s.is_done());
        assert!(!s.on_unsure(6), "three probes in all");
        assert!(s.is_done() && s.may_be_stale() && s.retries() == 2);
        assert_eq!(s.result().map(|(e, _)| e), Some(5));
        let mut s = LatestSearch::new(&ins.request_uri().with_edition(5));
        s.next_requests();
        for _ in 0..BLOCK_TRIES {
            s.on_unsure(6);
            s.next_requests();
        }
        s.on_found(5, net[&5].clone()).unwrap();
        assert_eq!(s.next_requests().iter().map(|u| u.edition).collect::<Vec<_>>(), [9]);
        for e in [7, 8, 9] {
            s.on_not_found(e);
        }
        assert!(s.is_done() && s.may_be_stale(), "6 above 5 unknown");

        // A block for another edition does not count as this one.
        let mut s2 = LatestSearch::new(&ins.request_uri());
        s2.next_requests();
        assert!(s2.on_found(2, net[&3].clone()).is_err());
    }
}
