//! SCEP set-up shared by the server and (later) the PKIOperation handler: the certificates a
//! client encrypts to, and one-time device challenges.

use easgate_pki::issue::{EndEntity, PublicUrls, Purpose, SubjectKey};
use easgate_pki::summary::summarize;
use easgate_pki::template::RenderedTemplate;
use easgate_pki::{KeyType, PrivateKey, Serial};
use easgate_store::{NewCertificate, ScepRa};

use crate::devices::secret_hash;
use crate::error::{OpsError, Result};
use crate::Easgate;

/// How long an RA certificate lasts (it is renewed with the CA's lifetime in mind).
pub const RA_VALIDITY_DAYS: u32 = 730;

/// What GetCACert hands out for one CA.
#[derive(Clone, Debug)]
pub struct ScepCertificates {
    pub ca_der: Vec<u8>,
    /// The RSA decrypter for an EC CA; `None` when the CA's own RSA key decrypts.
    pub ra_der: Option<Vec<u8>>,
}

fn ra_seal_context(ca: &str) -> String {
    format!("scep-ra:{ca}")
}

impl Easgate {
    /// The SCEP certificates of `ca`, making the RSA RA first when the CA key is EC (Apple's
    /// SCEP payload, and most clients, can only encrypt to RSA).
    pub async fn scep_certificates(&self, ca: &str) -> Result<ScepCertificates> {
        let record = self.get_ca(ca).await?;
        let key_type: KeyType = record.key_type.parse()?;
        if key_type.is_rsa() {
            return Ok(ScepCertificates {
                ca_der: record.cert_der,
                ra_der: None,
            });
        }
        if let Some(ra) = self.store.get_scep_ra(ca).await? {
            return Ok(ScepCertificates {
                ca_der: record.cert_der,
                ra_der: Some(ra.cert_der),
            });
        }
        let (ra_der, key) = self.issue_scep_ra(ca).await?;
        let sealed = self.master().seal(&ra_seal_context(ca), &key.pkcs8_der())?;
        match self
            .store
            .insert_scep_ra(
                &self.ctx(),
                ScepRa {
                    ca: ca.to_string(),
                    cert_der: ra_der.clone(),
                    key_sealed: sealed,
                },
            )
            .await
        {
            Ok(()) => Ok(ScepCertificates {
                ca_der: record.cert_der,
                ra_der: Some(ra_der),
            }),
            // Another process made one first: use that one.
            Err(easgate_store::StoreError::AlreadyExists { .. }) => {
                let ra = self
                    .store
                    .get_scep_ra(ca)
                    .await?
                    .ok_or_else(|| OpsError::Conflict("SCEP RA vanished".into()))?;
                Ok(ScepCertificates {
                    ca_der: record.cert_der,
                    ra_der: Some(ra.cert_der),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The RA's private key (for decrypting PKIOperation envelopes).
    pub async fn scep_ra_key(&self, ca: &str) -> Result<Option<PrivateKey>> {
        let Some(ra) = self.store.get_scep_ra(ca).await? else {
            return Ok(None);
        };
        let pkcs8 = self
            .master()
            .open(&ra_seal_context(ca), &ra.key_sealed)
            .map_err(|_| {
                OpsError::MasterKey(format!("cannot decrypt the SCEP RA key of CA `{ca}`"))
            })?;
        Ok(Some(PrivateKey::from_pkcs8_der(KeyType::Rsa2048, &pkcs8)?))
    }

    async fn issue_scep_ra(&self, ca: &str) -> Result<(Vec<u8>, PrivateKey)> {
        let subject = format!("CN=easgate {ca} SCEP RA");
        let rendered = RenderedTemplate {
            subject_dn: easgate_pki::dn::split(&subject)?,
            subject,
            sans: Vec::new(),
        };
        let key = KeyType::Rsa2048.generate()?;
        let subject_key = SubjectKey::from_spki_der(&key.public_key_der())?;
        let authority = self.load_ca(ca).await?;
        let serial = Serial::random()?;
        let der = authority.issue_end_entity(&EndEntity {
            purpose: Purpose::ScepRa,
            serial: &serial,
            template: &rendered,
            key: &subject_key,
            now: self.now(),
            validity_days: RA_VALIDITY_DAYS,
            urls: &PublicUrls::for_ca(&self.public_url().await?, ca),
        })?;
        let summary = summarize(&der)?;
        self.store
            .insert_certificate(
                &self.ctx(),
                NewCertificate {
                    serial: serial.to_hex(),
                    ca: ca.to_string(),
                    device: None,
                    template: None,
                    subject: summary.subject,
                    sans: summary.sans,
                    key_type: subject_key.description().to_string(),
                    not_before: summary.not_before,
                    not_after: summary.not_after,
                    der: der.clone(),
                },
            )
            .await?;
        Ok((der, key))
    }

    /// Use a device's one-time SCEP challenge: the device uid when the challenge is valid,
    /// unused and unexpired (it is then spent); `None` otherwise.
    pub async fn consume_scep_challenge(&self, challenge: &str) -> Result<Option<String>> {
        Ok(self
            .store
            .consume_scep_challenge(&self.ctx(), &secret_hash(challenge))
            .await?)
    }
}
