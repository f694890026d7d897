//! Exchange ActiveSync for the easgate gateway, free of I/O: the request line and headers
//! (plain and base64 queries), the client classifier, the WBXML codec with every EAS code page,
//! device information, Provision (MS-ASPROV), and the responses the gateway gives itself.

pub mod classify;
pub mod codepages;
pub mod device;
pub mod provision;
pub mod query;
pub mod responses;
pub mod sample;
pub mod wbxml;

pub use classify::{classify, Client, Platform};
pub use query::{Command, EasRequest, QueryError, QueryForm};
pub use wbxml::{decode, encode, Document, Element, ElementRef, Node, NodeRef, WbxmlError};
