//! The link policy: every URL a filtered document keeps is one of
//!
//! - a gateway-absolute key path, `/CHK@…`, `/SSK@…`, `/USK@…`, `/KSK@…` (from a key link,
//!   `freenet:`/`pamphlet:` links, FProxy-style `http://127.0.0.1:8888/CHK@…` links, or a
//!   relative link resolved against the document's own key path);
//! - a fragment, `#section`;
//! - for links a person clicks (never for anything the browser loads by itself), the
//!   gateway's warning page, [`EXTERNAL_LINK_PATH`]`?url=<percent-encoded>`.
//!
//! Anything else is dropped. Query strings on key and relative links are dropped too:
//! freesites are static, and a query is how a page could steer the gateway (FProxy's
//! `?type=` and `?force=` parameters were used to override the filter's MIME decision).
//!
//! Relative links are always resolved here, against the location the gateway passes in,
//! rather than left to the browser: the browser's idea of the base depends on how the
//! address was typed (trailing slash or not, a USK before or after its edition redirect),
//! and only the key path is a base the filter can trust. A link that would climb above
//! the site root (`../../x` from the root) is dropped.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::FilterError;

/// The gateway route that shows an outside address and does not follow it. A filtered
/// link to the open web becomes `/external?url=<the address, percent-encoded>`.
pub const EXTERNAL_LINK_PATH: &str = "/external";

/// The query parameter of [`EXTERNAL_LINK_PATH`] that carries the outside address.
pub const EXTERNAL_LINK_PARAM: &str = "url";

/// Schemes whose links become a warning-page link (when clicked, never when embedded).
/// Everything else (`javascript:`, `data:`, `vbscript:`, `file:`, `blob:`, …) is dropped.
const WARNABLE_SCHEMES: &[&str] = &["http", "https", "ftp", "mailto", "irc", "ircs", "news", "xmpp", "gemini"];

/// Key types, as they start a key path.
const KEY_PREFIXES: &[&str] = &["CHK@", "SSK@", "USK@", "KSK@"];

/// Bytes kept as they are in a path segment: RFC 3986 unreserved and a few sub-delims
/// that keys and file names use (`,` and `~` in keys, `@` after the key type). Quotes,
/// parentheses, backslashes, angle brackets and whitespace are always encoded, so a
/// rewritten URL is inert in an HTML attribute and in a CSS string alike.
const PATH_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b',')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'&')
    .remove(b'*')
    .remove(b'+')
    .remove(b';')
    .remove(b'=')
    .remove(b':');

/// Fragments also keep `/` and `?`.
const FRAGMENT_KEEP: &AsciiSet = &PATH_KEEP.remove(b'/').remove(b'?');

/// How the browser would use a URL: whether a person has to click it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UrlUse {
    /// A link a person follows (`a href`, `area href`, `cite`): an outside address may
    /// become a warning-page link.
    Navigate,
    /// A resource the browser loads by itself (`img src`, a stylesheet, CSS `url()`): only
    /// pamphlet keys and relative paths; an outside address is dropped.
    Embed,
}

/// Where the document being filtered lives: its key path, split into the site root (the
/// key, plus `name/edition` for a USK and `name` for an SSK) and the directory below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The site root without a trailing slash, e.g. `USK@…/blog/7`.
    root: String,
    /// The directory of the document below the root, one entry per segment.
    dir: Vec<String>,
}

impl Location {
    /// Parses a document location such as `/CHK@…/about/team.html` or `USK@…/blog/7/`.
    /// A location ending in `/` is a directory (its default document); otherwise the last
    /// segment is the document's own name. `freenet:` and `pamphlet:` prefixes and a query
    /// or fragment are ignored; dot segments are refused.
    pub fn parse(location: &str) -> Result<Self, FilterError> {
        let bad = || FilterError::BadLocation { location: location.to_owned() };
        let text = strip_key_scheme(location.trim()).unwrap_or(location.trim());
        let text = text.split(['?', '#']).next().unwrap_or_default();
        let text = text.trim_start_matches('/');
        let (key, rest) = split_key(text).ok_or_else(bad)?;
        let mut segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| is_dot_segment(s)) {
            return Err(bad());
        }
        // The last segment is the document's own name ("" for a directory).
        segments.pop();
        let root_len = root_segments(key).min(segments.len());
        let mut root = upper_key(key);
        for s in &segments[..root_len] {
            root.push('/');
            root.push_str(s);
        }
        let dir = segments[root_len..].iter().map(|s| (*s).to_owned()).collect();
        Ok(Self { root, dir })
    }

    /// The site root, gateway-absolute, without a trailing slash (`/CHK@…`).
    pub fn root(&self) -> String {
        format!("/{}", encode_path(&self.root))
    }
}

