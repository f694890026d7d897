//! PKIOperation bodies that are not SCEP messages, or are broken ones: an error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use easgate_scep::PkiMessage;

#[test]
fn garbage_is_refused_without_panicking() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // A SignedData-shaped prefix so the decoder gets past the first bytes.
    let prefix: [u8; 15] = [
        0x30, 0x80, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02, 0xA0, 0x80,
    ];
    for round in 0..20_000 {
        let len = (next() % 300) as usize;
        let mut body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 0 {
            body.splice(0..0, prefix);
        }
        assert!(PkiMessage::parse(&body).is_err());
    }
    assert!(PkiMessage::parse(&vec![0u8; 3 * 1024 * 1024]).is_err());
}
