//! WBXML 1.3 as Exchange ActiveSync uses it (MS-ASWBXML): decode to a small element tree and
//! encode back. Written here because no maintained WBXML crate exists.
//!
//! EAS uses tags from the code pages in [`crate::codepages`], inline strings (`STR_I`), opaque
//! data (`OPAQUE`) and no attributes. String-table references (`STR_T`) are read; `LITERAL`
//! tags, attributes, entities and extensions are refused. Input is bounded in size, nesting
//! depth and element count, so no request can make the decoder run away.

use std::fmt;

use thiserror::Error;

use crate::codepages::{CodePage, CODE_PAGES};

const SWITCH_PAGE: u8 = 0x00;
const END: u8 = 0x01;
const ENTITY: u8 = 0x02;
const STR_I: u8 = 0x03;
const LITERAL: u8 = 0x04;
const STR_T: u8 = 0x83;
const OPAQUE: u8 = 0xC3;

/// Deepest nesting accepted (real EAS documents stay under 15).
pub const MAX_DEPTH: usize = 64;
/// Largest document accepted.
pub const MAX_DOCUMENT: usize = 32 * 1024 * 1024;
/// Most elements in one document.
pub const MAX_ELEMENTS: usize = 1_000_000;

/// What was wrong with a WBXML document, and where.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WbxmlError {
    #[error("WBXML ends early at byte {0}")]
    Truncated(usize),
    #[error("unsupported WBXML version {0:#04x} (EAS uses 1.3)")]
    Version(u8),
    #[error("unsupported character set {0} (EAS uses UTF-8, 106)")]
    Charset(u32),
    #[error("multi-byte integer too long at byte {0}")]
    IntegerOverflow(usize),
    #[error("unknown code page {0}")]
    UnknownPage(u8),
    #[error("unknown tag {token:#04x} on code page {page} at byte {at}")]
    UnknownTag { page: u8, token: u8, at: usize },
    #[error("WBXML feature {what} at byte {at} is not used by ActiveSync")]
    Unsupported { what: &'static str, at: usize },
    #[error("string is not UTF-8 at byte {0}")]
    Utf8(usize),
    #[error("string-table reference {0} out of range")]
    StringTable(usize),
    #[error("END without an open element at byte {0}")]
    UnbalancedEnd(usize),
    #[error("text or data outside the root element at byte {0}")]
    OutsideRoot(usize),
    #[error("more than one root element")]
    SecondRoot,
    #[error("the document has no root element")]
    Empty,
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("document larger than {MAX_DOCUMENT} bytes or {MAX_ELEMENTS} elements")]
    TooLarge,
    #[error("text contains a NUL character, which WBXML inline strings cannot carry")]
    NulInText,
    #[error("unknown tag `{namespace}:{name}`")]
    UnknownName { namespace: String, name: String },
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
    Opaque(Vec<u8>),
}

/// An element: a tag of a code page and its children.
#[derive(Clone, PartialEq, Eq)]
pub struct Element {
    pub page: u8,
    pub token: u8,
    pub children: Vec<Node>,
}

fn page(number: u8) -> Option<&'static CodePage> {
    CODE_PAGES
        .get(usize::from(number))
        .filter(|p| p.number == number)
}

/// Tag names by page and token, built once: the decoder checks every tag it reads.
fn tag_table() -> &'static [[Option<&'static str>; 64]] {
    static TABLE: std::sync::OnceLock<Vec<[Option<&'static str>; 64]>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        CODE_PAGES
            .iter()
            .map(|page| {
                let mut names = [None; 64];
                for (token, name) in page.tags {
                    if let Some(slot) = names.get_mut(usize::from(*token)) {
                        *slot = Some(*name);
                    }
                }
                names
            })
            .collect()
    })
}

fn tag_name(page_number: u8, token: u8) -> Option<&'static str> {
    *tag_table()
        .get(usize::from(page_number))?
        .get(usize::from(token))?
}

impl Element {
    /// An element by namespace and name, e.g. `Element::new("AirSync", "Sync")`.
    pub fn new(namespace: &str, name: &str) -> Result<Self, WbxmlError> {
        let unknown = || WbxmlError::UnknownName {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let page = CODE_PAGES
            .iter()
            .find(|p| {
                p.namespace
                    .eq_ignore_ascii_case(namespace.trim_end_matches(':'))
            })
            .ok_or_else(unknown)?;
        let token = page
            .tags
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(t, _)| *t)
            .ok_or_else(unknown)?;
        Ok(Element {
            page: page.number,
            token,
            children: Vec::new(),
        })
    }

