//! URIs: the text a person publishes and pastes. Parsing is strict and total: every input
//! either parses to exactly one key or gives a [`UriError`] naming what is wrong, and
//! `parse(format(uri)) == uri` for every URI.
//!
//! ```text
//! CHK@<routing key>,<decryption key>,<extras>[/<file name>]
//! SSK@<public key hash>,<crypto key>,<extras>/<name>            request (public)
//! SSK@<private key>,<crypto key>,<extras>/<name>                insert (keep secret)
//! USK@<public key hash or private key>,<crypto key>,<extras>/<name>/<edition>
//! KSK@<keyword>
//! ```
//! Keys are 32 bytes in URL-safe base64 without padding. Extras are three bytes:
//! format version (1), cipher (1 = ChaCha20-Poly1305), flags. An optional `pamphlet:` prefix
//! and surrounding whitespace are accepted.

use std::fmt;
use std::str::FromStr;

use crate::b64;
use crate::error::{UriError, UriPart};
use crate::keys::{ssk_name_hash, ssk_routing_key, CryptoKey, DecryptionKey, PublicKeyHash, RoutingKey, SskPrivateKey};

const FORMAT_VERSION: u8 = 1;
const CIPHER_CHACHA20_POLY1305: u8 = 1;

const CHK_FLAG_MANIFEST: u8 = 0x01;
const CHK_FLAG_COMPRESSED: u8 = 0x02;
const SSK_FLAG_INSERT: u8 = 0x01;

/// Settings a CHK URI carries so the fetcher knows how to read the plaintext.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChkFlags {
    /// The block holds a splitfile manifest (or a redirect), not the document itself.
    pub manifest: bool,
    /// The document was compressed before splitting.
    pub compressed: bool,
}

impl ChkFlags {
    fn to_byte(self) -> u8 {
        (if self.manifest { CHK_FLAG_MANIFEST } else { 0 }) | (if self.compressed { CHK_FLAG_COMPRESSED } else { 0 })
    }
}

/// A content-hash key: fetches one CHK block and decrypts it.
#[derive(Clone, PartialEq, Eq)]
pub struct ChkUri {
    /// Where the block lives; public.
    pub routing_key: RoutingKey,
    /// Decrypts the block; the capability to read.
    pub key: DecryptionKey,
    /// How to interpret the plaintext.
    pub flags: ChkFlags,
    /// An optional file-name hint (`CHK@…/report.pdf`); not part of the key.
    pub name: Option<String>,
}

impl ChkUri {
    /// A CHK URI without a file-name hint.
    pub fn new(routing_key: RoutingKey, key: DecryptionKey, flags: ChkFlags) -> Self {
        Self { routing_key, key, flags, name: None }
    }
}

/// The public URI of an SSK document (or of one edition of a USK document).
#[derive(Clone, PartialEq, Eq)]
pub struct SskRequestUri {
    /// SHA-256 of the subspace's public key.
    pub public_key_hash: PublicKeyHash,
    /// The subspace's symmetric key: hides names, encrypts payloads.
    pub crypto_key: CryptoKey,
    /// The document name within the subspace.
    pub name: String,
    /// The edition (0 for a plain `SSK@` URI).
    pub edition: u64,
    /// Written as `USK@…/name/edition` (an updatable document) rather than `SSK@…/name`.
    pub updatable: bool,
}

impl SskRequestUri {
    /// The routing key of this document and edition.
    pub fn routing_key(&self) -> RoutingKey {
        ssk_routing_key(&self.public_key_hash, &ssk_name_hash(&self.crypto_key, &self.name), self.edition)
    }

    /// The same document at another edition (and written as a USK).
    pub fn with_edition(&self, edition: u64) -> Self {
        Self { edition, updatable: true, ..self.clone() }
    }
}

/// The private URI that publishes into an SSK subspace. Whoever holds it can publish there.
#[derive(Clone, PartialEq, Eq)]
pub struct SskInsertUri {
    /// The subspace's signing key.
    pub private_key: SskPrivateKey,
    /// The subspace's symmetric key.
    pub crypto_key: CryptoKey,
    /// The document name within the subspace.
    pub name: String,
    /// The edition to publish.
    pub edition: u64,
    /// Written as `USK@…/name/edition` rather than `SSK@…/name`.
    pub updatable: bool,
}

