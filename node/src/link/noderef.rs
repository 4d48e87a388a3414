//! Node references: the line of text a person pastes to a friend.
//!
//! ```text
//! pamphlet-noderef:v1:<ip:port>:<static public key, base64url, 43 chars>:<checksum, 8 hex>
//! pamphlet-noderef:v1:127.0.0.1:4000:q0e1…Xw:1a2b3c4d
//! ```
//!
//! The checksum is the first 4 bytes of SHA-256 over everything before its colon, so a
//! typo anywhere is caught (with probability 1 - 2^-32) rather than silently dialing the
//! wrong key. It is not a signature: a reference is trusted because of who handed it over.
//! The address is an IP literal (`[::1]:4000` for IPv6); names are not resolved.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::noise::PublicKey;

/// The fixed start of every node reference.
pub const NODEREF_PREFIX: &str = "pamphlet-noderef:";

/// Where to reach a node and the static key it must prove it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// The node's listening address.
    pub addr: SocketAddr,
    /// The node's static public key.
    pub key: PublicKey,
}

/// Why a node reference did not parse. Each says what to check.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeRefError {
    /// The text does not start with `pamphlet-noderef:`.
    #[error("not a node reference: it must start with \"{NODEREF_PREFIX}\"")]
    MissingPrefix,
    /// A version this build does not know.
    #[error("unsupported node reference version {0:?} (this build reads v1)")]
    UnsupportedVersion(String),
    /// Fields are missing (the reference was cut when copied?).
    #[error("node reference is incomplete: expected <address>:<key>:<checksum> after the version")]
    MissingField,
    /// The address is not `ip:port`.
    #[error("bad address {0:?} in node reference: expected ip:port, e.g. 127.0.0.1:4000 or [::1]:4000")]
    BadAddress(String),
    /// The key is not 32 bytes of URL-safe base64.
    #[error("bad key in node reference: expected 43 characters of URL-safe base64")]
    BadKey,
    /// The checksum is not 8 hex digits.
    #[error("bad checksum field {0:?}: expected 8 hex digits")]
    BadChecksum(String),
    /// The checksum does not match: a typo or a truncated copy.
    #[error("node reference checksum mismatch: it was mistyped or altered; copy it again")]
    ChecksumMismatch,
}

impl NodeRef {
    fn body(&self) -> String {
        format!("{NODEREF_PREFIX}v1:{}:{}", self.addr, self.key.to_base64())
    }
}

fn checksum(body: &str) -> String {
    let d = Sha256::digest(body.as_bytes());
    d[..4].iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.body();
        write!(f, "{body}:{}", checksum(&body))
    }
}

impl FromStr for NodeRef {
    type Err = NodeRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let rest = s.strip_prefix(NODEREF_PREFIX).ok_or(NodeRefError::MissingPrefix)?;
        let (version, rest) = rest.split_once(':').ok_or(NodeRefError::MissingField)?;
        if version != "v1" {
            return Err(NodeRefError::UnsupportedVersion(version.to_owned()));
        }
        let (body, sum) = s.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let (rest, _) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let (addr, key) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let addr: SocketAddr = addr.parse().map_err(|_| NodeRefError::BadAddress(addr.to_owned()))?;
        let key: [u8; 32] =
            URL_SAFE_NO_PAD.decode(key).ok().and_then(|v| v.try_into().ok()).ok_or(NodeRefError::BadKey)?;
        if sum.len() != 8 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NodeRefError::BadChecksum(sum.to_owned()));
        }
        if !sum.eq_ignore_ascii_case(&checksum(body)) {
            return Err(NodeRefError::ChecksumMismatch);
        }
        Ok(NodeRef { addr, key: PublicKey(key) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeRef {
        NodeRef { addr: "127.0.0.1:4000".parse().unwrap(), key: PublicKey([7; 32]) }
    }

    #[test]
    fn round_trips_v4_and_v6() {
        let r = sample();
        assert_eq!(r.to_string().parse::<NodeRef>().unwrap(), r);
        let r6 = NodeRef { addr: "[::1]:9".parse().unwrap(), key: PublicKey([1; 32]) };
        assert_eq!(r6.to_string().parse::<NodeRef>().unwrap(), r6);
    }

    #[test]
    fn known_answer_matches_docs_wire_md() {
        assert_eq!(
            sample().to_string(),
            "pamphlet-noderef:v1:127.0.0.1:4000:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc:527f539c"
        );
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let text = sample().to_string();
        for i in 0..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] = if b[i] == b'1' { b'2' } else { b'1' };
            let t = String::from_utf8(b).unwrap();
            assert!(t.parse::<NodeRef>().is_err(), "typo at {i} not caught: {t}");
        }
    }

    #[test]
    fn errors_are_precise() {
        let text = sample().to_string();
        assert_eq!("hello".parse::<NodeRef>(), Err(NodeRefError::MissingPrefix));
        assert_eq!(text.replace(":v1:", ":v9:").parse::<NodeRef>(), Err(NodeRefError::UnsupportedVersion("v9".into())));
        let (body, _) = text.rsplit_once(':').unwrap();
        assert_eq!(format!("{body}:00000000").parse::<NodeRef>(), Err(NodeRefError::ChecksumMismatch));
        assert_eq!(format!("{body}:xyz").parse::<NodeRef>(), Err(NodeRefError::BadChecksum("xyz".into())));
        assert!(matches!(text.replace("127.0.0.1", "localhost").parse::<NodeRef>(), Err(NodeRefError::BadAddress(_))));
        assert_eq!("pamphlet-noderef:v1:1.2.3.4:5".parse::<NodeRef>(), Err(NodeRefError::MissingField));
    }
}
