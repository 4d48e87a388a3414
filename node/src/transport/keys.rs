//! Long-term static X25519 keys that identify a node on its links.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use zeroize::Zeroizing;

use super::session::{SessionError, NOISE_PARAMS};

/// A node's static X25519 public key: what friends put in their friend lists.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key in URL-safe base64 without padding (43 characters).
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// A short form for logs: the first 8 base64 characters.
    pub fn short(&self) -> String {
        let mut s = self.to_base64();
        s.truncate(8);
        s
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// A node's long-term static X25519 key pair. The secret is zeroized on drop and never
/// printed.
#[derive(Clone)]
pub struct StaticKeypair {
    /// The secret scalar.
    secret: Zeroizing<[u8; 32]>,
    /// Its public key.
    public: PublicKey,
}

impl StaticKeypair {
    /// Generates a fresh key pair from the operating system's RNG (through snow's resolver).
    pub fn generate() -> Result<Self, SessionError> {
        let params = NOISE_PARAMS.parse().map_err(SessionError::Noise)?;
        let kp = snow::Builder::new(params).generate_keypair().map_err(SessionError::Noise)?;
        let secret = Zeroizing::new(to_array(&kp.private)?);
        let public = PublicKey(to_array(&kp.public)?);
        drop(Zeroizing::new(kp.private));
        Ok(Self { secret, public })
    }

    /// Rebuilds a key pair that was saved with [`StaticKeypair::expose_secret`] and
    /// [`StaticKeypair::public`]. The pair is not checked: a mismatched pair makes every
    /// handshake fail (use [`StaticKeypair::from_secret`] to derive the public half).
    pub fn from_parts(secret: [u8; 32], public: PublicKey) -> Self {
        Self { secret: Zeroizing::new(secret), public }
    }

    /// Rebuilds a key pair from its secret alone, deriving the public half (X25519 base
    /// point multiplication, through snow's resolver so the same code does the handshake).
    pub fn from_secret(secret: [u8; 32]) -> Result<Self, SessionError> {
        use snow::resolvers::{CryptoResolver, DefaultResolver};
        let choice = snow::params::DHChoice::Curve25519;
        let mut dh = DefaultResolver.resolve_dh(&choice).ok_or(SessionError::BadKeyLength(0))?;
        dh.set(&secret);
        let public = PublicKey(to_array(dh.pubkey())?);
        Ok(Self { secret: Zeroizing::new(secret), public })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The secret scalar, for saving it (and for the Noise handshake).
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.secret
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeypair").field("public", &self.public).field("secret", &"..").finish()
    }
}

fn to_array(v: &[u8]) -> Result<[u8; 32], SessionError> {
    v.try_into().map_err(|_| SessionError::BadKeyLength(v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_half_is_derived_from_the_secret() {
        let kp = StaticKeypair::generate().unwrap();
        let again = StaticKeypair::from_secret(*kp.expose_secret()).unwrap();
        assert_eq!(again.public(), kp.public());
        let mut other = *kp.expose_secret();
        other[5] ^= 1;
        assert_ne!(StaticKeypair::from_secret(other).unwrap().public(), kp.public());
    }

    #[test]
    fn secrets_do_not_print() {
        let k = StaticKeypair::generate().unwrap();
        let dbg = format!("{k:?}");
        assert!(!dbg.contains(&URL_SAFE_NO_PAD.encode(k.expose_secret())));
        assert!(dbg.contains(&k.public().short()));
    }
}