impl SskInsertUri {
    /// An insert URI from its parts.
    pub fn new(private_key: SskPrivateKey, crypto_key: CryptoKey, name: &str, edition: u64, updatable: bool) -> Self {
        Self { private_key, crypto_key, name: name.to_owned(), edition, updatable }
    }

    /// The public URI that fetches what this one publishes.
    pub fn request_uri(&self) -> SskRequestUri {
        SskRequestUri {
            public_key_hash: self.private_key.public_key().hash(),
            crypto_key: self.crypto_key.clone(),
            name: self.name.clone(),
            edition: self.edition,
            updatable: self.updatable,
        }
    }

    /// The same subspace and name at another edition (and written as a USK).
    pub fn with_edition(&self, edition: u64) -> Self {
        Self { edition, updatable: true, ..self.clone() }
    }
}

/// A keyword-signed key: an SSK whose key pair and crypto key are derived from a
/// human-readable keyword, so anyone who knows the word can both fetch and publish it.
#[derive(Clone, PartialEq, Eq)]
pub struct KskUri {
    /// The keyword, e.g. `freedom.txt`.
    pub keyword: String,
}

impl KskUri {
    /// The SSK insert URI every holder of the keyword derives.
    pub fn insert_uri(&self) -> SskInsertUri {
        let seed = crate::keys::hash("pamphlet/ksk/sign/v1", &[self.keyword.as_bytes()]);
        let crypto = crate::keys::hash("pamphlet/ksk/crypto/v1", &[self.keyword.as_bytes()]);
        SskInsertUri::new(SskPrivateKey::from_seed(seed), CryptoKey::from_bytes(crypto), &self.keyword, 0, false)
    }

    /// The SSK request URI every holder of the keyword derives.
    pub fn request_uri(&self) -> SskRequestUri {
        self.insert_uri().request_uri()
    }
}

/// Any pamphlet URI.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Uri {
    /// `CHK@…`
    Chk(ChkUri),
    /// `SSK@…` or `USK@…` with a public key hash: fetches.
    SskRequest(SskRequestUri),
    /// `SSK@…` or `USK@…` with a private key: publishes.
    SskInsert(SskInsertUri),
    /// `KSK@…`
    Ksk(KskUri),
}

impl Uri {
    /// Parses a URI; see the module documentation for the forms.
    pub fn parse(text: &str) -> Result<Self, UriError> {
        text.parse()
    }

    /// The routing key of the block this URI fetches first.
    pub fn routing_key(&self) -> RoutingKey {
        match self {
            Uri::Chk(c) => c.routing_key,
            Uri::SskRequest(r) => r.routing_key(),
            Uri::SskInsert(i) => i.request_uri().routing_key(),
            Uri::Ksk(k) => k.request_uri().routing_key(),
        }
    }
}

fn extras(version: u8, cipher: u8, flags: u8) -> String {
    b64::encode(&[version, cipher, flags])
}

fn parse_extras(text: &str) -> Result<u8, UriError> {
    let [version, cipher, flags] = b64::decode_array::<3>(text, UriPart::Extras)?;
    if version != FORMAT_VERSION || cipher != CIPHER_CHACHA20_POLY1305 {
        return Err(UriError::Unsupported { version, cipher });
    }
    Ok(flags)
}

/// Checks a document name or keyword: no control characters, no surrounding whitespace
/// (URIs are trimmed when parsed, so such a name could not round-trip). Names used in
/// `SSK@`/`USK@` URIs must also be non-empty and contain no `/`; see [`validate_doc_name`].
fn check_name(name: &str) -> Result<(), UriError> {
    if name.chars().any(char::is_control) || name.trim() != name {
        Err(UriError::BadName)
    } else {
        Ok(())
    }
}

/// Checks that `name` can be an SSK/USK document name: one non-empty path segment without
/// `/`, control characters or surrounding whitespace.
pub fn validate_doc_name(name: &str) -> Result<(), UriError> {
    if name.is_empty() {
        return Err(UriError::MissingDocName);
    }
    if name.contains('/') {
        return Err(UriError::BadName);
    }
    check_name(name)
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Chk(c) => c.fmt(f),
            Uri::SskRequest(r) => r.fmt(f),
            Uri::SskInsert(i) => i.fmt(f),
            Uri::Ksk(k) => k.fmt(f),
        }
    }
}

