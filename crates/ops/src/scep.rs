//! SCEP policy: the certificates clients encrypt to (an RSA RA for EC CAs), one-time and static
//! challenges, and answering PKIOperation — which device, which template, renewal, replay of a
//! retried PKCSReq. The message codec is `easgate-scep`; this is what easgate decides with it.

use easgate_pki::{KeyType, PrivateKey};
use easgate_scep::response::cert_rep;
use easgate_scep::{CertRep, Cipher, MessageType, PkiMessage, ScepError, Signer};
use easgate_store::{ScepEnrollment, SpentChallenge};

use crate::certs::KeySource;

use crate::devices::secret_hash;
use crate::error::{OpsError, Result};
use crate::service_keys::ServiceRole;
use crate::Easgate;

/// How far a request's signingTime may be from the server's clock (devices' clocks drift).
pub const MAX_CLOCK_SKEW_SECS: i64 = 24 * 3600;

/// What GetCACert hands out for one CA.
#[derive(Clone, Debug)]
pub struct ScepCertificates {
    pub ca_der: Vec<u8>,
    /// The RSA decrypter for an EC CA; `None` when the CA's own RSA key decrypts.
    pub ra_der: Option<Vec<u8>>,
}

fn static_challenge_key(ca: &str) -> String {
    format!("scep.static_challenge.{ca}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Easgate {
    /// The SCEP certificates of `ca`, making the RSA RA first when the CA key is EC (Apple's
    /// SCEP payload, and most clients, can only encrypt to RSA).
    pub async fn scep_certificates(&self, ca: &str) -> Result<ScepCertificates> {
        let record = self.get_ca(ca).await?;
        let key_type: KeyType = record.key_type.parse()?;
        let ra_der = if key_type.is_rsa() {
            None
        } else {
            Some(self.service_certificate(ca, ServiceRole::ScepRa).await?)
        };
        Ok(ScepCertificates {
            ca_der: record.cert_der,
            ra_der,
        })
    }

    /// The RA's private key (for decrypting PKIOperation envelopes).
    pub async fn scep_ra_key(&self, ca: &str) -> Result<Option<PrivateKey>> {
        Ok(self
            .existing_service_key(ca, ServiceRole::ScepRa)
            .await?
            .map(|(_, key)| key))
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
}

/// What a PKIOperation earns a certificate on: the device, the one-time challenge to spend, the
/// certificate a renewal supersedes, and the template when the device has none.
struct Grounds {
    device: String,
    challenge: Option<SpentChallenge>,
    supersedes: Option<String>,
    fallback_template: Option<String>,
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
    /// Answer one PKIOperation for CA `ca` (RFC 8894) with a signed CertRep: the certificate,
    /// or a failure with its failInfo. Only a body that is not a SCEP message at all gets no
    /// CertRep (`UnreadableMessage`).
    pub async fn scep_pki_operation(
        &self,
        ca: &str,
        body: &[u8],
        client: &str,
    ) -> Result<std::result::Result<ScepAnswer, UnreadableMessage>> {
        let message = match PkiMessage::parse(body) {
            Ok(m) => m,
            Err(e) => return Ok(Err(UnreadableMessage(e.to_string()))),
        };
        // The RA (EC CAs) or the CA itself (RSA CAs) decrypts requests and signs answers.
        let authority = self.load_ca(ca).await?;
        let ra = match self.scep_certificates(ca).await?.ra_der {
            Some(cert) => self.scep_ra_key(ca).await?.map(|key| (cert, key)),
            None => None,
        };
        let recipient_pkcs8 = match &ra {
            Some((_, key)) => key.pkcs8_der(),
            None => authority.key_pkcs8_der(),
        };
        let outcome = self.answer(ca, &message, &recipient_pkcs8, client).await;

        let sign = |data: &[u8]| -> std::result::Result<Vec<u8>, String> {
            match &ra {
                Some((_, key)) => key.sign(data),
                None => authority.sign(data),
            }
            .map_err(|e| e.to_string())
        };
        let signer = Signer {
            cert_der: ra
                .as_ref()
                .map(|(cert, _)| cert.as_slice())
                .unwrap_or(authority.cert_der()),
            sign: &sign,
        };
        let (body, refused) = match outcome {
            Ok((cert, cipher)) => (
                cert_rep(
                    &message,
                    &CertRep::Success {
                        certs: &[&cert],
                        cipher,
                    },
                    &signer,
                ),
                None,
            ),
            Err(error) => (
                cert_rep(&message, &CertRep::Failure(error.fail_info()), &signer),
                Some(error.to_string()),
            ),
        };
        Ok(Ok(ScepAnswer {
            body: body.map_err(|e| OpsError::Invalid(e.to_string()))?,
            transaction_id: message.transaction_id.clone(),
            refused,
        }))
    }

    /// From a parsed message to the certificate it earns (and the cipher to return it with).
    async fn answer(
        &self,
        ca: &str,
        message: &PkiMessage,
        recipient_pkcs8: &[u8],
        client: &str,
    ) -> std::result::Result<(Vec<u8>, Cipher), ScepError> {
        if let Some(problem) = &message.problem {
            return Err(problem.clone());
        }
        if let Some(signed_at) = message.signing_time {
            let skew = (self.now().unix_timestamp() - signed_at).abs();
            if skew > MAX_CLOCK_SKEW_SECS {
                return Err(ScepError::BadTime(format!(
                    "signed {skew} s away from this server's clock (at most {MAX_CLOCK_SKEW_SECS} s)"
                )));
            }
        }
        let (csr_der, cipher) = message.open(recipient_pkcs8)?;
        if cipher == Cipher::Des && self.get_ca(ca).await.map_err(refused)?.scep_no_des {
            return Err(ScepError::BadAlg(
                "single DES: this CA refuses it (`ca create --scep-no-des`); use 3DES or AES"
                    .into(),
            ));
        }
        let csr = easgate_pki::csr::parse_and_verify_der(&csr_der).map_err(refused)?;
        let key_hash = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            csr.key.spki_der(),
        ));
        let mut kind = format!("{:?}", message.message_type);
        // A retried transaction (same transactionID, same key) gets the certificate it got
        // the first time, not a refusal for the spent challenge or the superseded signer. A
        // request signed by that very certificate is no retry but a renewal with the same key.
        if let Some(der) = self
            .replayed(ca, &message.transaction_id, &key_hash)
            .await
            .map_err(refused)?
        {
            if der != message.signer_cert_der {
                return Ok((der, cipher));
            }
        }
        // What the certificate is for; everything is written in one transaction below.
        let Grounds {
            device,
            challenge,
            supersedes,
            fallback_template,
        } = match message.message_type {
            MessageType::PkcsReq => match easgate_scep::request::challenge_password(&csr_der) {
                Some(challenge) => {
                    let (device, challenge) = self.enrolling_device(ca, &challenge, &csr).await?;
                    Grounds {
                        device,
                        challenge,
                        supersedes: None,
                        fallback_template: None,
                    }
                }
                // No challenge: a renewal if a current certificate of ours signed it (as
                // RFC 8894 §3.3.1.2 allows and clients such as sscep do).
                None => {
                    kind.push_str(" (renewal)");
                    self.renewal(
                        ca,
                        &message.signer_cert_der,
                        "the request has no challenge password and is not signed by a certificate of this CA",
                    )
                    .await?
                }
            },
            MessageType::RenewalReq => {
                self.renewal(
                    ca,
                    &message.signer_cert_der,
                    "the renewal is not signed by a certificate of this CA",
                )
                .await?
            }
            other => return Err(ScepError::BadRequest(format!("{other:?} is not supported"))),
        };
        let (new, issued) = self
            .prepare_for(&device, fallback_template, csr.key)
            .await?;
        let detail = format!(
            "{kind} device {device} serial {} transaction {} from {client}",
            new.serial, message.transaction_id
        );
        let recorded = self
            .store
            .record_scep_enrollment(
                &self.ctx(),
                ScepEnrollment {
                    challenge,
                    certificate: new,
                    supersedes,
                    ca: ca.to_string(),
                    transaction_id: message.transaction_id.clone(),
                    key_sha256: key_hash,
                    detail,
                },
            )
            .await
            .map_err(refused)?;
        if !recorded {
            return Err(ScepError::BadRequest(
                "the challenge is wrong, used or expired".into(),
            ));
        }
        Ok((issued.der, cipher))
    }

    /// The certificate a transaction already got, if it is the same transaction and key.
    async fn replayed(
        &self,
        ca: &str,
        transaction_id: &str,
        key_hash: &str,
    ) -> Result<Option<Vec<u8>>> {
        let Some((known_key, serial)) = self.store.get_scep_transaction(ca, transaction_id).await?
        else {
            return Ok(None);
        };
        if known_key != key_hash {
            return Ok(None);
        }
        let cert = self
            .store
            .get_certificate(&serial, self.now().unix_timestamp())
            .await?;
        Ok(cert.map(|c| c.der))
    }

    /// The device a PKCSReq enrolls: the one its one-time challenge belongs to, or, with a
    /// one-time challenge bound to no device (NDES-style) or the CA's static challenge, the one
    /// the CSR's CN names.
    async fn enrolling_device(
        &self,
        ca: &str,
        challenge: &str,
        csr: &easgate_pki::csr::VerifiedCsr,
    ) -> std::result::Result<(String, Option<SpentChallenge>), ScepError> {
        // Looked up, not spent: the challenge is spent in the same transaction that records
        // the certificate.
        let hash = secret_hash(challenge);
        let now = self.now().unix_timestamp();
        if let Some(device) = self
            .store
            .peek_scep_challenge(&hash, now)
            .await
            .map_err(refused)?
        {
            self.check_device_ca(ca, &device).await?;
            return Ok((device, Some(SpentChallenge::Device(hash))));
        }
        if self
            .store
            .peek_unbound_challenge(&hash, ca, now)
            .await
            .map_err(refused)?
        {
            let device = self.device_named_by_cn(ca, csr).await?;
            return Ok((device, Some(SpentChallenge::Unbound(hash))));
        }
        if self
            .static_challenge_matches(ca, challenge)
            .await
            .map_err(refused)?
        {
            let device = self.device_named_by_cn(ca, csr).await?;
            return Ok((device, None));
        }
        Err(ScepError::BadRequest(
            "the challenge is wrong, used or expired".into(),
        ))
    }

    /// The device an unbound or static challenge enrolls: the one the CSR's CN names, which
    /// must exist and take its certificates from CA `ca` ([`Self::check_device_ca`]). Whether
    /// the device and its user are active is checked at issuance.
    async fn device_named_by_cn(
        &self,
        ca: &str,
        csr: &easgate_pki::csr::VerifiedCsr,
    ) -> std::result::Result<String, ScepError> {
        let uid = csr.requested_common_name.clone().ok_or_else(|| {
            ScepError::BadRequest(
                "with a challenge not bound to a device (static, or from /certsrv/mscep_admin/) the CSR's CN must name the device"
                    .into(),
            )
        })?;
        self.check_device_ca(ca, &uid).await?;
        Ok(uid)
    }

    /// Device `uid` exists and takes its certificates from CA `ca` (its template's), so that a
    /// request at one CA's SCEP URL never yields a certificate of another CA, nor one the
    /// device's template does not ask for.
    async fn check_device_ca(&self, ca: &str, uid: &str) -> std::result::Result<(), ScepError> {
        let device = self.store.get_device(uid).await.map_err(refused)?;
        let Some(device) = device else {
            return Err(ScepError::BadRequest(format!(
                "the CSR's CN `{}` names no device: enroll it first (device enroll, or POST /api/v1/devices with that uid)",
                uid.chars().take(64).collect::<String>()
            )));
        };
        let template = match &device.template {
            Some(name) => self.get_template(name).await,
            None => self.default_template().await,
        }
        .map_err(refused)?;
        if template.ca != ca {
            return Err(ScepError::BadRequest(format!(
                "device `{uid}` gets its certificates from CA `{}` (template `{}`), not from `{ca}`: use that CA's SCEP URL",
                template.ca, template.name
            )));
        }
        Ok(())
    }

    /// A certificate for `device` from its template (or `fallback_template`), not yet
    /// recorded.
    async fn prepare_for(
        &self,
        device: &str,
        fallback_template: Option<String>,
        key: easgate_pki::issue::SubjectKey,
    ) -> std::result::Result<(easgate_store::NewCertificate, crate::certs::Issued), ScepError> {
        let record = self.get_device(device).await.map_err(refused)?;
        let template = record
            .template
            .or(fallback_template)
            .ok_or_else(|| ScepError::BadRequest(format!("device `{device}` has no template")))?;
        self.prepare_certificate(&template, device, KeySource::Verified(key))
            .await
            .map_err(refused)
    }

    /// A renewal (RenewalReq, or PKCSReq without a challenge) signed by a certificate of CA
    /// `ca` (`unsigned` is the refusal otherwise): that certificate must be valid (not revoked,
    /// not expired). The successor is for the same device (whose state and user issuance
    /// checks), from its template, and the current one is superseded in the transaction that
    /// records the successor.
    async fn renewal(
        &self,
        ca: &str,
        signer_cert_der: &[u8],
        unsigned: &str,
    ) -> std::result::Result<Grounds, ScepError> {
        let current = self
            .signing_certificate(ca, signer_cert_der)
            .await?
            .ok_or_else(|| ScepError::BadRequest(unsigned.into()))?;
        if current.status != easgate_store::CertStatus::Valid {
            return Err(ScepError::BadRequest(format!(
                "certificate {} is {}",
                current.serial,
                current.status.as_str()
            )));
        }
        let device = current
            .device
            .ok_or_else(|| ScepError::BadRequest("that certificate belongs to no device".into()))?;
        Ok(Grounds {
            device,
            challenge: None,
            supersedes: Some(current.serial),
            fallback_template: current.template,
        })
    }

    /// The certificate of CA `ca` that signed a request, if the signer is one of ours (the
    /// exact certificate issued, not merely one with its serial); `None` for any other signer,
    /// such as a requester's self-signed certificate.
    async fn signing_certificate(
        &self,
        ca: &str,
        signer_cert_der: &[u8],
    ) -> std::result::Result<Option<easgate_store::Certificate>, ScepError> {
        // A self-signed certificate may not even parse strictly (sscep's 32-octet serials).
        let Ok(summary) = easgate_pki::summary::summarize(signer_cert_der) else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_certificate(&summary.serial.to_hex(), self.now().unix_timestamp())
            .await
            .map_err(refused)?
            .filter(|c| c.der == signer_cert_der && c.ca == ca))
    }
}

/// A failure that refuses the request (failInfo badRequest), with its reason for the log.
fn refused(e: impl std::fmt::Display) -> ScepError {
    ScepError::BadRequest(e.to_string())
}