/// Rewrites one URL found in a document, or `None` to drop it.
///
/// The input is the value as the browser would see it: HTML entities and CSS escapes are
/// already decoded by the parsers, so `jav&#x09;ascript:` arrives here as `jav\tascript:`.
pub(crate) fn rewrite(raw: &str, how: UrlUse, loc: &Location) -> Option<String> {
    // The WHATWG URL parser strips leading and trailing C0 controls and spaces, and removes
    // tabs and newlines anywhere: do the same, so the scheme seen here is the browser's.
    let cleaned: String =
        raw.trim_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    if cleaned.is_empty() {
        return None;
    }
    if let Some(fragment) = cleaned.strip_prefix('#') {
        return Some(format!("#{}", utf8_percent_encode(fragment, FRAGMENT_KEEP)));
    }
    if let Some(scheme) = scheme_of(&cleaned) {
        let after = &cleaned[scheme.len() + 1..];
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "freenet" | "pamphlet" => key_link(after.trim_start_matches(['/', '\\'])),
            "http" | "https" => match local_gateway_key(after) {
                Some(key) => key_link(key),
                None => external(&cleaned, how),
            },
            s if WARNABLE_SCHEMES.contains(&s) => external(&cleaned, how),
            _ => None,
        };
    }
    // For http(s) bases the browser reads a backslash as a slash: `\\evil.example` is
    // protocol-relative. Normalise before looking at the path.
    let normalised = slashes_normalised(&cleaned);
    if normalised.starts_with("//") {
        return external(&cleaned, how);
    }
    if let Some(abs) = normalised.strip_prefix('/') {
        if split_key(abs).is_some() {
            return key_link(abs);
        }
        // A site-root-absolute path (`/style.css`): the author meant the site's root.
        return resolve(&loc.root, &[], abs);
    }
    if split_key(&normalised).is_some() {
        return key_link(&normalised);
    }
    resolve(&loc.root, &loc.dir, &normalised)
}

/// The warning-page link for an outside address, or `None` if the browser would load it
/// by itself.
fn external(address: &str, how: UrlUse) -> Option<String> {
    match how {
        UrlUse::Navigate => Some(format!(
            "{EXTERNAL_LINK_PATH}?{EXTERNAL_LINK_PARAM}={}",
            utf8_percent_encode(address, NON_ALPHANUMERIC)
        )),
        UrlUse::Embed => None,
    }
}

/// A key link (`CHK@…/path#frag`, without a leading slash) as a gateway-absolute path.
fn key_link(text: &str) -> Option<String> {
    let normalised = slashes_normalised(text);
    let (key, rest) = split_key(&normalised)?;
    let (path, fragment) = split_path(rest);
    if !split_path(&normalised).0.contains('/') {
        // A bare key, `CHK@…` or `CHK@…#f`.
        return Some(with_fragment(format!("/{}", encode_path(&upper_key(key))), fragment));
    }
    let segments: Vec<&str> = path.split('/').collect();
    let root_len = root_segments(key).min(segments.len());
    let mut root = upper_key(key);
    for s in &segments[..root_len] {
        if is_dot_segment(s) {
            return None;
        }
        root.push('/');
        root.push_str(s);
    }
    // `CHK@…` alone stays `CHK@…`; `CHK@…/a/../b` becomes `CHK@…/b`.
    if segments.len() == root_len {
        return Some(with_fragment(format!("/{}", encode_path(&root)), fragment));
    }
    resolve_parts(&root, &[], &segments[root_len..], fragment)
}

/// Resolves a relative path (with an optional `?query` and `#fragment`) against a root
/// and a directory below it.
fn resolve(root: &str, dir: &[String], relative: &str) -> Option<String> {
    let (path, fragment) = split_path(relative);
    let segments: Vec<&str> = path.split('/').collect();
    resolve_parts(root, dir, &segments, fragment)
}

