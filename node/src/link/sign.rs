//! Signatures by a node's static key: the X25519 key its friends already know it by signs
//! its address records (`record.rs`), so no second key has to be handed over or trusted.
//!
//! The construction is XEdDSA's (Signal, 2016): the X25519 secret scalar `a`, clamped as
//! X25519 clamps it, gives the Edwards point `A = aB`; if `A`'s sign bit is set, `a` is
//! negated, so the signer's Edwards key is always the sign-0 point whose Montgomery `u` is
//! the X25519 public key. A verifier converts the `u` it knows back with sign 0 and checks
//! an ordinary Ed25519 signature (strict verification: no small-order keys, canonical `s`).
//! Where XEdDSA hashes 64 random bytes into the nonce, this uses Ed25519's deterministic
//! nonce from a secret prefix (SHA-512 over a label and the secret): no RNG needed, and the
//! same record always gets the same signature.
//!
//! The key is used for both Diffie-Hellman (Noise) and these signatures; the two uses
//! cannot be confused because a signature covers a domain-separated message
//! (`record.rs`) and Noise never signs. Signal uses its identity keys the same way.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{clamp_integer, Scalar};
use ed25519_dalek::hazmat::{raw_sign, ExpandedSecretKey};
use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha512};
use zeroize::Zeroize;

use super::noise::{PublicKey, StaticKeypair};

/// Length of a signature.
pub const SIGNATURE_LEN: usize = 64;

/// Label hashed with the secret into the nonce prefix.
const NONCE_LABEL: &[u8] = b"pamphlet xeddsa nonce prefix v1";

/// The signing scalar and its (sign-0) Edwards public point.
fn edwards_key(kp: &StaticKeypair) -> (Scalar, EdwardsPoint) {
    let mut a = Scalar::from_bytes_mod_order(clamp_integer(*kp.expose_secret()));
    let mut point = EdwardsPoint::mul_base(&a);
    if point.compress().as_bytes()[31] & 0x80 != 0 {
        a = -a;
        point = -point;
    }
    (a, point)
}

/// Signs `message` with the node's static key.
pub fn sign(kp: &StaticKeypair, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    let (scalar, point) = edwards_key(kp);
    let mut digest = Sha512::new();
    digest.update(NONCE_LABEL);
    digest.update(kp.expose_secret());
    let mut wide: [u8; 64] = digest.finalize().into();
    let mut hash_prefix = [0u8; 32];
    hash_prefix.copy_from_slice(&wide[..32]);
    wide.zeroize();
    // ExpandedSecretKey zeroizes itself on drop (ed25519-dalek's `zeroize` feature).
    let esk = ExpandedSecretKey { scalar, hash_prefix };
    hash_prefix.zeroize();
    raw_sign::<Sha512>(&esk, message, &VerifyingKey::from(point)).to_bytes()
}

/// Whether `signature` is `key`'s signature over `message`.
pub fn verify(key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let Some(point) = MontgomeryPoint(key.0).to_edwards(0) else {
        return false;
    };
    VerifyingKey::from(point).verify_strict(message, &Signature::from_bytes(signature)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edwards_key_is_the_x25519_key() {
        for _ in 0..16 {
            let kp = StaticKeypair::generate().unwrap();
            let (_, point) = edwards_key(&kp);
            assert_eq!(point.to_montgomery().0, kp.public().0);
            assert_eq!(point.compress().as_bytes()[31] & 0x80, 0, "sign bit forced to 0");
        }
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        // Several keys, so both signs of the Edwards point are exercised.
        for _ in 0..16 {
            let kp = StaticKeypair::generate().unwrap();
            let sig = sign(&kp, b"hello");
            assert!(verify(kp.public(), b"hello", &sig));
            assert_eq!(sign(&kp, b"hello"), sig, "deterministic");
            assert!(!verify(kp.public(), b"hellp", &sig));
            let other = StaticKeypair::generate().unwrap();
            assert!(!verify(other.public(), b"hello", &sig));
            let mut bad = sig;
            bad[10] ^= 1;
            assert!(!verify(kp.public(), b"hello", &bad));
        }
    }

    #[test]
    fn degenerate_keys_never_verify() {
        let kp = StaticKeypair::generate().unwrap();
        let sig = sign(&kp, b"m");
        for key in [[0u8; 32], [1u8; 32], [0xff; 32]] {
            assert!(!verify(&PublicKey(key), b"m", &sig));
        }
    }
}
