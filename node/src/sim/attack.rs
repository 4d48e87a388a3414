//! Adversaries. Each attacker is an ordinary [`Node`](crate::Node) whose outgoing messages
//! pass through a filter ([`Network::set_filter`]) that lies on its behalf, so attackers
//! take part in routing exactly like honest nodes until they lie.
//!
//! - **Black hole**: never forwards a request or insert, and answers every request it takes
//!   on, and every block it could return, with `DataNotFound { htl: 0 }` (the lie that ends
//!   a request at once).
//! - **Forger**: never forwards; answers every request it takes on with a `DataFound`
//!   carrying a block of the right size that does not verify.

use std::fmt;
use std::str::FromStr;

use pamphlet_crypto::{Block, ChkBlock, CHK_BLOCK_LEN};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::testing::Network;
use crate::wire::message::Message;

/// What the attackers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttackKind {
    /// Drop requests and answer DataNotFound.
    Blackhole,
    /// Answer requests with invalid blocks.
    Forger,
}

/// An attack: what, and which fraction of the nodes do it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attack {
    /// What the attackers do.
    pub kind: AttackKind,
    /// Fraction of nodes that are attackers, in [0, 1].
    pub fraction: f64,
}

/// Why an attack description could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttackParseError {
    /// Not of the form `NAME:FRACTION`.
    #[error("expected NAME:FRACTION (e.g. blackhole:0.2), got {0:?}")]
    Form(String),
    /// Unknown attack name.
    #[error("unknown attack {0:?}; known: blackhole, forger")]
    Name(String),
    /// The fraction is not a number in [0, 1].
    #[error("attack fraction must be a number in [0, 1], got {0:?}")]
    Fraction(String),
}

impl FromStr for Attack {
    type Err = AttackParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, frac) = s.split_once(':').ok_or_else(|| AttackParseError::Form(s.to_string()))?;
        let kind = match name {
            "blackhole" => AttackKind::Blackhole,
            "forger" => AttackKind::Forger,
            _ => return Err(AttackParseError::Name(name.to_string())),
        };
        let fraction: f64 = frac.parse().map_err(|_| AttackParseError::Fraction(frac.to_string()))?;
        if !(0.0..=1.0).contains(&fraction) {
            return Err(AttackParseError::Fraction(frac.to_string()));
        }
        Ok(Attack { kind, fraction })
    }
}

impl fmt::Display for AttackKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttackKind::Blackhole => "blackhole",
            AttackKind::Forger => "forger",
        })
    }
}

/// Installs the attack's behaviour on every node marked in `attackers`.
pub(crate) fn install(net: &mut Network, attack: &Attack, attackers: &[bool], rng: &mut ChaCha8Rng) {
    for (i, _) in attackers.iter().enumerate().filter(|(_, a)| **a) {
        match attack.kind {
            AttackKind::Blackhole => net.set_filter(i, Box::new(blackhole)),
            AttackKind::Forger => {
                let mut bytes = vec![0u8; CHK_BLOCK_LEN];
                rng.fill(&mut bytes[..]);
                let Ok(junk) = ChkBlock::from_bytes(bytes) else { continue };
                let junk = Block::Chk(junk);
                net.set_filter(i, Box::new(move |_, msg| forger(&junk, msg)));
            }
        }
    }
}

fn blackhole(_: crate::PeerId, msg: Message) -> Option<Message> {
    match msg {
        Message::DataRequest { .. } | Message::InsertRequest { .. } => None,
        Message::Accepted { id }
        | Message::DataFound { id, .. }
        | Message::RouteNotFound { id, .. }
        | Message::InsertReply { id } => Some(Message::DataNotFound { id, htl: 0 }),
        other => Some(other),
    }
}

fn forger(junk: &Block, msg: Message) -> Option<Message> {
    match msg {
        Message::DataRequest { .. } | Message::InsertRequest { .. } => None,
        Message::Accepted { id }
        | Message::DataFound { id, .. }
        | Message::DataNotFound { id, .. }
        | Message::RouteNotFound { id, .. } => Some(Message::DataFound { id, block: junk.clone() }),
        other => Some(other),
    }
}
