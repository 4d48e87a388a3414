//! Why the filter refused a document. Every refusal is the document's fault (or, for
//! [`FilterError::BadLocation`], the caller's); the filter has no I/O and so no local
//! failures. The gateway shows these to the person reading, so each says what was refused.

/// A document the filter will not serve, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// The caller passed a location that is not a key path (`CHK@…/dir/page.html`,
    /// `USK@…/name/7/…`): relative links cannot be resolved safely without one.
    #[error("the document location {location:?} is not a pamphlet key path (expected CHK@, SSK@, USK@ or KSK@, without `..`)")]
    BadLocation {
        /// The location as given.
        location: String,
    },
    /// The bytes are not what the declared MIME type says (an "image" that is really HTML,
    /// a "page" that is really a PNG): serving them under either type could let a browser
    /// run something the filter never looked at.
    #[error("the document says it is {declared} but its bytes are {detected}; refused")]
    TypeMismatch {
        /// The declared type (its essence, lower case).
        declared: String,
        /// What the bytes look like.
        detected: &'static str,
    },
    /// The bytes start like the declared image type but its header is broken (truncated,
    /// zero-sized, or an impossible chunk length).
    #[error("the {mime} image is malformed ({reason}); refused")]
    MalformedImage {
        /// The image type.
        mime: &'static str,
        /// What is wrong with the header.
        reason: &'static str,
    },
    /// SVG is refused outright: it is a script-capable XML document with its own external
    /// references (`<use href>`, `<image>`, `<foreignObject>`, XML entities), and a second
    /// sanitiser for it would be a second place to get wrong.
    #[error("SVG images are not served through the gateway (they can carry scripts and external references); refused")]
    SvgRefused,
    /// The declared character set is one the filter does not decode. Guessing it (as browsers
    /// do) is how UTF-7 and similar tricks smuggled markup past filters.
    #[error("the character set {charset:?} is not supported (only UTF-8, US-ASCII and ISO-8859-1); refused")]
    UnsupportedCharset {
        /// The `charset` parameter as declared.
        charset: String,
    },
    /// The document is larger than the filter will parse in one go.
    #[error("the document is {len} bytes, over the filter's limit of {limit}; refused")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit ([`super::MAX_FILTERED_BYTES`]).
        limit: usize,
    },
    /// The filtered output did not pass the filter's own re-parse and audit. This means a
    /// bug in the filter, not in the page; the document is refused rather than served.
    #[error("the filtered {what} did not pass re-verification; refused rather than served")]
    Unverified {
        /// What failed the audit (`"HTML"`, `"CSS"` or `"M3U"`).
        what: &'static str,
    },
    /// The page nests elements deeper than the filter parses. Parsing cost grows with the
    /// square of the depth, so a deeply nested page could stall the gateway; browsers stop
    /// nesting at 512 too.
    #[error("the page nests elements more than {limit} deep; refused (no real page needs this, and parsing it would stall the gateway)")]
    TooDeep {
        /// The limit ([`super::shape::MAX_DEPTH`]).
        limit: u32,
    },
    /// The page has more elements than the filter parses in one document.
    #[error("the page has more than {limit} elements; refused")]
    TooManyElements {
        /// The limit ([`super::shape::MAX_ELEMENTS`]).
        limit: usize,
    },
}
