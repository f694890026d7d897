//! Devices: enrollment (record + one-time SCEP challenge + profile token), retire, wipe.

use aws_lc_rs::digest;
use easgate_pki::issue::PublicUrls;
use easgate_store::{Device, NewChallenge, NewDevice, Revocation};
use serde::Serialize;

use crate::error::{OpsError, Result};
use crate::names::{check_name, check_platform};
use crate::Easgate;

pub const DEFAULT_CHALLENGE_DAYS: u32 = 7;

/// What `device enroll` hands the admin. The challenge and profile token are shown once and
/// only their hashes are kept.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Enrollment {
    pub uid: String,
    pub user: String,
    pub platform: String,
    pub template: String,
    pub challenge: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub challenge_expires_at: i64,
    pub scep_url: String,
    pub profile_url: String,
}

/// A one-time challenge and profile token valid `challenge_days` (default 7, 1 to 90) from
/// `now`: (when they expire, the secrets).
fn new_secrets(now: i64, challenge_days: Option<u32>) -> Result<(i64, EnrollmentSecrets)> {
    let days = challenge_days.unwrap_or(DEFAULT_CHALLENGE_DAYS);
    if days == 0 || days > 90 {
        return Err(OpsError::Invalid(format!(
            "challenge validity {days} days: use 1 to 90"
        )));
    }
    let expires_at = now + i64::from(days) * 86_400;
    Ok((expires_at, EnrollmentSecrets::new(expires_at)?))
}

/// Hex of `n` random bytes.
pub fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| OpsError::Invalid("the system random generator failed".into()))?;
    Ok(hex::encode(bytes))
}

/// A new one-time SCEP challenge and profile-download token, and what the store keeps of them.
pub(crate) struct EnrollmentSecrets {
    pub challenge: String,
    pub token: String,
    pub stored: NewChallenge,
}

impl EnrollmentSecrets {
    /// Both valid until `expires_at`.
    pub(crate) fn new(expires_at: i64) -> Result<Self> {
        let challenge = random_hex(20)?;
        let token = random_hex(20)?;
        let stored = NewChallenge {
            hash_hex: secret_hash(&challenge),
            profile_token_hash_hex: secret_hash(&token),
            expires_at,
        };
        Ok(EnrollmentSecrets {
            challenge,
            token,
            stored,
        })
    }
}

