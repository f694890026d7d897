//! Reading an upstream's response head and deciding how its body is delimited (RFC 9112 §6.3).

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;

use crate::request::parse_length;
use crate::Http1Error;

/// Largest response head read (status line and headers), as nginx's large buffers allow.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one response head.
const MAX_HEADERS: usize = 128;

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, 204 or 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A final response head.
#[derive(Debug)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// The fields as sent (framing and hop-by-hop fields included; the proxy strips those).
    pub headers: HeaderMap,
    pub framing: Framing,
    /// Whether the connection may carry another request once this body has been read.
    pub keep_alive: bool,
}

/// Take a final response head from the front of `buf`. Interim responses (100 Continue,
/// 103 Early Hints) before it are consumed and skipped. `Ok(None)`: the head is not complete
/// yet; read more into `buf` and call again. Header values share the head's bytes (no copy).
pub fn parse_response_head(
    buf: &mut BytesMut,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, Http1Error> {
    loop {
        // Where each field's name and value sit in the head, so that the head can be split
        // off and frozen once and the values share it.
        let mut places = [FieldPlace::default(); MAX_HEADERS];
        let (length, code, version, count) = {
            // Uninitialised field slots: httparse fills what it uses, and the 4 KiB of slots
            // are not zeroed for every answer.
            let mut fields =
                [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
                &mut response,
                buf,
                &mut fields,
            );
            let length = match parsed {
                Ok(httparse::Status::Complete(length)) => length,
                Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => {
                    return Err(Http1Error::HeadTooLarge)
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(Http1Error::MalformedHead(e.to_string())),
            };
            let start = buf.as_ptr() as usize;
            for (place, field) in places.iter_mut().zip(response.headers.iter()) {
                // Offsets within a head of at most MAX_HEAD bytes fit in u32.
                let offset = |part: &[u8]| (part.as_ptr() as usize - start) as u32;
                let (name, value) = (offset(field.name.as_bytes()), offset(field.value));
                *place = FieldPlace {
                    name: (name, name + field.name.len() as u32),
                    value: (value, value + field.value.len() as u32),
                };
            }
            let count = response.headers.len();
            (length, response.code.unwrap_or(0), response.version, count)
        };
        if length > MAX_HEAD {
            return Err(Http1Error::HeadTooLarge);
        }
        match code {
            101 => return Err(Http1Error::Upgrade),
            100..=199 => {
                buf.advance(length);
                continue;
            }
            _ => {}
        }
        let head = buf.split_to(length).freeze();
        let status = StatusCode::from_u16(code).map_err(|_| Http1Error::BadStatus(code))?;
        let http11 = version == Some(1);
        return read_fields(&head, &places[..count], status, http11, request_was_head).map(Some);
    }
}

/// Where one field's name and value are in the head (byte offsets; a head is at most
/// [`MAX_HEAD`] bytes, and the places of a whole head are zeroed for every answer, so small).
#[derive(Debug, Default, Clone, Copy)]
struct FieldPlace {
    name: (u32, u32),
    value: (u32, u32),
}

fn span((start, end): (u32, u32)) -> std::ops::Range<usize> {
    start as usize..end as usize
}

/// The fields of a complete head, and the framing and persistence they say.
fn read_fields(
    head: &Bytes,
    places: &[FieldPlace],
    status: StatusCode,
    http11: bool,
    request_was_head: bool,
) -> Result<ResponseHead, Http1Error> {
    let mut headers = HeaderMap::with_capacity(places.len());
    let mut chunked = None;
    let mut length = None;
    let mut close = false;
    let mut keep_alive_asked = false;
    for place in places {
        let (name_at, value_at) = (span(place.name), span(place.value));
        let raw_name = head.get(name_at.clone()).unwrap_or_default();
        let bad = |why| Http1Error::BadHeader {
            name: String::from_utf8_lossy(raw_name).into_owned(),
            why,
        };
        let name = HeaderName::from_bytes(raw_name).map_err(|_| bad("not a valid field name"))?;
        if value_at.end > head.len() {
            return Err(bad("outside the head"));
        }
        let value = HeaderValue::from_maybe_shared(head.slice(value_at))
            .map_err(|_| bad("control characters in the value"))?;
        if name == header::TRANSFER_ENCODING {
            let text = value.to_str().map_err(|_| bad("not ASCII"))?;
            let last = text.rsplit(',').next().unwrap_or("").trim();
            chunked = Some(last.eq_ignore_ascii_case("chunked"));
        } else if name == header::CONTENT_LENGTH {
            let text = value.to_str().map_err(|_| bad("not ASCII"))?;
            let n = parse_length(text).ok_or_else(|| bad("not a length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(bad("two different lengths"));
            }
            length = Some(n);
        } else if name == header::CONNECTION {
            for token in value.to_str().unwrap_or("").split(',') {
                let token = token.trim();
                close |= token.eq_ignore_ascii_case("close");
                keep_alive_asked |= token.eq_ignore_ascii_case("keep-alive");
            }
        }
        headers.append(name, value);
    }

    let bodiless =
        request_was_head || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let framing = match (chunked, length) {
        _ if bodiless => Framing::Empty,
        (Some(true), _) => Framing::Chunked,
        (Some(false), _) => Framing::UntilClose,
        (None, Some(n)) => Framing::Length(n),
        (None, None) => Framing::UntilClose,
    };
    // A message with both Transfer-Encoding and Content-Length may be an attempt at request
    // smuggling: read it by Transfer-Encoding, then close (RFC 9112 §6.3).
    let ambiguous = chunked.is_some() && length.is_some();
    let keep_alive =
        !close && (http11 || keep_alive_asked) && framing != Framing::UntilClose && !ambiguous;
    Ok(ResponseHead {
        status,
        headers,
        framing,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &[u8]) -> Result<Option<ResponseHead>, Http1Error> {
        parse_response_head(&mut BytesMut::from(text), false)
    }

    #[test]
    fn a_content_length_response_keeps_the_connection() {
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok"[..]);
        let head = parse_response_head(&mut buf, false).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Length(2));
        assert!(head.keep_alive);
        assert_eq!(head.headers["x-a"], "b");
        assert_eq!(&buf[..], b"ok");
    }

    #[test]
    fn a_partial_head_asks_for_more_and_leaves_the_bytes() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
        assert!(parse_response_head(&mut buf, false).unwrap().is_none());
        assert_eq!(buf.len(), 27);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"[..],
        );
        let head = parse_response_head(&mut buf, false).unwrap().unwrap();
        assert_eq!(head.status, 204);
        assert_eq!(head.framing, Framing::Empty);
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_by_transfer_encoding_length_or_close() {
        let chunked = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(chunked.framing, Framing::Chunked);
        assert!(chunked.keep_alive);
        let both =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(both.framing, Framing::Chunked);
        assert!(!both.keep_alive, "ambiguous framing closes the connection");
        let close = parse(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(close.framing, Framing::UntilClose);
        assert!(!close.keep_alive);
        let gzip = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(gzip.framing, Framing::UntilClose);
        let old = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!old.keep_alive);
        let old_ka =
            parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(old_ka.keep_alive);
        let closing = parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!closing.keep_alive);
        let head_request = parse_response_head(
            &mut BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"[..]),
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(head_request.framing, Framing::Empty);
    }

    #[test]
    fn bad_heads_are_errors() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 99 Odd\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        while huge.len() <= MAX_HEAD {
            huge.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        assert!(matches!(
            parse(&huge),
            Err(Http1Error::HeadTooLarge) | Err(Http1Error::MalformedHead(_))
        ));
    }
}
