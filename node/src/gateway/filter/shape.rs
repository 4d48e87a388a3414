//! The shape check: how deep and how large the tree of an HTML page is, measured before
//! the page is sanitised, so that a hostile page cannot make the filter slow.
//!
//! Why. html5ever's tree builder checks "is there a `<p>` in button scope" (and similar)
//! for many tags by walking its stack of open elements, whose height is the nesting depth
//! of the current element. A page of N nested `<div>`s therefore costs O(N²): 40,000 of
//! them (240 KB) took 41 s, and the filter parses each page twice. Browsers bound the
//! depth (Chromium's parser stops nesting at 512 and adds deeper elements as siblings).
//!
//! How. The page is parsed here once more with the same parser and options as ammonia
//! (a fragment in a `<div>` context), into a skeleton sink that keeps only elements and
//! their parent/children links. Every time a node is attached, the depth of the deepest
//! element below it is checked against [`MAX_DEPTH`], and every element created counts
//! against [`MAX_ELEMENTS`]. The text is fed in [`CHUNK`]-byte slices and parsing stops
//! at the first slice after a limit was crossed, so a hostile page costs at most
//! O(len × (MAX_DEPTH + CHUNK)): linear in its size.
//!
//! The depth is the real tree depth, not a count of open and close tags: `<p>`, `<li>` and
//! `<td>` close implicitly, and the adoption agency moves whole subtrees one level down
//! (`reparent_children`), so each node keeps the height of the subtree below it and a
//! move is checked with it.
//!
//! Decision: a page over a limit is refused ([`FilterError::TooDeep`],
//! [`FilterError::TooManyElements`]), not flattened. Flattening the way Chromium does
//! would mean re-implementing a tree builder rule in the filter, and the filter's output
//! would then differ from what ammonia parsed; no real page needs 512 levels, and a
//! refusal with a clear message is easier to reason about.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use html5ever::interface::{ElementFlags, NodeOrText, QuirksMode, TreeSink};
use html5ever::tendril::{StrTendril, TendrilSink};
use html5ever::{local_name, ns, parse_fragment, Attribute, ParseOpts, QualName};

use super::FilterError;

/// The deepest element nesting a page may have, counted from the fragment root. Chromium
/// stops nesting at 512; the gateway refuses instead.
pub const MAX_DEPTH: u32 = 512;

/// The most elements (including the ones the parser creates implicitly) a page may have.
/// A generated 1 MiB article of ordinary markup has about 27,000; at the 16 MiB size limit
/// an ordinary page stays far below. The limit bounds the memory of the two DOMs the filter
/// builds (ammonia's and the audit's), each a few hundred bytes per element.
pub const MAX_ELEMENTS: usize = 400_000;

/// How many bytes are parsed before the limits are looked at again. Within one slice a
/// page can nest at most about CHUNK / 3 levels (`<a>` is three bytes) past the limit.
const CHUNK: usize = 4096;

/// Refuses a page deeper than [`MAX_DEPTH`] or with more than [`MAX_ELEMENTS`] elements.
pub(crate) fn check(text: &str) -> Result<(), FilterError> {
    check_with(text, MAX_DEPTH, MAX_ELEMENTS)
}

/// [`check`] with other limits (the tests use small ones).
fn check_with(text: &str, max_depth: u32, max_elements: usize) -> Result<(), FilterError> {
    let mut parser = parse_fragment(
        Skeleton::new(max_depth, max_elements),
        ParseOpts::default(),
        QualName::new(None, ns!(html), local_name!("div")),
        vec![],
        false,
    );
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + CHUNK).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        parser.process(StrTendril::from_slice(&text[start..end]));
        if let Some(e) = parser.tokenizer.sink.sink.exceeded.take() {
            return Err(e);
        }
        start = end;
    }
    parser.finish()
}

/// One node of the skeleton: an element (or the document, a comment, a template's
/// contents). Text is not kept: it has no depth.
#[derive(Debug)]
struct Shape {
    /// Its name (an empty one for non-elements); the tree builder asks for it.
    name: QualName,
    /// Where it hangs; empty while detached.
    parent: RefCell<Weak<Shape>>,
    /// Its children, needed to move them (`reparent_children`) and to detach one.
    children: RefCell<Vec<Handle>>,
    /// The longest chain of nodes below it (0 for a leaf). Never lowered when a child
    /// leaves: an overestimate only after a node moved, which costs nothing real pages need.
    height: Cell<u32>,
    /// A `<template>`'s contents (a fragment of their own in the DOM).
    template_contents: Option<Handle>,
    /// MathML `annotation-xml` with an HTML encoding: changes how the tree builder treats
    /// its content, so the skeleton must answer as the real DOM would.
    mathml_annotation_xml_integration_point: bool,
}

