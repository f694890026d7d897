//! Certificates: issue (from a CSR or with a server-made key), list, show, revoke, doctor.

use easgate_pki::csr;
use easgate_pki::doctor::{self, CandidateCa, Report, StoreStatus};
use easgate_pki::issue::{EndEntity, PublicUrls, Purpose, SubjectKey};
use easgate_pki::revocation::RevocationReason;
use easgate_pki::summary::summarize;
use easgate_pki::template::LookupValues;
use easgate_pki::template::{RenderedTemplate, San, SanKind};
use easgate_pki::{KeyType, PrivateKey, Serial};
use easgate_store::{
    CertFilter, CertStatus, Certificate, Device, NewCertificate, Revocation, User,
};

use crate::error::{OpsError, Result};
use crate::templates::spec_of;
use crate::time_fmt::from_unix;
use crate::Easgate;

/// Where the subject key comes from.
pub enum KeySource<'a> {
    /// A PKCS#10 request (PEM or DER); only its public key is used.
    Csr(&'a [u8]),
    /// A key already taken from a verified request (SCEP).
    Verified(SubjectKey),
    /// easgate makes the key (PKCS#12 delivery).
    Generate,
}

/// A freshly issued certificate.
pub struct Issued {
    pub record: Certificate,
    pub der: Vec<u8>,
    pub ca_der: Vec<u8>,
    /// Present when easgate generated the key.
    pub key: Option<PrivateKey>,
}

/// The lookup values (`{DeviceUid}`, `{EmailAddress}`, …) of a device and its owner.
pub(crate) fn lookup_values(device: &Device, user: &User) -> LookupValues {
    LookupValues {
        device_uid: device.uid.clone(),
        user_principal_name: user.upn.clone(),
        email_address: user.email.clone(),
        display_name: user.display_name.clone(),
        device_serial: device.device_serial.clone(),
        platform: device.platform.clone(),
    }
}

/// A retired or wiped device, or a disabled user's device, gets nothing more (`what`).
pub(crate) fn check_active(device: &Device, user: &User, what: &str) -> Result<()> {
    if matches!(device.state.as_str(), "retired" | "wiped") {
        return Err(OpsError::Conflict(format!(
            "device `{}` is {}: it gets no {what}; enroll a new device instead",
            device.uid, device.state
        )));
    }
    if user.disabled {
        return Err(OpsError::Conflict(format!(
            "user `{}` is disabled: their devices get no {what}",
            user.upn
        )));
    }
    Ok(())
}

impl Easgate {
    /// Issue a certificate for `device` from `template`. Subject and SANs come from the template
    /// and the device's lookup values, never from the CSR.
    pub async fn issue_certificate(
        &self,
        template: &str,
        device: &str,
        key: KeySource<'_>,
    ) -> Result<Issued> {
        let (new, issued) = self.prepare_certificate(template, device, key).await?;
        self.store.insert_certificate(&self.ctx(), new).await?;
        Ok(issued)
    }

    /// A certificate for `device` from `template`, signed but not yet recorded: the caller
    /// records `NewCertificate` (alone, or in one transaction with what goes with it, as a
    /// SCEP enrollment does). Until then the serial is unknown to the store.
    pub(crate) async fn prepare_certificate(
        &self,
        template: &str,
        device: &str,
        key: KeySource<'_>,
    ) -> Result<(NewCertificate, Issued)> {
        let template = self.get_template(template).await?;
        let (device, user) = self
            .store
            .get_device_with_owner(device)
            .await?
            .ok_or_else(|| OpsError::not_found("device", device, "see `easgate device list`"))?;
        check_active(&device, &user, "new certificates")?;
        let spec = spec_of(&template)?;
        let rendered = spec.render(&lookup_values(&device, &user))?;
        let (subject_key, private_key) = match key {
            KeySource::Csr(bytes) => (csr::parse_and_verify(bytes)?.key, None),
            KeySource::Verified(key) => (key, None),
            KeySource::Generate => {
                let key_type: KeyType = template.key_type.parse()?;
                let key = key_type.generate()?;
                (SubjectKey::from_spki_der(&key.public_key_der())?, Some(key))
            }
        };
        let ca = self.load_ca(&template.ca).await?;
        let urls = PublicUrls::for_ca(&self.public_url().await?, &template.ca);
        let serial = Serial::random()?;
        let der = ca.issue_end_entity(&EndEntity {
            purpose: Purpose::ClientAuth,
            serial: &serial,
            template: &rendered,
            key: &subject_key,
            now: self.now(),
            validity_days: template.validity_days,
            urls: &urls,
        })?;
        let summary = summarize(&der)?;
        let ctx = self.ctx();
        let new = NewCertificate {
            serial: serial.to_hex(),
            ca: template.ca.clone(),
            device: Some(device.uid.clone()),
            template: Some(template.name.clone()),
            subject: summary.subject,
            sans: summary.sans,
            key_type: subject_key.description().to_string(),
            not_before: summary.not_before,
            not_after: summary.not_after,
            der: der.clone(),
        };
        let record = Certificate {
            serial: new.serial.clone(),
            ca: new.ca.clone(),
            device: new.device.clone(),
            template: new.template.clone(),
            subject: new.subject.clone(),
            sans: new.sans.clone(),
            key_type: new.key_type.clone(),
            not_before: new.not_before,
            not_after: new.not_after,
            status: CertStatus::Valid,
            revoked_at: None,
            revocation_reason: None,
            issued_at: ctx.now,
            der: new.der.clone(),
        };
        Ok((
            new,
            Issued {
                record,
                der,
                ca_der: ca.cert_der().to_vec(),
                key: private_key,
            },
        ))
    }

