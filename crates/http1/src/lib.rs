//! The HTTP/1.1 wire format of the gateway's upstream leg, free of I/O: the request head it
//! writes, the response head it reads and the framing of both bodies (RFC 9112).
//!
//! Why not hyper's client: every held request (an EAS Ping waits up to 59 minutes for its
//! answer) kept hyper's client read and write buffers (8 KiB each, no smaller size offered)
//! and its dispatch channel (about 8 KiB) besides a task per upstream connection — about
//! 24 KiB of the 40 KiB the gateway spent per held request (docs/BENCHMARKS.md). The gateway
//! needs one narrow thing: send a request to one upstream and stream its answer back. This
//! crate does the byte-level part (httparse reads the head); `easgate-server`'s
//! `gateway::upstream` owns the sockets, so a waiting request holds no buffer at all.
//!
//! Everything here reads bytes an upstream sent and must never panic on them; a fuzz target
//! (`crates/http1/fuzz`, run by `scripts/fuzz-smoke`) and `tests/garbage.rs` check that through
//! [`read_response`].

mod body;
mod read;
mod request;
mod response;

pub use body::{BodyDecoder, Decoded};
pub use read::read_response;
pub use request::{encode_chunk, encode_request_head, request_framing, RequestFraming, LAST_CHUNK};
pub use response::{parse_response_head, Framing, ResponseHead, MAX_HEAD};

/// What is wrong with an upstream's answer, or with a request that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Http1Error {
    #[error("malformed response head: {0}")]
    MalformedHead(String),
    #[error("response head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("invalid status code {0}")]
    BadStatus(u16),
    #[error("invalid header {name}: {why}")]
    BadHeader { name: String, why: &'static str },
    #[error("the upstream switched protocols (101); the gateway does not pass upgrades on")]
    Upgrade,
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
    #[error("the body ended early: the connection closed before its end")]
    Truncated,
    #[error("request Content-Length is not a number")]
    BadRequestLength,
}
