//! Asking an OCSP responder as a client would, and reading its answer: `easgate doctor` sends a
//! real request through the public URL and checks that what comes back is a successful,
//! signed response about the certificate asked for — by the CA itself or by a responder
//! certificate the CA issued for OCSP signing. A responder that answers but signs with the
//! wrong key is as broken, for phones and mail servers, as one that does not answer.
//!
//! The request is written with `yasna` (as the responder's answers are); the answer is decoded
//! with `x509-ocsp` and its signature verified with `x509-parser` over the exact bytes
//! received.

use der::{Decode, Encode};
use x509_ocsp::{BasicOcspResponse, CertStatus as OcspStatus, OcspResponse, OcspResponseStatus};
use x509_parser::asn1_rs::{Any, BitString, FromDer};
use x509_parser::prelude::X509Certificate;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};
use yasna::models::ObjectIdentifier;

use crate::ocsp::IssuerHashes;
use crate::Serial;

const OID_SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const OID_BASIC_RESPONSE: &str = "1.3.6.1.5.5.7.48.1.1";

/// What a responder said about the certificate asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnsweredStatus {
    Good,
    Revoked,
    Unknown,
}

impl AnsweredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredStatus::Good => "good",
            AnsweredStatus::Revoked => "revoked",
            AnsweredStatus::Unknown => "unknown",
        }
    }
}

/// A verified OCSP answer, reduced to what a setup check reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspAnswer {
    pub status: AnsweredStatus,
    /// Unix seconds.
    pub this_update: i64,
    pub next_update: Option<i64>,
    /// Subject of the certificate that signed the answer (the CA or its delegated responder).
    pub signer: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OcspCheckError {
    #[error("not an OCSP response ({0})")]
    Malformed(String),
    #[error("the responder answered `{0}`, not `successful`")]
    NotSuccessful(String),
    #[error("the issuer certificate is not valid X.509")]
    BadIssuer,
    #[error("the response is signed by `{0}`, which the CA did not issue for OCSP signing")]
    UntrustedSigner(String),
    #[error("the response's signature does not verify")]
    BadSignature,
    #[error("the response does not answer for the certificate asked about")]
    WrongCertificate,
}

/// An OCSPRequest (RFC 6960 §4.1) about `serial` of the CA `issuer_der`: one CertID with SHA-1
/// hashes (what RFC 5019 clients send), no nonce, unsigned.
pub fn request_der(issuer_der: &[u8], serial: &Serial) -> Result<Vec<u8>, OcspCheckError> {
    let hashes = IssuerHashes::of(issuer_der).map_err(|_| OcspCheckError::BadIssuer)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            // tbsRequest
            w.next().write_sequence(|w| {
                // requestList
                w.next().write_sequence(|w| {
                    // Request
                    w.next().write_sequence(|w| {
                        // CertID
                        w.next().write_sequence(|w| {
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&ObjectIdentifier::from_slice(OID_SHA1));
                                w.next().write_null();
                            });
                            w.next().write_bytes(&hashes.sha1_name);
                            w.next().write_bytes(&hashes.sha1_key);
                            w.next().write_bigint_bytes(serial.as_bytes(), true);
                        });
                    });
                });
            });
        })
    }))
}

fn malformed(e: impl std::fmt::Display) -> OcspCheckError {
    OcspCheckError::Malformed(e.to_string())
}

