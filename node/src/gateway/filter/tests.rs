//! The filter over the fixture freesite (tests/fixtures/freesite/), focused bypass cases,
//! and property tests. Every check of an output parses it again the way a browser would
//! (html5ever as a whole document, cssparser for styles, the `url` crate for links); none
//! of them greps, and none reuses the filter's own audit.

use std::collections::HashMap;

use ammonia::Url;
use cssparser::{Parser, Token};
use html5ever::tendril::TendrilSink;
use html5ever::{parse_document, ParseOpts};
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use proptest::prelude::*;

use super::*;

const KEY: &str = "CHK@AAAA,BBBB,AQEA";
const GATEWAY: &str = "http://127.0.0.1:8888";

macro_rules! fixture {
    ($path:literal) => {
        include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/freesite/", $path))
    };
}

fn location(path: &str) -> String {
    format!("/{KEY}/{path}")
}

fn serve(bytes: &[u8], mime: &str, path: &str) -> (String, String) {
    match filter(bytes, mime, &location(path)) {
        Ok(Verdict::Serve { body, mime }) => (String::from_utf8(body).unwrap(), mime),
        other => panic!("{path}: expected Serve, got {other:?}"),
    }
}

/// One element of a re-parsed page.
#[derive(Debug)]
struct Element {
    name: String,
    ns: String,
    attrs: HashMap<String, String>,
}

/// A filtered page as the browser sees it: parsed as a whole document.
#[derive(Debug, Default)]
struct Page {
    elements: Vec<Element>,
    text: String,
    title: Option<String>,
    styles: Vec<String>,
}

impl Page {
    fn parse(html: &str) -> Self {
        let dom = parse_document(RcDom::default(), ParseOpts::default()).one(html);
        let mut page = Page::default();
        let mut stack: Vec<Handle> = vec![dom.document.clone()];
        while let Some(node) = stack.pop() {
            match &node.data {
                NodeData::Element { name, attrs, template_contents, .. } => {
                    let attrs: HashMap<String, String> =
                        attrs.borrow().iter().map(|a| (a.name.local.to_string(), a.value.to_string())).collect();
                    if &*name.local == "style" || &*name.local == "title" {
                        let text: String = node
                            .children
                            .borrow()
                            .iter()
                            .filter_map(|c| match &c.data {
                                NodeData::Text { contents } => Some(contents.borrow().to_string()),
                                _ => None,
                            })
                            .collect();
                        if &*name.local == "style" {
                            page.styles.push(text);
                        } else if page.title.is_none() {
                            page.title = Some(text);
                        }
                    }
                    if let Some(style) = attrs.get("style") {
                        page.styles.push(format!("x{{{style}}}"));
                    }
                    page.elements.push(Element { name: name.local.to_string(), ns: name.ns.to_string(), attrs });
                    if let Some(t) = template_contents.borrow().as_ref() {
                        stack.push(t.clone());
                    }
                }
                NodeData::Text { contents } => page.text.push_str(&contents.borrow()),
                _ => {}
            }
            stack.extend(node.children.borrow().iter().rev().cloned());
        }
        page
    }

    fn has(&self, name: &str) -> bool {
        self.elements.iter().any(|e| e.name == name)
    }

    fn values(&self, element: &str, attr: &str) -> Vec<&str> {
        self.elements
            .iter()
            .filter(|e| e.name == element)
            .filter_map(|e| e.attrs.get(attr).map(String::as_str))
            .collect()
    }

