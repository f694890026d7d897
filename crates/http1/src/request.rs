//! The request head the gateway sends upstream and the framing of the body after it.

use std::io::Write as _;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Method;

use crate::Http1Error;

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no framing header (GET, OPTIONS without a body).
    None,
    /// `Content-Length: n`, then exactly n bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`: the body's size is not known in advance (an HTTP/2 or
    /// chunked HTTP/1.1 request without Content-Length).
    Chunked,
}

/// The framing for a request: its `Content-Length` if it has one, else the body's exact size
/// if known, else chunked. `body_is_empty` means the body is known to have ended already.
pub fn request_framing(
    method: &Method,
    headers: &HeaderMap,
    body_is_empty: bool,
    exact_size: Option<u64>,
) -> Result<RequestFraming, Http1Error> {
    if let Some(value) = headers.get(header::CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| Http1Error::BadRequestLength)?;
        let length = parse_length(text).ok_or(Http1Error::BadRequestLength)?;
        return Ok(RequestFraming::Length(length));
    }
    let bodiless = matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE | Method::TRACE
    );
    Ok(match exact_size {
        Some(0) | None if body_is_empty && bodiless => RequestFraming::None,
        Some(n) => RequestFraming::Length(n),
        None if body_is_empty => RequestFraming::Length(0),
        None => RequestFraming::Chunked,
    })
}

/// A Content-Length value: digits only (repeated equal values allowed, as RFC 9110 §8.6).
pub(crate) fn parse_length(text: &str) -> Option<u64> {
    let mut found: Option<u64> = None;
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() || part.len() > 19 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u64 = part.parse().ok()?;
        if found.is_some_and(|f| f != value) {
            return None;
        }
        found = Some(value);
    }
    found
}

/// Append the request line and headers to `out`: `target` in origin form (path and query),
/// `host` as the `Host` header, then `headers` except any Host or framing header of their own,
/// then the `added` fields (the proxy's own, kept out of `headers` so that it need not grow),
/// then the framing header for `framing`, then the blank line.
pub fn encode_request_head(
    method: &Method,
    target: &str,
    host: Option<&[u8]>,
    headers: &HeaderMap,
    added: &[(HeaderName, HeaderValue)],
    framing: RequestFraming,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host);
        out.extend_from_slice(b"\r\n");
    }
    let own = headers.iter().filter(|(name, _)| {
        *name != header::HOST
            && *name != header::CONTENT_LENGTH
            && *name != header::TRANSFER_ENCODING
    });
    for (name, value) in own.chain(added.iter().map(|(name, value)| (name, value))) {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            // Written in place: `Vec<u8>` as `io::Write` cannot fail.
            let _ = write!(out, "{n}");
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Append one chunk of a chunked body (nothing for empty data: an empty chunk would end it).
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The end of a chunked body (no trailers).
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn framing_follows_content_length_then_size_then_chunked() {
        let mut h = HeaderMap::new();
        assert_eq!(
            request_framing(&Method::GET, &h, true, Some(0)).unwrap(),
            RequestFraming::None
        );
        assert_eq!(
            request_framing(&Method::POST, &h, true, Some(0)).unwrap(),
            RequestFraming::Length(0)
        );
        assert_eq!(
            request_framing(&Method::POST, &h, false, Some(12)).unwrap(),
            RequestFraming::Length(12)
        );
        assert_eq!(
            request_framing(&Method::POST, &h, false, None).unwrap(),
            RequestFraming::Chunked
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("300"));
        assert_eq!(
            request_framing(&Method::POST, &h, false, None).unwrap(),
            RequestFraming::Length(300)
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3x"));
        assert!(request_framing(&Method::POST, &h, false, None).is_err());
    }

    #[test]
    fn lengths_are_digits_and_repeats_must_agree() {
        assert_eq!(parse_length("42"), Some(42));
        assert_eq!(parse_length("42, 42"), Some(42));
        assert_eq!(parse_length("42, 43"), None);
        assert_eq!(parse_length("+42"), None);
        assert_eq!(parse_length(""), None);
        assert_eq!(parse_length("99999999999999999999"), None);
    }

    #[test]
    fn the_head_carries_host_headers_and_our_framing_only() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("device.example"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert("ms-asprotocolversion", HeaderValue::from_static("16.1"));
        let mut out = Vec::new();
        encode_request_head(
            &Method::POST,
            "/Microsoft-Server-ActiveSync?Cmd=Sync",
            Some(b"mail.example:8080"),
            &h,
            &[(
                HeaderName::from_static("x-forwarded-proto"),
                HeaderValue::from_static("https"),
            )],
            RequestFraming::Chunked,
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\nhost: mail.example:8080\r\n\
             ms-asprotocolversion: 16.1\r\nx-forwarded-proto: https\r\n\
             transfer-encoding: chunked\r\n\r\n"
        );
        // A sized body: the length we send, not the device's.
        let mut out = Vec::new();
        encode_request_head(
            &Method::POST,
            "/Microsoft-Server-ActiveSync?Cmd=Sync",
            None,
            &h,
            &[],
            RequestFraming::Length(300),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /Microsoft-Server-ActiveSync?Cmd=Sync HTTP/1.1\r\n\
             ms-asprotocolversion: 16.1\r\ncontent-length: 300\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_chunk(b"hello, world", &mut out);
        encode_chunk(b"", &mut out);
        out.extend_from_slice(LAST_CHUNK);
        assert_eq!(out, b"c\r\nhello, world\r\n0\r\n\r\n");
    }
}