impl fmt::Display for ChkUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CHK@{},{},{}",
            b64::encode(&self.routing_key.0),
            b64::encode(self.key.expose()),
            extras(FORMAT_VERSION, CIPHER_CHACHA20_POLY1305, self.flags.to_byte())
        )?;
        if let Some(name) = &self.name {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

fn fmt_ssk(
    f: &mut fmt::Formatter<'_>,
    key: &[u8; 32],
    ck: &CryptoKey,
    flags: u8,
    name: &str,
    edition: u64,
    updatable: bool,
) -> fmt::Result {
    let kind = if updatable { "USK" } else { "SSK" };
    write!(
        f,
        "{kind}@{},{},{}/{name}",
        b64::encode(key),
        b64::encode(ck.expose()),
        extras(FORMAT_VERSION, CIPHER_CHACHA20_POLY1305, flags)
    )?;
    if updatable {
        write!(f, "/{edition}")?;
    }
    Ok(())
}

impl fmt::Display for SskRequestUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ssk(f, &self.public_key_hash.0, &self.crypto_key, 0, &self.name, self.edition, self.updatable)
    }
}

impl fmt::Display for SskInsertUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_ssk(
            f,
            &self.private_key.expose_seed(),
            &self.crypto_key,
            SSK_FLAG_INSERT,
            &self.name,
            self.edition,
            self.updatable,
        )
    }
}

impl fmt::Display for KskUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KSK@{}", self.keyword)
    }
}

// URIs are capabilities: `Debug` (which ends up in logs) shows only the kind and a short
// routing-key prefix, never the keys or the document name.
impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Chk(c) => c.fmt(f),
            Uri::SskRequest(r) => r.fmt(f),
            Uri::SskInsert(i) => i.fmt(f),
            Uri::Ksk(k) => k.fmt(f),
        }
    }
}

impl fmt::Debug for ChkUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChkUri({:?})", self.routing_key)
    }
}

impl fmt::Debug for SskRequestUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SskRequestUri({:?})", self.routing_key())
    }
}

impl fmt::Debug for SskInsertUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SskInsertUri(..)")
    }
}

impl fmt::Debug for KskUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KskUri(..)")
    }
}

impl FromStr for Uri {
    type Err = UriError;

    fn from_str(text: &str) -> Result<Self, UriError> {
        let text = strip_scheme(text.trim());
        if text.is_empty() {
            return Err(UriError::Empty);
        }
        let (kind, rest) = text.split_once('@').ok_or(UriError::MissingAt)?;
        match kind.to_ascii_uppercase().as_str() {
            "CHK" => parse_chk(rest).map(Uri::Chk),
            "SSK" => parse_ssk(rest, false),
            "USK" => parse_ssk(rest, true),
            "KSK" => {
                if rest.is_empty() {
                    return Err(UriError::EmptyKeyword);
                }
                check_name(rest)?;
                Ok(Uri::Ksk(KskUri { keyword: rest.to_owned() }))
            }
            other => Err(UriError::UnknownKeyType(other.chars().take(16).collect())),
        }
    }
}

/// `text` without a leading `pamphlet:` or `freenet:` (Hyphanet users paste URIs with the
/// latter; the key types are the same words).
fn strip_scheme(text: &str) -> &str {
    for scheme in ["pamphlet:", "freenet:"] {
        if let Some(p) = text.get(..scheme.len()) {
            if p.eq_ignore_ascii_case(scheme) {
                return text[scheme.len()..].trim_start_matches('/');
            }
        }
    }
    text
}

/// The key type a URI text starts with (`CHK`, `SSK`, `USK` or `KSK`), if it names one:
/// for error messages, which must not echo the rest (a mistyped insert URI or keyword is a
/// secret).
pub fn key_type_of(text: &str) -> Option<&'static str> {
    let (kind, _) = strip_scheme(text.trim()).split_once('@')?;
    ["CHK", "SSK", "USK", "KSK"].into_iter().find(|k| k.eq_ignore_ascii_case(kind))
}

/// The highest edition a USK can have: a fetch of edition `e` also asks for `e + 1` to learn
/// of newer ones, so `u64::MAX` could be inserted but never fetched.
pub const MAX_EDITION: u64 = u64::MAX - 1;

