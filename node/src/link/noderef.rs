//! Node references: the line of text a person pastes to a friend.
//!
//! ```text
//! pamphlet-noderef:v2:<addresses>:<key>:<seq>:<signature>:<checksum>
//! pamphlet-noderef:v2:192.0.2.7:4000,[2001:db8::7]:4000,node.example.org:4000:q0e1…Xw:3:Zk…Aw:1a2b3c4d
//! pamphlet-noderef:v1:<ip:port>:<key>:<checksum>                     (read, still written for
//!                                                                     unsigned references)
//! ```
//!
//! - addresses: one to eight, comma-separated, each an IP literal with port (`[…]` for
//!   IPv6) or a host name with port, resolved when dialling (`addr.rs`);
//! - key: the node's static public key, 43 characters of URL-safe base64;
//! - seq and signature: the node's signed address record (`record.rs`): the sequence
//!   number in decimal and 86 characters of URL-safe base64. A friend keeps the addresses
//!   of the highest sequence it has seen, so a newer reference (or a record sent over the
//!   link) replaces the addresses of an older one and never the reverse;
//! - checksum: the first 4 bytes of SHA-256 over everything before its colon, so a typo
//!   anywhere is caught (with probability 1 - 2^-32) rather than silently dialling the
//!   wrong key. The signature is checked too, after the checksum: a reference whose
//!   addresses were edited and its checksum recomputed is refused as forged.
//!
//! Version 1 carries one IP address and no record; it still parses (as an unsigned record
//! of sequence 0, which any signed record supersedes). Fields are split from the right,
//! so the colons inside the addresses need no escaping.
//!
//! Version 3 is version 2 with one more field before the checksum: flags, comma-separated
//! (`udp`: the node takes friend links over UDP datagrams on its listening port as well,
//! docs/wire.md "Datagram links"; unknown flags are ignored, for later ones). It is
//! written only when a flag is set, so a node without flags still gives out a version 2
//! reference every build reads. The flags are covered by the checksum, not by the
//! signature: one edited by hand changes only which transport a friend tries first, and
//! both still prove their keys.
//!
//! ```text
//! pamphlet-noderef:v3:<addresses>:<key>:<seq>:<signature>:udp:<checksum>
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::addr::PeerAddr;
use super::noise::{PublicKey, StaticKeypair};
use super::record::{AddressRecord, RecordError};

/// The fixed start of every node reference.
pub const NODEREF_PREFIX: &str = "pamphlet-noderef:";

/// Where to reach a node and the static key it must prove it holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// The node's static public key.
    pub key: PublicKey,
    /// Its addresses; signed by `key` unless the reference is version 1.
    record: AddressRecord,
    /// It takes friend links over UDP too (the `udp` flag, version 3).
    pub udp: bool,
}

/// Why a node reference did not parse. Each says what to check.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeRefError {
    /// The text does not start with `pamphlet-noderef:`.
    #[error("not a node reference: it must start with \"{NODEREF_PREFIX}\"")]
    MissingPrefix,
    /// A version this build does not know.
    #[error("unsupported node reference version {0:?} (this build reads v1, v2 and v3)")]
    UnsupportedVersion(String),
    /// Fields are missing (the reference was cut when copied?).
    #[error("node reference is incomplete: fields are missing after the version (was it cut when copied?)")]
    MissingField,
    /// An address does not parse.
    #[error("bad address {0:?} in node reference: expected ip:port, [ipv6]:port or host:port")]
    BadAddress(String),
    /// The key is not 32 bytes of URL-safe base64.
    #[error("bad key in node reference: expected 43 characters of URL-safe base64")]
    BadKey,
    /// The sequence number is not a decimal number.
    #[error("bad sequence number {0:?} in node reference")]
    BadSequence(String),
    /// The signature field is not 64 bytes of URL-safe base64.
    #[error("bad signature field in node reference: expected 86 characters of URL-safe base64")]
    BadSignatureField,
    /// The checksum is not 8 hex digits.
    #[error("bad checksum field {0:?}: expected 8 hex digits")]
    BadChecksum(String),
    /// The checksum does not match: a typo or a truncated copy.
    #[error("node reference checksum mismatch: it was mistyped or altered; copy it again")]
    ChecksumMismatch,
    /// The address list breaks the rules, or its signature is not the node's: the
    /// reference was forged or edited by hand.
    #[error("node reference refused: {0}")]
    Record(#[from] RecordError),
}