type Handle = Rc<Shape>;

impl Shape {
    fn new(name: QualName) -> Handle {
        Rc::new(Shape {
            name,
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            height: Cell::new(0),
            template_contents: None,
            mathml_annotation_xml_integration_point: false,
        })
    }

    /// How many ancestors it has, counting at most up to `limit + 1` (enough to know the
    /// limit is crossed, and what bounds the cost of one call).
    fn depth(self: &Rc<Self>, limit: u32) -> u32 {
        let mut depth = 0;
        let mut node = self.parent.borrow().upgrade();
        while let Some(n) = node {
            depth += 1;
            if depth > limit {
                break;
            }
            node = n.parent.borrow().upgrade();
        }
        depth
    }
}

/// The skeleton sink. Its methods take `&self` (html5ever's contract), hence the cells.
struct Skeleton {
    document: Handle,
    /// The deepest nesting allowed ([`MAX_DEPTH`] outside tests).
    max_depth: u32,
    /// The most elements allowed ([`MAX_ELEMENTS`] outside tests).
    max_elements: usize,
    elements: Cell<usize>,
    /// The first limit crossed; parsing stops at the end of the current slice.
    exceeded: Cell<Option<FilterError>>,
}

impl Skeleton {
    fn new(max_depth: u32, max_elements: usize) -> Self {
        Self {
            document: Shape::new(empty_name()),
            max_depth,
            max_elements,
            elements: Cell::new(0),
            exceeded: Cell::new(None),
        }
    }
}

fn empty_name() -> QualName {
    QualName::new(None, ns!(), local_name!(""))
}

impl Skeleton {
    fn fail(&self, e: FilterError) {
        let first = self.exceeded.take().unwrap_or(e);
        self.exceeded.set(Some(first));
    }

    /// Hangs `child` under `parent` at `index` (or last), checks the depth of the deepest
    /// node this creates and raises the heights above it.
    fn attach(&self, parent: &Handle, child: Handle, index: Option<usize>) {
        let below = child.height.get();
        *child.parent.borrow_mut() = Rc::downgrade(parent);
        {
            let mut children = parent.children.borrow_mut();
            match index {
                Some(i) => children.insert(i, child),
                None => children.push(child),
            }
        }
        self.raise(parent, below + 1);
    }

    /// Records that `node` now has a chain of `height` nodes below it: updates the heights
    /// of it and its ancestors (stopping where nothing changes) and checks the depth.
    fn raise(&self, node: &Handle, height: u32) {
        let deepest = node.depth(self.max_depth).saturating_add(height);
        if deepest > self.max_depth {
            self.fail(FilterError::TooDeep { limit: self.max_depth });
        }
        let mut height = height;
        let mut current = Some(Rc::clone(node));
        let mut steps = 0;
        while let Some(n) = current {
            if n.height.get() >= height || steps > self.max_depth {
                break;
            }
            n.height.set(height);
            height += 1;
            steps += 1;
            current = n.parent.borrow().upgrade();
        }
    }

    fn detach(&self, target: &Handle) -> Option<(Handle, usize)> {
        let parent = target.parent.replace(Weak::new()).upgrade()?;
        let mut children = parent.children.borrow_mut();
        let i = children.iter().position(|c| Rc::ptr_eq(c, target))?;
        children.remove(i);
        Some((Rc::clone(&parent), i))
    }
}

impl TreeSink for Skeleton {
    type Handle = Handle;
    type Output = Result<(), FilterError>;
    type ElemName<'a> = &'a QualName;

    fn finish(self) -> Self::Output {
        self.exceeded.take().map_or(Ok(()), Err)
    }

