//! Certificate renewal: which certificates are inside their template's renewal window
//! (`cert list --expiring`), and starting a renewal enrollment for each of them — a new
//! one-time challenge and profile token for the device, recorded in the audit trail — which
//! the server's renewal job does periodically (and announces by webhook). A renewal is cleared
//! when the device gets a newer certificate: a SCEP RenewalReq signed with the old one, an
//! enrollment with the renewal challenge, or a PKCS#12 profile.

use std::collections::HashMap;

use easgate_store::{CertFilter, CertStatus, Certificate, NewChallenge, NewRenewal, Renewal};
use serde::Serialize;

use crate::devices::{random_hex, secret_hash, DEFAULT_CHALLENGE_DAYS};
use crate::error::Result;
use crate::Easgate;

/// A valid certificate inside its renewal window.
#[derive(Clone, Debug, Serialize)]
pub struct Expiring {
    #[serde(flatten)]
    pub certificate: Certificate,
    /// When its renewal window opened (not_after − the template's renew-before days).
    pub renew_from: i64,
    /// Whether a renewal enrollment has been started for it.
    pub renewal_started: bool,
}

/// A renewal enrollment just started: what the device (or the MDM that serves it) needs.
#[derive(Clone, Serialize)]
pub struct RenewalStarted {
    pub device: String,
    pub user: String,
    pub serial: String,
    pub not_after: i64,
    pub scep_url: String,
    pub challenge: String,
    pub profile_url: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for RenewalStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RenewalStarted({} of {}, <secrets redacted>)",
            self.serial, self.device
        )
    }
}

impl Easgate {
    /// Valid device certificates inside their template's renewal window, soonest expiry
    /// first. A certificate whose device already holds a newer valid certificate is renewed
    /// and not listed.
    pub async fn expiring_certificates(&self) -> Result<Vec<Expiring>> {
        let now = self.ctx().now;
        let windows: HashMap<String, i64> = self
            .store
            .list_templates()
            .await?
            .into_iter()
            .map(|t| (t.name, i64::from(t.renew_before_days) * 86_400))
            .collect();
        let valid = self
            .store
            .list_certificates(&CertFilter {
                device: None,
                status: Some(CertStatus::Valid),
                now,
            })
            .await?;
        let mut newest: HashMap<&str, i64> = HashMap::new();
        for cert in &valid {
            if let Some(device) = cert.device.as_deref() {
                let entry = newest.entry(device).or_insert(cert.not_before);
                *entry = (*entry).max(cert.not_before);
            }
        }
        let started: std::collections::HashSet<String> = self
            .store
            .list_renewals()
            .await?
            .into_iter()
            .map(|r| r.serial)
            .collect();
        let mut out: Vec<Expiring> = valid
            .iter()
            .filter_map(|cert| {
                let device = cert.device.as_deref()?;
                let window = *windows.get(cert.template.as_deref()?)?;
                let renew_from = cert.not_after - window;
                let superseded = newest.get(device).is_some_and(|&n| n > cert.not_before);
                (now >= renew_from && !superseded).then(|| Expiring {
                    certificate: cert.clone(),
                    renew_from,
                    renewal_started: started.contains(&cert.serial),
                })
            })
            .collect();
        out.sort_by_key(|e| (e.certificate.not_after, e.certificate.serial.clone()));
        Ok(out)
    }

    /// Start a renewal enrollment for every expiring certificate of an enrolled device that
    /// has none yet. Returns the ones started now.
    pub async fn start_due_renewals(&self) -> Result<Vec<RenewalStarted>> {
        let mut started = Vec::new();
        for expiring in self.expiring_certificates().await? {
            if expiring.renewal_started {
                continue;
            }
            let cert = expiring.certificate;
            let Some(uid) = cert.device.clone() else {
                continue;
            };
            let Some((device, user)) = self.store.get_device_with_owner(&uid).await? else {
                continue;
            };
            if device.state != "enrolled" || user.disabled {
                continue;
            }
            let template = match &cert.template {
                Some(t) => self.get_template(t).await?,
                None => continue,
            };
            let challenge = random_hex(20)?;
            let token = random_hex(20)?;
            let ctx = self.ctx();
            let days = i64::from(template.renew_before_days.max(DEFAULT_CHALLENGE_DAYS));
            let expires_at = ctx.now + days * 86_400;
            let fresh = self
                .store
                .start_renewal(
                    &ctx,
                    NewRenewal {
                        device: uid.clone(),
                        serial: cert.serial.clone(),
                        secrets: NewChallenge {
                            hash_hex: secret_hash(&challenge),
                            profile_token_hash_hex: secret_hash(&token),
                            expires_at,
                        },
                    },
                )
                .await?;
            if !fresh {
                continue;
            }
            let base = self.public_url().await?;
            started.push(RenewalStarted {
                device: uid,
                user: user.upn,
                serial: cert.serial,
                not_after: cert.not_after,
                scep_url: format!("{base}/scep/{}", template.ca),
                challenge,
                profile_url: format!("{base}/enroll/{token}"),
                expires_at,
            });
        }
        Ok(started)
    }

    pub async fn list_renewals(&self) -> Result<Vec<Renewal>> {
        Ok(self.store.list_renewals().await?)
    }
}
