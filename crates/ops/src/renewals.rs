//! Certificate renewal: which certificates are inside their template's renewal window
//! (`cert list --expiring`), and starting a renewal enrollment for each of them — a new
//! one-time challenge and profile token for the device, recorded in the audit trail — which
//! the server's renewal job does periodically (and announces by webhook). A renewal is cleared
//! when the device gets a newer certificate: a SCEP RenewalReq signed with the old one, an
//! enrollment with the renewal challenge, or a PKCS#12 profile.

use easgate_store::{ExpiringCertificate, NewRenewal};
use serde::Serialize;

use crate::certs::check_active;
use crate::devices::{EnrollmentSecrets, DEFAULT_CHALLENGE_DAYS};
use crate::error::Result;
use crate::Easgate;

/// A renewal enrollment just started: what the device (or the MDM that serves it) needs.
#[derive(Clone, Serialize)]
pub struct RenewalStarted {
    pub device: String,
    pub user: String,
    pub serial: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339")]
    pub not_after: i64,
    pub scep_url: String,
    pub challenge: String,
    pub profile_url: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339")]
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
    pub async fn expiring_certificates(&self) -> Result<Vec<ExpiringCertificate>> {
        Ok(self.store.expiring_certificates(self.ctx().now).await?)
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
            if check_active(&device, &user, "renewal").is_err() {
                continue;
            }
            // At least a week to act on it, or as long as the renewal window is.
            let window_days = (cert.not_after - expiring.renew_from) / 86_400;
            let days = window_days.max(i64::from(DEFAULT_CHALLENGE_DAYS));
            let ctx = self.ctx();
            let expires_at = ctx.now + days * 86_400;
            let secrets = EnrollmentSecrets::new(expires_at)?;
            let fresh = self
                .store
                .start_renewal(
                    &ctx,
                    NewRenewal {
                        device: uid.clone(),
                        serial: cert.serial.clone(),
                        secrets: secrets.stored,
                    },
                )
                .await?;
            if !fresh {
                continue;
            }
            started.push(RenewalStarted {
                device: uid,
                user: user.upn,
                serial: cert.serial,
                not_after: cert.not_after,
                scep_url: self.urls_of(&cert.ca).await?.scep,
                challenge: secrets.challenge,
                profile_url: self.profile_url(&secrets.token).await?,
                expires_at,
            });
        }
        Ok(started)
    }
}
