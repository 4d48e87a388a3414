//! A whole "network" as one map of blocks: a [`BlockNetwork`] for tests and examples of
//! the client pipelines without any node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use super::pipeline::{BlockNetwork, InsertOutcome};
use crate::node::Failure;

/// Every block in one map. Inserts follow the network's rules (an SSK key keeps its first
/// block); fetches after the first `stall_after` never complete (a fetch killed halfway);
/// `fail_with` makes a fetch of a block it does not hold fail that way instead of
/// `NotFound`; `panic_on_fetch` makes every fetch panic (a bug).
#[derive(Debug, Default)]
pub struct MemoryNetwork {
    /// The blocks, by routing key.
    pub blocks: Mutex<HashMap<RoutingKey, Block>>,
    /// Fetches started so far.
    pub fetches: AtomicUsize,
    /// Fetches after this many hang forever.
    pub stall_after: Option<usize>,
    /// How a fetch of a missing block fails (`NotFound` when `None`).
    pub fail_with: Option<Failure>,
    /// Every fetch panics.
    pub panic_on_fetch: bool,
}

impl BlockNetwork for MemoryNetwork {
    fn fetch(&self, _kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst);
        let found = self.blocks.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let stall = self.stall_after.is_some_and(|s| n >= s);
        let fail = self.fail_with.clone();
        let panic = self.panic_on_fetch;
        async move {
            if stall {
                std::future::pending::<()>().await;
            }
            assert!(!panic, "MemoryNetwork: a fetch panicked, as asked");
            found.ok_or_else(|| fail.unwrap_or(Failure::NotFound { htl: None, peers_tried: Some(1) }))
        }
    }

    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        let mut map = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = match map.get(&block.routing_key()) {
            Some(existing) if *existing != block => InsertOutcome::Collision(existing.clone()),
            _ => {
                map.insert(block.routing_key(), block);
                InsertOutcome::Stored
            }
        };
        async move { Ok(outcome) }
    }
}