/// Splits a URI that may address a file inside a site into the key URI and the path after
/// it: `CHK@…/about/team.html` → (`CHK@…`, `Some("about/team.html")`),
/// `USK@…/blog/7/2026/post.html` → (`USK@…/blog/7`, `Some("2026/post.html")`),
/// `SSK@…/blog/` → (`SSK@…/blog`, `Some("")`); `None` when nothing follows the key (a
/// site root without its trailing slash). A `KSK@` keyword is never split. The path is
/// returned as written (still percent-encoded if it was); the site layer checks it.
///
/// For a CHK the whole path is returned and the key carries no file-name hint: whether
/// `CHK@…/report.pdf` names a file of a site or is only a hint is known only after the
/// fetch.
pub fn split_site_path(text: &str) -> Result<(Uri, Option<String>), UriError> {
    let body = strip_scheme(text.trim());
    let Some((kind, rest)) = body.split_once('@') else { return Uri::parse(body).map(|u| (u, None)) };
    // Segments that belong to the key itself: none for a CHK, the name for an SSK, the name
    // and the edition for a USK.
    let key_segments = match kind.to_ascii_uppercase().as_str() {
        "CHK" => 0,
        "SSK" => 1,
        "USK" => 2,
        _ => return Uri::parse(body).map(|u| (u, None)),
    };
    let mut cut = None;
    let mut seen = 0;
    for (i, c) in rest.char_indices() {
        if c == '/' {
            if seen == key_segments {
                cut = Some(i);
                break;
            }
            seen += 1;
        }
    }
    match cut {
        Some(i) => {
            let key_len = kind.len() + 1 + i;
            let uri = Uri::parse(&body[..key_len])?;
            Ok((uri, Some(body[key_len + 1..].to_owned())))
        }
        None => Uri::parse(body).map(|u| (u, None)),
    }
}

/// Splits `a,b,c[/path…]` into the three key fields and the path segments.
fn split_fields(rest: &str, first: UriPart, second: UriPart) -> Result<([&str; 3], Vec<&str>), UriError> {
    let (keys, path) = match rest.split_once('/') {
        Some((k, p)) => (k, p.split('/').collect()),
        None => (rest, Vec::new()),
    };
    let mut fields = keys.split(',');
    let a = fields.next().filter(|s| !s.is_empty()).ok_or(UriError::MissingPart(first))?;
    let b = fields.next().ok_or(UriError::MissingPart(second))?;
    let c = fields.next().ok_or(UriError::MissingPart(UriPart::Extras))?;
    if fields.next().is_some() {
        return Err(UriError::TooManyParts);
    }
    Ok(([a, b, c], path))
}

fn parse_chk(rest: &str) -> Result<ChkUri, UriError> {
    let ([rk, key, ex], path) = split_fields(rest, UriPart::RoutingKey, UriPart::DecryptionKey)?;
    let routing_key = RoutingKey(b64::decode_array(rk, UriPart::RoutingKey)?);
    let key = DecryptionKey::from_bytes(b64::decode_array(key, UriPart::DecryptionKey)?);
    let flags = parse_extras(ex)?;
    if flags & !(CHK_FLAG_MANIFEST | CHK_FLAG_COMPRESSED) != 0 {
        return Err(UriError::UnknownFlags(flags));
    }
    let flags = ChkFlags { manifest: flags & CHK_FLAG_MANIFEST != 0, compressed: flags & CHK_FLAG_COMPRESSED != 0 };
    let name = match path.as_slice() {
        [] => None,
        [name] => {
            check_name(name)?;
            Some((*name).to_owned())
        }
        [_, extra, ..] => return Err(UriError::UnexpectedPath((*extra).to_owned())),
    };
    Ok(ChkUri { routing_key, key, flags, name })
}

