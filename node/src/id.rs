//! The ground floor's identifiers: who a message came from ([`PeerId`]), which request on a
//! link it belongs to ([`RequestId`]), and how far it may still travel ([`Htl`]).
//!
//! Every other module may use these; this file imports nothing from the crate, so the
//! codec (`wire/`), the store and routing share one vocabulary without reaching up into
//! each other (docs/architecture.md, "Floors").

use serde::{Deserialize, Serialize};

/// Identifies a connected peer to the sans-IO node. The driver assigns them (the tokio
/// driver per friend, the simulator per node) and maps them to links.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PeerId(pub u64);

/// Identifies one request on one link (chosen by the sender of the request on that link).
///
/// Request identifiers are **link-local**: the sender picks a fresh random id for each hop,
/// so an identifier seen on one link means nothing on any other (the defence against
/// request-identifier traceback, Tian et al. 2013; see `wire::message`).
pub type RequestId = u64;

/// Hops-to-live: how many more hops a request may take (at most `routing::htl::MAX_HTL`).
pub type Htl = u8;
