//! Typed errors of the crypto crate, one enum per concern.
//!
//! URI errors are shown to people, so they name the part of the URI that is wrong and what
//! was expected. Block errors separate "this block is not what its routing key promises"
//! (a peer sent garbage or a forgery) from "this block is genuine but you hold the wrong key".

use std::fmt;

/// The part of a URI an error is about; its `Display` is the name a person would use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriPart {
    /// The CHK routing key (first field of a `CHK@` URI).
    RoutingKey,
    /// The CHK decryption key (second field of a `CHK@` URI).
    DecryptionKey,
    /// The SSK public key hash (first field of a request URI).
    PublicKeyHash,
    /// The SSK private key (first field of an insert URI).
    PrivateKey,
    /// The SSK subspace crypto key (second field of an `SSK@`/`USK@` URI).
    CryptoKey,
    /// The trailing settings field (format version, cipher, flags).
    Extras,
}

impl fmt::Display for UriPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriPart::RoutingKey => "routing key",
            UriPart::DecryptionKey => "decryption key",
            UriPart::PublicKeyHash => "public key hash",
            UriPart::PrivateKey => "private key",
            UriPart::CryptoKey => "crypto key",
            UriPart::Extras => "extras",
        })
    }
}

/// Why a string is not a valid pamphlet URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// The string is empty (or only a `pamphlet:` prefix).
    #[error("the URI is empty")]
    Empty,
    /// There is no `@` separating the key type from the key.
    #[error("no '@' after the key type: a URI looks like CHK@..., SSK@..., USK@... or KSK@...")]
    MissingAt,
    /// The key type before `@` is not one pamphlet knows.
    #[error("unknown key type {0:?}: expected CHK, SSK, USK or KSK")]
    UnknownKeyType(String),
    /// A comma-separated field is missing.
    #[error("the {0} is missing: expected three comma-separated fields after '@'")]
    MissingPart(UriPart),
    /// More comma-separated fields than the key type has.
    #[error("too many comma-separated fields after '@': expected three")]
    TooManyParts,
    /// A field is not valid URL-safe base64 (without padding).
    #[error("the {0} is not valid URL-safe base64")]
    BadBase64(UriPart),
    /// A field decodes to the wrong number of bytes.
    #[error("the {part} has {got} bytes, expected {expected}")]
    WrongLength {
        /// Which field.
        part: UriPart,
        /// How many bytes the field must have.
        expected: usize,
        /// How many bytes it had.
        got: usize,
    },
    /// The extras name a format version or cipher this build does not support.
    #[error("unsupported format version {version} or cipher {cipher} in the extras; upgrade pamphlet")]
    Unsupported {
        /// Format version byte.
        version: u8,
        /// Cipher byte.
        cipher: u8,
    },
    /// The extras' flag byte has bits this build does not understand.
    #[error("unknown flag bits {0:#04x} in the extras")]
    UnknownFlags(u8),
    /// An SSK or USK URI without `/document-name`.
    #[error("missing document name: an SSK URI ends in /NAME, a USK URI in /NAME/EDITION")]
    MissingDocName,
    /// A USK URI without `/EDITION`.
    #[error("missing edition: a USK URI ends in /NAME/EDITION (a number)")]
    MissingEdition,
    /// The edition of a USK URI is not a non-negative integer.
    #[error("edition {0:?} is not a number")]
    EditionNotNumber(String),
    /// The edition of a USK URI is past [`crate::uri::MAX_EDITION`].
    #[error("edition {0} is too large: the last usable edition is 18446744073709551614 (2^64 - 2)")]
    EditionTooLarge(u64),
    /// More `/` path segments than the key type allows.
    #[error("unexpected path segment {0:?} at the end of the URI")]
    UnexpectedPath(String),
    /// A document name or keyword contains a character that is not allowed.
    #[error("the document name or keyword contains a '/' where not allowed, a control character, or leading or trailing whitespace")]
    BadName,
    /// `KSK@` with nothing after it.
    #[error("missing keyword: a KSK URI looks like KSK@some-words")]
    EmptyKeyword,
}

/// Why a block failed verification or decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// The block has the wrong number of bytes for its kind.
    #[error("block has {got} bytes, a {kind} block has {expected}")]
    WrongSize {
        /// `"CHK"` or `"SSK"`.
        kind: &'static str,
        /// The fixed size of that kind.
        expected: usize,
        /// What was given.
        got: usize,
    },
    /// The block does not hash (CHK) or derive (SSK) to the routing key it was sent under:
    /// corrupt, truncated or forged.
    #[error("block does not match its routing key (corrupt or forged)")]
    RoutingKeyMismatch,
    /// The SSK signature does not verify: forged or corrupt.
    #[error("SSK block signature is invalid (forged or corrupt)")]
    BadSignature,
    /// The SSK block is signed by a key other than the one the URI names.
    #[error("SSK block was published under another key than the URI names")]
    WrongPublicKey,
    /// Authenticated decryption failed: the block is genuine but the key is wrong.
    #[error("cannot decrypt the block: wrong decryption key")]
    DecryptFailed,
    /// The decrypted block is malformed (length field out of range, non-zero padding).
    /// Only a dishonest inserter can produce this, since the block authenticated.
    #[error("decrypted block is malformed: {0}")]
    Malformed(&'static str),
    /// The plaintext is too large for one block.
    #[error("data of {got} bytes does not fit in one block (at most {max})")]
    TooLarge {
        /// Largest payload of this block kind.
        max: usize,
        /// What was given.
        got: usize,
    },
    /// The key used for an operation is of the wrong kind (e.g. a CHK URI for an SSK block).
    #[error("this URI cannot decode a block of that kind")]
    KindMismatch,
}