impl NodeRef {
    /// A version-1 reference: one IP address, unsigned (tests, and friends' old
    /// references).
    pub fn v1(addr: SocketAddr, key: PublicKey) -> Self {
        Self { key, record: AddressRecord::unsigned(addr), udp: false }
    }

    /// This node's own reference: `addresses` signed as sequence `seq`.
    pub fn signed(kp: &StaticKeypair, addresses: Vec<PeerAddr>, seq: u64) -> Result<Self, RecordError> {
        Ok(Self { key: *kp.public(), record: AddressRecord::sign(kp, addresses, seq)?, udp: false })
    }

    /// A reference from a record already verified against `key` (one a friend sent).
    pub fn from_record(key: PublicKey, record: AddressRecord) -> Self {
        Self { key, record, udp: false }
    }

    /// The same reference announcing (or not) that the node takes links over UDP.
    pub fn with_udp(mut self, udp: bool) -> Self {
        self.udp = udp;
        self
    }

    /// The node's addresses, in its order of preference.
    pub fn addresses(&self) -> &[PeerAddr] {
        self.record.addresses()
    }

    /// The address record.
    pub fn record(&self) -> &AddressRecord {
        &self.record
    }

    fn body(&self) -> String {
        let key = self.key.to_base64();
        match (self.record.signature(), self.record.addresses()) {
            // Unsigned (version 1, tests and old friends) carries no flags.
            (None, [addr]) => format!("{NODEREF_PREFIX}v1:{addr}:{key}"),
            (sig, addrs) => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                let sig = sig.map(|s| URL_SAFE_NO_PAD.encode(s)).unwrap_or_default();
                let (version, flags) = if self.udp { ("v3", ":udp") } else { ("v2", "") };
                format!("{NODEREF_PREFIX}{version}:{}:{key}:{}:{sig}{flags}", list.join(","), self.record.seq())
            }
        }
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

fn parse_key(text: &str) -> Result<PublicKey, NodeRefError> {
    let key: [u8; 32] =
        URL_SAFE_NO_PAD.decode(text).ok().and_then(|v| v.try_into().ok()).ok_or(NodeRefError::BadKey)?;
    Ok(PublicKey(key))
}

impl FromStr for NodeRef {
    type Err = NodeRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let rest = s.strip_prefix(NODEREF_PREFIX).ok_or(NodeRefError::MissingPrefix)?;
        let (version, rest) = rest.split_once(':').ok_or(NodeRefError::MissingField)?;
        if !["v1", "v2", "v3"].contains(&version) {
            return Err(NodeRefError::UnsupportedVersion(version.to_owned()));
        }
        let (body, sum) = s.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let (rest, _) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        if sum.len() != 8 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NodeRefError::BadChecksum(sum.to_owned()));
        }
        // The checksum first: a typo anywhere is reported as one, whatever field it hit.
        if !sum.eq_ignore_ascii_case(&checksum(body)) {
            return Err(NodeRefError::ChecksumMismatch);
        }
        if version == "v1" {
            let (addr, key) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
            let addr: SocketAddr = addr.parse().map_err(|_| NodeRefError::BadAddress(addr.to_owned()))?;
            return Ok(NodeRef::v1(addr, parse_key(key)?));
        }
        let (rest, udp) = if version == "v3" {
            let (rest, flags) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
            (rest, flags.split(',').any(|f| f == "udp"))
        } else {
            (rest, false)
        };
        let (rest, sig) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let (rest, seq) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let (addrs, key) = rest.rsplit_once(':').ok_or(NodeRefError::MissingField)?;
        let key = parse_key(key)?;
        // Canonical decimal only: one record, one text.
        let seq_ok =
            !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()) && (seq == "0" || !seq.starts_with('0'));
        let seq: u64 = seq.parse().ok().filter(|_| seq_ok).ok_or_else(|| NodeRefError::BadSequence(seq.to_owned()))?;
        let sig: [u8; 64] =
            URL_SAFE_NO_PAD.decode(sig).ok().and_then(|v| v.try_into().ok()).ok_or(NodeRefError::BadSignatureField)?;
        let addresses = addrs
            .split(',')
            .map(|a| a.parse::<PeerAddr>().map_err(|_| NodeRefError::BadAddress(a.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        let record = AddressRecord::verified(&key, addresses, seq, sig)?;
        Ok(NodeRef { key, record, udp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NodeRef {
        NodeRef::v1("127.0.0.1:4000".parse().unwrap(), PublicKey([7; 32]))
    }

    fn signed(addrs: &[&str], seq: u64) -> (StaticKeypair, NodeRef) {
        let kp = StaticKeypair::generate().unwrap();
        let r = NodeRef::signed(&kp, addrs.iter().map(|a| a.parse().unwrap()).collect(), seq).unwrap();
        (kp, r)
    }

    /// `text` with its checksum recomputed, as a forger would.
    fn rechecksummed(text: &str) -> String {
        let (body, _) = text.rsplit_once(':').unwrap();
        format!("{body}:{}", checksum(body))
    }

    #[test]
    fn round_trips_v1_v4_and_v6() {
        let r = sample();
        assert_eq!(r.to_string().parse::<NodeRef>().unwrap(), r);
        let r6 = NodeRef::v1("[::1]:9".parse().unwrap(), PublicKey([1; 32]));
        assert_eq!(r6.to_string().parse::<NodeRef>().unwrap(), r6);
    }

    #[test]
    fn v2_round_trips_several_addresses_of_every_kind() {
        let (_, r) = signed(&["10.231.0.1:4000", "[2001:db8::1]:4000", "node.example.org:4000"], 7);
        let text = r.to_string();
        assert!(text.starts_with("pamphlet-noderef:v2:10.231.0.1:4000,[2001:db8::1]:4000,node.example.org:4000:"));
        let back: NodeRef = text.parse().unwrap();
        assert_eq!(back, r);
        assert_eq!(back.record().seq(), 7);
        assert_eq!(back.addresses().len(), 3);
    }

    #[test]
    fn the_udp_flag_makes_a_v3_reference_and_round_trips() {
        let (_, r) = signed(&["10.231.0.1:4000"], 3);
        let plain = r.to_string();
        assert!(plain.starts_with("pamphlet-noderef:v2:"), "no flag: the version 2 text as before");
        assert!(!plain.parse::<NodeRef>().unwrap().udp);
        let u = r.clone().with_udp(true);
        let text = u.to_string();
        assert!(text.starts_with("pamphlet-noderef:v3:10.231.0.1:4000:"), "{text}");
        let back: NodeRef = text.parse().unwrap();
        assert!(back.udp);
        assert_eq!(back, u);
        // Flags are under the checksum: an edit is a mismatch.
        assert_eq!(text.replace(":udp:", ":udx:").parse::<NodeRef>(), Err(NodeRefError::ChecksumMismatch));
        // Unknown flags are ignored (for later ones), alone or with `udp`.
        let other = rechecksummed(&text.replace(":udp:", ":later:"));
        assert!(!other.parse::<NodeRef>().unwrap().udp);
        let both = rechecksummed(&text.replace(":udp:", ":later,udp:"));
        assert!(both.parse::<NodeRef>().unwrap().udp);
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
        let (_, r) = signed(&["10.231.0.1:4000", "n.example.org:1"], 2);
        for text in [sample().to_string(), r.to_string()] {
            for i in 0..text.len() {
                let mut b = text.clone().into_bytes();
                b[i] = if b[i] == b'1' { b'2' } else { b'1' };
                let t = String::from_utf8(b).unwrap();
                assert!(t.parse::<NodeRef>().is_err(), "typo at {i} not caught: {t}");
            }
        }
    }

    #[test]
    fn forged_v2_references_are_refused_even_with_a_fixed_checksum() {
        let (_, r) = signed(&["10.231.0.1:4000"], 2);
        let text = r.to_string();
        // Another address, the same signature: not the node's record.
        let moved = rechecksummed(&text.replace("10.231.0.1:4000", "10.231.0.9:4000"));
        assert_eq!(moved.parse::<NodeRef>(), Err(NodeRefError::Record(RecordError::BadSignature)));
        // A higher sequence number, to win over the real record: refused too.
        let bumped = rechecksummed(&text.replace(":2:", ":3:"));
        assert_eq!(bumped.parse::<NodeRef>(), Err(NodeRefError::Record(RecordError::BadSignature)));
        // Someone else's key on the node's record.
        let other = rechecksummed(&text.replace(&r.key.to_base64(), &PublicKey([9; 32]).to_base64()));
        assert!(matches!(other.parse::<NodeRef>(), Err(NodeRefError::Record(RecordError::BadSignature))));
    }

    #[test]
    fn bad_v2_fields_are_named() {
        let (_, r) = signed(&["10.231.0.1:4000"], 2);
        let text = r.to_string();
        let sig = URL_SAFE_NO_PAD.encode(r.record().signature().unwrap());
        let cases = [
            (text.replace(":2:", ":02:"), NodeRefError::BadSequence("02".into())),
            (text.replace(":2:", ":x:"), NodeRefError::BadSequence("x".into())),
            (text.replace(":2:", "::"), NodeRefError::BadSequence(String::new())),
            (text.replace(&sig, "AAAA"), NodeRefError::BadSignatureField),
            (text.replace("10.231.0.1:4000", "10.231.0.1"), NodeRefError::BadAddress("10.231.0.1".into())),
            (text.replace("10.231.0.1:4000", "10.231.0.1:4000,"), NodeRefError::BadAddress(String::new())),
            (
                text.replace("10.231.0.1:4000", "10.231.0.1:4000,10.231.0.1:4000"),
                NodeRefError::Record(RecordError::Duplicate("10.231.0.1:4000".into())),
            ),
            (text.replace(":2:", ":0:"), NodeRefError::Record(RecordError::ZeroSequence)),
        ];
        for (bad, want) in cases {
            assert_eq!(rechecksummed(&bad).parse::<NodeRef>(), Err(want), "{bad}");
        }
        let nine: Vec<String> = (1..=9).map(|i| format!("10.0.0.{i}:1")).collect();
        let many = rechecksummed(&text.replace("10.231.0.1:4000", &nine.join(",")));
        assert_eq!(many.parse::<NodeRef>(), Err(NodeRefError::Record(RecordError::TooMany(9))));
    }

    #[test]
    fn errors_are_precise() {
        let text = sample().to_string();
        assert_eq!("hello".parse::<NodeRef>(), Err(NodeRefError::MissingPrefix));
        assert_eq!(text.replace(":v1:", ":v9:").parse::<NodeRef>(), Err(NodeRefError::UnsupportedVersion("v9".into())));
        let (body, _) = text.rsplit_once(':').unwrap();
        assert_eq!(format!("{body}:00000000").parse::<NodeRef>(), Err(NodeRefError::ChecksumMismatch));
        assert_eq!(format!("{body}:xyz").parse::<NodeRef>(), Err(NodeRefError::BadChecksum("xyz".into())));
        assert!(matches!(
            rechecksummed(&text.replace("127.0.0.1", "localhost")).parse::<NodeRef>(),
            Err(NodeRefError::BadAddress(_))
        ));
        assert_eq!("pamphlet-noderef:v1".parse::<NodeRef>(), Err(NodeRefError::MissingField));
        assert_eq!(rechecksummed("pamphlet-noderef:v2:a:b").parse::<NodeRef>(), Err(NodeRefError::MissingField));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = text.parse::<NodeRef>();
        }

        #[test]
        fn mangled_references_never_panic_and_what_parses_round_trips(
            cut in 0usize..400, insert in "[:,\\[\\]0-9a-zA-Z._-]{0,12}", at in 0usize..400,
        ) {
            let kp = StaticKeypair::from_secret([3; 32]).unwrap();
            let addrs = vec!["10.231.0.1:4000".parse().unwrap(), "[2001:db8::1]:9".parse().unwrap()];
            let text = NodeRef::signed(&kp, addrs, 4).unwrap().to_string();
            let mut t = text[..cut.min(text.len())].to_owned();
            let at = at.min(t.len());
            t.insert_str(at, &insert);
            if let Ok(r) = t.parse::<NodeRef>() {
                prop_assert_eq!(r.to_string().parse::<NodeRef>().unwrap(), r);
            }
        }
    }
}