fn resolve_parts(root: &str, dir: &[String], segments: &[&str], fragment: Option<&str>) -> Option<String> {
    let mut out: Vec<&str> = dir.iter().map(String::as_str).collect();
    let last = segments.len().saturating_sub(1);
    for (i, seg) in segments.iter().enumerate() {
        if is_dot_segment(seg) {
            if is_double_dot(seg) {
                // Climbing above the site root is refused, not clamped: the link is wrong.
                out.pop()?;
            }
            if i == last {
                // `dir/..` or `dir/.` means the directory itself.
                out.push("");
            }
        } else {
            out.push(seg);
        }
    }
    let mut path = format!("/{}", encode_path(root));
    for seg in out {
        path.push('/');
        path.push_str(&encode_path(seg));
    }
    Some(with_fragment(path, fragment))
}

fn with_fragment(mut path: String, fragment: Option<&str>) -> String {
    if let Some(f) = fragment {
        path.push('#');
        path.extend(utf8_percent_encode(f, FRAGMENT_KEEP));
    }
    path
}

/// Splits `path?query#fragment` into the path and the fragment; the query is dropped.
fn split_path(text: &str) -> (&str, Option<&str>) {
    let (rest, fragment) = match text.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (text, None),
    };
    let path = rest.split('?').next().unwrap_or_default();
    (path, fragment)
}

/// The path part of a URL with backslashes read as slashes (as the browser does for
/// http(s) URLs); the fragment keeps its backslashes (they are percent-encoded later).
fn slashes_normalised(text: &str) -> String {
    match text.find('#') {
        Some(i) => format!("{}{}", text[..i].replace('\\', "/"), &text[i..]),
        None => text.replace('\\', "/"),
    }
}

/// Percent-encodes a path, keeping `/` as the separator and existing `%XX` escapes.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode_segment).collect::<Vec<_>>().join("/")
}