    /// The page's safety contract, checked independently of the filter.
    fn assert_safe(&self) {
        for e in &self.elements {
            assert_eq!(e.ns, "http://www.w3.org/1999/xhtml", "foreign element {e:?}");
            assert!(
                !matches!(
                    e.name.as_str(),
                    "script"
                        | "iframe"
                        | "frame"
                        | "object"
                        | "embed"
                        | "applet"
                        | "base"
                        | "form"
                        | "input"
                        | "button"
                        | "svg"
                        | "math"
                        | "audio"
                        | "video"
                        | "noscript"
                        | "template"
                ),
                "{e:?}"
            );
            if e.name == "meta" {
                assert!(e.attrs.keys().all(|k| k == "charset" || k == "name" || k == "content"), "{e:?}");
                assert!(!e.attrs.contains_key("http-equiv"), "{e:?}");
            }
            if e.name == "link" {
                assert_eq!(e.attrs.get("rel").map(String::as_str), Some("stylesheet"), "{e:?}");
            }
            for (k, v) in &e.attrs {
                assert!(!k.starts_with("on"), "event handler {e:?}");
                assert!(!matches!(k.as_str(), "srcset" | "ping" | "formaction" | "action" | "background" | "target"));
                if matches!(k.as_str(), "href" | "src" | "cite" | "data" | "poster") {
                    let navigable = e.name == "a";
                    assert!(stays_on_gateway(v, navigable), "{} {k}={v:?}", e.name);
                }
            }
        }
        for css in &self.styles {
            assert_css_safe(css);
        }
    }
}

/// True if the browser, resolving `value` on a filtered page, stays on the gateway and on a
/// key (or the warning page, for links a person clicks).
fn stays_on_gateway(value: &str, navigable: bool) -> bool {
    let base = Url::parse(&format!("{GATEWAY}/{KEY}/dir/page.html")).unwrap();
    let Ok(u) = base.join(value) else { return false };
    if u.origin() != base.origin() {
        return false;
    }
    let path = u.path();
    let key = ["/CHK@", "/SSK@", "/USK@", "/KSK@"].iter().any(|k| path.starts_with(k));
    key || (navigable && path == EXTERNAL_LINK_PATH)
}

/// Every URL in a stylesheet (url tokens, url()/src() arguments, strings in image
/// functions and after @import) stays on the gateway; no expression() or attr(). (Property
/// names such as `behavior` are checked by the focused tests: as values they are inert.)
fn assert_css_safe(css: &str) {
    assert!(!css.contains('<'), "{css}");
    let mut p = Parser::new(css);
    walk_css(&mut p, false, css);
}

