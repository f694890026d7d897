//! Issuing end-entity (device) certificates with the RFC 5280 profile easgate promises:
//! v3, random 16-byte serial, AKI/SKI, basicConstraints CA:false, keyUsage digitalSignature
//! (+ keyEncipherment for RSA keys), EKU clientAuth, SANs from the template, CRL distribution
//! point, FreshestCRL (delta CRL), and AIA with OCSP and caIssuers.

use rcgen::{
    CertificateParams, CrlDistributionPoint, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use crate::ca::{CertificateAuthority, BACKDATE};
use crate::extensions::{authority_info_access, freshest_crl, OID_MS_UPN};
use crate::template::{RenderedTemplate, SanKind};
use crate::{dn, PkiError, Serial};

/// The public key a certificate is issued for, checked for strength.
#[derive(Clone, Debug)]
pub struct SubjectKey {
    spki_der: Vec<u8>,
    is_rsa: bool,
    description: String,
}

impl SubjectKey {
    /// Accepts RSA of at least 2048 bits and EC keys on P-256, P-384 or P-521.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, PkiError> {
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| PkiError::UnsupportedPublicKey(format!("unreadable key: {e}")))?;
        let parsed = spki
            .parsed()
            .map_err(|e| PkiError::UnsupportedPublicKey(format!("unreadable key: {e}")))?;
        let (is_rsa, description) = match parsed {
            PublicKey::RSA(rsa) => {
                let bits = rsa.key_size();
                if bits < 2048 {
                    return Err(PkiError::UnsupportedPublicKey(format!(
                        "RSA-{bits} is too weak; at least RSA-2048 is required"
                    )));
                }
                (true, format!("RSA-{bits}"))
            }
            PublicKey::EC(_) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|oid| oid.to_id_string())
                    .unwrap_or_default();
                let name = match curve.as_str() {
                    "1.2.840.10045.3.1.7" => "P-256",
                    "1.3.132.0.34" => "P-384",
                    "1.3.132.0.35" => "P-521",
                    other => {
                        return Err(PkiError::UnsupportedPublicKey(format!(
                            "EC curve {other} is not supported (use P-256 or P-384)"
                        )))
                    }
                };
                (false, format!("EC {name}"))
            }
            _ => {
                return Err(PkiError::UnsupportedPublicKey(format!(
                    "algorithm {} is not supported (use RSA or EC)",
                    spki.algorithm.algorithm
                )))
            }
        };
        Ok(SubjectKey {
            spki_der: spki_der.to_vec(),
            is_rsa,
            description,
        })
    }

    pub fn is_rsa(&self) -> bool {
        self.is_rsa
    }

    /// e.g. `RSA-2048`, `EC P-256`.
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

/// Base URLs written into every certificate of one CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrls {
    pub crl: String,
    pub delta_crl: String,
    pub ocsp: String,
    pub ca_issuers: String,
    /// The CA's SCEP endpoint (not written into certificates: shown to admins, put in
    /// profiles and renewal events).
    pub scep: String,
}

impl PublicUrls {
    /// The URLs of CA `ca` under the public base URL (DESIGN §4 public PKI endpoints).
    pub fn for_ca(public_url: &str, ca: &str) -> Self {
        let base = public_url.trim_end_matches('/');
        PublicUrls {
            crl: format!("{base}/crl/{ca}.crl"),
            delta_crl: format!("{base}/crl/{ca}-delta.crl"),
            ocsp: format!("{base}/ocsp/{ca}"),
            ca_issuers: format!("{base}/ca/{ca}.cer"),
            scep: format!("{base}/scep/{ca}"),
        }
    }
}

/// What an end-entity certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A device logging in to mail: EKU clientAuth.
    ClientAuth,
    /// easgate's own TLS listeners: EKU serverAuth.
    ServerAuth,
    /// The SCEP registration authority that decrypts requests for an EC CA: RSA key, keyUsage
    /// digitalSignature + keyEncipherment, no EKU.
    ScepRa,
    /// Signs configuration profiles (`profile render --signed`): EKU emailProtection (what
    /// `openssl cms -verify` and S/MIME verifiers require of a CMS signer) and codeSigning.
    ProfileSigning,
}

/// Everything that decides one end-entity certificate.
pub struct EndEntity<'a> {
    pub purpose: Purpose,
    pub serial: &'a Serial,
    pub template: &'a RenderedTemplate,
    pub key: &'a SubjectKey,
    pub now: OffsetDateTime,
    pub validity_days: u32,
    pub urls: &'a PublicUrls,
}

/// The validity window of a certificate issued `now` for `validity_days`: backdated a few
/// minutes, and never beyond the CA's own expiry.
pub fn validity_window(
    now: OffsetDateTime,
    validity_days: u32,
    ca_not_after: OffsetDateTime,
) -> (OffsetDateTime, OffsetDateTime) {
    let not_after = (now + Duration::days(i64::from(validity_days))).min(ca_not_after);
    (now - BACKDATE, not_after)
}