    fn parse_error(&self, _msg: Cow<'static, str>) {}

    fn get_document(&self) -> Handle {
        Rc::clone(&self.document)
    }

    fn elem_name<'a>(&'a self, target: &'a Handle) -> &'a QualName {
        &target.name
    }

    fn create_element(&self, name: QualName, _attrs: Vec<Attribute>, flags: ElementFlags) -> Handle {
        let count = self.elements.get() + 1;
        self.elements.set(count);
        if count > self.max_elements {
            self.fail(FilterError::TooManyElements { limit: self.max_elements });
        }
        let template_contents = flags.template.then(|| Shape::new(empty_name()));
        let node = Rc::new(Shape {
            name,
            parent: RefCell::new(Weak::new()),
            children: RefCell::new(Vec::new()),
            // A template's contents are a node below it, even while empty.
            height: Cell::new(u32::from(template_contents.is_some())),
            template_contents,
            mathml_annotation_xml_integration_point: flags.mathml_annotation_xml_integration_point,
        });
        if let Some(contents) = &node.template_contents {
            // The contents are a separate fragment in the DOM, but what is parsed into them
            // nests inside the `<template>` as far as the tree builder's stack goes.
            *contents.parent.borrow_mut() = Rc::downgrade(&node);
        }
        node
    }

    fn create_comment(&self, _text: StrTendril) -> Handle {
        Shape::new(empty_name())
    }

    fn create_pi(&self, _target: StrTendril, _data: StrTendril) -> Handle {
        Shape::new(empty_name())
    }

    fn append(&self, parent: &Handle, child: NodeOrText<Handle>) {
        if let NodeOrText::AppendNode(child) = child {
            self.attach(parent, child, None);
        }
    }

    fn append_based_on_parent_node(&self, element: &Handle, prev_element: &Handle, child: NodeOrText<Handle>) {
        if element.parent.borrow().upgrade().is_some() {
            self.append_before_sibling(element, child);
        } else {
            self.append(prev_element, child);
        }
    }

    fn append_doctype_to_document(&self, _name: StrTendril, _public_id: StrTendril, _system_id: StrTendril) {}

    fn get_template_contents(&self, target: &Handle) -> Handle {
        // Only ever asked of `<template>` elements; a skeleton answers anything else with
        // the node itself rather than panicking.
        target.template_contents.clone().unwrap_or_else(|| Rc::clone(target))
    }

    fn same_node(&self, x: &Handle, y: &Handle) -> bool {
        Rc::ptr_eq(x, y)
    }

    fn set_quirks_mode(&self, _mode: QuirksMode) {}

    fn append_before_sibling(&self, sibling: &Handle, new_node: NodeOrText<Handle>) {
        let NodeOrText::AppendNode(child) = new_node else { return };
        let Some(parent) = sibling.parent.borrow().upgrade() else { return };
        let index = parent.children.borrow().iter().position(|c| Rc::ptr_eq(c, sibling));
        self.attach(&parent, child, index);
    }

    fn add_attrs_if_missing(&self, _target: &Handle, _attrs: Vec<Attribute>) {}

    fn remove_from_parent(&self, target: &Handle) {
        self.detach(target);
    }

    fn reparent_children(&self, node: &Handle, new_parent: &Handle) {
        let moved = std::mem::take(&mut *node.children.borrow_mut());
        let below = moved.iter().map(|c| c.height.get() + 1).max().unwrap_or(0);
        for child in &moved {
            *child.parent.borrow_mut() = Rc::downgrade(new_parent);
        }
        new_parent.children.borrow_mut().extend(moved);
        if below > 0 {
            self.raise(new_parent, below);
        }
    }

    fn is_mathml_annotation_xml_integration_point(&self, handle: &Handle) -> bool {
        handle.mathml_annotation_xml_integration_point
    }

    // Not overridden, with the same answers as ammonia's DOM (markup5ever_rcdom):
    // `allow_declarative_shadow_roots`/`attach_declarative_shadow` (no shadow roots) and
    // `maybe_clone_an_option_into_selectedcontent`, which in the real DOM copies an
    // `<option>`'s content into a `<select>`'s `<selectedcontent>`. The copy is as deep as
    // the option's content plus the `<selectedcontent>`'s own depth, both checked here, so
    // at most about twice the limit; `<select>` cannot nest, so the copy cannot repeat.
}

#[cfg(test)]
mod tests {
    use html5ever::tendril::TendrilSink;
    use markup5ever_rcdom::{Handle as DomHandle, NodeData, RcDom};
    use proptest::prelude::*;

    use super::*;
    use crate::gateway::filter::{filter, Verdict};

    const LOCATION: &str = "/CHK@AAAA,BBBB,AQEA/index.html";

    fn nested(levels: usize) -> String {
        format!("{}<a href=\"x.html\">deep</a>{}", "<div>".repeat(levels), "</div>".repeat(levels))
    }

    #[test]
    fn a_page_nested_40000_deep_is_refused_not_parsed() {
        // Took 41 s to filter before the limit.
        assert_eq!(
            filter(nested(40_000).as_bytes(), "text/html", LOCATION),
            Err(FilterError::TooDeep { limit: MAX_DEPTH })
        );
    }

