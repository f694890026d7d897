//! A certificate authority: its self-signed certificate and signing key, ready to issue.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use crate::{dn, KeyType, PkiError, PrivateKey, Serial};

/// How far back `notBefore` is set, so devices with a slightly slow clock accept new
/// certificates.
pub const BACKDATE: Duration = Duration::minutes(5);

/// A loaded CA: certificate plus private key, able to sign.
pub struct CertificateAuthority {
    cert_der: Vec<u8>,
    key_type: KeyType,
    not_after: OffsetDateTime,
    /// DER of the subject Name: the issuer of everything this CA signs.
    subject_der: Vec<u8>,
    /// The subjectKeyIdentifier: the keyIdentifier of AKIs in what this CA signs.
    key_id: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl CertificateAuthority {
    /// Make a new self-signed root: basicConstraints CA (critical, pathLen 0: it signs device
    /// certificates only), keyUsage keyCertSign + cRLSign (critical), SKI.
    pub fn create(
        subject: &str,
        key_type: KeyType,
        validity_days: u32,
        now: OffsetDateTime,
    ) -> Result<Self, PkiError> {
        if validity_days == 0 || validity_days > 36500 {
            return Err(PkiError::InvalidValidity(format!(
                "{validity_days} days; a CA's validity must be 1 to 36500 days"
            )));
        }
        let key = key_type.generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = dn::parse(subject)?;
        params.serial_number = Some(Serial::random()?.as_bytes().to_vec().into());
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(i64::from(validity_days));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(key.pair())?;
        Self::load(cert.der().to_vec(), key)
    }

    /// Load a stored CA from its certificate and (unsealed) key.
    pub fn load(cert_der: Vec<u8>, key: PrivateKey) -> Result<Self, PkiError> {
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|e| PkiError::Malformed {
                what: "CA certificate",
                why: e.to_string(),
            })?;
        let not_after = parsed.validity().not_after.to_datetime();
        let subject_der = parsed.subject().as_raw().to_vec();
        let key_id = match parsed
            .get_extension_unique(&x509_parser::oid_registry::OID_X509_EXT_SUBJECT_KEY_IDENTIFIER)
        {
            Ok(Some(ext)) => match ext.parsed_extension() {
                x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => id.0.to_vec(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        if key_id.is_empty() {
            return Err(PkiError::Malformed {
                what: "CA certificate",
                why: "it has no subjectKeyIdentifier".into(),
            });
        }
        drop(parsed);
        let key_type = key.key_type();
        let PrivateKey { pair, .. } = key;
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), pair)?;
        Ok(CertificateAuthority {
            cert_der,
            key_type,
            not_after,
            subject_der,
            key_id,
            issuer,
        })
    }

    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }

    /// The private key as PKCS#8 DER, to be sealed for storage.
    pub fn key_pkcs8_der(&self) -> Vec<u8> {
        self.issuer.key().serialize_der()
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    pub fn subject_der(&self) -> &[u8] {
        &self.subject_der
    }

    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// Sign `message` with the CA key (SHA-256 for RSA and P-256, SHA-384 for P-384).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        Ok(rcgen::SigningKey::sign(self.issuer.key(), message)?)
    }

    /// DER AlgorithmIdentifier of the signatures this CA makes.
    pub fn signature_algorithm_der(&self) -> Vec<u8> {
        signature_algorithm_der(self.key_type)
    }

    /// Sign `tbs` (a DER "to be signed" structure) and wrap it as
    /// `SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING signature }` — the shape of
    /// certificates, CRLs and OCSP basic responses alike.
    pub fn sign_structure(&self, tbs: Vec<u8>) -> Result<Vec<u8>, PkiError> {
        let signature = rcgen::SigningKey::sign(self.issuer.key(), &tbs)?;
        let algorithm = self.signature_algorithm_der();
        Ok(yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_der(&tbs);
                w.next().write_der(&algorithm);
                w.next().write_bitvec_bytes(&signature, signature.len() * 8);
            })
        }))
    }
}

/// DER AlgorithmIdentifier for signatures made with a key of `key_type` (SHA-256 for RSA and
/// P-256, SHA-384 for P-384; RSA carries the NULL parameter RFC 4055 asks for).
pub fn signature_algorithm_der(key_type: KeyType) -> Vec<u8> {
    use yasna::models::ObjectIdentifier;
    yasna::construct_der(|w| {
        w.write_sequence(|w| match key_type {
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                w.next().write_oid(&ObjectIdentifier::from_slice(&[
                    1, 2, 840, 113549, 1, 1, 11,
                ]));
                w.next().write_null();
            }
            KeyType::EcP256 => w
                .next()
                .write_oid(&ObjectIdentifier::from_slice(&[1, 2, 840, 10045, 4, 3, 2])),
            KeyType::EcP384 => w
                .next()
                .write_oid(&ObjectIdentifier::from_slice(&[1, 2, 840, 10045, 4, 3, 3])),
        })
    })
}
