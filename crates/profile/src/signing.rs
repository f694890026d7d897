//! CMS SignedData (RFC 5652) around a rendered profile, as iOS expects for a "Verified"
//! profile and `openssl cms -verify` checks: the profile as encapsulated content, the signing
//! certificate and its chain, one signer with content-type, message-digest and signing-time
//! attributes, SHA-256.
//!
//! The signed attributes are written here; the SignedData around them is
//! `easgate_pki::der_writing::rsa_signed_data`, shared with SCEP's CertRep. The signature
//! itself comes from the caller.

use easgate_pki::der_writing::{rsa_signed_data, write_time};
use time::OffsetDateTime;
use yasna::models::ObjectIdentifier;
use yasna::DERWriter;

use crate::ProfileError;

const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
const CONTENT_TYPE: &[u64] = &[1, 2, 840, 113549, 1, 9, 3];
const MESSAGE_DIGEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 4];
const SIGNING_TIME: &[u64] = &[1, 2, 840, 113549, 1, 9, 5];

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
    let certs: Vec<&[u8]> = std::iter::once(signer.cert_der)
        .chain(signer.chain.iter().copied())
        .collect();
    rsa_signed_data(Some(content), &certs, &signed_attrs, &signature)
        .map_err(|e| ProfileError::Sign(format!("signing certificate: {e}")))
}