fn parse_ssk(rest: &str, updatable: bool) -> Result<Uri, UriError> {
    let ([first, ck, ex], path) = split_fields(rest, UriPart::PublicKeyHash, UriPart::CryptoKey)?;
    let flags = parse_extras(ex)?;
    if flags & !SSK_FLAG_INSERT != 0 {
        return Err(UriError::UnknownFlags(flags));
    }
    let insert = flags & SSK_FLAG_INSERT != 0;
    let first_part = if insert { UriPart::PrivateKey } else { UriPart::PublicKeyHash };
    let first = b64::decode_array::<32>(first, first_part)?;
    let crypto_key = CryptoKey::from_bytes(b64::decode_array(ck, UriPart::CryptoKey)?);
    let (name, edition) = match (updatable, path.as_slice()) {
        (_, []) | (_, [""]) | (_, ["", ..]) => return Err(UriError::MissingDocName),
        (false, [name]) => (*name, 0),
        (false, [_, extra, ..]) => return Err(UriError::UnexpectedPath((*extra).to_owned())),
        (true, [_]) => return Err(UriError::MissingEdition),
        (true, [name, edition]) => {
            let e = edition.parse::<u64>().ok().filter(|_| edition.bytes().all(|b| b.is_ascii_digit()));
            let e = e.ok_or_else(|| UriError::EditionNotNumber((*edition).chars().take(24).collect()))?;
            if e > MAX_EDITION {
                return Err(UriError::EditionTooLarge(e));
            }
            (*name, e)
        }
        (true, [_, _, extra, ..]) => return Err(UriError::UnexpectedPath((*extra).to_owned())),
    };
    check_name(name)?;
    let name = name.to_owned();
    Ok(if insert {
        Uri::SskInsert(SskInsertUri {
            private_key: SskPrivateKey::from_seed(first),
            crypto_key,
            name,
            edition,
            updatable,
        })
    } else {
        Uri::SskRequest(SskRequestUri { public_key_hash: PublicKeyHash(first), crypto_key, name, edition, updatable })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freenet_prefix_is_accepted_and_error_headers_name_only_the_key_type() {
        let chk = sample_chk();
        assert_eq!(Uri::parse(&format!("freenet:{chk}")).unwrap().to_string(), chk);
        assert_eq!(Uri::parse(&format!("FREENET:{chk}")).unwrap().to_string(), chk);
        assert_eq!(Uri::parse("freenet:KSK@word").unwrap().to_string(), "KSK@word");
        assert_eq!(key_type_of("freenet:usk@abc"), Some("USK"));
        assert_eq!(key_type_of("freenet:@x"), None);
        assert_eq!(key_type_of("my secret"), None);
    }

    #[test]
    fn the_last_edition_is_refused() {
        let req = SskRequestUri {
            public_key_hash: PublicKeyHash([3; 32]),
            crypto_key: CryptoKey::from_bytes([4; 32]),
            name: "blog".into(),
            edition: 0,
            updatable: true,
        };
        let last = req.with_edition(MAX_EDITION).to_string();
        assert!(Uri::parse(&last).is_ok());
        let over = req.with_edition(u64::MAX).to_string();
        assert!(matches!(Uri::parse(&over), Err(UriError::EditionTooLarge(u64::MAX))));
    }

    fn sample_chk() -> String {
        let uri = ChkUri::new(RoutingKey([1; 32]), DecryptionKey::from_bytes([2; 32]), ChkFlags::default());
        uri.to_string()
    }

    #[test]
    fn chk_round_trip() {
        let s = sample_chk();
        assert!(s.starts_with("CHK@AQEB"));
        assert_eq!(Uri::parse(&s).unwrap().to_string(), s);
        let named = format!("{s}/report.pdf");
        assert_eq!(Uri::parse(&named).unwrap().to_string(), named);
        assert_eq!(Uri::parse(&format!("pamphlet:{s}\n")).unwrap().to_string(), s);
    }

    #[test]
    fn errors_name_the_problem() {
        let s = sample_chk();
        let (rk, rest) = s["CHK@".len()..].split_once(',').unwrap();
        assert_eq!(Uri::parse(""), Err(UriError::Empty));
        assert_eq!(Uri::parse("CHK"), Err(UriError::MissingAt));
        assert_eq!(Uri::parse("XYZ@abc"), Err(UriError::UnknownKeyType("XYZ".into())));
        assert_eq!(Uri::parse(&format!("CHK@{rk}")), Err(UriError::MissingPart(UriPart::DecryptionKey)));
        assert_eq!(Uri::parse(&format!("CHK@{}!,{rest}", &rk[1..])), Err(UriError::BadBase64(UriPart::RoutingKey)));
        assert_eq!(
            Uri::parse(&format!("CHK@{},{rest}", &rk[..40])),
            Err(UriError::WrongLength { part: UriPart::RoutingKey, expected: 32, got: 30 })
        );
        assert_eq!(Uri::parse(&format!("{s},x")), Err(UriError::TooManyParts));
        assert_eq!(Uri::parse(&format!("{s}/a/b")), Err(UriError::UnexpectedPath("b".into())));
        assert_eq!(Uri::parse("KSK@"), Err(UriError::EmptyKeyword));
    }

    #[test]
    fn ssk_forms() {
        let ins =
            SskInsertUri::new(SskPrivateKey::from_seed([5; 32]), CryptoKey::from_bytes([6; 32]), "blog", 0, false);
        let req = ins.request_uri();
        let (si, sr) = (ins.to_string(), req.to_string());
        assert_ne!(si, sr);
        assert!(!sr.contains(&b64::encode(&[5; 32])), "request URI must not contain the private key");
        assert_eq!(Uri::parse(&si).unwrap(), Uri::SskInsert(ins.clone()));
        assert_eq!(Uri::parse(&sr).unwrap(), Uri::SskRequest(req.clone()));

        let usk = req.with_edition(7).to_string();
        assert!(usk.starts_with("USK@") && usk.ends_with("/blog/7"));
        assert_eq!(Uri::parse(&usk).unwrap().to_string(), usk);

        let base = sr.strip_suffix("/blog").unwrap();
        assert_eq!(Uri::parse(base), Err(UriError::MissingDocName));
        let ubase = base.replacen("SSK@", "USK@", 1);
        assert_eq!(Uri::parse(&format!("{ubase}/blog")), Err(UriError::MissingEdition));
        assert_eq!(Uri::parse(&format!("{ubase}/blog/seven")), Err(UriError::EditionNotNumber("seven".into())));
        assert_eq!(Uri::parse(&format!("{ubase}/blog/+7")), Err(UriError::EditionNotNumber("+7".into())));
        assert_eq!(Uri::parse(&format!("{ubase}/blog/7/x")), Err(UriError::UnexpectedPath("x".into())));
    }

    #[test]
    fn site_paths_split_after_the_key() {
        let s = sample_chk();
        let (u, p) = split_site_path(&format!("{s}/about/team.html")).unwrap();
        assert_eq!((u.to_string(), p.as_deref()), (s.clone(), Some("about/team.html")));
        assert_eq!(split_site_path(&format!("{s}/")).unwrap().1.as_deref(), Some(""));
        assert_eq!(split_site_path(&s).unwrap(), (Uri::parse(&s).unwrap(), None));
        let ins = SskInsertUri::new(SskPrivateKey::from_seed([5; 32]), CryptoKey::from_bytes([6; 32]), "blog", 7, true);
        let usk = ins.request_uri().to_string();
        let (u, p) = split_site_path(&format!("pamphlet:{usk}/2026/post.html")).unwrap();
        assert_eq!((u.to_string(), p.as_deref()), (usk.clone(), Some("2026/post.html")));
        assert_eq!(split_site_path(&usk).unwrap().1, None);
        let ssk = ins.request_uri();
        let ssk = SskRequestUri { updatable: false, edition: 0, ..ssk }.to_string();
        assert_eq!(split_site_path(&format!("{ssk}/a/b")).unwrap().1.as_deref(), Some("a/b"));
        let (k, p) = split_site_path("KSK@a/b").unwrap();
        assert_eq!((k.to_string(), p), ("KSK@a/b".to_owned(), None));
        assert!(split_site_path("USK@x/blog/7/a").is_err());
    }

    #[test]
    fn ksk_derivation_is_stable_and_public() {
        let a = KskUri { keyword: "freedom.txt".into() };
        assert_eq!(a.request_uri(), a.request_uri());
        assert_ne!(a.request_uri(), KskUri { keyword: "freedom.txt2".into() }.request_uri());
        assert_eq!(Uri::parse("KSK@freedom.txt").unwrap().to_string(), "KSK@freedom.txt");
    }

    #[test]
    fn debug_hides_capabilities() {
        let s = sample_chk();
        let shown = format!("{:?}", Uri::parse(&s).unwrap());
        assert!(!shown.contains(&b64::encode(&[2; 32])));
        let k = format!("{:?}", Uri::parse("KSK@my-secret-word").unwrap());
        assert!(!k.contains("my-secret-word"));
    }
}
