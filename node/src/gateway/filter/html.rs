//! The HTML filter, in two passes over two parses.
//!
//! 1. **ammonia** (html5ever underneath) parses the page as the browser would and keeps only
//!    a whitelist of elements and attributes. Elements that run code, embed other
//!    documents or carry a foreign namespace (`script`, `iframe`, `object`, `embed`,
//!    `applet`, `frame(set)`, `noscript`, `template`, `svg`, `math`, …) are removed with
//!    their content; `form`, `input`, `meta`, `base` and every unknown element are removed
//!    (the text inside them stays). Every attribute not on the list goes: event handlers,
//!    `srcset`, `ping`, `formaction`, `action`, `background`, `http-equiv`, `target`.
//!    ammonia's attribute callback sends each URL attribute through the link policy
//!    ([`super::url`]) and each `style` attribute through the CSS filter.
//! 2. ammonia's own DOM is private, so its output is parsed again (same parser, same
//!    options: ammonia guarantees its output re-parses to the same tree) into html5ever's
//!    reference DOM. There `<style>` text goes through the CSS filter, `<link>` elements
//!    that are not stylesheets are removed, and **every** element and attribute is audited
//!    again: an element off the list, or a URL that the `url` crate does not resolve to a
//!    key on the gateway, refuses the whole page ([`FilterError::Unverified`]).
//!
//! The result is wrapped in a fixed `<!DOCTYPE html>` head that declares UTF-8 (the bytes
//! were decoded before the filter saw them, and the gateway serves them as UTF-8).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use ammonia::{Builder, UrlRelative};
use html5ever::serialize::{serialize, SerializeOpts};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{local_name, ns, parse_fragment, ParseOpts, QualName};
use markup5ever_rcdom::{Handle, Node, NodeData, RcDom, SerializableHandle};

use super::css;
use super::shape;
use super::url::{is_safe_output, rewrite, Location, UrlUse};
use super::FilterError;

/// Elements kept (with the attributes in [`TAG_ATTRIBUTES`] and [`GENERIC_ATTRIBUTES`]).
/// Text-level and structural HTML, tables, lists, images, and the head elements a
/// freesite needs (`title`, filtered `style`, `link rel=stylesheet` to a key).
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "acronym",
    "address",
    "article",
    "aside",
    "b",
    "bdi",
    "bdo",
    "big",
    "blockquote",
    "br",
    "caption",
    "center",
    "cite",
    "code",
    "col",
    "colgroup",
    "data",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "font",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "link",
    "main",
    "mark",
    "nav",
    "ol",
    "p",
    "pre",
    "q",
    "rp",
    "rt",
    "rtc",
    "ruby",
    "s",
    "samp",
    "section",
    "small",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "title",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];

/// Elements removed together with everything inside them: code, embedded documents,
/// plug-ins, foreign namespaces (SVG and MathML inside HTML, the classic mXSS carriers),
/// and raw-text elements whose content is not markup.
const DROP_WITH_CONTENT: &[&str] = &[
    "script",
    "noscript",
    "iframe",
    "frame",
    "frameset",
    "noframes",
    "object",
    "embed",
    "applet",
    "param",
    "template",
    "svg",
    "math",
    "xmp",
    "noembed",
    "plaintext",
    "textarea",
    "select",
    "button",
    "audio",
    "video",
    "canvas",
    "portal",
    "fencedframe",
];

/// Attributes allowed on any kept element. `style` is filtered as CSS.
const GENERIC_ATTRIBUTES: &[&str] = &["class", "dir", "id", "lang", "style", "title"];

/// Attributes allowed per element. `href`, `src` and `cite` are filtered as URLs.
const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href", "hreflang", "name"]),
    ("bdo", &["dir"]),
    ("blockquote", &["cite"]),
    ("col", &["span", "width"]),
    ("colgroup", &["span", "width"]),
    ("data", &["value"]),
    ("del", &["cite", "datetime"]),
    ("details", &["open"]),
    ("font", &["color", "face", "size"]),
    ("hr", &["align", "size", "width"]),
    ("img", &["alt", "height", "src", "width", "align"]),
    ("ins", &["cite", "datetime"]),
    ("li", &["value"]),
    ("link", &["href", "media", "rel"]),
    ("ol", &["reversed", "start", "type"]),
    ("q", &["cite"]),
    ("table", &["align", "border", "cellpadding", "cellspacing", "summary", "width"]),
    ("td", &["align", "colspan", "headers", "rowspan", "valign", "width"]),
    ("th", &["align", "colspan", "headers", "rowspan", "scope", "valign", "width"]),
    ("time", &["datetime"]),
    ("tr", &["align", "valign"]),
];

