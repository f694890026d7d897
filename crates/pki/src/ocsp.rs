//! OCSP (RFC 6960): reading requests and signing responses with a delegated responder.
//!
//! Requests are decoded with `x509-ocsp`. Responses are written here with `yasna`, because the
//! responder signs with aws-lc-rs keys (through rcgen) rather than the RustCrypto signer traits
//! `x509-ocsp`'s builder expects, and because the CertID and nonce are echoed byte for byte.

use der::{Decode, Encode};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};
use x509_ocsp::OcspRequest;
use yasna::models::{GeneralizedTime, ObjectIdentifier};
use yasna::Tag;

use crate::ca::{CertificateAuthority, BACKDATE};
use crate::revocation::RevocationReason;
use crate::{dn, KeyType, PkiError, PrivateKey, Serial};

const OID_SHA1: &str = "1.3.14.3.2.26";
const OID_SHA256: &str = "2.16.840.1.101.3.4.2.1";
const OID_NONCE: &str = "1.3.6.1.5.5.7.48.1.2";
const OID_BASIC_RESPONSE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
const OID_OCSP_NOCHECK: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 5];

/// The hash algorithm of a CertID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    Sha1,
    Sha256,
    /// Another algorithm: the certificate cannot be matched and is answered `unknown`.
    Other,
}

/// One certificate asked about.
#[derive(Clone, Debug)]
pub struct RequestedCert {
    /// The CertID exactly as received, echoed in the answer.
    pub cert_id_der: Vec<u8>,
    pub hash: CertIdHash,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    pub serial: Serial,
}

/// A decoded request.
#[derive(Clone, Debug)]
pub struct ParsedRequest {
    pub certs: Vec<RequestedCert>,
    /// The nonce extension's value (the DER of its OCTET STRING), echoed in the answer.
    pub nonce: Option<Vec<u8>>,
}

/// Most certificates one request may ask about.
pub const MAX_CERTS_PER_REQUEST: usize = 64;

/// Decode an OCSP request. Any error means the answer is `malformedRequest`.
pub fn parse_request(der_bytes: &[u8]) -> Result<ParsedRequest, PkiError> {
    let malformed = |why: String| PkiError::Malformed {
        what: "OCSP request",
        why,
    };
    let request = OcspRequest::from_der(der_bytes).map_err(|e| malformed(e.to_string()))?;
    let list = &request.tbs_request.request_list;
    if list.is_empty() || list.len() > MAX_CERTS_PER_REQUEST {
        return Err(malformed(format!(
            "{} certificates asked about (1 to {MAX_CERTS_PER_REQUEST} allowed)",
            list.len()
        )));
    }
    let mut certs = Vec::with_capacity(list.len());
    for req in list {
        let id = &req.req_cert;
        let hash = match id.hash_algorithm.oid.to_string().as_str() {
            OID_SHA1 => CertIdHash::Sha1,
            OID_SHA256 => CertIdHash::Sha256,
            _ => CertIdHash::Other,
        };
        certs.push(RequestedCert {
            cert_id_der: id.to_der().map_err(|e| malformed(e.to_string()))?,
            hash,
            issuer_name_hash: id.issuer_name_hash.as_bytes().to_vec(),
            issuer_key_hash: id.issuer_key_hash.as_bytes().to_vec(),
            serial: Serial::from_be_bytes(id.serial_number.as_bytes()),
        });
    }
    let nonce = request
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|ext| ext.extn_id.to_string() == OID_NONCE)
        .map(|ext| ext.extn_value.as_bytes().to_vec());
    if let Some(n) = &nonce {
        if n.len() > 128 {
            return Err(malformed("the nonce is longer than 128 bytes".into()));
        }
    }
    Ok(ParsedRequest { certs, nonce })
}

/// The hashes a CertID uses to name an issuer, for both algorithms easgate answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerHashes {
    pub sha1_name: Vec<u8>,
    pub sha1_key: Vec<u8>,
    pub sha256_name: Vec<u8>,
    pub sha256_key: Vec<u8>,
}

impl IssuerHashes {
    /// From the issuer's certificate: hashes of its subject Name DER and of its public key bits.
    pub fn of(ca_cert_der: &[u8]) -> Result<Self, PkiError> {
        use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
        let (_, cert) =
            x509_parser::parse_x509_certificate(ca_cert_der).map_err(|e| PkiError::Malformed {
                what: "CA certificate",
                why: e.to_string(),
            })?;
        let name = cert.subject().as_raw();
        let key = &cert.public_key().subject_public_key.data;
        Ok(IssuerHashes {
            sha1_name: digest(&SHA1_FOR_LEGACY_USE_ONLY, name).as_ref().to_vec(),
            sha1_key: digest(&SHA1_FOR_LEGACY_USE_ONLY, key).as_ref().to_vec(),
            sha256_name: digest(&SHA256, name).as_ref().to_vec(),
            sha256_key: digest(&SHA256, key).as_ref().to_vec(),
        })
    }

    /// Whether a CertID names this issuer.
    pub fn matches(&self, req: &RequestedCert) -> bool {
        match req.hash {
            CertIdHash::Sha1 => {
                req.issuer_name_hash == self.sha1_name && req.issuer_key_hash == self.sha1_key
            }
            CertIdHash::Sha256 => {
                req.issuer_name_hash == self.sha256_name && req.issuer_key_hash == self.sha256_key
            }
            CertIdHash::Other => false,
        }
    }
}