    /// Issue a TLS server certificate for easgate's own listeners from CA `ca` (EC P-256 key
    /// made here), recorded in the store like every certificate. `names` are host names or IP
    /// addresses (iPAddress SANs). Returns (certificate, key).
    pub async fn issue_server_certificate(
        &self,
        ca: &str,
        names: &[String],
    ) -> Result<(Vec<u8>, PrivateKey)> {
        let first = names.first().ok_or_else(|| {
            OpsError::Invalid("a server certificate needs at least one name".into())
        })?;
        let sans = names
            .iter()
            .map(|n| San {
                kind: if n.parse::<std::net::IpAddr>().is_ok() {
                    SanKind::Ip
                } else {
                    SanKind::Dns
                },
                value: n.clone(),
            })
            .collect();
        self.issue_service_certificate(ca, first, sans, KeyType::EcP256, Purpose::ServerAuth, 397)
            .await
    }

    /// Issue a certificate easgate needs for itself (its TLS listeners, the SCEP RA): a fresh
    /// key of `key_type`, subject `CN=common_name`, recorded with no device or template.
    pub(crate) async fn issue_service_certificate(
        &self,
        ca: &str,
        common_name: &str,
        sans: Vec<San>,
        key_type: KeyType,
        purpose: Purpose,
        validity_days: u32,
    ) -> Result<(Vec<u8>, PrivateKey)> {
        let subject = format!("CN={common_name}");
        let rendered = RenderedTemplate {
            subject_dn: easgate_pki::dn::split(&subject)?,
            subject,
            sans,
        };
        let key = key_type.generate()?;
        let subject_key = SubjectKey::from_spki_der(&key.public_key_der())?;
        let authority = self.load_ca(ca).await?;
        let urls = PublicUrls::for_ca(&self.public_url().await?, ca);
        let der = authority.issue_end_entity(&EndEntity {
            purpose,
            serial: &Serial::random()?,
            template: &rendered,
            key: &subject_key,
            now: self.now(),
            validity_days,
            urls: &urls,
        })?;
        self.record_service_certificate(ca, &der, subject_key.description())
            .await?;
        Ok((der, key))
    }

    /// Record a certificate easgate made for itself (no device or template).
    pub(crate) async fn record_service_certificate(
        &self,
        ca: &str,
        der: &[u8],
        key_description: &str,
    ) -> Result<()> {
        let summary = summarize(der)?;
        self.store
            .insert_certificate(
                &self.ctx(),
                NewCertificate {
                    serial: summary.serial.to_hex(),
                    ca: ca.to_string(),
                    device: None,
                    template: None,
                    subject: summary.subject,
                    sans: summary.sans,
                    key_type: key_description.to_string(),
                    not_before: summary.not_before,
                    not_after: summary.not_after,
                    der: der.to_vec(),
                },
            )
            .await?;
        Ok(())
    }

    pub async fn list_certificates(
        &self,
        device: Option<&str>,
        status: Option<CertStatus>,
    ) -> Result<Vec<Certificate>> {
        if let Some(uid) = device {
            self.get_device(uid).await?;
        }
        Ok(self
            .store
            .list_certificates(&CertFilter {
                device: device.map(str::to_string),
                status,
                now: self.now().unix_timestamp(),
            })
            .await?)
    }

    /// Look a certificate up by serial in any notation (case, colons).
    pub async fn get_certificate(&self, serial: &str) -> Result<Certificate> {
        let canonical: Serial = serial.parse()?;
        self.store
            .get_certificate(&canonical.to_hex(), self.now().unix_timestamp())
            .await?
            .ok_or_else(|| {
                OpsError::not_found("certificate", canonical.to_hex(), "see `easgate cert list`")
            })
    }

    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: RevocationReason,
    ) -> Result<Certificate> {
        let cert = self.get_certificate(serial).await?;
        let ctx = self.ctx();
        Ok(self
            .store
            .revoke_certificate(
                &ctx,
                &cert.serial,
                Revocation {
                    reason: reason.as_str().to_string(),
                    at: ctx.now,
                },
            )
            .await?)
    }

    /// Examine a certificate file against our CAs (or only `ca`) and the store's revocation state.
    pub async fn doctor_certificate(&self, bytes: &[u8], ca: Option<&str>) -> Result<Report> {
        let cas = match ca {
            Some(name) => vec![self.get_ca(name).await?],
            None => self.store.list_cas().await?,
        };
        // Look the serial up first (the doctor itself does no I/O).
        let probe = doctor::examine(bytes, &[], None, self.now(), |_, _| StoreStatus::Unknown);
        let known = match &probe.serial {
            Some(serial) => {
                self.store
                    .get_certificate(&serial.to_hex(), self.now().unix_timestamp())
                    .await?
            }
            None => None,
        };
        let candidates: Vec<CandidateCa<'_>> = cas
            .iter()
            .map(|c| CandidateCa {
                name: &c.name,
                cert_der: &c.cert_der,
            })
            .collect();
        Ok(doctor::examine(
            bytes,
            &candidates,
            ca,
            self.now(),
            |ca_name, _| match known {
                Some(cert) if cert.ca == ca_name => match (cert.status, cert.revoked_at) {
                    (CertStatus::Revoked, Some(at)) => StoreStatus::Revoked {
                        at: from_unix(at),
                        reason: cert
                            .revocation_reason
                            .as_deref()
                            .and_then(|r| r.parse().ok())
                            .unwrap_or(RevocationReason::Unspecified),
                    },
                    _ => StoreStatus::Valid,
                },
                _ => StoreStatus::Unknown,
            },
        ))
    }
}
