//! Site manifests: a freesite is one document that maps relative paths to files.
//!
//! ```text
//! SITE_MAGIC (8 bytes "pmphsite") ‖ postcard(SiteManifest)
//! SiteManifest { version: 1, default: Option<path>, files: [SiteFile] }
//! SiteFile     { path, mime, size, sha256, body: Inline(bytes) | Chk(URI text) }
//! ```
//! Small files (at most [`INLINE_MAX`] bytes) sit inside the manifest; larger ones are CHK
//! documents of their own, so an unchanged file keeps its key from one edition to the next.
//! The manifest itself is inserted like any document (a CHK, or an SSK/USK edition).
//!
//! Decoding is strict: every path is checked ([`check_path`]: no `..`, no absolute path, no
//! empty segment, bounded length and depth), names are unique and no file is also a
//! directory, sizes and counts are bounded, inline bodies match their recorded size and hash.
//! The upload bundle the API takes ([`decode_bundle`]) is checked the same way.

use std::collections::BTreeSet;

use pamphlet_crypto::{ChkUri, Uri};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// First bytes of every site manifest.
pub const SITE_MAGIC: &[u8; 8] = b"pmphsite";
/// Site manifest version this build writes and reads.
pub const SITE_VERSION: u8 = 1;
/// Files at most this large are kept inside the manifest.
pub const INLINE_MAX: usize = 2048;
/// Most files one site may have.
pub const MAX_FILES: usize = 10_000;
/// Longest path (bytes).
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest path segment (bytes).
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Deepest path (segments).
pub const MAX_DEPTH: usize = 16;
/// Largest manifest accepted (bytes, serialized).
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;
/// Largest file a site may hold (the largest document).
pub const MAX_FILE_BYTES: u64 = super::splitfile::MAX_DOCUMENT_BYTES;
/// The document a directory (or the site root) shows.
pub const DEFAULT_DOCUMENT: &str = "index.html";
/// First bytes of an upload bundle.
pub const BUNDLE_MAGIC: &[u8; 4] = b"PSB1";

/// Why a site manifest, a path in it, or an upload bundle is refused. Each message names
/// the path at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// The document is not a site manifest (no magic).
    #[error("the document is not a site")]
    NotASite,
    /// The bytes do not decode, or a field is out of its bounds.
    #[error("the site manifest is malformed: {0}")]
    Malformed(&'static str),
    /// A version this build does not read.
    #[error("site manifest version {0} is not supported; upgrade pamphlet")]
    Version(u8),
    /// A path breaks the rules.
    #[error("bad path {path:?} in the site: {reason}")]
    BadPath {
        /// The path (cut to 64 characters).
        path: String,
        /// Which rule.
        reason: &'static str,
    },
    /// Two files with one path, or a file that is also a directory.
    #[error("the site names {0:?} twice (or as both a file and a directory)")]
    Duplicate(String),
    /// Too many files, or a file or the manifest too large.
    #[error("the site is too large: {0}")]
    TooLarge(&'static str),
    /// No file at that path (and no default document for it).
    #[error("the site has no file {0:?}")]
    NoSuchFile(String),
}

/// Where a file's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteBody {
    /// The bytes themselves (at most [`INLINE_MAX`]).
    Inline(Vec<u8>),
    /// The CHK URI of the file, as text.
    Chk(String),
}

/// One file of a site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteFile {
    /// Relative path, `/`-separated, checked by [`check_path`].
    pub path: String,
    /// MIME type ([`guess_mime`] at insert time).
    pub mime: String,
    /// Bytes of the file.
    pub size: u64,
    /// SHA-256 of the file: lets a new edition reuse an unchanged file's key.
    pub sha256: [u8; 32],
    /// Where the bytes are.
    pub body: SiteBody,
}

impl SiteFile {
    /// The CHK URI of a file stored outside the manifest.
    pub fn chk(&self) -> Option<ChkUri> {
        match &self.body {
            SiteBody::Chk(text) => match Uri::parse(text) {
                Ok(Uri::Chk(c)) => Some(c),
                _ => None,
            },
            SiteBody::Inline(_) => None,
        }
    }
}