    /// Add a child element (builder style).
    pub fn with(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Add text (builder style).
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Add opaque data (builder style).
    pub fn with_opaque(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.children.push(Node::Opaque(data.into()));
        self
    }

    pub fn name(&self) -> &'static str {
        tag_name(self.page, self.token).unwrap_or("?")
    }

    pub fn namespace(&self) -> &'static str {
        page(self.page).map(|p| p.namespace).unwrap_or("?")
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element named `name` (any code page).
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name() == name)
    }

    /// Follow a path of child names, e.g. `["DeviceInformation", "Set", "Model"]`.
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |e, name| e.child(name))
    }

    /// The element's text (its text children concatenated), if it has any.
    pub fn text(&self) -> Option<String> {
        concat_text(self.children.iter().map(|n| match n {
            Node::Text(t) => Some(t.as_bytes()),
            Node::Opaque(d) => Some(d.as_slice()),
            Node::Element(_) => None,
        }))
    }
}

/// Concatenate the text of an element's children (`None` for child elements); opaque data
/// counts when it is UTF-8. `None` when there was no text at all.
fn concat_text<'a>(parts: impl Iterator<Item = Option<&'a [u8]>>) -> Option<String> {
    let mut text = String::new();
    let mut any = false;
    for part in parts.flatten() {
        if let Ok(t) = std::str::from_utf8(part) {
            text.push_str(t);
            any = true;
        }
    }
    any.then_some(text)
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}:{}>", self.namespace(), self.name())?;
        f.debug_list().entries(&self.children).finish()
    }
}

/// "No node" in the arena's links.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Element {
        page: u8,
        token: u8,
        first_child: u32,
        next: u32,
    },
    Text {
        start: u32,
        len: u32,
        next: u32,
    },
    Opaque {
        start: u32,
        len: u32,
        next: u32,
    },
}

impl Slot {
    fn set_next(&mut self, to: u32) {
        match self {
            Slot::Element { next, .. } | Slot::Text { next, .. } | Slot::Opaque { next, .. } => {
                *next = to
            }
        }
    }

    fn next(&self) -> u32 {
        match self {
            Slot::Element { next, .. } | Slot::Text { next, .. } | Slot::Opaque { next, .. } => {
                *next
            }
        }
    }
}

/// A decoded document, stored flat: every node in one vector, all text in one string, all
/// opaque data in one buffer. A request body is decoded on the gateway's hot path; a node per
/// allocation cost more than the parsing itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    nodes: Vec<Slot>,
    text: String,
    data: Vec<u8>,
}

/// A node of a decoded document.
#[derive(Clone, Copy, Debug)]
pub enum NodeRef<'a> {
    Element(ElementRef<'a>),
    Text(&'a str),
    Opaque(&'a [u8]),
}

/// An element of a decoded document.
#[derive(Clone, Copy)]
pub struct ElementRef<'a> {
    doc: &'a Document,
    index: u32,
}

impl Document {
    /// The root element.
    pub fn root(&self) -> ElementRef<'_> {
        ElementRef {
            doc: self,
            index: 0,
        }
    }

    /// An owned copy of the tree (for editing or building on).
    pub fn to_element(&self) -> Element {
        self.root().to_element()
    }

    fn node(&self, index: u32) -> Option<NodeRef<'_>> {
        let slot = self.nodes.get(index as usize)?;
        Some(match *slot {
            Slot::Element { .. } => NodeRef::Element(ElementRef { doc: self, index }),
            Slot::Text { start, len, .. } => NodeRef::Text(
                self.text
                    .get(start as usize..(start + len) as usize)
                    .unwrap_or(""),
            ),
            Slot::Opaque { start, len, .. } => NodeRef::Opaque(
                self.data
                    .get(start as usize..(start + len) as usize)
                    .unwrap_or(&[]),
            ),
        })
    }
}

impl<'a> ElementRef<'a> {
    fn slot(&self) -> (u8, u8, u32) {
        match self.doc.nodes.get(self.index as usize) {
            Some(Slot::Element {
                page,
                token,
                first_child,
                ..
            }) => (*page, *token, *first_child),
            _ => (0, 0, NONE),
        }
    }

    pub fn page(&self) -> u8 {
        self.slot().0
    }

    pub fn token(&self) -> u8 {
        self.slot().1
    }

