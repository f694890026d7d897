//! CMS SignedData (RFC 5652) around a rendered profile, as iOS expects for a "Verified"
//! profile and `openssl cms -verify` checks: the profile as encapsulated content, the signing
//! certificate and its chain, one signer with content-type, message-digest and signing-time
//! attributes, SHA-256.
//!
//! Written with `yasna` like the SCEP responses: the `cms` crate's builder wants RustCrypto
//! signer types, and easgate's keys live in aws-lc-rs; the signature itself comes from the
//! caller.

use easgate_pki::der_writing::{issuer_and_serial, write_time};
use time::OffsetDateTime;
use yasna::models::ObjectIdentifier;
use yasna::{DERWriter, Tag};

use crate::ProfileError;

const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
const SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
const CONTENT_TYPE: &[u64] = &[1, 2, 840, 113549, 1, 9, 3];
const MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 4];
const SIGNING_TIME: &[u64] = &[1, 2, 840, 113549, 1, 9, 5];
const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];

/// Signs the DER of the signed attributes; returns the signature or why it failed.
pub type SignFn<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

/// Who signs: certificate, the certificates up to the root, and the signing operation (RSA
/// PKCS#1 v1.5 with SHA-256: easgate's profile signers are RSA, which every iOS accepts).
pub struct ProfileSigner<'a> {
    pub cert_der: &'a [u8],
    pub chain: &'a [&'a [u8]],
    pub sign: SignFn<'a>,
}

fn oid(w: DERWriter<'_>, arcs: &[u64]) {
    w.write_oid(&ObjectIdentifier::from_slice(arcs));
}

/// Wrap `content` in SignedData signed at `now` by `signer`; returns the DER ContentInfo.
pub fn sign(
    content: &[u8],
    signer: &ProfileSigner<'_>,
    now: OffsetDateTime,
) -> Result<Vec<u8>, ProfileError> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, content);
    let sid = issuer_and_serial(signer.cert_der)
        .map_err(|e| ProfileError::Sign(format!("signing certificate: {e}")))?;
    let attribute = |w: DERWriter<'_>, id: &[u64], value: &dyn Fn(DERWriter<'_>)| {
        w.write_sequence(|w| {
            oid(w.next(), id);
            w.next().write_set(|w| value(w.next()));
        })
    };
    // Signed over as a SET OF; in the SignerInfo the same bytes sit under [0] IMPLICIT.
    let signed_attrs = yasna::construct_der(|w| {
        w.write_set_of(|w| {
            attribute(w.next(), CONTENT_TYPE, &|w| oid(w, DATA));
            attribute(w.next(), SIGNING_TIME, &|w| write_time(w, now));
            attribute(w.next(), MESSAGE_DIGEST, &|w| {
                w.write_bytes(digest.as_ref())
            });
        })
    });
    let signature = (signer.sign)(&signed_attrs).map_err(ProfileError::Sign)?;
    let mut implicit_attrs = signed_attrs;
    if let Some(tag) = implicit_attrs.first_mut() {
        *tag = 0xA0;
    }
    let sha256 = |w: DERWriter<'_>| {
        w.write_sequence(|w| {
            oid(w.next(), SHA256);
            w.next().write_null();
        })
    };
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            oid(w.next(), SIGNED_DATA);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set(|w| sha256(w.next()));
                    w.next().write_sequence(|w| {
                        oid(w.next(), DATA);
                        w.next()
                            .write_tagged(Tag::context(0), |w| w.write_bytes(content));
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            w.next().write_der(signer.cert_der);
                            for cert in signer.chain {
                                w.next().write_der(cert);
                            }
                        })
                    });
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_u8(1);
                            w.next().write_der(&sid);
                            sha256(w.next());
                            w.next().write_der(&implicit_attrs);
                            w.next().write_sequence(|w| {
                                oid(w.next(), RSA);
                                w.next().write_null();
                            });
                            w.next().write_bytes(&signature);
                        })
                    });
                })
            });
        })
    }))
}
