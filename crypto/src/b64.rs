//! URL-safe base64 without padding, strict: non-canonical encodings are rejected so every
//! key has exactly one textual form and URIs round-trip byte for byte.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::error::{UriError, UriPart};

pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes `text` to exactly `N` bytes, naming `part` in any error.
pub(crate) fn decode_array<const N: usize>(text: &str, part: UriPart) -> Result<[u8; N], UriError> {
    if text.is_empty() {
        return Err(UriError::MissingPart(part));
    }
    // Longest input that could be N bytes: reject before allocating for absurd lengths.
    if text.len() > (N * 4).div_ceil(3) + 4 {
        return Err(UriError::WrongLength { part, expected: N, got: text.len() * 3 / 4 });
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| UriError::BadBase64(part))?;
    let got = bytes.len();
    bytes.try_into().map_err(|_| UriError::WrongLength { part, expected: N, got })
}
