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
        drop(parsed);
        let key_type = key.key_type();
        let PrivateKey { pair, .. } = key;
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), pair)?;
        Ok(CertificateAuthority {
            cert_der,
            key_type,
            not_after,
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
}
