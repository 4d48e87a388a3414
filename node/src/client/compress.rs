//! Optional compression of documents before splitting (deflate, pure Rust).
//!
//! Compression runs only when it pays: a 64 KiB sample is compressed first, and data that
//! does not shrink to 90% (already compressed media, archives, encrypted files) is stored as
//! it is, so a large video costs one sample's worth of CPU, not a full pass. Decompression
//! stops at the length the manifest records, so a hostile manifest cannot make a fetcher
//! inflate a "zip bomb".

use std::io::{Read, Write};

use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::ClientError;

/// How much of the start of a document is compressed to decide.
const SAMPLE: usize = 64 * 1024;
/// Compress only if the sample shrinks below this fraction.
const WORTH_IT: f64 = 0.9;

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(Vec::with_capacity(data.len() / 2), Compression::new(6));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// The compressed form of `data`, or `None` if compressing does not pay.
pub fn maybe_compress(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 256 {
        return None;
    }
    let sample = &data[..data.len().min(SAMPLE)];
    if deflate(sample).len() as f64 > sample.len() as f64 * WORTH_IT {
        return None;
    }
    let packed = deflate(data);
    (packed.len() < data.len()).then_some(packed)
}

/// Inflates `packed`, which must give exactly `len` bytes.
pub fn decompress(packed: &[u8], len: u64) -> Result<Vec<u8>, ClientError> {
    // Grows as it goes: `len` is the publisher's claim, not something to reserve up front.
    let mut out = Vec::new();
    DeflateDecoder::new(packed)
        .take(len.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|_| ClientError::BadManifest("compressed content is corrupt"))?;
    if out.len() as u64 != len {
        return Err(ClientError::BadManifest("compressed content has the wrong length"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_compresses_and_round_trips() {
        let text = "pamphlet ".repeat(10_000).into_bytes();
        let packed = maybe_compress(&text).unwrap();
        assert!(packed.len() < text.len() / 10);
        assert_eq!(decompress(&packed, text.len() as u64).unwrap(), text);
    }

    #[test]
    fn random_data_is_left_alone() {
        use rand::{RngCore, SeedableRng};
        let mut data = vec![0u8; 200_000];
        rand_chacha::ChaCha8Rng::seed_from_u64(3).fill_bytes(&mut data);
        assert!(maybe_compress(&data).is_none());
    }

    #[test]
    fn bombs_and_lies_are_refused() {
        let zeros = vec![0u8; 1 << 20];
        let packed = maybe_compress(&zeros).unwrap();
        // The manifest claims less than the data inflates to: stop, refuse.
        assert!(matches!(decompress(&packed, 1000), Err(ClientError::BadManifest(_))));
        assert!(matches!(decompress(b"not deflate at all", 10), Err(ClientError::BadManifest(_))));
    }
}