/// A site: paths to files, and the default document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteManifest {
    /// [`SITE_VERSION`].
    pub version: u8,
    /// What `/` shows: [`DEFAULT_DOCUMENT`] when the site has one.
    pub default: Option<String>,
    /// The files, sorted by path.
    pub files: Vec<SiteFile>,
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn bad(path: &str, reason: &'static str) -> SiteError {
    SiteError::BadPath { path: path.chars().take(64).collect(), reason }
}

/// Checks a relative path of a site: non-empty `/`-separated segments, none `.` or `..`,
/// no leading `/`, no `\`, no control characters, at most [`MAX_SEGMENT_BYTES`] per
/// segment, [`MAX_PATH_BYTES`] in all and [`MAX_DEPTH`] segments.
pub fn check_path(path: &str) -> Result<(), SiteError> {
    if path.is_empty() {
        return Err(bad(path, "empty"));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(bad(path, "too long"));
    }
    if path.starts_with('/') {
        return Err(bad(path, "absolute"));
    }
    if path.contains('\\') || path.chars().any(char::is_control) {
        return Err(bad(path, "backslash or control character"));
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() > MAX_DEPTH {
        return Err(bad(path, "too deep"));
    }
    for s in segments {
        match s {
            "" => return Err(bad(path, "empty segment")),
            "." | ".." => return Err(bad(path, "`.` or `..` segment")),
            s if s.len() > MAX_SEGMENT_BYTES => return Err(bad(path, "segment too long")),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a list of paths for duplicates and for a file that is also a directory.
fn check_unique<'a>(paths: impl Iterator<Item = &'a str>) -> Result<(), SiteError> {
    let mut files = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for p in paths {
        if !files.insert(p) || dirs.contains(p) {
            return Err(SiteError::Duplicate(p.chars().take(64).collect()));
        }
        let mut prefix = p;
        while let Some((dir, _)) = prefix.rsplit_once('/') {
            if files.contains(dir) {
                return Err(SiteError::Duplicate(dir.chars().take(64).collect()));
            }
            dirs.insert(dir);
            prefix = dir;
        }
    }
    Ok(())
}

impl SiteManifest {
    /// Serializes the manifest with its magic.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = SITE_MAGIC.to_vec();
        // Serializing plain data into a Vec cannot fail.
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// True when `bytes` start like a site manifest (the document is a site).
    pub fn is_site(bytes: &[u8]) -> bool {
        bytes.starts_with(SITE_MAGIC)
    }

    /// Parses and checks a manifest (see the module documentation for the rules).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SiteError> {
        let body = bytes.strip_prefix(SITE_MAGIC.as_slice()).ok_or(SiteError::NotASite)?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(SiteError::TooLarge("manifest over 16 MiB"));
        }
        let (m, rest): (SiteManifest, _) =
            postcard::take_from_bytes(body).map_err(|_| SiteError::Malformed("does not decode"))?;
        if !rest.is_empty() {
            return Err(SiteError::Malformed("trailing bytes"));
        }
        if m.version != SITE_VERSION {
            return Err(SiteError::Version(m.version));
        }
        if m.files.len() > MAX_FILES {
            return Err(SiteError::TooLarge("too many files"));
        }
        for f in &m.files {
            check_path(&f.path)?;
            if f.mime.len() > 255 || !f.mime.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
                return Err(SiteError::Malformed("bad MIME type"));
            }
            if f.size > MAX_FILE_BYTES {
                return Err(SiteError::TooLarge("a file over the document limit"));
            }
            match &f.body {
                SiteBody::Inline(data) => {
                    if data.len() > INLINE_MAX || data.len() as u64 != f.size || sha256(data) != f.sha256 {
                        return Err(SiteError::Malformed("an inline file does not match its size or hash"));
                    }
                }
                SiteBody::Chk(_) => {
                    if f.chk().is_none() {
                        return Err(SiteError::Malformed("a file's key is not a CHK URI"));
                    }
                }
            }
        }
        check_unique(m.files.iter().map(|f| f.path.as_str()))?;
        if let Some(d) = &m.default {
            if !m.files.iter().any(|f| &f.path == d) {
                return Err(SiteError::Malformed("the default document is not in the site"));
            }
        }
        Ok(m)
    }

    /// The file `path` names: `""` is the default document, `dir/` is `dir/index.html`.
    pub fn lookup(&self, path: &str) -> Result<&SiteFile, SiteError> {
        let wanted = if path.is_empty() {
            self.default.clone().ok_or_else(|| SiteError::NoSuchFile(String::new()))?
        } else if path.ends_with('/') {
            format!("{path}{DEFAULT_DOCUMENT}")
        } else {
            path.to_owned()
        };
        check_path(&wanted)?;
        self.files
            .iter()
            .find(|f| f.path == wanted)
            .ok_or_else(|| SiteError::NoSuchFile(wanted.chars().take(64).collect()))
    }
}