/// Absolute-URL schemes ammonia lets through to the callback, which then decides: key
/// schemes become key links, web schemes become warning-page links (or are dropped when
/// embedded). ammonia drops every other scheme before the callback sees it.
const SCHEMES: &[&str] =
    &["http", "https", "ftp", "mailto", "irc", "ircs", "news", "xmpp", "gemini", "freenet", "pamphlet"];

/// What `<a>` elements get as `rel`.
const LINK_REL: &str = "noopener noreferrer";

/// The fixed start of every filtered page.
const DOCUMENT_HEAD: &str =
    "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"referrer\" content=\"no-referrer\"></head><body>";

/// The fixed end of every filtered page.
const DOCUMENT_TAIL: &str = "</body></html>\n";

/// How a URL attribute is used, or `None` if the attribute is not a URL.
fn url_use(element: &str, attribute: &str) -> Option<UrlUse> {
    match (element, attribute) {
        ("a", "href") | (_, "cite") => Some(UrlUse::Navigate),
        ("img", "src") | ("link", "href") => Some(UrlUse::Embed),
        (_, "href" | "src") => Some(UrlUse::Embed),
        _ => None,
    }
}

/// Filters an HTML page (already decoded to text) that lives at `loc`.
pub(crate) fn filter_html(text: &str, loc: &Location) -> Result<String, FilterError> {
    // First, so that neither ammonia's parse nor the audit's ever sees a page deep enough
    // to be slow (see `shape`). ammonia only removes elements or unwraps them, so its
    // output is no deeper and has no more elements than this input.
    shape::check(text)?;
    let cleaned = sanitizer(loc.clone()).clean(text).to_string();
    let fragment = second_pass(&cleaned, loc)?;
    let mut page = String::with_capacity(DOCUMENT_HEAD.len() + fragment.len() + DOCUMENT_TAIL.len());
    page.push_str(DOCUMENT_HEAD);
    page.push_str(&fragment);
    page.push_str(DOCUMENT_TAIL);
    Ok(page)
}

/// The ammonia configuration: the whitelist, and a callback that rewrites URLs and CSS.
fn sanitizer(loc: Location) -> Builder<'static> {
    let mut b = Builder::empty();
    b.tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROP_WITH_CONTENT.iter().copied().collect())
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .tag_attributes(TAG_ATTRIBUTES.iter().map(|(t, a)| (*t, a.iter().copied().collect())).collect())
        .url_schemes(SCHEMES.iter().copied().collect())
        // Every URL attribute was already rewritten by the callback below; what is
        // relative now is one of ours.
        .url_relative(UrlRelative::PassThrough)
        .link_rel(Some(LINK_REL))
        .strip_comments(true)
        .attribute_filter(move |element: &str, attribute: &str, value: &str| {
            filter_attribute(element, attribute, value, &loc)
        });
    b
}

fn filter_attribute<'a>(element: &str, attribute: &str, value: &'a str, loc: &Location) -> Option<Cow<'a, str>> {
    if attribute == "style" {
        let css = css::filter_declarations(value, loc);
        return (!css.is_empty()).then_some(Cow::Owned(css));
    }
    if element == "link" && attribute == "rel" {
        // Only stylesheets: `preload`, `prefetch`, `dns-prefetch`, `preconnect`, `icon`
        // and `manifest` make the browser fetch or resolve on its own.
        return value.trim().eq_ignore_ascii_case("stylesheet").then_some(Cow::Borrowed("stylesheet"));
    }
    match url_use(element, attribute) {
        Some(how) => rewrite(value, how, loc).map(Cow::Owned),
        None => Some(Cow::Borrowed(value)),
    }
}

