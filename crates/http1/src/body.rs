//! Cutting a response body out of the bytes read from the connection, by its framing.

use bytes::{Buf, Bytes, BytesMut};

use crate::{Framing, Http1Error};

/// Longest chunk-size line (size, extensions) accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes accepted (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// The next piece of the body.
    Data(Bytes),
    /// Read more into the buffer and call again.
    NeedMore,
    /// The body has ended; bytes after it are left in the buffer.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers(usize),
    UntilClose,
    Done,
}

/// The body decoder of one response.
#[derive(Debug)]
pub struct BodyDecoder {
    state: State,
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// Whether the whole body has been returned.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The bytes still to come, when known.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Take the next piece of the body from the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Http1Error> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(n) => return Ok(self.take_part(buf, n, State::Done, State::Length)),
                State::ChunkData(n) => {
                    return Ok(self.take_part(buf, n, State::ChunkDataEnd, State::ChunkData))
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Data(buf.split().freeze()));
                }
                State::ChunkSize => {
                    let Some(end) = line_end(buf, MAX_CHUNK_LINE, "chunk-size line too long")?
                    else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&buf[..end])?;
                    buf.advance(end + 2);
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkDataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Http1Error::BadChunk("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers(seen) => {
                    let room = MAX_TRAILERS.saturating_sub(seen);
                    let Some(end) = line_end(buf, room, "trailers too large")? else {
                        return Ok(Decoded::NeedMore);
                    };
                    buf.advance(end + 2);
                    self.state = if end == 0 {
                        State::Done
                    } else {
                        State::Trailers(seen + end + 2)
                    };
                }
            }
        }
    }

    /// Up to `n` bytes of the body (`Length` or a chunk's data); then `after` if they were all
    /// there, else `rest` of what is still to come.
    fn take_part(
        &mut self,
        buf: &mut BytesMut,
        n: u64,
        after: State,
        rest: fn(u64) -> State,
    ) -> Decoded {
        let Some(data) = take(buf, n) else {
            return Decoded::NeedMore;
        };
        let left = n - data.len() as u64;
        self.state = if left == 0 { after } else { rest(left) };
        Decoded::Data(data)
    }

    /// The connection has closed: the end of a body read until close, else an error.
    pub fn closed(&mut self) -> Result<(), Http1Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(Http1Error::Truncated),
        }
    }
}

/// Up to `n` bytes from the front of `buf`; `None` when it is empty.
fn take(buf: &mut BytesMut, n: u64) -> Option<Bytes> {
    if buf.is_empty() {
        return None;
    }
    let count = usize::try_from(n).unwrap_or(usize::MAX).min(buf.len());
    Some(buf.split_to(count).freeze())
}

/// Where the line at the front of `buf` ends (the index of its CR), if it has ended; an error
/// when `limit` bytes pass without one.
fn line_end(buf: &[u8], limit: usize, too_long: &'static str) -> Result<Option<usize>, Http1Error> {
    let window = &buf[..buf.len().min(limit.saturating_add(2))];
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(end) => Ok(Some(end)),
        None if buf.len() >= limit.saturating_add(2) => Err(Http1Error::BadChunk(too_long)),
        None => Ok(None),
    }
}

/// The size in a chunk-size line (hex digits; extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, Http1Error> {
    let digits = line.split(|b| *b == b';').next().unwrap_or(&[]);
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(Http1Error::BadChunk("bad chunk size"));
    }
    let mut size = 0u64;
    for d in digits {
        let v = (*d as char)
            .to_digit(16)
            .ok_or(Http1Error::BadChunk("bad chunk size"))?;
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Feed `wire` one byte at a time; the body read and what is left after it.
    fn decode_bytewise(framing: Framing, wire: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Http1Error> {
        let mut decoder = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut rest = wire.iter();
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::End => return Ok((body, buf.to_vec())),
                Decoded::NeedMore => match rest.next() {
                    Some(b) => buf.extend_from_slice(&[*b]),
                    None => {
                        decoder.closed()?;
                        return Ok((body, Vec::new()));
                    }
                },
            }
        }
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (body, rest) = decode_bytewise(Framing::Chunked, wire).unwrap();
        assert_eq!(body, b"hello, world");
        assert!(rest.is_empty(), "the body ends at its last CRLF: {rest:?}");
        let mut buf = BytesMut::from(&wire[..]);
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"hello"))
        );
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b", world"))
        );
        assert_eq!(decoder.decode(&mut buf).unwrap(), Decoded::End);
        assert!(decoder.is_done());
        assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn length_bodies_stop_at_their_length() {
        let (body, rest) = decode_bytewise(Framing::Length(3), b"abcdef").unwrap();
        assert_eq!((body.as_slice(), rest.as_slice()), (&b"abc"[..], &b""[..]));
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        let mut decoder = BodyDecoder::new(Framing::Length(3));
        assert_eq!(decoder.remaining(), Some(3));
        assert_eq!(
            decoder.decode(&mut buf).unwrap(),
            Decoded::Data(Bytes::from_static(b"abc"))
        );
        assert!(decoder.is_done());
        assert_eq!(&buf[..], b"def");
    }

    #[test]
    fn until_close_ends_with_the_connection_and_others_are_truncated() {
        let (body, _) = decode_bytewise(Framing::UntilClose, b"all of it").unwrap();
        assert_eq!(body, b"all of it");
        assert_eq!(
            decode_bytewise(Framing::Length(10), b"short"),
            Err(Http1Error::Truncated)
        );
        assert_eq!(
            decode_bytewise(Framing::Chunked, b"5\r\nhel"),
            Err(Http1Error::Truncated)
        );
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"5\r\nhelloXY0\r\n\r\n",
            b"ffffffffffffffff\r\n",
            b"-1\r\n",
        ] {
            assert!(decode_bytewise(Framing::Chunked, bad).is_err(), "{bad:?}");
        }
        let long_line = vec![b'1'; MAX_CHUNK_LINE + 10];
        assert!(decode_bytewise(Framing::Chunked, &long_line).is_err());
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 100 {
            trailers.extend_from_slice(b"X-Trailer: yes\r\n");
        }
        assert!(decode_bytewise(Framing::Chunked, &trailers).is_err());
    }
}