/// The MIME type of a file: from its extension, then checked against its first bytes
/// where that is cheap (images by their magic, HTML by not being binary). A file whose
/// bytes contradict its extension is `application/octet-stream` (the gateway then offers
/// it only as a download).
pub fn guess_mime(path: &str, data: &[u8]) -> String {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let octet = "application/octet-stream";
    let by_ext = match ext.as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "txt" | "md" => "text/plain",
        "m3u" => "audio/x-mpegurl",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "js" => "text/javascript",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => octet,
    };
    let image = data.starts_with(b"\x89PNG\r\n\x1a\n")
        || data.starts_with(&[0xff, 0xd8, 0xff])
        || data.starts_with(b"GIF87a")
        || data.starts_with(b"GIF89a")
        || (data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP"));
    let fits = match by_ext {
        "image/png" => data.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => data.starts_with(&[0xff, 0xd8, 0xff]),
        "image/gif" => data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a"),
        "image/webp" => data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP"),
        "text/html" | "text/css" | "text/plain" | "audio/x-mpegurl" => !image && !data.contains(&0),
        _ => true,
    };
    if fits { by_ext } else { octet }.to_owned()
}

/// Encodes files as an upload bundle for `POST /v1/insert-site`:
/// `"PSB1" ‖ (u16 BE path length ‖ path ‖ u64 BE data length ‖ data)*`.
pub fn encode_bundle(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = BUNDLE_MAGIC.to_vec();
    for (path, data) in files {
        out.extend((path.len() as u16).to_be_bytes());
        out.extend(path.as_bytes());
        out.extend((data.len() as u64).to_be_bytes());
        out.extend(data);
    }
    out
}

