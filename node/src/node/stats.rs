//! The node's counters, for status displays, the simulator's reports and tests.

/// Counters for status displays and tests. Monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// DataRequests received from peers.
    pub requests_received: u64,
    /// InsertRequests received from peers.
    pub inserts_received: u64,
    /// Fetches started locally.
    pub local_fetches: u64,
    /// Inserts started locally.
    pub local_inserts: u64,
    /// Local fetches and inserts that waited for someone else's request for their key to end
    /// (`deferred.rs`) instead of failing busy.
    pub deferred_local: u64,
    /// Links closed for a while because the peer kept lying (`node/misbehaviour.rs`).
    pub links_suspended: u64,
    /// Requests (local or remote) answered from this node's store or cache.
    pub found_locally: u64,
    /// Requests and inserts sent to a peer (each hop, including backtracking).
    pub forwarded: u64,
    /// Verified blocks received on a return path.
    pub data_found: u64,
    /// RejectedLoop sent.
    pub rejected_loop: u64,
    /// RejectedOverload sent.
    pub rejected_overload: u64,
    /// Requests ended as overloaded: every route left was full or refused them (`load`).
    pub overload_ends: u64,
    /// Requests answered at once because their key was quenched.
    pub quenched: u64,
    /// Own fetches sent as a second attempt for a key not found (`second_attempt.rs`).
    pub second_attempts: u64,
    /// Peers' requests routed as the repeat of a key that failed here lately, around the
    /// peers the failed one was sent to (`second_attempt.rs`).
    pub second_attempts_relayed: u64,
    /// Blocks received that did not verify (forged or corrupt), and invalid inserts.
    pub forged_blocks: u64,
    /// Peers that did not answer in time.
    pub timeouts: u64,
    /// InsertCollisions sent.
    pub insert_collisions: u64,
    /// Inserts answered at once because the same block was already here.
    pub inserts_already_present: u64,
    /// Blocks written to the store area.
    pub store_writes: u64,
    /// Blocks written to the cache area.
    pub cache_writes: u64,
    /// Failed store writes.
    pub store_errors: u64,
    /// "Not found" answers to an insert, which no honest node gives (see
    /// `NodeConfig::refuse_false_insert_not_found`): the sender was backed off.
    pub false_not_found: u64,
    /// Replies that matched no request (late, after a timeout, or bogus).
    pub unexpected_replies: u64,
    /// Late answers from peers penalised as silent on that hop (their penalty was eased
    /// to an ordinary timeout's backoff).
    pub late_answers: u64,
    /// Swaps this node started.
    pub swaps_attempted: u64,
    /// Swaps (started here or by a partner) that changed this node's location.
    pub swaps_done: u64,
    /// Swaps of this node's that were refused, timed out, or failed a commitment or the
    /// plausibility check (the sum of the four counters below, plus lost links).
    pub swaps_aborted: u64,
    /// Swaps that completed with the rule saying keep.
    pub swaps_kept: u64,
    /// Swaps ended by a `SwapRejected` (partner busy, dead-end walk, or a failed check there).
    pub swaps_refused: u64,
    /// Swaps ended because a reveal failed the plausibility check (Pitch Black mitigation).
    pub swaps_implausible: u64,
    /// Swaps ended because the partner's reveal did not open its commitment.
    pub swaps_bad_reveal: u64,
    /// Swaps that timed out.
    pub swaps_timed_out: u64,
    /// Times this node took a fresh random location (`SwapConfig::reset_probability`).
    pub location_resets: u64,
    /// Neighbour lists (`LocationUpdate`) ignored as implausible (`NodeConfig::check_claims`).
    pub foaf_implausible: u64,
    /// Peers' location changes held because they came too soon after the last one.
    pub locations_deferred: u64,
    /// `LocationUpdate` broadcasts this node sent (one per peer each).
    pub location_broadcasts: u64,
    /// Inserts refused because they arrived with HTL 0 (`NodeConfig::refuse_zero_htl_inserts`).
    pub zero_htl_inserts: u64,
    /// Sink blocks put in the cache area because their inserter was over its store budget.
    pub store_budget_exceeded: u64,
    /// Inserts flagged `top` whose flag this node honoured (within the sender's top budget).
    pub top_flags_honoured: u64,
    /// Inserts flagged `top` whose sender was over its top budget: handled (and forwarded)
    /// as plain inserts.
    pub top_flags_over_budget: u64,
    /// Top blocks kept in the store area by the wider rule (not a sink, but fewer than
    /// `top_sinks` peers closer).
    pub top_wide_stores: u64,
    /// Blocks queued to be offered after a swap moved this node (`DurabilityConfig`).
    pub offers_queued: u64,
    /// Offers sent (one insert at HTL 1 to the peer now closest to the block's key, once
    /// it asked for the block: key-first offers).
    pub offers_sent: u64,
    /// Key-first offers: lists of keys sent (`Message::OfferKeys`).
    pub offer_lists_sent: u64,
    /// Key-first offers: keys offered in those lists.
    pub offer_keys_sent: u64,
    /// Key-first offers: keys the peers asked for (`Message::WantKeys`), each then sent as
    /// an offer at the offers' pace.
    pub offer_keys_wanted: u64,
    /// Key-first offers: keys in answers that named keys not offered, or answers for no
    /// offer (unasked, late or repeated): ignored.
    pub offer_wants_ignored: u64,
    /// Key-first offers received: keys looked up (at most the lookup budget).
    pub offered_keys_checked: u64,
    /// Key-first offers received: keys not looked up, over the lookup budget or past
    /// `MAX_OFFERED_KEYS` (not asked for).
    pub offered_keys_over_budget: u64,
    /// Key-first offers received: keys this node would have kept but did not ask for, its
    /// store area having no room left for them (`DurabilityConfig::offers_into_room`).
    pub offered_keys_no_room: u64,
    /// Returns: the node came back after `DurabilityConfig::away` without peers, or
    /// restarted with remembered keys, and its peers connected.
    pub returns: u64,
    /// Of `offers_queued`, blocks queued for the peers that connected after a return.
    pub return_offers_queued: u64,
    /// Remembered store keys loaded at start (`Node::load_remembered_keys`).
    pub keys_loaded: u64,
    /// Steady backups: keys this node, rarely online, queued on a return for a steady peer
    /// (it is still the closest to them).
    pub steady_backups_queued: u64,
    /// Steady backups: keys offered to a steady peer (in `offer_keys_sent` too).
    pub steady_backup_keys_offered: u64,
    /// Steady backups received: blocks kept in the store area as a sink without the peer
    /// that offered them.
    pub steady_backups_kept: u64,
}
