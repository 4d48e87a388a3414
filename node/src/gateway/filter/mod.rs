//! The gateway's content filter: a pure function from a document (its bytes, its declared
//! MIME type, and its own key path) to either bytes that are safe to show in a browser,
//! a "download only" verdict, or a typed refusal. No I/O, no clock, no randomness.
//!
//! "Safe" means one thing: nothing in the output can make the browser talk to anything
//! but the gateway, or run code. A page that can load `http://tracker.example/x.png`, or
//! run a script that does, unmasks its reader. The rules, with the threat each answers
//! and the Hyphanet FProxy lessons behind them, are in `docs/gateway.md`.
//!
//! Layout:
//! - [`url`]: the link policy every URL goes through, and the warning-page URL shape;
//! - `html`: ammonia whitelist, a second parse that filters `<style>` and audits;
//! - `css`: a `cssparser` token walker that rewrites `url()` and drops the rest;
//! - `image`: PNG, JPEG, GIF and WebP recognised by their bytes;
//! - `m3u`: playlists, whose entries a player opens outside the browser;
//! - [`shape`]: the depth and element-count limits, checked before HTML is sanitised;
//! - [`FilterError`]: why a document was refused.
//!
//! The contract, tested in this module and fuzzed by property tests: for any bytes, the
//! filter returns without panicking, and every URL in its HTML or CSS output resolves (by
//! the `url` crate, a WHATWG parser) to a pamphlet key on the gateway, a fragment, or
//! (for links a person clicks) the warning page at [`EXTERNAL_LINK_PATH`].

mod css;
mod error;
mod html;
mod image;
mod m3u;
pub mod shape;
pub mod url;

pub use error::FilterError;
pub use url::{Location, EXTERNAL_LINK_PARAM, EXTERNAL_LINK_PATH};

/// HTML and CSS larger than this are refused rather than parsed (images are passed
/// through without parsing and have no limit here). Freesite pages are far smaller; the
/// limit bounds the memory one request can make the filter use.
pub const MAX_FILTERED_BYTES: usize = 16 * 1024 * 1024;

/// What the gateway may do with a document.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Show it: these bytes, with this `Content-Type`, and the headers in
    /// [`crate::gateway::headers::SECURITY_HEADERS`].
    Serve {
        /// The filtered bytes (or the original ones, for images and plain text).
        body: Vec<u8>,
        /// The `Content-Type` to send, with `charset=utf-8` for text.
        mime: String,
    },
    /// The filter does not understand this type: offer it only as a download
    /// (`Content-Disposition: attachment`) behind a warning page, never inline.
    DownloadOnly {
        /// The declared type, lower case, without parameters (`application/octet-stream`
        /// if none was declared).
        mime: String,
    },
}

/// Filters one document.
///
/// - `bytes`: the document as fetched;
/// - `declared_mime`: its type from the site manifest or the key's metadata, e.g.
///   `text/html; charset=utf-8`;
/// - `location`: its key path, e.g. `/USK@…/blog/7/2026/post.html`; relative links are
///   resolved against it and may not climb above its site root.
pub fn filter(bytes: &[u8], declared_mime: &str, location: &str) -> Result<Verdict, FilterError> {
    filter_at(bytes, declared_mime, location, "")
}

/// [`filter`] for a gateway at `origin` (`http://127.0.0.1:8888`, one of the `Host` values
/// it answers to): documents opened outside the browser (playlists) get absolute URLs on
/// it, since a player has no base to resolve `/CHK@…` against. Pages and stylesheets keep
/// gateway-absolute paths whatever the origin.
pub fn filter_at(bytes: &[u8], declared_mime: &str, location: &str, origin: &str) -> Result<Verdict, FilterError> {
    let loc = Location::parse(location)?;
    let mime = Mime::parse(declared_mime);
    let essence = mime.essence.as_str();
    if let Some(image) = image::ImageType::from_mime(essence) {
        image::check(image, essence, bytes)?;
        return Ok(Verdict::Serve { body: bytes.to_vec(), mime: image.mime().to_owned() });
    }
    match essence {
        "image/svg+xml" => Err(FilterError::SvgRefused),
        "text/html" | "application/xhtml+xml" => {
            let text = decode_text(bytes, &mime)?;
            let page = html::filter_html(&text, &loc)?;
            Ok(Verdict::Serve { body: page.into_bytes(), mime: "text/html; charset=utf-8".to_owned() })
        }
        "text/css" => {
            let text = decode_text(bytes, &mime)?;
            let css = css::filter_stylesheet(&text, &loc);
            if !css::audit(&css) {
                return Err(FilterError::Unverified { what: "CSS" });
            }
            Ok(Verdict::Serve { body: css.into_bytes(), mime: "text/css; charset=utf-8".to_owned() })
        }
        "audio/x-mpegurl" | "audio/mpegurl" | "application/x-mpegurl" => {
            let text = decode_text(bytes, &mime)?;
            let playlist = m3u::filter_playlist(&text, &loc, origin);
            if !m3u::audit(&playlist, origin) {
                return Err(FilterError::Unverified { what: "M3U" });
            }
            Ok(Verdict::Serve { body: playlist.into_bytes(), mime: "audio/x-mpegurl; charset=utf-8".to_owned() })
        }
        "text/plain" => {
            // Shown as text: with nosniff the browser never renders it as anything else.
            let text = decode_text(bytes, &mime)?;
            Ok(Verdict::Serve { body: text.into_bytes(), mime: "text/plain; charset=utf-8".to_owned() })
        }
        "" => Ok(Verdict::DownloadOnly { mime: "application/octet-stream".to_owned() }),
        _ => Ok(Verdict::DownloadOnly { mime: mime.essence }),
    }
}

/// A declared MIME type: its essence (lower case) and `charset` parameter.
struct Mime {
    essence: String,
    charset: Option<String>,
}

impl Mime {
    fn parse(text: &str) -> Self {
        let mut parts = text.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let charset = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_ascii_lowercase())
        });
        // Anything that is not `type/subtype` made of token characters is no type at all.
        let valid = essence.split_once('/').is_some_and(|(t, s)| {
            let token =
                |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
            token(t) && token(s)
        });
        Self { essence: if valid { essence } else { String::new() }, charset }
    }
}

/// Decodes a text document to UTF-8. The declared charset wins; there is no sniffing of
/// `<meta charset>` or byte patterns (UTF-7 and other guessed encodings were how markup got
/// past filters that read the bytes one way while the browser read them another). Also
/// refuses text types declared over binary formats.
fn decode_text(bytes: &[u8], mime: &Mime) -> Result<String, FilterError> {
    if let Some(detected) = image::sniff(bytes).filter(|d| image::is_binary_format(d)) {
        return Err(FilterError::TypeMismatch { declared: mime.essence.clone(), detected });
    }
    if bytes.len() > MAX_FILTERED_BYTES {
        return Err(FilterError::TooLarge { len: bytes.len(), limit: MAX_FILTERED_BYTES });
    }
    match mime.charset.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => {
            let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            Ok(String::from_utf8_lossy(bytes).into_owned())
        }
        Some("iso-8859-1" | "latin1" | "l1" | "iso_8859-1") => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        Some(other) => Err(FilterError::UnsupportedCharset { charset: other.to_owned() }),
    }
}

#[cfg(test)]
mod tests;