    #[test]
    fn the_depth_limit_is_exact() {
        // The fragment root <html> is depth 1, so n nested <div>s put the innermost
        // element (the <a>) at depth n + 2.
        let ok = usize::try_from(MAX_DEPTH).unwrap() - 2;
        match filter(nested(ok).as_bytes(), "text/html", LOCATION) {
            Ok(Verdict::Serve { body, .. }) => assert!(String::from_utf8(body).unwrap().contains(">deep</a>")),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            filter(nested(ok + 1).as_bytes(), "text/html", LOCATION),
            Err(FilterError::TooDeep { limit: MAX_DEPTH })
        );
    }

    #[test]
    fn implicitly_closed_elements_are_not_nesting() {
        // Old HTML leaves <p>, <li>, <td> and <option> unclosed; the parser closes them.
        let page = format!(
            "{}<ul>{}</ul><table>{}</table>",
            "<p>para".repeat(5_000),
            "<li>item".repeat(5_000),
            "<tr><td>cell".repeat(2_000)
        );
        assert!(matches!(filter(page.as_bytes(), "text/html", LOCATION), Ok(Verdict::Serve { .. })));
    }

    #[test]
    fn templates_nest_through_their_contents() {
        let page = "<template>".repeat(usize::try_from(MAX_DEPTH).unwrap() + 10);
        assert_eq!(check(&page), Err(FilterError::TooDeep { limit: MAX_DEPTH }));
    }

    #[test]
    fn too_many_elements_are_refused() {
        // The fragment parse creates two elements itself (its <html> root and the <div>
        // context).
        assert_eq!(check(&"<br>".repeat(MAX_ELEMENTS - 2)), Ok(()));
        assert_eq!(
            filter("<br>".repeat(MAX_ELEMENTS + 1).as_bytes(), "text/html", LOCATION),
            Err(FilterError::TooManyElements { limit: MAX_ELEMENTS })
        );
    }

    /// The depth of the tree ammonia's parser builds (the same fragment parse into
    /// html5ever's reference DOM), counted like the skeleton: the document is 0.
    fn real_depth(text: &str) -> u32 {
        let dom = parse_fragment(
            RcDom::default(),
            ParseOpts::default(),
            QualName::new(None, ns!(html), local_name!("div")),
            vec![],
            false,
        )
        .one(text);
        let mut deepest = 0;
        let mut stack: Vec<(DomHandle, u32)> = vec![(dom.document.clone(), 0)];
        while let Some((node, depth)) = stack.pop() {
            deepest = deepest.max(depth);
            if let NodeData::Element { template_contents, .. } = &node.data {
                if let Some(contents) = template_contents.borrow().as_ref() {
                    stack.push((contents.clone(), depth + 1));
                }
            }
            for child in node.children.borrow().iter() {
                if !matches!(child.data, NodeData::Text { .. }) {
                    stack.push((child.clone(), depth + 1));
                }
            }
        }
        deepest
    }

    /// Markup that makes the tree builder move things around: misnested formatting
    /// elements (the adoption agency), foster parenting out of tables, implicit closes,
    /// templates, foreign content. `<select>` is left out: the real DOM copies an option's
    /// content into `<selectedcontent>` (see the note on the sink), which the skeleton
    /// does not.
    const PIECES: &[&str] = &[
        "<b>",
        "</b>",
        "<i>",
        "</i>",
        "<a>",
        "</a>",
        "<div>",
        "</div>",
        "<p>",
        "</p>",
        "<table>",
        "</table>",
        "<tr>",
        "<td>",
        "</td>",
        "<template>",
        "</template>",
        "<li>",
        "<ul>",
        "<svg>",
        "</svg>",
        "<math>",
        "<annotation-xml encoding=text/html>",
        "<span>",
        "</span>",
        "<nobr>",
        "<h1>",
        "<form>",
        "x",
        "<!--c-->",
    ];

    proptest! {
        /// The skeleton measures the depth the real DOM has while it is built: a page is
        /// refused exactly when the tree ammonia's parser builds is deeper than the limit
        /// after some prefix of it (here a small limit, 6, so that random markup crosses it;
        /// the adoption agency can make a tree shallower again later, but the parser paid
        /// for the depth by then).
        #[test]
        fn the_skeleton_depth_is_the_real_depth(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..80)
        ) {
            let text = pieces.concat();
            let deepest = (0..=pieces.len()).map(|n| real_depth(&pieces[..n].concat())).max().unwrap_or(0);
            let checked = check_with(&text, 6, usize::MAX);
            prop_assert_eq!(checked.is_err(), deepest > 6, "deepest {} for {:?}", deepest, text);
        }
    }
}
