//! DER pieces written by hand in more than one place (CRLs here, SCEP responses in
//! `easgate-scep`, signed profiles in `easgate-profile`), all with `yasna`: the `cms` crate's
//! builder wants RustCrypto signer types, and easgate's keys live in aws-lc-rs.

use der::{Decode, Encode};
use time::OffsetDateTime;
use yasna::models::{GeneralizedTime, ObjectIdentifier, UTCTime};
use yasna::{DERWriter, Tag};

/// An RFC 5280 / RFC 5652 Time: UTCTime for 1950–2049, GeneralizedTime otherwise, in whole
/// seconds.
pub fn write_time(w: DERWriter<'_>, t: OffsetDateTime) {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    if (1950..2050).contains(&t.year()) {
        w.write_utctime(&UTCTime::from_datetime(t));
    } else {
        w.write_generalized_time(&GeneralizedTime::from_datetime(t));
    }
}

/// The IssuerAndSerialNumber (RFC 5652 §10.2.4) of a DER certificate, as DER.
pub fn issuer_and_serial(cert_der: &[u8]) -> Result<Vec<u8>, der::Error> {
    let cert = x509_cert::Certificate::from_der(cert_der)?;
    let issuer = cert.tbs_certificate.issuer.to_der()?;
    let serial = cert.tbs_certificate.serial_number.to_der()?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&issuer);
            w.next().write_der(&serial);
        })
    }))
}

const SIGNED_DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 2];
const DATA: &[u64] = &[1, 2, 840, 113549, 1, 7, 1];
const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const RSA: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];

/// A CMS SignedData ContentInfo (RFC 5652) with one RSA / SHA-256 signer, as SCEP's CertRep
/// and signed profiles both need: `content` as id-data (none for a detached or empty one),
/// `certs` (the signer's first), and the signer's `signed_attrs` — the DER SET OF exactly as
/// it was signed — with their `signature`.
pub fn rsa_signed_data(
    content: Option<&[u8]>,
    certs: &[&[u8]],
    signed_attrs: &[u8],
    signature: &[u8],
) -> Result<Vec<u8>, der::Error> {
    let signer_cert = certs.first().ok_or(der::ErrorKind::Failed)?;
    let sid = issuer_and_serial(signer_cert)?;
    // The signed SET OF starts with tag 0x31; in the SignerInfo it sits under [0] IMPLICIT.
    let mut implicit_attrs = signed_attrs.to_vec();
    if let Some(tag) = implicit_attrs.first_mut() {
        *tag = 0xA0;
    }
    let oid = |w: DERWriter<'_>, arcs: &[u64]| w.write_oid(&ObjectIdentifier::from_slice(arcs));
    let algorithm = |w: DERWriter<'_>, arcs: &[u64]| {
        w.write_sequence(|w| {
            oid(w.next(), arcs);
            w.next().write_null();
        })
    };
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            oid(w.next(), SIGNED_DATA);
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u8(1);
                    w.next().write_set(|w| algorithm(w.next(), SHA256));
                    w.next().write_sequence(|w| {
                        oid(w.next(), DATA);
                        if let Some(content) = content {
                            w.next()
                                .write_tagged(Tag::context(0), |w| w.write_bytes(content));
                        }
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set_of(|w| {
                            for cert in certs {
                                w.next().write_der(cert);
                            }
                        })
                    });
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_u8(1);
                            w.next().write_der(&sid);
                            algorithm(w.next(), SHA256);
                            w.next().write_der(&implicit_attrs);
                            algorithm(w.next(), RSA);
                            w.next().write_bytes(signature);
                        })
                    });
                })
            });
        })
    }))
}
