//! The flusher adversary (issue 14, item 8) at scale: `--attack flusher:F`.
//!
//! A flusher routes honestly, and after the documents were inserted and fetched once (so
//! they are recently requested) it sends each honest neighbour junk inserts whose keys it
//! ground to lie near that neighbour's location, hoping the neighbour is a sink for them
//! and pushes older store data out. Grinding is what limits a real flusher, and the
//! simulator too: it encodes a pool of [`POOL_PER_NODE`] junk blocks per node (at most
//! [`MAX_POOL`]) once, keeping only their keys and texts, and gives each victim the
//! [`PER_VICTIM`] nearest to its location, so only
//! those that fall in the victim's sink zone reach its store area (how many is counted).
//! The defence is the per-peer store budget scaled to the store area
//! (`NodeConfig::store_budget`, `--without store-budget` turns it off); the report's
//! `store_copies_before_junk` / `store_copies_after_junk` show what the junk cost.

use pamphlet_crypto::{chk, Block, ChkFlags};
use rand::Rng;

use super::{settle, Phase, Sim, SimError, OP_STEPS};
use crate::location::Location;
use crate::wire::message::Message;

/// Junk blocks ground per node of the network (keys kept, blocks re-encoded when sent):
/// the nearest of them to a victim are then about as near as its own peers are.
pub(crate) const POOL_PER_NODE: usize = 8;
/// The most junk blocks ground in all.
pub(crate) const MAX_POOL: usize = 16_384;
/// Junk inserts each flusher sends each honest neighbour: the pool's nearest to it.
pub(crate) const PER_VICTIM: usize = 256;

/// One junk block's text (the block is re-encoded from it when sent).
fn text(i: usize, seed: u64) -> String {
    format!("flusher junk {i} of run {seed}")
}

impl Sim<'_> {
    /// Every flusher sends its junk to every honest neighbour; returns the inserts sent.
    pub(super) fn flush_by_attackers(&mut self) -> Result<usize, SimError> {
        let seed = self.config.seed;
        let size = (self.net.len() * POOL_PER_NODE).clamp(PER_VICTIM + 1, MAX_POOL);
        let mut pool: Vec<(Location, usize)> = (0..size)
            .map(|i| -> Result<_, SimError> {
                let (_, uri) = chk::encode(text(i, seed).as_bytes(), ChkFlags::default())?;
                Ok((Location::of_key(&uri.routing_key), i))
            })
            .collect::<Result<_, _>>()?;
        pool.sort_unstable();
        let mut sent = 0;
        for f in (0..self.net.len()).filter(|&i| self.is_attacker[i]) {
            let victims: Vec<usize> =
                self.topo.adjacency[f].iter().map(|&v| v as usize).filter(|&v| !self.is_attacker[v]).collect();
            for v in victims {
                let at = self.net.node(v).location();
                let mut near = pool.clone();
                near.select_nth_unstable_by_key(PER_VICTIM, |(l, _)| l.distance(at));
                for &(_, i) in &near[..PER_VICTIM] {
                    let (block, _) = chk::encode(text(i, seed).as_bytes(), ChkFlags::default())?;
                    let id = self.rng.gen();
                    let htl = self.config.max_htl;
                    self.net.inject(f, v, Message::InsertRequest { id, htl, block: Block::Chk(block), top: false });
                    sent += 1;
                }
                settle(&mut self.net, OP_STEPS, Phase::Junk(sent))?;
            }
        }
        Ok(sent)
    }
}
