//! Upstream answers that are broken or hostile: an error or a bounded result, never a panic,
//! whatever the bytes and however they are cut into reads.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use easgate_http1::{read_response, Framing, Http1Error};

const GOOD: [&[u8]; 5] = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nMS-Server-ActiveSync: 16.1\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
    b"HTTP/1.1 449 Retry With\r\nContent-Length: 0\r\n\r\n",
];

#[test]
fn good_answers_read_the_same_in_any_pieces() {
    for wire in GOOD {
        let (whole_head, whole_body) = read_response(wire, wire.len(), false).unwrap();
        for step in 1..wire.len() {
            let (head, body) = read_response(wire, step, false).unwrap();
            assert_eq!(head.status, whole_head.status);
            assert_eq!(head.framing, whole_head.framing);
            assert_eq!(body, whole_body, "step {step}");
        }
    }
    let (head, body) = read_response(GOOD[1], 7, false).unwrap();
    assert_eq!(
        (head.framing, body.as_slice()),
        (Framing::Chunked, &b"hello world"[..])
    );
}

#[test]
fn mutated_and_random_answers_never_panic() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut errors = 0;
    for round in 0..30_000 {
        let mut wire = GOOD[round % GOOD.len()].to_vec();
        if round % 3 == 0 {
            let len = (next() % 200) as usize;
            wire = (0..len).map(|_| next() as u8).collect();
            wire.splice(0..0, *b"HTTP/1.1 200 OK\r\n");
        } else {
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % wire.len();
                match next() % 3 {
                    0 => wire[at] = next() as u8,
                    1 => {
                        wire.remove(at);
                    }
                    _ => wire.insert(at, b"\r\n0:;-"[(next() % 6) as usize]),
                }
            }
        }
        let step = 1 + (next() % 64) as usize;
        if let Ok((_, body)) = read_response(&wire, step, round % 7 == 0) {
            assert!(body.len() <= wire.len());
        } else {
            errors += 1;
        }
    }
    assert!(
        errors > 1_000,
        "mutations should break many answers: {errors}"
    );
}

#[test]
fn oversized_heads_and_chunk_lines_are_refused() {
    let mut wire = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    wire.extend(std::iter::repeat_n(b'a', 70 * 1024));
    wire.extend_from_slice(b"\r\n\r\n");
    assert_eq!(
        read_response(&wire, 4096, false).unwrap_err(),
        Http1Error::HeadTooLarge
    );
    let mut wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    wire.extend(std::iter::repeat_n(b'0', 10_000));
    assert!(read_response(&wire, 512, false).is_err());
}