/// Re-parses ammonia's output, filters `<style>` text, removes non-stylesheet `<link>`s,
/// audits everything, and serialises.
fn second_pass(cleaned: &str, loc: &Location) -> Result<String, FilterError> {
    let unverified = || FilterError::Unverified { what: "HTML" };
    let dom = parse_fragment(
        RcDom::default(),
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    )
    .one(cleaned);
    // The fragment parser puts the content under a synthetic <html> root.
    let root = dom.document.children.borrow().first().cloned().ok_or_else(unverified)?;
    let allowed = Allowed::new();
    // An explicit stack: a page can nest elements far deeper than the call stack allows.
    let mut stack = vec![root.clone()];
    while let Some(node) = stack.pop() {
        node.children.borrow_mut().retain(|child| !is_inert_link(child));
        for child in node.children.borrow().iter() {
            match &child.data {
                NodeData::Text { .. } => {}
                NodeData::Element { name, attrs, .. } => {
                    if name.ns != ns!(html) || !allowed.tags.contains(&*name.local) {
                        return Err(unverified());
                    }
                    for attr in attrs.borrow().iter() {
                        if !allowed.attribute(&name.local, &attr.name.local) || !attr.name.ns.is_empty() {
                            return Err(unverified());
                        }
                        if let Some(how) = url_use(&name.local, &attr.name.local) {
                            if !is_safe_output(&attr.value, how) {
                                return Err(unverified());
                            }
                        }
                        if &*attr.name.local == "style" && !css::audit(&attr.value) {
                            return Err(unverified());
                        }
                    }
                    if name.local == local_name!("style") {
                        refilter_style(child, loc)?;
                    } else {
                        stack.push(child.clone());
                    }
                }
                _ => return Err(unverified()),
            }
        }
    }
    let mut out = Vec::with_capacity(cleaned.len() + cleaned.len() / 8);
    let handle: SerializableHandle = root.into();
    serialize(&mut out, &handle, SerializeOpts::default()).map_err(|_| unverified())?;
    String::from_utf8(out).map_err(|_| unverified())
}

/// A `<link>` that is not `rel=stylesheet` with an `href` does nothing useful once its
/// other attributes are gone; remove it.
fn is_inert_link(node: &Handle) -> bool {
    match &node.data {
        NodeData::Element { name, attrs, .. } if name.local == local_name!("link") => {
            let attrs = attrs.borrow();
            let stylesheet = attrs.iter().any(|a| &*a.name.local == "rel" && &*a.value == "stylesheet");
            let href = attrs.iter().any(|a| &*a.name.local == "href");
            !(stylesheet && href)
        }
        _ => false,
    }
}

/// Replaces a `<style>` element's text with its filtered, audited CSS.
fn refilter_style(style: &Handle, loc: &Location) -> Result<(), FilterError> {
    let mut text = String::new();
    for child in style.children.borrow().iter() {
        match &child.data {
            NodeData::Text { contents } => text.push_str(&contents.borrow()),
            _ => return Err(FilterError::Unverified { what: "HTML" }),
        }
    }
    let css = css::filter_stylesheet(&text, loc);
    if !css::audit(&css) {
        return Err(FilterError::Unverified { what: "CSS" });
    }
    let node = Node::new(NodeData::Text { contents: StrTendril::from(css).into() });
    node.parent.set(Some(Rc::downgrade(style)));
    *style.children.borrow_mut() = vec![node];
    Ok(())
}

/// The whitelist as sets, for the audit.
struct Allowed {
    tags: HashSet<&'static str>,
    generic: HashSet<&'static str>,
    per_tag: HashMap<&'static str, HashSet<&'static str>>,
}

impl Allowed {
    fn new() -> Self {
        Self {
            tags: TAGS.iter().copied().collect(),
            generic: GENERIC_ATTRIBUTES.iter().copied().collect(),
            per_tag: TAG_ATTRIBUTES.iter().map(|(t, a)| (*t, a.iter().copied().collect())).collect(),
        }
    }

    fn attribute(&self, tag: &str, attribute: &str) -> bool {
        self.generic.contains(attribute)
            || self.per_tag.get(tag).is_some_and(|a| a.contains(attribute))
            || (tag == "a" && attribute == "rel")
    }
}
