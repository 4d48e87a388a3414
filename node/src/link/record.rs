//! Address records, pamphlet's version of Hyphanet's ARKs: the addresses a node can be
//! dialled at, a sequence number, and the node's signature over both.
//!
//! A node signs a new record (a higher sequence number) whenever its advertised addresses change, puts
//! it in its node reference and sends it to every friend over their authenticated link
//! (`Message::AddressRecord`). A friend replaces the addresses it keeps for the node only
//! with a record of a **higher** sequence number that the node's own static key signed
//! ([`AddressRecord::supersedes`]); anything else is refused. So nobody but the node can
//! move its friends' dials elsewhere, and an old record replayed later cannot undo a
//! newer one.
//!
//! What is signed (`sign.rs`), byte by byte:
//!
//! ```text
//! "pamphlet address record v1\0" | static key (32) | seq (u64 BE) | count (u8)
//!   | for each address: length (u8) | the address as text ("192.0.2.7:4000")
//! ```
//!
//! A record from a version-1 node reference has sequence 0 and no signature; any signed
//! record (sequence at least 1) supersedes it.

use thiserror::Error;

use super::addr::{AddrError, PeerAddr};
use super::noise::{PublicKey, StaticKeypair};
use super::sign::{self, SIGNATURE_LEN};

/// The most addresses a record may list.
pub const MAX_ADDRESSES: usize = 8;

/// Domain separation for what is signed.
const SIGNED_LABEL: &[u8] = b"pamphlet address record v1\0";

/// Where a node can be dialled, and (when signed) which version of that list this is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddressRecord {
    addresses: Vec<PeerAddr>,
    seq: u64,
    signature: Option<[u8; SIGNATURE_LEN]>,
}

/// Why a record is not acceptable.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// No address at all.
    #[error("an address record must list at least one address")]
    NoAddresses,
    /// More than [`MAX_ADDRESSES`].
    #[error("{0} addresses: at most {MAX_ADDRESSES} are allowed")]
    TooMany(usize),
    /// The same address twice.
    #[error("address {0} is listed twice")]
    Duplicate(String),
    /// An address does not parse.
    #[error(transparent)]
    BadAddress(#[from] AddrError),
    /// A signed record must have a sequence number of at least 1.
    #[error("a signed address record must have a sequence number of at least 1")]
    ZeroSequence,
    /// The signature is not the node's.
    #[error("the address record's signature does not match the node's key")]
    BadSignature,
}

fn check(addresses: &[PeerAddr]) -> Result<(), RecordError> {
    if addresses.is_empty() {
        return Err(RecordError::NoAddresses);
    }
    if addresses.len() > MAX_ADDRESSES {
        return Err(RecordError::TooMany(addresses.len()));
    }
    for (i, a) in addresses.iter().enumerate() {
        if addresses[..i].contains(a) {
            return Err(RecordError::Duplicate(a.to_string()));
        }
    }
    Ok(())
}

