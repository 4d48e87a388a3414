//! Key material: routing keys (public, what nodes route on), and the secrets that only
//! URI holders have (CHK decryption keys, SSK crypto keys, SSK private keys).
//!
//! Secrets print as `Name(..)`, compare in constant time and are zeroized on drop.

use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// SHA-256 over a domain-separation label followed by `parts`.
///
/// Every derived value in pamphlet has its own label, so a hash computed for one purpose
/// can never be mistaken for another.
pub(crate) fn hash(label: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((label.len() as u8).to_le_bytes());
    h.update(label.as_bytes());
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The 32-byte key a block is stored and routed under. Public: every node on a request's
/// path sees it, and it reveals nothing about the content without the URI's other parts.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoutingKey(pub [u8; 32]);

impl RoutingKey {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key's location on the circle [0, 1): its first eight bytes as a fraction.
    ///
    /// Routing keys are SHA-256 outputs, so locations are uniform on the circle.
    pub fn location(&self) -> f64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        // 53 bits of mantissa: shift so the result is exactly representable and < 1.
        (u64::from_be_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A short hex prefix for logs; enough to tell keys apart, too little to fetch one.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for RoutingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoutingKey({}…)", self.short())
    }
}

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps raw key bytes.
            pub fn from_bytes(bytes: [u8; 32]) -> Self {
                Self(bytes)
            }

            /// The raw key bytes. Handle with care: this is a secret.
            pub fn expose(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_key_type!(
    /// The symmetric key that decrypts one CHK block; the hash of the block's padded plaintext.
    DecryptionKey
);

secret_key_type!(
    /// The per-subspace symmetric key of an SSK: it hides document names from nodes and
    /// encrypts SSK payloads. Shared by everyone who holds the subspace's request URI.
    CryptoKey
);

impl CryptoKey {
    /// A fresh random crypto key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

/// The ed25519 signing key that owns an SSK subspace. Whoever holds it can publish there.
#[derive(Clone)]
pub struct SskPrivateKey(SigningKey);

impl SskPrivateKey {
    /// A fresh random key pair.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self(SigningKey::generate(rng))
    }

    /// The key pair whose 32-byte seed is `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed. Handle with care: this is the secret.
    pub fn expose_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public_key(&self) -> SskPublicKey {
        SskPublicKey(self.0.verifying_key())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.0
    }
}

impl fmt::Debug for SskPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SskPrivateKey(..)")
    }
}

impl PartialEq for SskPrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bytes().ct_eq(&other.0.to_bytes()).into()
    }
}

impl Eq for SskPrivateKey {}

/// The ed25519 public key of an SSK subspace, carried in every SSK block.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SskPublicKey(pub(crate) VerifyingKey);

impl SskPublicKey {
    /// The 32-byte compressed point.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The hash that request URIs carry instead of the key itself.
    pub fn hash(&self) -> PublicKeyHash {
        PublicKeyHash(hash("pamphlet/ssk/pubkey/v1", &[&self.0.to_bytes()]))
    }
}

impl fmt::Debug for SskPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SskPublicKey({:02x}{:02x}{:02x}{:02x}…)",
            self.0.as_bytes()[0],
            self.0.as_bytes()[1],
            self.0.as_bytes()[2],
            self.0.as_bytes()[3]
        )
    }
}

/// SHA-256 of an SSK public key: what a request URI names its subspace by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKeyHash(pub [u8; 32]);

impl fmt::Debug for PublicKeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKeyHash({:02x}{:02x}{:02x}{:02x}…)", self.0[0], self.0[1], self.0[2], self.0[3])
    }
}

/// The one-way hash of an SSK document name under its subspace's crypto key: nodes see only
/// this, never the name.
pub(crate) fn ssk_name_hash(crypto_key: &CryptoKey, name: &str) -> [u8; 32] {
    hash("pamphlet/ssk/name/v1", &[crypto_key.expose(), name.as_bytes()])
}

/// The routing key of edition `edition` of the SSK document whose hashed name is
/// `name_hash`. Both a URI (to ask for a block) and a block (to verify itself) derive it,
/// so it lives here, below both.
pub(crate) fn ssk_routing_key(pkh: &PublicKeyHash, name_hash: &[u8; 32], edition: u64) -> RoutingKey {
    RoutingKey(hash("pamphlet/ssk/rk/v1", &[&pkh.0, name_hash, &edition.to_be_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let k = DecryptionKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{k:?}"), "DecryptionKey(..)");
        let c = CryptoKey::from_bytes([0xcd; 32]);
        assert_eq!(format!("{c:?}"), "CryptoKey(..)");
        let p = SskPrivateKey::from_seed([7; 32]);
        let shown = format!("{p:?}");
        assert_eq!(shown, "SskPrivateKey(..)");
    }

    #[test]
    fn location_is_in_unit_interval() {
        assert_eq!(RoutingKey([0; 32]).location(), 0.0);
        let top = RoutingKey([0xff; 32]).location();
        assert!(top < 1.0 && top > 0.999_999);
        let mut half = [0u8; 32];
        half[0] = 0x80;
        assert_eq!(RoutingKey(half).location(), 0.5);
    }

    #[test]
    fn labels_separate_domains() {
        assert_ne!(hash("a", &[b"bc"]), hash("ab", &[b"c"]));
    }
}
