//! SCEP set-up shared by the server and (later) the PKIOperation handler: the certificates a
//! client encrypts to, and one-time device challenges.

use easgate_pki::issue::Purpose;
use easgate_pki::{KeyType, PrivateKey};
use easgate_store::ScepRa;

use crate::devices::secret_hash;
use crate::error::{OpsError, Result};
use crate::Easgate;

/// How far a request's signingTime may be from the server's clock (devices' clocks drift).
pub const MAX_CLOCK_SKEW_SECS: i64 = 24 * 3600;

/// How long an RA certificate lasts (it is renewed with the CA's lifetime in mind).
pub const RA_VALIDITY_DAYS: u32 = 730;

/// What GetCACert hands out for one CA.
#[derive(Clone, Debug)]
pub struct ScepCertificates {
    pub ca_der: Vec<u8>,
    /// The RSA decrypter for an EC CA; `None` when the CA's own RSA key decrypts.
    pub ra_der: Option<Vec<u8>>,
}

fn secret_hash_bytes(data: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data))
}

fn static_challenge_key(ca: &str) -> String {
    format!("scep.static_challenge.{ca}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
        self.issue_service_certificate(
            ca,
            &format!("easgate {ca} SCEP RA"),
            Vec::new(),
            KeyType::Rsa2048,
            Purpose::ScepRa,
            RA_VALIDITY_DAYS,
        )
        .await
    }

    /// Set (or with `None` remove) CA `ca`'s static SCEP challenge, for setups where an MDM hands
    /// every device the same secret (as Workspace ONE does). Only its SHA-256 is stored. With a
    /// static challenge the device is named by the CSR's common name and must exist.
    pub async fn set_scep_static_challenge(&self, ca: &str, challenge: Option<&str>) -> Result<()> {
        self.get_ca(ca).await?;
        let value = match challenge {
            Some(c) if c.trim().len() < 8 => {
                return Err(OpsError::Invalid(
                    "a static SCEP challenge needs at least 8 characters".into(),
                ))
            }
            Some(c) => secret_hash(c.trim()),
            None => String::new(),
        };
        Ok(self
            .store
            .set_setting(&self.ctx(), &static_challenge_key(ca), &value)
            .await?)
    }

    async fn static_challenge_matches(&self, ca: &str, challenge: &str) -> Result<bool> {
        Ok(
            match self.store.get_setting(&static_challenge_key(ca)).await? {
                Some(hash) if !hash.is_empty() => {
                    constant_time_eq(hash.as_bytes(), secret_hash(challenge).as_bytes())
                }
                _ => false,
            },
        )
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

/// A CertRep to send, and what it said.
pub struct ScepAnswer {
    pub body: Vec<u8>,
    pub transaction_id: String,
    /// Why the request was refused (a failure CertRep), for the log.
    pub refused: Option<String>,
}

/// Why a PKIOperation got no CertRep at all (HTTP 400): the body is not a SCEP message.
#[derive(Debug)]
pub struct UnreadableMessage(pub String);

impl Easgate {
    /// Answer one PKIOperation for CA `ca` (RFC 8894): verify, decrypt, check the one-time
    /// challenge (PKCSReq), issue from the device's template, and return the signed CertRep.
    /// Every refusal is a signed failure CertRep with its failInfo; only a body that is not a
    /// SCEP message at all is an error.
    pub async fn scep_pki_operation(
        &self,
        ca: &str,
        body: &[u8],
        client: &str,
    ) -> Result<std::result::Result<ScepAnswer, UnreadableMessage>> {
        use easgate_scep::{CertRep, FailInfo, MessageType, PkiMessage, ScepError, Signer};
        let message = match PkiMessage::parse(body) {
            Ok(m) => m,
            Err(e) => return Ok(Err(UnreadableMessage(e.to_string()))),
        };
        let authority = self.load_ca(ca).await?;
        let ra = self.scep_certificates(ca).await?.ra_der;
        let ra_key = self.scep_ra_key(ca).await?;
        let (signer_cert, recipient_pkcs8) = match (&ra, &ra_key) {
            (Some(cert), Some(key)) => (cert.clone(), key.pkcs8_der()),
            _ => (authority.cert_der().to_vec(), authority.key_pkcs8_der()),
        };
        let outcome: std::result::Result<
            (Vec<u8>, easgate_scep::Cipher),
            (ScepError, Option<easgate_scep::Cipher>),
        > = async {
            if let Some(problem) = &message.problem {
                return Err((problem.clone(), None));
            }
            if let Some(signed_at) = message.signing_time {
                let skew = (self.now().unix_timestamp() - signed_at).abs();
                if skew > MAX_CLOCK_SKEW_SECS {
                    return Err((
                        ScepError::BadTime(format!("signed {skew} s away from this server's clock (at most {MAX_CLOCK_SKEW_SECS} s)")),
                        None,
                    ));
                }
            }
            let (csr, cipher) = message.open(&recipient_pkcs8).map_err(|e| (e, None))?;
            // A retried transaction (same transactionID, same key) gets the certificate it got
            // the first time, not a refusal for the spent challenge.
            let key_hash = easgate_pki::csr::parse_and_verify_der(&csr)
                .map(|c| secret_hash_bytes(c.key.spki_der()))
                .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?;
            // (PKCSReq only: clients reuse the transactionID of the first enrollment when they
            // renew with the same key, and a renewal must not be answered with the old one.)
            let replayable = message.message_type == MessageType::PkcsReq;
            if let Some((known_key, serial)) = self
                .store
                .get_scep_transaction(ca, &message.transaction_id)
                .await
                .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?
            {
                if replayable && known_key == key_hash {
                    if let Some(cert) = self
                        .store
                        .get_certificate(&serial, self.now().unix_timestamp())
                        .await
                        .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?
                    {
                        return Ok((cert.der, cipher));
                    }
                }
            }
            let issued = match message.message_type {
                MessageType::PkcsReq => {
                    let challenge =
                        easgate_scep::request::challenge_password(&csr).ok_or_else(|| {
                            (
                                ScepError::BadRequest(
                                    "the request has no challenge password".into(),
                                ),
                                Some(cipher),
                            )
                        })?;
                    let one_time = self
                        .consume_scep_challenge(&challenge)
                        .await
                        .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?;
                    let static_ok = match one_time {
                        Some(_) => false,
                        None => self
                            .static_challenge_matches(ca, &challenge)
                            .await
                            .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?,
                    };
                    let device = match one_time {
                        Some(device) => device,
                        // The CA's static challenge: the device is the CSR's common name.
                        None if static_ok => easgate_pki::csr::parse_and_verify_der(&csr)
                            .ok()
                            .and_then(|c| c.requested_common_name)
                            .ok_or_else(|| {
                                (
                                    ScepError::BadRequest(
                                        "with the static challenge the CSR's CN must name the device".into(),
                                    ),
                                    Some(cipher),
                                )
                            })?,
                        None => {
                            return Err((
                                ScepError::BadRequest("the challenge is wrong, used or expired".into()),
                                Some(cipher),
                            ));
                        }
                    };
                    let record = self
                        .get_device(&device)
                        .await
                        .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?;
                    let template = record.template.clone().ok_or_else(|| {
                        (
                            ScepError::BadRequest(format!("device `{device}` has no template")),
                            Some(cipher),
                        )
                    })?;
                    self.issue_certificate(&template, &device, crate::certs::KeySource::Csr(&csr))
                        .await
                        .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?
                }
                MessageType::RenewalReq => {
                    // Signed by a current certificate of ours: a successor for the same device,
                    // and the old one superseded once the new one exists.
                    let refuse = |why: String| (ScepError::BadRequest(why), Some(cipher));
                    let summary = easgate_pki::summary::summarize(&message.signer_cert_der)
                        .map_err(|e| refuse(e.to_string()))?;
                    let current = self
                        .store
                        .get_certificate(&summary.serial.to_hex(), self.now().unix_timestamp())
                        .await
                        .map_err(|e| refuse(e.to_string()))?
                        .filter(|c| c.der == message.signer_cert_der && c.ca == ca)
                        .ok_or_else(|| {
                            refuse("the renewal is not signed by a certificate of this CA".into())
                        })?;
                    if current.status != easgate_store::CertStatus::Valid {
                        return Err(refuse(format!(
                            "certificate {} is {}",
                            current.serial,
                            current.status.as_str()
                        )));
                    }
                    let device = current
                        .device
                        .clone()
                        .ok_or_else(|| refuse("that certificate belongs to no device".into()))?;
                    let record = self
                        .get_device(&device)
                        .await
                        .map_err(|e| refuse(e.to_string()))?;
                    let template = record
                        .template
                        .clone()
                        .or(current.template.clone())
                        .ok_or_else(|| refuse(format!("device `{device}` has no template")))?;
                    let issued = self
                        .issue_certificate(&template, &device, crate::certs::KeySource::Csr(&csr))
                        .await
                        .map_err(|e| refuse(e.to_string()))?;
                    self.revoke_certificate(
                        &current.serial,
                        easgate_pki::revocation::RevocationReason::Superseded,
                    )
                    .await
                    .map_err(|e| refuse(e.to_string()))?;
                    issued
                }
                other => {
                    return Err((
                        ScepError::BadRequest(format!("{other:?} is not supported")),
                        Some(cipher),
                    ));
                }
            };
            if replayable {
                self.store
                    .insert_scep_transaction(&self.ctx(), ca, &message.transaction_id, &key_hash, &issued.record.serial)
                .await
                .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?;
            }
            let detail = format!(
                "{:?} device {} serial {} transaction {} from {client}",
                message.message_type,
                issued.record.device.as_deref().unwrap_or("-"),
                issued.record.serial,
                message.transaction_id
            );
            let ctx = easgate_store::Ctx { actor: format!("scep:{client}"), now: self.ctx().now };
            self.store
                .record_event(&ctx, "scep.enroll", "certificate", &issued.record.serial, &detail)
                .await
                .map_err(|e| (ScepError::BadRequest(e.to_string()), Some(cipher)))?;
            Ok((issued.der, cipher))
        }
        .await;
        let sign = |data: &[u8]| -> std::result::Result<Vec<u8>, String> {
            match &ra_key {
                Some(key) => key.sign(data).map_err(|e| e.to_string()),
                None => authority.sign(data).map_err(|e| e.to_string()),
            }
        };
        let signer = Signer {
            cert_der: &signer_cert,
            sign: &sign,
        };

        let (rep, refused) = match outcome {
            Ok((cert, cipher)) => (
                easgate_scep::response::cert_rep(
                    &message,
                    &CertRep::Success { certs: &[&cert] },
                    cipher,
                    &signer,
                ),
                None,
            ),
            Err((error, cipher)) => {
                let info: FailInfo = error.fail_info();
                (
                    easgate_scep::response::cert_rep(
                        &message,
                        &CertRep::Failure(info),
                        cipher.unwrap_or(easgate_scep::Cipher::Aes128),
                        &signer,
                    ),
                    Some(error.to_string()),
                )
            }
        };
        let body = rep.map_err(|e| OpsError::Invalid(e.to_string()))?;
        Ok(Ok(ScepAnswer {
            body,
            transaction_id: message.transaction_id.clone(),
            refused,
        }))
    }
}