/// What the responder says about one certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    Revoked {
        at: OffsetDateTime,
        reason: RevocationReason,
    },
    Unknown,
}

/// Error answers (OCSPResponseStatus), unsigned by definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStatus {
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

/// `OCSPResponse` with an error status and no body.
pub fn error_response(status: ErrorStatus) -> Vec<u8> {
    yasna::construct_der(|w| w.write_sequence(|w| w.next().write_enum(status as i64)))
}

/// A delegated OCSP signer: a certificate issued by the CA with EKU OCSPSigning and
/// id-pkix-ocsp-nocheck, and its key.
pub struct Responder {
    cert_der: Vec<u8>,
    key: PrivateKey,
    /// SHA-1 of the responder's public key bits: the ResponderID byKey.
    key_hash: Vec<u8>,
    not_after: OffsetDateTime,
}

impl Responder {
    /// Issue a responder certificate from `ca`, valid `validity` from `now`. RSA CAs get an
    /// RSA-2048 responder, EC CAs a P-256 one, so clients see the algorithm family they trust.
    pub fn issue(
        ca: &CertificateAuthority,
        ca_name: &str,
        serial: &Serial,
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Self, PkiError> {
        let key_type = if ca.key_type().is_rsa() {
            KeyType::Rsa2048
        } else {
            KeyType::EcP256
        };
        let key = key_type.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn::parse(&format!("CN=easgate {ca_name} OCSP responder"))?;
        params.serial_number = Some(serial.as_bytes().to_vec().into());
        params.not_before = now - BACKDATE;
        params.not_after = (now + validity).min(ca.not_after());
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            OID_OCSP_NOCHECK,
            yasna::construct_der(|w| w.write_null()),
        )];
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(&key.public_key_der())
            .map_err(|e| PkiError::Build(e.to_string()))?;
        let cert = params.signed_by(&public_key, ca.issuer())?;
        Self::load(cert.der().to_vec(), key)
    }

    /// Rebuild a responder from its stored certificate and key.
    pub fn load(cert_der: Vec<u8>, key: PrivateKey) -> Result<Self, PkiError> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| PkiError::Malformed {
                what: "OCSP responder certificate",
                why: e.to_string(),
            })?;
        let key_hash = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &cert.public_key().subject_public_key.data,
        )
        .as_ref()
        .to_vec();
        let not_after = cert.validity().not_after.to_datetime();
        drop(cert);
        Ok(Responder {
            cert_der,
            key,
            key_hash,
            not_after,
        })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// Sign a successful response about `answers` (CertID DER as received, status).
    pub fn respond(
        &self,
        answers: &[(&[u8], CertStatus)],
        nonce: Option<&[u8]>,
        produced_at: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let generalized = |t: OffsetDateTime| {
            GeneralizedTime::from_datetime(t.replace_nanosecond(0).unwrap_or(t))
        };
        let tbs = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                // responderID byKey [2] EXPLICIT KeyHash
                w.next()
                    .write_tagged(Tag::context(2), |w| w.write_bytes(&self.key_hash));
                w.next().write_generalized_time(&generalized(produced_at));
                w.next().write_sequence(|w| {
                    for (cert_id, status) in answers {
                        w.next().write_sequence(|w| {
                            w.next().write_der(cert_id);
                            match status {
                                CertStatus::Good => w
                                    .next()
                                    .write_tagged_implicit(Tag::context(0), |w| w.write_null()),
                                CertStatus::Unknown => w
                                    .next()
                                    .write_tagged_implicit(Tag::context(2), |w| w.write_null()),
                                CertStatus::Revoked { at, reason } => {
                                    w.next().write_tagged_implicit(Tag::context(1), |w| {
                                        w.write_sequence(|w| {
                                            w.next().write_generalized_time(&generalized(*at));
                                            w.next().write_tagged(Tag::context(0), |w| {
                                                w.write_enum(i64::from(reason.code()))
                                            });
                                        })
                                    })
                                }
                            }
                            w.next().write_generalized_time(&generalized(produced_at));
                            w.next().write_tagged(Tag::context(0), |w| {
                                w.write_generalized_time(&generalized(next_update))
                            });
                        });
                    }
                });
                if let Some(nonce) = nonce {
                    w.next().write_tagged(Tag::context(1), |w| {
                        w.write_sequence(|w| {
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&ObjectIdentifier::from_slice(&[
                                    1, 3, 6, 1, 5, 5, 7, 48, 1, 2,
                                ]));
                                w.next().write_bytes(nonce);
                            })
                        })
                    });
                }
            })
        });
        let algorithm = crate::ca::signature_algorithm_der(self.key.key_type());
        let signature = rcgen::SigningKey::sign(&self.key.pair, &tbs)?;
        let basic = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&tbs);
                w.next().write_der(&algorithm);
                w.next().write_bitvec_bytes(&signature, signature.len() * 8);
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| w.next().write_der(&self.cert_der))
                });
            })
        });
        Ok(yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_enum(0); // successful
                w.next().write_tagged(Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        w.next()
                            .write_oid(&ObjectIdentifier::from_slice(OID_BASIC_RESPONSE));
                        w.next().write_bytes(&basic);
                    })
                });
            })
        }))
    }
}