fn signed_bytes(key: &PublicKey, seq: u64, addresses: &[PeerAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNED_LABEL.len() + 41 + addresses.len() * 32);
    out.extend_from_slice(SIGNED_LABEL);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    // `check` bounds the count to MAX_ADDRESSES and each text to 253 + 6 bytes.
    out.push(addresses.len() as u8);
    for a in addresses {
        let text = a.to_string();
        out.push(text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    }
    out
}

impl AddressRecord {
    /// An unsigned record of one IP address: what a version-1 node reference carries.
    pub fn unsigned(address: std::net::SocketAddr) -> Self {
        Self { addresses: vec![PeerAddr::Ip(address)], seq: 0, signature: None }
    }

    /// Signs `addresses` as version `seq` (at least 1) with the node's static key.
    pub fn sign(kp: &StaticKeypair, addresses: Vec<PeerAddr>, seq: u64) -> Result<Self, RecordError> {
        check(&addresses)?;
        if seq == 0 {
            return Err(RecordError::ZeroSequence);
        }
        let signature = sign::sign(kp, &signed_bytes(kp.public(), seq, &addresses));
        Ok(Self { addresses, seq, signature: Some(signature) })
    }

    /// A signed record as received (from a node reference or a friend), checked against
    /// the key of the node it claims to be from.
    pub fn verified(
        key: &PublicKey,
        addresses: Vec<PeerAddr>,
        seq: u64,
        signature: [u8; SIGNATURE_LEN],
    ) -> Result<Self, RecordError> {
        check(&addresses)?;
        if seq == 0 {
            return Err(RecordError::ZeroSequence);
        }
        if !sign::verify(key, &signed_bytes(key, seq, &addresses), &signature) {
            return Err(RecordError::BadSignature);
        }
        Ok(Self { addresses, seq, signature: Some(signature) })
    }

    /// [`AddressRecord::verified`] from the texts and signature halves of a
    /// `Message::AddressRecord`.
    pub fn from_wire(
        key: &PublicKey,
        seq: u64,
        addresses: &[String],
        signature: &[[u8; 32]; 2],
    ) -> Result<Self, RecordError> {
        if addresses.len() > MAX_ADDRESSES {
            return Err(RecordError::TooMany(addresses.len()));
        }
        let parsed = addresses.iter().map(|a| a.parse()).collect::<Result<Vec<PeerAddr>, _>>()?;
        let mut sig = [0u8; SIGNATURE_LEN];
        sig[..32].copy_from_slice(&signature[0]);
        sig[32..].copy_from_slice(&signature[1]);
        Self::verified(key, parsed, seq, sig)
    }

    /// The fields of a `Message::AddressRecord` (`None` for an unsigned record, which is
    /// never sent).
    pub fn to_wire(&self) -> Option<(u64, Vec<String>, [[u8; 32]; 2])> {
        let sig = self.signature?;
        let mut halves = [[0u8; 32]; 2];
        halves[0].copy_from_slice(&sig[..32]);
        halves[1].copy_from_slice(&sig[32..]);
        Some((self.seq, self.addresses.iter().map(ToString::to_string).collect(), halves))
    }

    /// The addresses, in the node's order of preference.
    pub fn addresses(&self) -> &[PeerAddr] {
        &self.addresses
    }

    /// The sequence number (0: unsigned).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The signature (none for a version-1 reference's record).
    pub fn signature(&self) -> Option<&[u8; SIGNATURE_LEN]> {
        self.signature.as_ref()
    }

    /// Whether `self`, already verified, should replace `stored`: a strictly higher
    /// sequence number. Equal or lower is a replay or a stale copy.
    pub fn supersedes(&self, stored: &AddressRecord) -> bool {
        self.signature.is_some() && self.seq > stored.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<PeerAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn a_signed_record_verifies_on_the_wire_and_only_for_its_key() {
        let kp = StaticKeypair::generate().unwrap();
        let r =
            AddressRecord::sign(&kp, addrs(&["10.231.0.1:4000", "[2001:db8::1]:4000", "n.example.org:9"]), 3).unwrap();
        let (seq, texts, sig) = r.to_wire().unwrap();
        assert_eq!(AddressRecord::from_wire(kp.public(), seq, &texts, &sig).unwrap(), r);
        let other = StaticKeypair::generate().unwrap();
        assert_eq!(AddressRecord::from_wire(other.public(), seq, &texts, &sig), Err(RecordError::BadSignature));
        // Any field changed breaks the signature.
        assert_eq!(AddressRecord::from_wire(kp.public(), seq + 1, &texts, &sig), Err(RecordError::BadSignature));
        let mut moved = texts.clone();
        moved[0] = "10.231.0.2:4000".into();
        assert_eq!(AddressRecord::from_wire(kp.public(), seq, &moved, &sig), Err(RecordError::BadSignature));
        let mut reordered = texts.clone();
        reordered.swap(0, 1);
        assert_eq!(AddressRecord::from_wire(kp.public(), seq, &reordered, &sig), Err(RecordError::BadSignature));
    }

    #[test]
    fn bad_records_are_refused_before_any_signature_check() {
        let kp = StaticKeypair::generate().unwrap();
        assert_eq!(AddressRecord::sign(&kp, vec![], 1), Err(RecordError::NoAddresses));
        assert_eq!(AddressRecord::sign(&kp, addrs(&["1.2.3.4:5"]), 0), Err(RecordError::ZeroSequence));
        assert_eq!(
            AddressRecord::sign(&kp, addrs(&["1.2.3.4:5", "1.2.3.4:5"]), 1),
            Err(RecordError::Duplicate("1.2.3.4:5".into()))
        );
        let nine: Vec<String> = (1..=9).map(|i| format!("10.0.0.{i}:1")).collect();
        assert_eq!(AddressRecord::from_wire(kp.public(), 1, &nine, &[[0; 32]; 2]), Err(RecordError::TooMany(9)));
        let bad = vec!["not an address".to_owned()];
        assert!(matches!(
            AddressRecord::from_wire(kp.public(), 1, &bad, &[[0; 32]; 2]),
            Err(RecordError::BadAddress(_))
        ));
    }

    #[test]
    fn only_a_higher_sequence_supersedes() {
        let kp = StaticKeypair::generate().unwrap();
        let v1 = AddressRecord::unsigned("127.0.0.1:1".parse().unwrap());
        let s1 = AddressRecord::sign(&kp, addrs(&["10.0.0.1:1"]), 1).unwrap();
        let s2 = AddressRecord::sign(&kp, addrs(&["10.0.0.2:1"]), 2).unwrap();
        assert!(s1.supersedes(&v1));
        assert!(s2.supersedes(&s1));
        assert!(!s1.supersedes(&s2), "an older record replayed");
        assert!(!s2.supersedes(&s2), "the same record again");
        assert!(!v1.supersedes(&s1), "unsigned never supersedes");
    }
}
