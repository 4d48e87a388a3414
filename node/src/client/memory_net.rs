//! A whole "network" as one map of blocks: a [`BlockNetwork`] for tests and examples of
//! the client pipelines without any node.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use pamphlet_crypto::{Block, BlockKind, RoutingKey};

use super::pipeline::{BlockNetwork, InsertOutcome};
use crate::node::Failure;

/// Requests that fail a set number of times per key before one goes through: what a local
/// node with a silent friend ranked first for those keys answers until the node has backed
/// that friend off (the first request times out; the next is routed around it).
#[derive(Debug, Default)]
pub struct Flaky {
    /// How a flaky request fails (`None`: no request does).
    pub failure: Option<Failure>,
    /// Requests per key that fail before one goes through (`usize::MAX`: all of them).
    pub times: usize,
    /// The keys that are flaky (every key when empty).
    pub keys: HashSet<RoutingKey>,
    /// Requests seen per flaky key.
    seen: Mutex<HashMap<RoutingKey, usize>>,
}

impl Flaky {
    /// The first `times` requests for each of `keys` (all keys when empty) fail with `failure`.
    pub fn new(failure: Failure, times: usize, keys: impl IntoIterator<Item = RoutingKey>) -> Self {
        Self { failure: Some(failure), times, keys: keys.into_iter().collect(), seen: Mutex::default() }
    }

    /// How this request for `key` fails, if it does.
    fn fails(&self, key: RoutingKey) -> Option<Failure> {
        let failure = self.failure.clone()?;
        if !self.keys.is_empty() && !self.keys.contains(&key) {
            return None;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let n = seen.entry(key).or_insert(0);
        *n += 1;
        (*n <= self.times).then_some(failure)
    }
}

/// Every block in one map. Inserts follow the network's rules (an SSK key keeps its first
/// block); fetches after the first `stall_after` never complete (a fetch killed halfway);
/// `fail_with` makes a fetch of a block it does not hold fail that way instead of
/// `NotFound`; `flaky` makes chosen requests fail before they go through;
/// `panic_on_fetch` makes every fetch panic (a bug).
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
    /// Fetches and inserts that fail before they go through.
    pub flaky: Flaky,
    /// Inserts started so far.
    pub inserts: AtomicUsize,
    /// Every stored insert reports that a sink could not keep it for good (`displaced`).
    pub displace: bool,
}

impl BlockNetwork for MemoryNetwork {
    fn fetch(&self, _kind: BlockKind, key: RoutingKey) -> impl Future<Output = Result<Block, Failure>> + Send {
        let n = self.fetches.fetch_add(1, Ordering::SeqCst);
        let flaky = self.flaky.fails(key);
        let found = self.blocks.lock().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let stall = self.stall_after.is_some_and(|s| n >= s);
        let fail = self.fail_with.clone();
        let panic = self.panic_on_fetch;
        async move {
            if stall {
                std::future::pending::<()>().await;
            }
            assert!(!panic, "MemoryNetwork: a fetch panicked, as asked");
            if let Some(f) = flaky {
                return Err(f);
            }
            found.ok_or_else(|| fail.unwrap_or(Failure::NotFound { htl: None, peers_tried: Some(1) }))
        }
    }

    fn insert(&self, block: Block) -> impl Future<Output = Result<InsertOutcome, Failure>> + Send {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        if let Some(f) = self.flaky.fails(block.routing_key()) {
            return std::future::ready(Err(f));
        }
        let mut map = self.blocks.lock().unwrap_or_else(PoisonError::into_inner);
        let outcome = match map.get(&block.routing_key()) {
            Some(existing) if *existing != block => InsertOutcome::Collision(existing.clone()),
            _ => {
                map.insert(block.routing_key(), block);
                InsertOutcome::Stored { displaced: self.displace }
            }
        };
        std::future::ready(Ok(outcome))
    }
}