fn walk_css(p: &mut Parser<'_>, strings_are_urls: bool, css: &str) {
    let mut import = false;
    while let Ok(t) = p.next() {
        let t = t.clone();
        let after_import = std::mem::take(&mut import);
        match t {
            Token::UnquotedUrl(u) => assert!(stays_on_gateway(&u, false), "{u} in {css}"),
            Token::QuotedString(s) if strings_are_urls || after_import => {
                assert!(stays_on_gateway(&s, false), "{s} in {css}")
            }
            Token::AtKeyword(k) => import = k.eq_ignore_ascii_case("import"),
            Token::Function(f) => {
                let f = f.to_ascii_lowercase();
                assert!(!matches!(f.as_str(), "expression" | "attr"), "{f} in {css}");
                let urls =
                    strings_are_urls || f.contains("url") || f == "src" || f.contains("image") || f.contains("fade");
                let _ = p.parse_nested_block::<_, _, ()>(|p| {
                    walk_css(p, urls, css);
                    Ok(())
                });
            }
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                let _ = p.parse_nested_block::<_, _, ()>(|p| {
                    walk_css(p, strings_are_urls, css);
                    Ok(())
                });
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// The fixture freesite.

#[test]
fn fixture_index_loses_every_hostile_pattern_and_keeps_its_content() {
    let (html, mime) = serve(fixture!("index.html"), "text/html", "index.html");
    assert_eq!(mime, "text/html; charset=utf-8");
    let page = Page::parse(&html);
    page.assert_safe();

    // Removed: the script (so the title is the author's), handlers, base, refresh, frames,
    // plug-ins, the form, SVG, srcset, ping, data: and outside images and stylesheets.
    assert_eq!(page.title.as_deref(), Some("A freesite"));
    assert!(!page.has("script") && !page.has("base") && !page.has("iframe") && !page.has("object"));
    assert!(!page.has("embed") && !page.has("form") && !page.has("svg") && !page.has("audio"));
    assert!(page.elements.iter().all(|e| e.attrs.keys().all(|k| !k.starts_with("on"))));
    assert!(!page.text.contains("PWNED") && !page.text.contains("alert"), "{}", page.text);
    assert_eq!(page.values("link", "href"), vec![format!("/{KEY}/style.css")]);
    assert_eq!(page.values("img", "src"), vec![format!("/{KEY}/logo.png"); 2]);
    let all_values: Vec<&String> = page.elements.iter().flat_map(|e| e.attrs.values()).collect();
    for v in &all_values {
        assert!(!v.contains("evil.example") || v.starts_with("/external?url="), "{v}");
    }
    assert!(page.styles.iter().all(|s| !s.contains("evil")), "{:?}", page.styles);

    // Kept: text, internal, key and fragment links, images, relative CSS url().
    assert!(page.text.contains("Welcome to the freesite"));
    assert!(page.text.contains("This text is the good content and must survive."));
    assert!(page.text.contains("Scripts never run here.") || !page.has("noscript"));
    let links = page.values("a", "href");
    assert!(links.contains(&format!("/{KEY}/about/team.html").as_str()), "{links:?}");
    assert!(links.contains(&format!("/{KEY}/other.html").as_str()), "{links:?}");
    assert!(links.contains(&"/USK@pk,ck,AQAB/blog/7/"), "{links:?}");
    assert!(links.contains(&"#top"), "{links:?}");
    assert!(links.contains(&"/external?url=http%3A%2F%2Fevil%2Eexample%2Fpage%3Fx%3D1"), "{links:?}");
    assert!(links.contains(&"/external?url=%2F%2Fevil%2Eexample%2Fprotocol%2Drelative"), "{links:?}");
    // The two script links lost their href (the text stays).
    assert_eq!(page.values("a", "href").len(), 6, "{links:?}");
    assert!(page.text.contains("a script link") && page.text.contains("an encoded one"));
    assert!(page.values("img", "alt").contains(&"the logo"));
    assert!(page.styles.iter().any(|s| s.contains(&format!("url(\"/{KEY}/img/paper.png\")"))), "{:?}", page.styles);
    assert!(page.styles.iter().any(|s| s.contains("color:#224")), "{:?}", page.styles);
    assert!(page.styles.iter().any(|s| s.contains("color:green")), "{:?}", page.styles);
    assert_eq!(page.values("h1", "id"), vec!["top"]);
}

#[test]
fn fixture_stylesheet_keeps_good_rules_only() {
    let (css, mime) = serve(fixture!("style.css"), "text/css", "style.css");
    assert_eq!(mime, "text/css; charset=utf-8");
    assert_css_safe(&css);
    for bad in ["evil", "expression", "behavior", "binding", "htc"] {
        assert!(!css.contains(bad), "{bad} in {css}");
    }
    assert!(css.contains(&format!("@import url(\"/{KEY}/print.css\") print;")), "{css}");
    assert!(css.contains(&format!("background:url(\"/{KEY}/img/paper.png\")")), "{css}");
    assert!(css.contains(&format!("src:url(\"/{KEY}/fonts/inside.woff2\") format(\"woff2\")")), "{css}");
    assert!(css.contains("border:1px solid #ccc"), "{css}");
    assert!(css.contains("a:hover{color:#a00;text-decoration:underline;}"), "{css}");
    // The outside font lost its src, so it can never load.
    assert!(css.contains("@font-face {font-family:Outside;}"), "{css}");
    // The .icon rule lost its only declaration (the escaped outside URL) but not its selector.
    assert!(css.contains(".icon{}"), "{css}");
}

#[test]
fn fixture_nested_page_resolves_against_its_own_directory() {
    let (html, _) = serve(fixture!("about/team.html"), "text/html; charset=UTF-8", "about/team.html");
    let page = Page::parse(&html);
    page.assert_safe();
    assert_eq!(page.title.as_deref(), Some("The team"));
    assert_eq!(page.values("link", "href"), vec![format!("/{KEY}/style.css")]);
    let links = page.values("a", "href");
    assert_eq!(links, vec![format!("/{KEY}/index.html"), format!("/{KEY}/style.css")], "too far up is dropped");
    assert!(page.text.contains("too far up"));
    assert_eq!(page.values("img", "src"), vec![format!("/{KEY}/logo.png")]);
    assert!(page.text.contains("Hover text stays."));
}

#[test]
fn fixture_png_passes_untouched() {
    let png = fixture!("logo.png");
    assert_eq!(
        filter(png, "image/png", &location("logo.png")),
        Ok(Verdict::Serve { body: png.to_vec(), mime: "image/png".into() })
    );
}

#[test]
fn fixture_svg_is_refused() {
    assert_eq!(filter(fixture!("evil.svg"), "image/svg+xml", &location("evil.svg")), Err(FilterError::SvgRefused));
}

#[test]
fn fixture_lying_file_is_refused() {
    assert_eq!(
        filter(fixture!("liar.png"), "image/png", &location("liar.png")),
        Err(FilterError::TypeMismatch { declared: "image/png".into(), detected: "text/html" })
    );
    // And a PNG declared as a page or a stylesheet.
    for mime in ["text/html", "text/css", "text/plain"] {
        assert!(matches!(
            filter(fixture!("logo.png"), mime, &location("x")),
            Err(FilterError::TypeMismatch { detected: "image/png", .. })
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Focused bypasses.

fn page_of(fragment: &str) -> Page {
    let (html, _) = serve(fragment.as_bytes(), "text/html", "dir/page.html");
    let page = Page::parse(&html);
    page.assert_safe();
    page
}

#[test]
fn script_urls_in_every_disguise_are_dropped() {
    for href in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)",
        "&#x6A;avascript&#x3A;alert(1)",
        "jav&#x09;ascript:alert(1)",
        "jav&#x0A;ascript:alert(1)",
        "jav&Tab;ascript:alert(1)",
        " &#x01; javascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "DATA:text/html,<script>alert(1)</script>",
    ] {
        let page = page_of(&format!("<a href=\"{href}\">x</a><img src=\"{href}\">"));
        assert!(page.values("a", "href").is_empty(), "{href}");
        assert!(page.values("img", "src").is_empty(), "{href}");
    }
}

#[test]
fn protocol_relative_and_backslash_hosts_go_to_the_warning_page() {
    for href in
        ["//evil.example/x", "\\\\evil.example/x", "/\\evil.example/x", "\\/evil.example/x", "https:evil.example"]
    {
        let page =
            page_of(&format!("<a href=\"{href}\">x</a><img src=\"{href}\"><link rel=stylesheet href=\"{href}\">"));
        let links = page.values("a", "href");
        assert_eq!(links.len(), 1, "{href}");
        assert!(links[0].starts_with("/external?url="), "{href} -> {links:?}");
        assert!(page.values("img", "src").is_empty() && !page.has("link"), "{href}");
    }
}

#[test]
fn svg_and_mathml_inside_html_are_removed_with_their_content() {
    let page = page_of(
        "<svg><script>alert(1)</script><a href=\"http://e.example\">s</a></svg>\
         <math><mtext><table><mglyph><style><img src=x onerror=alert(1)>\
         <svg><foreignObject><iframe src=\"http://e.example\"></iframe></foreignObject></svg>after",
    );
    assert!(!page.has("svg") && !page.has("math") && !page.has("a") && !page.has("iframe"));
    assert!(page.values("img", "src").is_empty());
}

#[test]
fn css_escapes_comments_and_imports_cannot_reach_outside() {
    let page = page_of(
        "<style>@import url(/**/'http://evil.example/a.css'/**/); @import/**/\"//evil.example/b.css\";\
         a { background: url(\\68ttp://evil.example/c.png) } b { background: u\\72l(http://evil.example/d) }\
         c { background: url(ok.png) }</style>\
         <p style=\"background:url(&quot;http://evil.example/e&quot;);color:red\">p</p>\
         <p style=\"background:url(http&#58;//evil.example/f)\">q</p>",
    );
    assert!(page.styles.iter().all(|s| !s.contains("evil")), "{:?}", page.styles);
    assert!(page.styles.iter().any(|s| s.contains(&format!("url(\"/{KEY}/dir/ok.png\")"))), "{:?}", page.styles);
    assert!(page.styles.iter().any(|s| s.contains("color:red")), "{:?}", page.styles);
}

#[test]
fn nested_noscript_cannot_smuggle_markup() {
    let page = page_of(
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>\
         <noscript><noscript><style></noscript><img src=y onerror=alert(2)></style></noscript></noscript>",
    );
    // Whatever elements survive, none has a handler; any image points into the site.
    for src in page.values("img", "src") {
        assert!(src.starts_with(&format!("/{KEY}/dir/")), "{src}");
    }
}

#[test]
fn meta_base_ping_srcset_and_forms_are_removed() {
    let page = page_of(
        "<meta http-equiv=\"refresh\" content=\"0;url=http://evil.example/\">\
         <META HTTP-EQUIV=\"Set-Cookie\" CONTENT=\"a=b\"><base href=\"http://evil.example/\">\
         <a href=\"x.html\" ping=\"http://evil.example/p\">x</a>\
         <img src=\"a.png\" srcset=\"http://evil.example/b.png 2x\" lowsrc=\"http://evil.example/c\">\
         <picture><source srcset=\"http://evil.example/d.png\"><img src=\"e.png\"></picture>\
         <form action=\"http://evil.example/f\"><input type=image src=\"http://evil.example/g\">\
         <button formaction=\"http://evil.example/h\">go</button></form>\
         <table background=\"http://evil.example/i.png\"><tr><td>cell</td></tr></table>",
    );
    assert!(!page.has("meta") || page.elements.iter().filter(|e| e.name == "meta").count() == 2);
    assert!(!page.has("base") && !page.has("form") && !page.has("input") && !page.has("source"));
    assert_eq!(page.values("a", "href"), vec![format!("/{KEY}/dir/x.html")]);
    assert_eq!(page.values("img", "src"), vec![format!("/{KEY}/dir/a.png"), format!("/{KEY}/dir/e.png")]);
    assert!(page.text.contains("cell"));
}

#[test]
fn uppercase_tags_and_attributes_are_the_same_tags() {
    let page = page_of(
        "<SCRIPT>alert(1)</SCRIPT><IMG SRC=\"http://evil.example/x\" ONERROR=\"alert(1)\">\
         <A HREF=\"JAVASCRIPT:alert(1)\">a</A><IFRAME SRC=\"x\"></IFRAME><P STYLE=\"COLOR: RED\">ok</P>",
    );
    assert!(!page.has("script") && !page.has("iframe"));
    assert!(page.values("img", "src").is_empty() && page.values("a", "href").is_empty());
    assert!(page.styles.iter().any(|s| s.contains("COLOR:RED")), "{:?}", page.styles);
}

#[test]
fn head_links_other_than_key_stylesheets_are_removed() {
    let page = page_of(
        "<link rel=stylesheet href=a.css><link rel=\"alternate stylesheet\" href=b.css>\
         <link rel=preload href=c.css><link rel=dns-prefetch href=\"//evil.example\"><link href=d.css>\
         <link rel=STYLESHEET href=\"CHK@k,k,AQEA/e.css\"><link rel=stylesheet href=\"http://evil.example/f.css\">",
    );
    let hrefs = page.values("link", "href");
    assert_eq!(hrefs, vec![format!("/{KEY}/dir/a.css"), "/CHK@k,k,AQEA/e.css".to_owned()]);
}

#[test]
fn dispatch_by_type() {
    let loc = location("f");
    assert_eq!(
        filter(b"hello", "text/plain", &loc),
        Ok(Verdict::Serve { body: b"hello".to_vec(), mime: "text/plain; charset=utf-8".into() })
    );
    assert_eq!(
        filter(b"%PDF-1.4", "application/pdf", &loc),
        Ok(Verdict::DownloadOnly { mime: "application/pdf".into() })
    );
    assert_eq!(filter(b"x", "", &loc), Ok(Verdict::DownloadOnly { mime: "application/octet-stream".into() }));
    assert_eq!(filter(b"x", "garbage", &loc), Ok(Verdict::DownloadOnly { mime: "application/octet-stream".into() }));
    assert_eq!(filter(b"x", "TEXT/JavaScript", &loc), Ok(Verdict::DownloadOnly { mime: "text/javascript".into() }));
    assert_eq!(
        filter(b"x", "text/html", "/not-a-key"),
        Err(FilterError::BadLocation { location: "/not-a-key".into() })
    );
    assert_eq!(
        filter(b"+ADw-script+AD4-", "text/html; charset=utf-7", &loc),
        Err(FilterError::UnsupportedCharset { charset: "utf-7".into() })
    );
    let (html, _) = serve(b"caf\xe9", "text/html; charset=ISO-8859-1", "f");
    assert!(html.contains("café"), "{html}");
    let big = vec![b'a'; MAX_FILTERED_BYTES + 1];
    assert!(matches!(filter(&big, "text/html", &loc), Err(FilterError::TooLarge { .. })));
}

#[test]
fn images_are_checked_by_their_bytes() {
    let loc = location("i");
    let png = fixture!("logo.png");
    assert!(matches!(filter(png, "image/jpeg", &loc), Err(FilterError::TypeMismatch { detected: "image/png", .. })));
    assert!(matches!(filter(&png[..20], "image/png", &loc), Err(FilterError::MalformedImage { .. })));
    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";
    assert!(matches!(filter(gif, "image/gif", &loc), Ok(Verdict::Serve { .. })));
    assert!(matches!(
        filter(b"GIF89a\x00\x00\x00\x00\x00\x00\x00", "image/gif", &loc),
        Err(FilterError::MalformedImage { .. })
    ));
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00";
    assert!(matches!(filter(jpeg, "image/jpeg", &loc), Ok(Verdict::Serve { .. })));
    let mut webp = b"RIFF\x00\x00\x00\x00WEBPVP8L\x05\x00\x00\x00\x2f\x00\x00\x00\x00\x00".to_vec();
    let len = u32::try_from(webp.len() - 8).unwrap().to_le_bytes();
    webp[4..8].copy_from_slice(&len);
    assert!(matches!(filter(&webp, "image/webp", &loc), Ok(Verdict::Serve { .. })));
    webp[4] = 0xff;
    assert!(matches!(filter(&webp, "image/webp", &loc), Err(FilterError::MalformedImage { .. })));
    assert!(matches!(filter(b"<svg onload=alert(1)>", "image/png", &loc), Err(FilterError::TypeMismatch { .. })));
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    // Just under the depth limit (`shape::MAX_DEPTH`); deeper pages are refused there.
    let deep = format!(
        "{}<a href=\"http://evil.example/\">deep</a>{}",
        "<div><span>".repeat(250),
        "</span></div>".repeat(250)
    );
    let page = page_of(&deep);
    assert!(page.text.contains("deep"));
    let css = format!("a {{ b: {} }} c {{ color: red }}", "(".repeat(50_000));
    let (out, _) = serve(css.as_bytes(), "text/css", "s.css");
    assert_css_safe(&out);
}

// ---------------------------------------------------------------------------------------
// Property tests: arbitrary input never panics, and whatever is served is safe.

/// Pieces of hostile markup, glued together at random.
const HTML_PIECES: &[&str] = &[
    "<a href=\"",
    "<img src=",
    "<link rel=stylesheet href=",
    "<style>",
    "</style>",
    "<script>",
    "</script>",
    "\">",
    ">",
    "<",
    "/",
    "\"",
    "'",
    "=",
    " ",
    "\t",
    "javascript:",
    "jav&#x09;ascript:",
    "data:",
    "http://evil.example/",
    "//evil.example",
    "\\\\evil",
    "../",
    "CHK@a,b,c/",
    "freenet:",
    "<svg>",
    "<math>",
    "<noscript>",
    "</noscript>",
    "<iframe>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<textarea>",
    "<title>",
    "</title>",
    "<xmp>",
    "<template>",
    " onerror=",
    " style=\"",
    "url(",
    ")",
    "@import ",
    "expression(",
    "<base href=",
    "<meta http-equiv=refresh content=",
    "&quot;",
    "&#",
    "x;",
    "<form action=",
    "<p>",
    "</p>",
    "<table>",
    "<select>",
    "<option>",
    "<plaintext>",
    "%2e%2e/",
];

const CSS_PIECES: &[&str] = &[
    "url(",
    ")",
    "\"",
    "'",
    "http://evil.example/",
    "//evil",
    "\\",
    "68ttp://",
    "@import ",
    "@media ",
    "{",
    "}",
    ";",
    ":",
    " ",
    "/*",
    "*/",
    "a",
    "background",
    "image-set(",
    "var(--x)",
    "--x:",
    "expression(",
    "-moz-binding",
    "<!--",
    "-->",
    "</style>",
    "src(",
    "@font-face",
    "u",
    "rl(",
    "\n",
    ",",
    "ok.png",
    "CHK@a,b,c/x",
];

fn glued(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(pieces), 0..48).prop_map(|v| v.concat())
}

fn check_html_output(bytes: &[u8]) {
    if let Ok(Verdict::Serve { body, mime }) = filter(bytes, "text/html", &location("dir/page.html")) {
        assert_eq!(mime, "text/html; charset=utf-8");
        Page::parse(&String::from_utf8(body).unwrap()).assert_safe();
    }
}

fn check_css_output(bytes: &[u8]) {
    if let Ok(Verdict::Serve { body, .. }) = filter(bytes, "text/css", &location("dir/s.css")) {
        assert_css_safe(&String::from_utf8(body).unwrap());
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_as_html_are_safe(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_html_output(&bytes);
    }

    #[test]
    fn arbitrary_bytes_as_css_are_safe(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        check_css_output(&bytes);
    }

    #[test]
    fn hostile_markup_is_safe(html in glued(HTML_PIECES)) {
        check_html_output(html.as_bytes());
    }

    #[test]
    fn hostile_css_is_safe(css in glued(CSS_PIECES)) {
        check_css_output(css.as_bytes());
        check_html_output(format!("<style>{css}</style><p style=\"{}\">x</p>", css.replace('"', "&quot;")).as_bytes());
    }

    #[test]
    fn arbitrary_playlists_list_only_keys_on_the_gateway(lines in prop::collection::vec("\\PC{0,40}", 0..8)) {
        let text = lines.join("\n");
        match filter_at(text.as_bytes(), "audio/x-mpegurl", &location("music/list.m3u"), GATEWAY) {
            Ok(Verdict::Serve { body, .. }) => {
                for line in String::from_utf8(body).unwrap().lines().filter(|l| *l != "#EXTM3U") {
                    let path = line.strip_prefix(GATEWAY);
                    prop_assert!(path.is_some_and(|p| stays_on_gateway(p, false)), "{text:?} -> {line:?}");
                }
            }
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn arbitrary_urls_are_safe_or_dropped(raw in "\\PC{0,40}") {
        for how in [url::UrlUse::Navigate, url::UrlUse::Embed] {
            if let Some(out) = url::rewrite(&raw, how, &Location::parse(&location("d/p.html")).unwrap()) {
                prop_assert!(stays_on_gateway(&out, how == url::UrlUse::Navigate), "{raw:?} -> {out:?}");
            }
        }
    }
}

#[test]
fn a_playlist_is_served_with_absolute_urls_on_the_gateway() {
    let text = b"#EXTM3U\n#EXTINF:10,Song\n./song.ogg\nhttp://tracker.example/x.mp3\n";
    match filter_at(text, "audio/x-mpegurl", &location("music/list.m3u"), GATEWAY) {
        Ok(Verdict::Serve { body, mime }) => {
            assert_eq!(mime, "audio/x-mpegurl; charset=utf-8");
            assert_eq!(String::from_utf8(body).unwrap(), format!("#EXTM3U\n{GATEWAY}/{KEY}/music/song.ogg\n"));
        }
        other => panic!("{other:?}"),
    }
    // A playlist that is really a binary file is refused like any other text type.
    assert!(matches!(
        filter_at(b"\x89PNG\r\n\x1a\n", "audio/x-mpegurl", &location("l.m3u"), GATEWAY),
        Err(FilterError::TypeMismatch { .. })
    ));
}
