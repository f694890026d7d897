//! SCEP (RFC 8894) pieces that need no key: the capabilities easgate announces and the
//! certificates-only PKCS#7 that GetCACert returns when an RA certificate accompanies the CA.
//! Encoded with `yasna`; the message codec for PKIOperation builds on the `cms` crate.

use yasna::models::ObjectIdentifier;
use yasna::Tag;

const OID_SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
const OID_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];

/// GetCACaps: one capability per line (RFC 8894 §3.5.2).
pub const CAPABILITIES: &[&str] = &[
    "POSTPKIOperation",
    "SHA-256",
    "SHA-1",
    "AES",
    "DES3",
    "SCEPStandard",
    "Renewal",
];

/// The GetCACaps body.
pub fn capabilities_text() -> String {
    let mut text = CAPABILITIES.join("\n");
    text.push('\n');
    text
}

/// A degenerate ("certs-only") PKCS#7 SignedData carrying `certs` in order: no content, no
/// signers (RFC 8894 §4.2.1.2: GetCACert with an RA).
pub fn certs_only(certs: &[&[u8]]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next()
                .write_oid(&ObjectIdentifier::from_slice(OID_SIGNED_DATA));
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1); // version
                    w.next().write_set(|_| {}); // digestAlgorithms
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&ObjectIdentifier::from_slice(OID_DATA))
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for cert in certs {
                                w.next().write_der(cert);
                            }
                        })
                    });
                    w.next().write_set(|_| {}); // signerInfos
                })
            });
        })
    })
}