    pub fn name(&self) -> &'static str {
        tag_name(self.page(), self.token()).unwrap_or("?")
    }

    pub fn namespace(&self) -> &'static str {
        page(self.page()).map(|p| p.namespace).unwrap_or("?")
    }

    /// Every child node, in order.
    pub fn children(&self) -> impl Iterator<Item = NodeRef<'a>> + 'a {
        let doc = self.doc;
        let mut at = self.slot().2;
        std::iter::from_fn(move || {
            let node = doc.node(at)?;
            at = doc.nodes.get(at as usize).map(Slot::next).unwrap_or(NONE);
            Some(node)
        })
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = ElementRef<'a>> + 'a {
        self.children().filter_map(|n| match n {
            NodeRef::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element named `name` (any code page).
    pub fn child(&self, name: &str) -> Option<ElementRef<'a>> {
        self.elements().find(|e| e.name() == name)
    }

    /// Follow a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<ElementRef<'a>> {
        names.iter().try_fold(*self, |e, name| e.child(name))
    }

    /// The element's text (text and UTF-8 opaque children concatenated), if any.
    pub fn text(&self) -> Option<String> {
        concat_text(self.children().map(|n| match n {
            NodeRef::Text(t) => Some(t.as_bytes()),
            NodeRef::Opaque(d) => Some(d),
            NodeRef::Element(_) => None,
        }))
    }

    /// An owned copy of this element and everything below it.
    pub fn to_element(&self) -> Element {
        let (page, token, _) = self.slot();
        Element {
            page,
            token,
            children: self
                .children()
                .map(|n| match n {
                    NodeRef::Element(e) => Node::Element(e.to_element()),
                    NodeRef::Text(t) => Node::Text(t.to_string()),
                    NodeRef::Opaque(d) => Node::Opaque(d.to_vec()),
                })
                .collect(),
        }
    }
}

impl fmt::Debug for ElementRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_element())
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, WbxmlError> {
        let b = *self
            .data
            .get(self.at)
            .ok_or(WbxmlError::Truncated(self.at))?;
        self.at += 1;
        Ok(b)
    }

    fn mb_u32(&mut self) -> Result<u32, WbxmlError> {
        let start = self.at;
        let mut value: u32 = 0;
        for _ in 0..5 {
            let b = self.byte()?;
            value = value
                .checked_mul(128)
                .and_then(|v| v.checked_add(u32::from(b & 0x7F)))
                .ok_or(WbxmlError::IntegerOverflow(start))?;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WbxmlError::IntegerOverflow(start))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WbxmlError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or(WbxmlError::Truncated(self.at))?;
        let slice = &self.data[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// A NUL-terminated UTF-8 string.
    fn cstring(&mut self) -> Result<&'a str, WbxmlError> {
        let start = self.at;
        let rest = &self.data[self.at.min(self.data.len())..];
        let len = memchr::memchr(0, rest).ok_or(WbxmlError::Truncated(self.data.len()))?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| WbxmlError::Utf8(start))?;
        self.at += len + 1;
        Ok(text)
    }
}

/// Builds the flat document while decoding: `open` holds, for each open element, its index
/// and the index of its last child so far (to link the next sibling).
struct Builder {
    doc: Document,
    open: Vec<(u32, u32)>,
    root_done: bool,
}

impl Builder {
    fn add(&mut self, slot: Slot, at: usize) -> Result<u32, WbxmlError> {
        let index = u32::try_from(self.doc.nodes.len()).map_err(|_| WbxmlError::TooLarge)?;
        match self.open.last_mut() {
            Some((parent, last)) => {
                if *last == NONE {
                    if let Some(Slot::Element { first_child, .. }) =
                        self.doc.nodes.get_mut(*parent as usize)
                    {
                        *first_child = index;
                    }
                } else if let Some(prev) = self.doc.nodes.get_mut(*last as usize) {
                    prev.set_next(index);
                }
                *last = index;
            }
            None => match slot {
                Slot::Element { .. } if !self.root_done && self.doc.nodes.is_empty() => {}
                Slot::Element { .. } => return Err(WbxmlError::SecondRoot),
                _ => return Err(WbxmlError::OutsideRoot(at)),
            },
        }
        self.doc.nodes.push(slot);
        Ok(index)
    }
}

fn span(buffer_len: usize, len: usize) -> Result<(u32, u32), WbxmlError> {
    Ok((
        u32::try_from(buffer_len).map_err(|_| WbxmlError::TooLarge)?,
        u32::try_from(len).map_err(|_| WbxmlError::TooLarge)?,
    ))
}