/// Read an OCSPResponse about `serial` and verify its signature: by the CA `issuer_der`
/// itself, or by a certificate in the response that the CA signed and gave the OCSPSigning
/// extended key usage.
pub fn read_response(
    der_bytes: &[u8],
    issuer_der: &[u8],
    serial: &Serial,
) -> Result<OcspAnswer, OcspCheckError> {
    let response = OcspResponse::from_der(der_bytes).map_err(malformed)?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(OcspCheckError::NotSuccessful(format!(
            "{:?}",
            response.response_status
        )));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| malformed("a successful response without a body"))?;
    if bytes.response_type.to_string() != OID_BASIC_RESPONSE {
        return Err(malformed(format!(
            "response type {} is not id-pkix-ocsp-basic",
            bytes.response_type
        )));
    }
    let basic_der = bytes.response.as_bytes();
    let basic = BasicOcspResponse::from_der(basic_der).map_err(malformed)?;

    // The signed bytes exactly as received: the first element of the outer SEQUENCE.
    let (_, outer) = Any::from_der(basic_der).map_err(malformed)?;
    let content = outer.data;
    let (after_tbs, _) = Any::from_der(content).map_err(malformed)?;
    let tbs_raw = &content[..content.len() - after_tbs.len()];
    let (after_alg, algorithm) = AlgorithmIdentifier::from_der(after_tbs).map_err(malformed)?;
    let (_, signature) = BitString::from_der(after_alg).map_err(malformed)?;

    let (_, issuer) =
        X509Certificate::from_der(issuer_der).map_err(|_| OcspCheckError::BadIssuer)?;
    let included: Vec<Vec<u8>> = basic
        .certs
        .iter()
        .flatten()
        .map(|c| c.to_der())
        .collect::<Result<_, _>>()
        .map_err(malformed)?;
    let verify = |key: &SubjectPublicKeyInfo<'_>| {
        x509_parser::verify::verify_signature(key, &algorithm, &signature, tbs_raw).is_ok()
    };
    let signer = if verify(issuer.public_key()) {
        issuer.subject().to_string()
    } else {
        let mut found = None;
        for der in &included {
            let (_, cert) = X509Certificate::from_der(der).map_err(malformed)?;
            if !verify(cert.public_key()) {
                continue;
            }
            let ocsp_signing = matches!(
                cert.extended_key_usage(),
                Ok(Some(eku)) if eku.value.ocsp_signing
            );
            if !ocsp_signing || cert.verify_signature(Some(issuer.public_key())).is_err() {
                return Err(OcspCheckError::UntrustedSigner(cert.subject().to_string()));
            }
            found = Some(cert.subject().to_string());
            break;
        }
        found.ok_or(OcspCheckError::BadSignature)?
    };

    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| Serial::from_be_bytes(r.cert_id.serial_number.as_bytes()) == *serial)
        .ok_or(OcspCheckError::WrongCertificate)?;
    let unix = |t: &x509_ocsp::OcspGeneralizedTime| {
        i64::try_from(t.0.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
    };
    Ok(OcspAnswer {
        status: match single.cert_status {
            OcspStatus::Good(_) => AnsweredStatus::Good,
            OcspStatus::Revoked(_) => AnsweredStatus::Revoked,
            OcspStatus::Unknown(_) => AnsweredStatus::Unknown,
        },
        this_update: unix(&single.this_update),
        next_update: single.next_update.as_ref().map(unix),
        signer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::CertificateAuthority;
    use crate::ocsp::{parse_request, CertStatus, Responder};
    use crate::KeyType;
    use time::{Duration, OffsetDateTime};

    fn ca() -> CertificateAuthority {
        CertificateAuthority::create(
            "CN=doctor test CA",
            KeyType::EcP256,
            3650,
            OffsetDateTime::now_utc(),
        )
        .unwrap()
    }

    #[test]
    fn a_responders_answer_reads_back() {
        let ca = ca();
        let now = OffsetDateTime::now_utc();
        let responder =
            Responder::issue(&ca, "t", &Serial::random().unwrap(), now, Duration::days(7)).unwrap();
        let serial = Serial::random().unwrap();
        let request = request_der(ca.cert_der(), &serial).unwrap();
        let parsed = parse_request(&request).unwrap();
        assert_eq!(parsed.certs[0].serial, serial);
        assert!(IssuerHashes::of(ca.cert_der())
            .unwrap()
            .matches(&parsed.certs[0]));
        let answer = responder
            .respond(
                &[(&parsed.certs[0].cert_id_der, CertStatus::Good)],
                None,
                now,
                now + Duration::hours(1),
            )
            .unwrap();
        let read = read_response(&answer, ca.cert_der(), &serial).unwrap();
        assert_eq!(read.status, AnsweredStatus::Good);
        assert!(read.next_update.is_some());
        assert!(read.signer.contains("OCSP responder"));

        // Another CA's view: the responder is not its own.
        let other = self::ca();
        assert!(read_response(&answer, other.cert_der(), &serial).is_err());
        // Another serial: not answered.
        assert_eq!(
            read_response(&answer, ca.cert_der(), &Serial::random().unwrap()),
            Err(OcspCheckError::WrongCertificate)
        );
        assert!(matches!(
            read_response(b"junk", ca.cert_der(), &serial),
            Err(OcspCheckError::Malformed(_))
        ));
    }
}