fn encode_segment(seg: &str) -> String {
    // Keep well-formed %XX escapes (re-encoding them would change the name); encode a
    // stray `%`.
    let bytes = seg.as_bytes();
    let mut out = String::with_capacity(seg.len());
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.extend(utf8_percent_encode(&seg[start..i], PATH_KEEP));
            let escape = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
            match escape {
                Some(hex) => {
                    out.push('%');
                    out.extend(hex.iter().map(|b| char::from(*b)));
                    i += 3;
                }
                None => {
                    out.push_str("%25");
                    i += 1;
                }
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.extend(utf8_percent_encode(&seg[start..], PATH_KEEP));
    out
}

/// `.` or `..`, also percent-encoded (`%2e%2E`), as the browser's URL parser sees them.
fn is_dot_segment(seg: &str) -> bool {
    matches!(decode_dots(seg).as_str(), "." | "..")
}

fn is_double_dot(seg: &str) -> bool {
    decode_dots(seg) == ".."
}

fn decode_dots(seg: &str) -> String {
    seg.to_ascii_lowercase().replace("%2e", ".")
}

/// The scheme of an absolute URL (`http` in `http://…`), as the WHATWG parser finds it:
/// an ASCII letter, then letters, digits, `+`, `-` or `.`, then `:` before any `/?#\`.
fn scheme_of(text: &str) -> Option<&str> {
    let end = text.find(':')?;
    let scheme = &text[..end];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic() && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .then_some(scheme)
}

/// Strips a `freenet:` or `pamphlet:` prefix (and the slashes after it).
fn strip_key_scheme(text: &str) -> Option<&str> {
    let scheme = scheme_of(text)?;
    matches!(scheme.to_ascii_lowercase().as_str(), "freenet" | "pamphlet")
        .then(|| text[scheme.len() + 1..].trim_start_matches('/'))
}

/// For `//127.0.0.1:8888/CHK@…` (an FProxy-style link to a local gateway), the key part.
fn local_gateway_key(after_scheme: &str) -> Option<&str> {
    let rest = after_scheme.strip_prefix("//")?;
    let (authority, path) = rest.split_once('/')?;
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    let local = matches!(host.to_ascii_lowercase().as_str(), "127.0.0.1" | "localhost" | "[::1]");
    (local && split_key(path).is_some()).then_some(path)
}

/// If `text` starts with a key type (any case), the key and the rest after the key's
/// first `/` ("" if none).
fn split_key(text: &str) -> Option<(&str, &str)> {
    let prefix = text.get(..4)?;
    KEY_PREFIXES.iter().find(|k| k.eq_ignore_ascii_case(prefix))?;
    let (key, rest) = text.split_once('/').unwrap_or((text, ""));
    // A bare key type (`CHK@`) is not a key.
    (key.len() > 4).then_some((key, rest))
}

/// The key with its type upper-cased (`chk@…` → `CHK@…`); the rest is case-sensitive.
fn upper_key(key: &str) -> String {
    match (key.get(..4), key.get(4..)) {
        (Some(t), Some(rest)) => format!("{}{rest}", t.to_ascii_uppercase()),
        _ => key.to_owned(),
    }
}

/// How many path segments after the key belong to the site root.
fn root_segments(key: &str) -> usize {
    match key.get(..4).map(str::to_ascii_uppercase).as_deref() {
        Some("USK@") => 2,
        Some("SSK@") => 1,
        _ => 0,
    }
}

/// The output of [`rewrite`] as the browser will resolve it: true if it stays on the
/// gateway, on a key path or (for [`UrlUse::Navigate`]) the warning page, or is a bare
/// fragment. This re-checks with the `url` crate (a WHATWG-conformant parser), so it is an
/// independent audit of the rewriting above, not a restatement of it.
pub(crate) fn is_safe_output(value: &str, how: UrlUse) -> bool {
    const BASE: &str = "http://gateway.invalid/CHK@base/dir/page.html";
    let Ok(base) = ammonia::Url::parse(BASE) else { return false };
    let Ok(resolved) = base.join(value) else { return false };
    if resolved.scheme() != "http"
        || resolved.host_str() != Some("gateway.invalid")
        || resolved.port().is_some()
        || !resolved.username().is_empty()
        || resolved.password().is_some()
    {
        return false;
    }
    if value.starts_with('#') {
        return true;
    }
    let path = resolved.path();
    if path == EXTERNAL_LINK_PATH {
        return how == UrlUse::Navigate
            && resolved.query_pairs().count() == 1
            && resolved.query_pairs().all(|(k, _)| k == EXTERNAL_LINK_PARAM);
    }
    resolved.query().is_none() && path.get(1..).and_then(|p| p.get(..4)).is_some_and(|k| KEY_PREFIXES.contains(&k))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "CHK@AAAA,BBBB,AQEA";

    fn loc(path: &str) -> Location {
        Location::parse(path).unwrap()
    }

    fn nav(raw: &str) -> Option<String> {
        rewrite(raw, UrlUse::Navigate, &loc(&format!("/{KEY}/docs/page.html")))
    }

    fn embed(raw: &str) -> Option<String> {
        rewrite(raw, UrlUse::Embed, &loc(&format!("/{KEY}/docs/page.html")))
    }

    #[test]
    fn locations_split_root_and_directory() {
        assert_eq!(loc(&format!("/{KEY}/a/b.html")), Location { root: KEY.into(), dir: vec!["a".into()] });
        assert_eq!(loc(KEY), Location { root: KEY.into(), dir: vec![] });
        assert_eq!(loc(&format!("freenet:{KEY}/")), Location { root: KEY.into(), dir: vec![] });
        assert_eq!(
            loc("/USK@pk,ck,AQAB/blog/7/2026/post.html"),
            Location { root: "USK@pk,ck,AQAB/blog/7".into(), dir: vec!["2026".into()] }
        );
        assert_eq!(
            loc("/SSK@pk,ck,AQAB/site/index.html"),
            Location { root: "SSK@pk,ck,AQAB/site".into(), dir: vec![] }
        );
        for bad in ["/index.html", "", "http://x/CHK@a", &format!("/{KEY}/../x"), &format!("/{KEY}/%2e%2E/x"), "CHK@"] {
            assert!(matches!(Location::parse(bad), Err(FilterError::BadLocation { .. })), "{bad}");
        }
    }

    #[test]
    fn relative_links_resolve_within_the_site() {
        assert_eq!(nav("other.html").unwrap(), format!("/{KEY}/docs/other.html"));
        assert_eq!(nav("./sub/x.html#top").unwrap(), format!("/{KEY}/docs/sub/x.html#top"));
        assert_eq!(nav("../index.html").unwrap(), format!("/{KEY}/index.html"));
        assert_eq!(nav("..").unwrap(), format!("/{KEY}/"));
        assert_eq!(nav("/style.css").unwrap(), format!("/{KEY}/style.css"));
        assert_eq!(nav("a b\"<>.html").unwrap(), format!("/{KEY}/docs/a%20b%22%3C%3E.html"));
        // Queries are dropped; fragments kept.
        assert_eq!(nav("x.html?type=text/html#f").unwrap(), format!("/{KEY}/docs/x.html#f"));
        assert_eq!(nav("#sec").unwrap(), "#sec");
        // Climbing above the root is dropped, also when the dots are percent-encoded.
        assert_eq!(nav("../../x"), None);
        assert_eq!(nav("%2e%2e/%2E%2e/x"), None);
        assert_eq!(nav("..\\..\\x"), None);
    }

    #[test]
    fn key_links_become_gateway_absolute() {
        let want = format!("/{KEY}/page.html");
        for raw in [
            format!("/{KEY}/page.html"),
            format!("{KEY}/page.html"),
            format!("freenet:{KEY}/page.html"),
            format!("pamphlet:{KEY}/page.html"),
            format!("FREENET:/{KEY}/page.html"),
            format!("http://127.0.0.1:8888/{KEY}/page.html"),
            format!("http://localhost/{KEY}/x/../page.html"),
        ] {
            assert_eq!(nav(&raw).as_deref(), Some(want.as_str()), "{raw}");
            assert_eq!(embed(&raw).as_deref(), Some(want.as_str()), "{raw}");
        }
        assert_eq!(nav("USK@pk,ck,AQAB/blog/7/").unwrap(), "/USK@pk,ck,AQAB/blog/7/");
        assert_eq!(nav("KSK@hello world").unwrap(), "/KSK@hello%20world");
        assert_eq!(nav(&format!("{KEY}/../../x")), None);
    }

    #[test]
    fn outside_addresses_become_warnings_or_are_dropped() {
        let warn = "/external?url=http%3A%2F%2Fevil%2Eexample%2Fx";
        assert_eq!(nav("http://evil.example/x").unwrap(), warn);
        assert_eq!(nav("  http://evil.example/x\n").unwrap(), warn);
        assert_eq!(nav("HTTP://evil.example/x").unwrap(), "/external?url=HTTP%3A%2F%2Fevil%2Eexample%2Fx");
        assert!(nav("//evil.example/x").unwrap().starts_with("/external?url=%2F%2Fevil"));
        assert!(nav("\\\\evil.example").unwrap().starts_with("/external?url=%5C%5Cevil"));
        assert!(nav("/\\evil.example").unwrap().starts_with("/external?url="));
        assert!(nav("http://127.0.0.1:8888/").unwrap().starts_with("/external?url="));
        for raw in ["http://evil.example/x", "//evil.example/x", "\\\\evil.example", "/\\evil.example", "mailto:a@b"] {
            assert_eq!(embed(raw), None, "{raw}");
        }
        for raw in [
            "javascript:alert(1)",
            "JaVaScRiPt:x",
            "jav\tascript:x",
            " \u{1}javascript:x",
            "data:text/html,x",
            "vbscript:x",
            "file:///etc/passwd",
            "blob:x",
            "about:blank",
        ] {
            assert_eq!(nav(raw), None, "{raw:?}");
            assert_eq!(embed(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn every_output_passes_the_independent_audit() {
        let inputs = [
            "other.html",
            "../index.html",
            "#x",
            "http://e.example/",
            "//e",
            "\\\\e",
            "CHK@a,b,c/x y",
            "/KSK@k",
            "freenet:USK@a,b,c/n/1/p",
            "a%2fb",
            "%zz",
            "x#a\"b",
        ];
        for raw in inputs {
            for how in [UrlUse::Navigate, UrlUse::Embed] {
                if let Some(out) = rewrite(raw, how, &loc(&format!("/{KEY}/docs/page.html"))) {
                    assert!(is_safe_output(&out, how), "{raw:?} -> {out:?}");
                }
            }
        }
        assert!(!is_safe_output("//evil.example/", UrlUse::Navigate));
        assert!(!is_safe_output("/external?url=x", UrlUse::Embed));
        assert!(!is_safe_output("/CHK@x/%2e%2e/%2e%2e/", UrlUse::Embed));
        assert!(!is_safe_output("/", UrlUse::Navigate));
    }
}