/// SHA-256 hex of a secret (challenges and tokens are random and long, so a plain hash is
/// enough to keep them useless to a reader of the database).
pub fn secret_hash(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

impl Easgate {
    pub async fn enroll_device(
        &self,
        user: &str,
        platform: &str,
        template: Option<&str>,
        uid: Option<&str>,
        device_serial: Option<&str>,
        challenge_days: Option<u32>,
    ) -> Result<Enrollment> {
        let platform = check_platform(platform)?;
        let user = self.get_user(user).await?;
        if user.disabled {
            return Err(OpsError::Conflict(format!(
                "user `{}` is disabled: enable them first with `easgate user enable`",
                user.upn
            )));
        }
        let template = match template {
            Some(name) => self.get_template(name).await?,
            None => self.default_template().await?,
        };
        let uid = match uid {
            Some(uid) => {
                check_name("device uid", uid)?;
                uid.to_string()
            }
            None => random_hex(10)?,
        };
        if self.store.get_device(&uid).await?.is_some() {
            return Err(OpsError::AlreadyExists {
                kind: "device",
                key: uid,
            });
        }
        let ctx = self.ctx();
        let (expires_at, secrets) = new_secrets(ctx.now, challenge_days)?;
        let device = self
            .store
            .enroll_device(
                &ctx,
                NewDevice {
                    uid: uid.clone(),
                    user: user.upn.clone(),
                    platform: platform.clone(),
                    template: Some(template.name.clone()),
                    device_serial: device_serial.map(str::to_string),
                },
                secrets.stored,
            )
            .await?;
        Ok(Enrollment {
            uid: device.uid,
            user: user.upn,
            platform,
            scep_url: self.urls_of(&template.ca).await?.scep,
            template: template.name,
            challenge: secrets.challenge,
            challenge_expires_at: expires_at,
            profile_url: self.profile_url(&secrets.token).await?,
        })
    }

    /// `device reenroll`: a new one-time SCEP challenge and profile link for a device that
    /// is not retired or wiped (its user not disabled); earlier unused ones stop working. For a
    /// link an e-mail scanner opened first, or a phone that was reset: the device record, its
    /// certificates and its history stay.
    pub async fn reenroll_device(
        &self,
        uid: &str,
        challenge_days: Option<u32>,
    ) -> Result<Enrollment> {
        let (device, user) = self
            .store
            .get_device_with_owner(uid)
            .await?
            .ok_or_else(|| OpsError::not_found("device", uid, "see `easgate device list`"))?;
        if user.disabled {
            return Err(OpsError::Conflict(format!(
                "user `{}` is disabled: enable them first with `easgate user enable`",
                user.upn
            )));
        }
        let template = match &device.template {
            Some(name) => self.get_template(name).await?,
            None => self.default_template().await?,
        };
        let ctx = self.ctx();
        let (expires_at, secrets) = new_secrets(ctx.now, challenge_days)?;
        let device = self
            .store
            .reenroll_device(&ctx, uid, secrets.stored)
            .await?;
        Ok(Enrollment {
            uid: device.uid,
            user: user.upn,
            platform: device.platform,
            scep_url: self.urls_of(&template.ca).await?.scep,
            template: template.name,
            challenge: secrets.challenge,
            challenge_expires_at: expires_at,
            profile_url: self.profile_url(&secrets.token).await?,
        })
    }

    /// The public URLs of CA `ca` (CRL, OCSP, SCEP, …).
    pub(crate) async fn urls_of(&self, ca: &str) -> Result<PublicUrls> {
        Ok(PublicUrls::for_ca(&self.public_url().await?, ca))
    }

    /// Where a device downloads its profile with `token`.
    pub(crate) async fn profile_url(&self, token: &str) -> Result<String> {
        Ok(format!("{}/enroll/{token}", self.public_url().await?))
    }

    pub async fn list_devices(&self, user: Option<&str>) -> Result<Vec<Device>> {
        Ok(self.store.list_devices(user).await?)
    }

    pub async fn get_device(&self, uid: &str) -> Result<Device> {
        self.store
            .get_device(uid)
            .await?
            .ok_or_else(|| OpsError::not_found("device", uid, "see `easgate device list`"))
    }

    /// Retire (`retired`) or wipe (`wiped`) a device: its valid certificates are revoked with
    /// reason cessationOfOperation and its unused challenges expire. Returns revoked serials.
    pub async fn end_device(&self, uid: &str, state: &str) -> Result<(Device, Vec<String>)> {
        let device = self.get_device(uid).await?;
        if device.state == state {
            return Err(OpsError::Conflict(format!(
                "device `{uid}` is already {state}"
            )));
        }
        let ctx = self.ctx();
        let revoke = Revocation {
            reason: "cessationOfOperation".into(),
            at: ctx.now,
        };
        Ok(self
            .store
            .set_device_state(&ctx, uid, state, revoke)
            .await?)
    }
}

/// A fresh one-time SCEP challenge for a device, as an MDM fetches one per enrollment.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceChallenge {
    pub uid: String,
    pub challenge: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
    pub scep_url: String,
}

/// How long a challenge fetched for an MDM stays usable (NDES's default is one hour too).
pub const DYNAMIC_CHALLENGE_SECS: i64 = 3600;

impl Easgate {
    /// A new one-time challenge for device `uid` (not retired or wiped, its user enabled),
    /// usable for [`DYNAMIC_CHALLENGE_SECS`]; earlier challenges stay valid until used or
    /// expired.
    pub async fn device_challenge(&self, uid: &str) -> Result<DeviceChallenge> {
        let (device, user) = self
            .store
            .get_device_with_owner(uid)
            .await?
            .ok_or_else(|| OpsError::not_found("device", uid, "see `easgate device list`"))?;
        crate::certs::check_active(&device, &user, "a challenge")?;
        let template = match &device.template {
            Some(name) => self.get_template(name).await?,
            None => self.default_template().await?,
        };
        let ctx = self.ctx();
        let challenge = random_hex(20)?;
        let expires_at = ctx.now + DYNAMIC_CHALLENGE_SECS;
        self.store
            .add_challenge(&ctx, uid, &secret_hash(&challenge), expires_at)
            .await?;
        Ok(DeviceChallenge {
            uid: device.uid,
            challenge,
            expires_at,
            scep_url: self.urls_of(&template.ca).await?.scep,
        })
    }
}
