//! Reading a whole response from bytes, the way the gateway does over a socket: the entry
//! point of the fuzz target and the garbage test, so both exercise head and body together.

use bytes::BytesMut;

use crate::{parse_response_head, BodyDecoder, Decoded, Http1Error, ResponseHead};

/// Read one response from `wire`, fed in pieces of `step` bytes (at least 1): its head, its
/// body, and whether the connection could carry another request afterwards.
pub fn read_response(
    wire: &[u8],
    step: usize,
    request_was_head: bool,
) -> Result<(ResponseHead, Vec<u8>), Http1Error> {
    let step = step.max(1);
    let mut pieces = wire.chunks(step);
    let mut buf = BytesMut::new();
    let head = loop {
        if let Some(head) = parse_response_head(&mut buf, request_was_head)? {
            break head;
        }
        match pieces.next() {
            Some(piece) => buf.extend_from_slice(piece),
            None => return Err(Http1Error::Truncated),
        }
    };
    let mut decoder = BodyDecoder::new(head.framing);
    let mut body = Vec::new();
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(data) => body.extend_from_slice(&data),
            Decoded::End => return Ok((head, body)),
            Decoded::NeedMore => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => {
                    decoder.closed()?;
                    return Ok((head, body));
                }
            },
        }
    }
}