impl CertificateAuthority {
    /// Sign an end-entity certificate. Returns its DER.
    pub fn issue_end_entity(&self, ee: &EndEntity<'_>) -> Result<Vec<u8>, PkiError> {
        if ee.validity_days == 0 {
            return Err(PkiError::InvalidValidity("0 days".into()));
        }
        if ee.now >= self.not_after() {
            return Err(PkiError::InvalidValidity(
                "the CA certificate has expired".into(),
            ));
        }
        let (not_before, not_after) = validity_window(ee.now, ee.validity_days, self.not_after());
        let mut params = CertificateParams::default();
        params.distinguished_name = dn::to_rcgen(&ee.template.subject_dn)?;
        params.serial_number = Some(ee.serial.as_bytes().to_vec().into());
        params.not_before = not_before;
        params.not_after = not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = if ee.key.is_rsa() {
            vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ]
        } else {
            vec![KeyUsagePurpose::DigitalSignature]
        };
        params.extended_key_usages = match ee.purpose {
            Purpose::ClientAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Purpose::ServerAuth => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Purpose::ScepRa => Vec::new(),
            Purpose::ProfileSigning => vec![
                ExtendedKeyUsagePurpose::EmailProtection,
                ExtendedKeyUsagePurpose::CodeSigning,
            ],
        };
        params.subject_alt_names = ee
            .template
            .sans
            .iter()
            .map(|san| san_type(san.kind, &san.value))
            .collect::<Result<_, _>>()?;
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec![ee.urls.crl.clone()],
        }];
        params.custom_extensions = vec![
            freshest_crl(&ee.urls.delta_crl),
            authority_info_access(&ee.urls.ocsp, &ee.urls.ca_issuers),
        ];
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(ee.key.spki_der())
            .map_err(|e| PkiError::UnsupportedPublicKey(e.to_string()))?;
        let cert = params.signed_by(&public_key, self.issuer())?;
        Ok(cert.der().to_vec())
    }
}

fn san_type(kind: SanKind, value: &str) -> Result<SanType, PkiError> {
    let invalid = |e: rcgen::Error| PkiError::InvalidSan(value.to_string(), e.to_string());
    Ok(match kind {
        SanKind::Email => SanType::Rfc822Name(value.to_string().try_into().map_err(invalid)?),
        SanKind::Dns => SanType::DnsName(value.to_string().try_into().map_err(invalid)?),
        SanKind::Uri => SanType::URI(value.to_string().try_into().map_err(invalid)?),
        SanKind::Ip => SanType::IpAddress(
            value
                .parse()
                .map_err(|_| PkiError::InvalidSan(value.to_string(), "not an IP address".into()))?,
        ),
        SanKind::Upn => SanType::OtherName((
            OID_MS_UPN.to_vec(),
            rcgen::OtherNameValue::Utf8String(value.to_string()),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{examine, CandidateCa, StoreStatus};
    use crate::template::{LookupValues, TemplateSpec};
    use crate::KeyType;

    #[test]
    fn issued_certificate_passes_the_doctor_and_a_foreign_ca_fails_it() {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::create("CN=Test CA", KeyType::EcP256, 365, now).unwrap();
        let spec = TemplateSpec::new(
            "CN={DeviceUid}",
            vec![
                "email:{EmailAddress}".parse().unwrap(),
                "upn:{UserPrincipalName}".parse().unwrap(),
            ],
        )
        .unwrap();
        let rendered = spec
            .render(&LookupValues {
                device_uid: "d1".into(),
                user_principal_name: "a@corp.example".into(),
                email_address: "a@corp.example".into(),
                platform: "ios".into(),
                ..Default::default()
            })
            .unwrap();
        for kt in [KeyType::EcP256, KeyType::Rsa2048] {
            let key = kt.generate().unwrap();
            let subject_key = SubjectKey::from_spki_der(&key.public_key_der()).unwrap();
            let serial = Serial::random().unwrap();
            let der = ca
                .issue_end_entity(&EndEntity {
                    purpose: Purpose::ClientAuth,
                    serial: &serial,
                    template: &rendered,
                    key: &subject_key,
                    now,
                    validity_days: 30,
                    urls: &PublicUrls::for_ca("http://pki.example:8080", "default"),
                })
                .unwrap();
            let cas = [CandidateCa {
                name: "default",
                cert_der: ca.cert_der(),
            }];
            let report = examine(&der, &cas, None, now, |_, _| StoreStatus::Valid);
            assert!(report.fit(), "{:#?}", report.checks);
            assert_eq!(report.serial.as_ref(), Some(&serial));

            let other =
                CertificateAuthority::create("CN=Other", KeyType::EcP256, 365, now).unwrap();
            let cas = [CandidateCa {
                name: "other",
                cert_der: other.cert_der(),
            }];
            let report = examine(&der, &cas, None, now, |_, _| StoreStatus::Valid);
            assert!(!report.fit());
            assert_eq!(report.checks[1].verdict, crate::doctor::Verdict::Fail);
        }
    }
}