/// Decodes an upload bundle: every path checked, no duplicates, at most [`MAX_FILES`].
pub fn decode_bundle(mut bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, SiteError> {
    bytes = bytes.strip_prefix(BUNDLE_MAGIC.as_slice()).ok_or(SiteError::Malformed("not a site bundle"))?;
    let mut files = Vec::new();
    while !bytes.is_empty() {
        if files.len() == MAX_FILES {
            return Err(SiteError::TooLarge("too many files"));
        }
        let (len, rest) = bytes.split_first_chunk::<2>().ok_or(SiteError::Malformed("truncated path length"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if len > MAX_PATH_BYTES {
            return Err(SiteError::Malformed("path too long"));
        }
        let (path, rest) = rest.split_at_checked(len).ok_or(SiteError::Malformed("truncated path"))?;
        let path = std::str::from_utf8(path).map_err(|_| SiteError::Malformed("path is not UTF-8"))?;
        check_path(path)?;
        let (dlen, rest) = rest.split_first_chunk::<8>().ok_or(SiteError::Malformed("truncated data length"))?;
        let dlen = u64::from_be_bytes(*dlen);
        if dlen > MAX_FILE_BYTES {
            return Err(SiteError::TooLarge("a file over the document limit"));
        }
        let (data, rest) = rest.split_at_checked(dlen as usize).ok_or(SiteError::Malformed("truncated data"))?;
        files.push((path.to_owned(), data.to_vec()));
        bytes = rest;
    }
    check_unique(files.iter().map(|(p, _)| p.as_str()))?;
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(path: &str, data: &[u8]) -> SiteFile {
        SiteFile {
            path: path.into(),
            mime: guess_mime(path, data),
            size: data.len() as u64,
            sha256: sha256(data),
            body: SiteBody::Inline(data.to_vec()),
        }
    }

    fn site(files: Vec<SiteFile>) -> SiteManifest {
        SiteManifest { version: SITE_VERSION, default: Some("index.html".into()), files }
    }

    #[test]
    fn round_trip_and_lookup() {
        let m = site(vec![inline("index.html", b"<p>hi"), inline("about/index.html", b"a"), inline("a.css", b"p{}")]);
        let back = SiteManifest::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.lookup("").unwrap().path, "index.html");
        assert_eq!(back.lookup("about/").unwrap().path, "about/index.html");
        assert_eq!(back.lookup("a.css").unwrap().mime, "text/css");
        assert_eq!(back.lookup("nope.html"), Err(SiteError::NoSuchFile("nope.html".into())));
        assert!(matches!(back.lookup("../x"), Err(SiteError::BadPath { .. })));
    }

    #[test]
    fn hostile_manifests_are_refused() {
        for (path, reason) in [
            ("../etc/passwd", "`.` or `..` segment"),
            ("/abs", "absolute"),
            ("a//b", "empty segment"),
            ("a\\b", "backslash or control character"),
        ] {
            let m = site(vec![inline(path, b"x")]);
            assert_eq!(SiteManifest::from_bytes(&m.to_bytes()), Err(bad(path, reason)), "{path}");
        }
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert!(matches!(
            SiteManifest::from_bytes(&site(vec![inline(&deep, b"x")]).to_bytes()),
            Err(SiteError::BadPath { reason: "too deep", .. })
        ));
        let dup = site(vec![inline("index.html", b"a"), inline("index.html", b"b")]);
        assert_eq!(SiteManifest::from_bytes(&dup.to_bytes()), Err(SiteError::Duplicate("index.html".into())));
        let file_and_dir = site(vec![inline("index.html", b"a"), inline("index.html/x", b"b")]);
        assert!(matches!(SiteManifest::from_bytes(&file_and_dir.to_bytes()), Err(SiteError::Duplicate(_))));
        let mut huge = inline("index.html", b"a");
        huge.size = u64::MAX;
        assert!(matches!(SiteManifest::from_bytes(&site(vec![huge]).to_bytes()), Err(SiteError::TooLarge(_))));
        let mut lying = inline("index.html", b"a");
        lying.sha256 = [0; 32];
        assert!(matches!(SiteManifest::from_bytes(&site(vec![lying]).to_bytes()), Err(SiteError::Malformed(_))));
        let no_default = SiteManifest { default: Some("missing.html".into()), ..site(vec![]) };
        assert!(matches!(SiteManifest::from_bytes(&no_default.to_bytes()), Err(SiteError::Malformed(_))));
        let mut bytes = site(vec![]).to_bytes();
        bytes.push(0);
        assert_eq!(SiteManifest::from_bytes(&bytes), Err(SiteError::Malformed("trailing bytes")));
        assert_eq!(SiteManifest::from_bytes(b"hello"), Err(SiteError::NotASite));
    }

    #[test]
    fn mime_types_are_checked_against_the_bytes() {
        assert_eq!(guess_mime("a/b.HTML", b"<p>"), "text/html");
        assert_eq!(guess_mime("x.png", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(guess_mime("liar.png", b"<script>"), "application/octet-stream");
        assert_eq!(guess_mime("page.html", b"\x89PNG\r\n\x1a\n"), "application/octet-stream");
        assert_eq!(guess_mime("noext", b"x"), "application/octet-stream");
        assert_eq!(guess_mime("sitemap.m3u", b"./index.html\n"), "audio/x-mpegurl");
    }

    #[test]
    fn bundles_are_strict() {
        let files = vec![("index.html".to_owned(), b"<p>".to_vec()), ("img/a.png".to_owned(), vec![1, 2])];
        let b = encode_bundle(&files);
        assert_eq!(decode_bundle(&b).unwrap(), files);
        assert!(decode_bundle(&b[..b.len() - 1]).is_err());
        assert!(decode_bundle(&encode_bundle(&[("../x".into(), vec![])])).is_err());
        assert!(decode_bundle(&encode_bundle(&[("a".into(), vec![]), ("a".into(), vec![])])).is_err());
        assert!(decode_bundle(b"nope").is_err());
    }
}