/// Decode a WBXML document.
pub fn decode(data: &[u8]) -> Result<Document, WbxmlError> {
    if data.len() > MAX_DOCUMENT {
        return Err(WbxmlError::TooLarge);
    }
    let mut r = Reader { data, at: 0 };
    let version = r.byte()?;
    if !(0x01..=0x03).contains(&version) {
        return Err(WbxmlError::Version(version));
    }
    let public_id = r.mb_u32()?;
    if public_id == 0 {
        r.mb_u32()?; // public id given as a string-table index
    }
    let charset = r.mb_u32()?;
    if charset != 106 && charset != 0 {
        return Err(WbxmlError::Charset(charset));
    }
    let table_len = usize::try_from(r.mb_u32()?).map_err(|_| WbxmlError::TooLarge)?;
    let table = r.take(table_len)?;

    let mut b = Builder {
        doc: Document {
            nodes: Vec::with_capacity(data.len() / 8),
            text: String::with_capacity(data.len() / 2),
            data: Vec::new(),
        },
        open: Vec::with_capacity(16),
        root_done: false,
    };
    let mut page_number = 0u8;
    while r.at < data.len() {
        let at = r.at;
        let token = r.byte()?;
        match token {
            SWITCH_PAGE => {
                let p = r.byte()?;
                if page(p).is_none() {
                    return Err(WbxmlError::UnknownPage(p));
                }
                page_number = p;
            }
            END => {
                b.open.pop().ok_or(WbxmlError::UnbalancedEnd(at))?;
                if b.open.is_empty() {
                    b.root_done = true;
                }
            }
            STR_I => {
                let text = r.cstring()?;
                let (start, len) = span(b.doc.text.len(), text.len())?;
                b.doc.text.push_str(text);
                b.add(
                    Slot::Text {
                        start,
                        len,
                        next: NONE,
                    },
                    at,
                )?;
            }
            STR_T => {
                let offset = usize::try_from(r.mb_u32()?)
                    .map_err(|_| WbxmlError::StringTable(usize::MAX))?;
                let rest = table.get(offset..).ok_or(WbxmlError::StringTable(offset))?;
                let len = memchr::memchr(0, rest).ok_or(WbxmlError::StringTable(offset))?;
                let text = std::str::from_utf8(&rest[..len]).map_err(|_| WbxmlError::Utf8(at))?;
                let (start, len) = span(b.doc.text.len(), text.len())?;
                b.doc.text.push_str(text);
                b.add(
                    Slot::Text {
                        start,
                        len,
                        next: NONE,
                    },
                    at,
                )?;
            }
            OPAQUE => {
                let len = usize::try_from(r.mb_u32()?).map_err(|_| WbxmlError::TooLarge)?;
                let bytes = r.take(len)?;
                let (start, len) = span(b.doc.data.len(), bytes.len())?;
                b.doc.data.extend_from_slice(bytes);
                b.add(
                    Slot::Opaque {
                        start,
                        len,
                        next: NONE,
                    },
                    at,
                )?;
            }
            ENTITY => return Err(WbxmlError::Unsupported { what: "ENTITY", at }),
            LITERAL | 0x44 | 0x84 | 0xC4 => {
                return Err(WbxmlError::Unsupported {
                    what: "LITERAL",
                    at,
                })
            }
            0x40..=0x43 | 0x80..=0x82 | 0xC0..=0xC2 => {
                return Err(WbxmlError::Unsupported {
                    what: "extension or PI",
                    at,
                })
            }
            _ => {
                if token & 0x80 != 0 {
                    return Err(WbxmlError::Unsupported {
                        what: "attributes",
                        at,
                    });
                }
                let id = token & 0x3F;
                if tag_name(page_number, id).is_none() {
                    return Err(WbxmlError::UnknownTag {
                        page: page_number,
                        token: id,
                        at,
                    });
                }
                if b.doc.nodes.len() >= MAX_ELEMENTS {
                    return Err(WbxmlError::TooLarge);
                }
                if b.open.len() >= MAX_DEPTH {
                    return Err(WbxmlError::TooDeep);
                }
                let index = b.add(
                    Slot::Element {
                        page: page_number,
                        token: id,
                        first_child: NONE,
                        next: NONE,
                    },
                    at,
                )?;
                if token & 0x40 != 0 {
                    b.open.push((index, NONE));
                } else if b.open.is_empty() {
                    b.root_done = true;
                }
            }
        }
    }
    if !b.open.is_empty() {
        return Err(WbxmlError::Truncated(data.len()));
    }
    if b.doc.nodes.is_empty() {
        return Err(WbxmlError::Empty);
    }
    Ok(b.doc)
}

