//! Images: recognised by their bytes, checked where it is cheap, passed through untouched.
//!
//! A browser decodes PNG, JPEG, GIF and WebP without running anything, and with
//! `X-Content-Type-Options: nosniff` it will not reinterpret an `image/png` response as
//! HTML. What matters is that the type served is the type the bytes really are: an
//! "image" that is an HTML page (or a PNG declared as a page) is refused, so no byte the
//! HTML filter never read is ever served as something a browser would parse as markup.

use super::FilterError;

/// The image types the filter serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ImageType {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF, Exif).
    Jpeg,
    /// GIF87a or GIF89a.
    Gif,
    /// WebP in its RIFF container.
    WebP,
}

impl ImageType {
    /// The MIME type served for it.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::WebP => "image/webp",
        }
    }

    /// The declared MIME essence (lower case) as an image type, accepting common aliases.
    pub(crate) fn from_mime(essence: &str) -> Option<Self> {
        match essence {
            "image/png" | "image/x-png" | "image/apng" => Some(Self::Png),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(Self::Jpeg),
            "image/gif" => Some(Self::Gif),
            "image/webp" => Some(Self::WebP),
            _ => None,
        }
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// What the bytes look like, by their first bytes; for the refusal message, and to catch
/// a text type declared over binary content. `None` if nothing recognisable.
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let text_start = {
        let mut s = bytes;
        if let Some(rest) = s.strip_prefix(b"\xef\xbb\xbf") {
            s = rest;
        }
        let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let head = &s[n..s.len().min(n + 16)];
        head.to_ascii_lowercase()
    };
    if bytes.starts_with(PNG_SIGNATURE) {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(b"PK\x03\x04") {
        Some("application/zip")
    } else if bytes.starts_with(b"\x1f\x8b") {
        Some("application/gzip")
    } else if text_start.starts_with(b"<svg") {
        Some("image/svg+xml")
    } else if text_start.starts_with(b"<!doctype html")
        || text_start.starts_with(b"<html")
        || text_start.starts_with(b"<script")
        || text_start.starts_with(b"<head")
        || text_start.starts_with(b"<body")
    {
        Some("text/html")
    } else if text_start.starts_with(b"<?xml") {
        Some("XML")
    } else {
        None
    }
}

/// True if the bytes are a binary format that must never be served as text.
pub(crate) fn is_binary_format(detected: &str) -> bool {
    detected.starts_with("image/") && detected != "image/svg+xml" || detected.starts_with("application/")
}

/// Checks that `bytes` are an image of type `declared`.
pub(crate) fn check(declared: ImageType, declared_mime: &str, bytes: &[u8]) -> Result<(), FilterError> {
    let mismatch = || FilterError::TypeMismatch {
        declared: declared_mime.to_owned(),
        detected: sniff(bytes).unwrap_or("unrecognised data"),
    };
    if sniff(bytes) != Some(declared.mime()) {
        return Err(mismatch());
    }
    let malformed = |reason| FilterError::MalformedImage { mime: declared.mime(), reason };
    match declared {
        ImageType::Png => {
            // The first chunk must be a 13-byte IHDR with a non-zero size.
            let ihdr = bytes.get(8..33).ok_or_else(|| malformed("truncated before the end of IHDR"))?;
            if ihdr[..8] != *b"\x00\x00\x00\x0dIHDR" {
                return Err(malformed("the first chunk is not a 13-byte IHDR"));
            }
            if ihdr[8..12] == [0; 4] || ihdr[12..16] == [0; 4] {
                return Err(malformed("zero width or height"));
            }
        }
        ImageType::Jpeg => {
            // After SOI, a marker (0xFF then a non-zero, non-0xFF code).
            let marker = bytes.get(3).ok_or_else(|| malformed("truncated after the start-of-image marker"))?;
            if *marker == 0 || *marker == 0xff {
                return Err(malformed("no marker after the start-of-image marker"));
            }
        }
        ImageType::Gif => {
            // Header (6) and logical screen descriptor (7), with a non-zero size.
            let lsd = bytes.get(6..13).ok_or_else(|| malformed("truncated before the end of the screen descriptor"))?;
            if lsd[..2] == [0, 0] || lsd[2..4] == [0, 0] {
                return Err(malformed("zero width or height"));
            }
        }
        ImageType::WebP => {
            let riff_len = bytes
                .get(4..8)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| malformed("truncated RIFF header"))?;
            let riff_len = usize::try_from(riff_len).map_err(|_| malformed("RIFF size too large"))?;
            if riff_len < 4 || riff_len > bytes.len() - 8 {
                return Err(malformed("the RIFF size does not match the data"));
            }
            let chunk = bytes.get(12..16).ok_or_else(|| malformed("truncated before the first chunk"))?;
            if !matches!(chunk, b"VP8 " | b"VP8L" | b"VP8X") {
                return Err(malformed("the first chunk is not VP8, VP8L or VP8X"));
            }
        }
    }
    Ok(())
}
