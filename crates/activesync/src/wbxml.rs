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

fn tag_name(page_number: u8, token: u8) -> Option<&'static str> {
    page(page_number)?
        .tags
        .iter()
        .find(|(t, _)| *t == token)
        .map(|(_, n)| *n)
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
        let mut text = String::new();
        let mut any = false;
        for node in &self.children {
            match node {
                Node::Text(t) => {
                    text.push_str(t);
                    any = true;
                }
                Node::Opaque(data) => {
                    if let Ok(t) = std::str::from_utf8(data) {
                        text.push_str(t);
                        any = true;
                    }
                }
                Node::Element(_) => {}
            }
        }
        any.then_some(text)
    }
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}:{}>", self.namespace(), self.name())?;
        f.debug_list().entries(&self.children).finish()
    }
}

/// A decoded document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub root: Element,
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

    fn cstring(&mut self) -> Result<String, WbxmlError> {
        let start = self.at;
        let rest = &self.data[self.at.min(self.data.len())..];
        let len = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(WbxmlError::Truncated(self.data.len()))?;
        let text = std::str::from_utf8(&rest[..len]).map_err(|_| WbxmlError::Utf8(start))?;
        self.at += len + 1;
        Ok(text.to_string())
    }
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

    let mut page_number = 0u8;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    while r.at < data.len() {
        let at = r.at;
        let token = r.byte()?;
        let content: Option<Node> = match token {
            SWITCH_PAGE => {
                let p = r.byte()?;
                if page(p).is_none() {
                    return Err(WbxmlError::UnknownPage(p));
                }
                page_number = p;
                continue;
            }
            END => {
                let done = stack.pop().ok_or(WbxmlError::UnbalancedEnd(at))?;
                attach(&mut stack, &mut root, Node::Element(done))?;
                continue;
            }
            STR_I => Some(Node::Text(r.cstring()?)),
            STR_T => {
                let offset = usize::try_from(r.mb_u32()?)
                    .map_err(|_| WbxmlError::StringTable(usize::MAX))?;
                let rest = table.get(offset..).ok_or(WbxmlError::StringTable(offset))?;
                let len = rest
                    .iter()
                    .position(|b| *b == 0)
                    .ok_or(WbxmlError::StringTable(offset))?;
                let text = std::str::from_utf8(&rest[..len]).map_err(|_| WbxmlError::Utf8(at))?;
                Some(Node::Text(text.to_string()))
            }
            OPAQUE => {
                let len = usize::try_from(r.mb_u32()?).map_err(|_| WbxmlError::TooLarge)?;
                Some(Node::Opaque(r.take(len)?.to_vec()))
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
            _ => None,
        };
        if let Some(node) = content {
            match stack.last_mut() {
                Some(parent) => parent.children.push(node),
                None => return Err(WbxmlError::OutsideRoot(at)),
            }
            continue;
        }
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
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(WbxmlError::TooLarge);
        }
        let element = Element {
            page: page_number,
            token: id,
            children: Vec::new(),
        };
        if token & 0x40 != 0 {
            if stack.len() >= MAX_DEPTH {
                return Err(WbxmlError::TooDeep);
            }
            stack.push(element);
        } else {
            attach(&mut stack, &mut root, Node::Element(element))?;
        }
    }
    if !stack.is_empty() {
        return Err(WbxmlError::Truncated(data.len()));
    }
    root.map(|root| Document { root }).ok_or(WbxmlError::Empty)
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, node: Node) -> Result<(), WbxmlError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(node);
            Ok(())
        }
        None => match node {
            Node::Element(e) if root.is_none() => {
                *root = Some(e);
                Ok(())
            }
            Node::Element(_) => Err(WbxmlError::SecondRoot),
            _ => Err(WbxmlError::OutsideRoot(0)),
        },
    }
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

/// Encode a document as WBXML 1.3, UTF-8, no string table (as Exchange and libwbxml2 do).
pub fn encode(doc: &Document) -> Result<Vec<u8>, WbxmlError> {
    let mut out = vec![0x03, 0x01, 0x6A, 0x00];
    let mut page_number = 0u8;
    encode_element(&doc.root, &mut out, &mut page_number, 0)?;
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
        let doc = Document {
            root: Element::new("FolderHierarchy", "FolderSync")
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
                ),
        };
        let bytes = encode(&doc).unwrap();
        assert_eq!(&bytes[..4], &[3, 1, 0x6A, 0]);
        assert_eq!(decode(&bytes).unwrap(), doc);
        let mut v = Vec::new();
        mb_u32(&mut v, 300);
        assert_eq!(v, [0x82, 0x2C]);
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