fn mb_u32(out: &mut Vec<u8>, mut value: u32) {
    let mut bytes = [0u8; 5];
    let mut i = bytes.len();
    loop {
        i -= 1;
        bytes[i] = (value & 0x7F) as u8 | if i == bytes.len() - 1 { 0 } else { 0x80 };
        value >>= 7;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&bytes[i..]);
}

/// Encode an element tree as a WBXML 1.3 document, UTF-8, no string table (as Exchange and
/// libwbxml2 do).
pub fn encode(root: &Element) -> Result<Vec<u8>, WbxmlError> {
    let mut out = vec![0x03, 0x01, 0x6A, 0x00];
    let mut page_number = 0u8;
    encode_element(root, &mut out, &mut page_number, 0)?;
    Ok(out)
}

fn encode_element(
    e: &Element,
    out: &mut Vec<u8>,
    current: &mut u8,
    depth: usize,
) -> Result<(), WbxmlError> {
    if depth >= MAX_DEPTH {
        return Err(WbxmlError::TooDeep);
    }
    if tag_name(e.page, e.token).is_none() {
        return Err(WbxmlError::UnknownTag {
            page: e.page,
            token: e.token,
            at: out.len(),
        });
    }
    if e.page != *current {
        out.extend_from_slice(&[SWITCH_PAGE, e.page]);
        *current = e.page;
    }
    if e.children.is_empty() {
        out.push(e.token);
        return Ok(());
    }
    out.push(e.token | 0x40);
    for child in &e.children {
        match child {
            Node::Element(c) => encode_element(c, out, current, depth + 1)?,
            Node::Text(t) => {
                if t.contains('\0') {
                    return Err(WbxmlError::NulInText);
                }
                out.push(STR_I);
                out.extend_from_slice(t.as_bytes());
                out.push(0);
            }
            Node::Opaque(data) => {
                out.push(OPAQUE);
                mb_u32(
                    out,
                    u32::try_from(data.len()).map_err(|_| WbxmlError::TooLarge)?,
                );
                out.extend_from_slice(data);
            }
        }
    }
    out.push(END);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_multibyte_lengths() {
        let tree = Element::new("FolderHierarchy", "FolderSync")
            .unwrap()
            .with(
                Element::new("FolderHierarchy", "SyncKey")
                    .unwrap()
                    .with_text("0"),
            )
            .with(
                Element::new("AirSyncBase", "Data")
                    .unwrap()
                    .with_opaque(vec![7u8; 300]),
            );
        let bytes = encode(&tree).unwrap();
        assert_eq!(&bytes[..4], &[3, 1, 0x6A, 0]);
        let doc = decode(&bytes).unwrap();
        assert_eq!(doc.to_element(), tree);
        assert_eq!(
            doc.root().path(&["SyncKey"]).unwrap().text().as_deref(),
            Some("0")
        );
        let mut v = Vec::new();
        mb_u32(&mut v, 300);
        assert_eq!(v, [0x82, 0x2C]);
    }

    #[test]
    fn the_deepest_document_decoded_also_encodes() {
        let mut bytes = vec![3, 1, 0x6A, 0];
        bytes.extend(std::iter::repeat_n(0x45, MAX_DEPTH - 1));
        bytes.push(0x05);
        bytes.extend(std::iter::repeat_n(END, MAX_DEPTH - 1));
        let doc = decode(&bytes).unwrap();
        assert_eq!(encode(&doc.to_element()).unwrap(), bytes);
        let mut deeper = vec![3, 1, 0x6A, 0];
        deeper.extend(std::iter::repeat_n(0x45, MAX_DEPTH));
        deeper.push(0x05);
        assert_eq!(decode(&deeper), Err(WbxmlError::TooDeep));
    }

    #[test]
    fn refuses_bad_input() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[3, 1, 0x6A, 0]).is_err());
        assert!(decode(&[3, 1, 0x6A, 0, 0x45]).is_err()); // unclosed
        assert!(decode(&[3, 1, 0x6A, 0, 0x01]).is_err()); // END first
        assert!(decode(&[3, 1, 0x6A, 0, 0x00, 99, 0x05]).is_err()); // page 99
        assert!(decode(&[3, 1, 0x6A, 0, 0x3F]).is_err()); // unknown tag
        assert!(decode(&[3, 1, 0x6A, 0, 0xC5, 0x01]).is_err()); // attributes
        assert!(decode(&[3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]).is_err());
        let mut deep = vec![3, 1, 0x6A, 0];
        deep.extend(std::iter::repeat_n(0x45, 100));
        assert_eq!(decode(&deep), Err(WbxmlError::TooDeep));
        assert!(Element::new("AirSync", "NoSuchTag").is_err());
    }
}
