//! Remote wipes (`easgate eas wipe`, `easgate device wipe`): the admin orders one, the gateway
//! hands it to the device inside a Provision answer and records the device's acknowledgement.
//! After that the device is refused (`device-wiped`) and the certificates bound to its DeviceId
//! are revoked (cessationOfOperation), so a wiped phone that comes back is not let in.

use easgate_activesync::provision::version_at_least;
use easgate_pki::revocation::RevocationReason;
use easgate_store::{CertFilter, CertStatus, Device, EasWipe};
use serde::Serialize;

use crate::access::check_eas_device_id;
use crate::error::{OpsError, Result};
use crate::Easgate;

/// What a `device wipe` of an enrolled device did.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceWipe {
    pub device: Device,
    /// The wipes ordered, one per EAS DeviceId its certificates were used with.
    pub wipes: Vec<EasWipe>,
    /// Certificates revoked now: only when no DeviceId was ever seen with them (nothing to
    /// hand a wipe to); otherwise they are revoked when a wipe is acknowledged.
    pub revoked: Vec<String>,
}

/// What recording a device's wipe acknowledgement did.
#[derive(Clone, Debug)]
pub struct WipeAcknowledged {
    pub wipe: EasWipe,
    /// The certificates revoked.
    pub revoked: Vec<String>,
}

/// A wipe's state as Exchange's Get-MobileDeviceStatistics names it: `Pending`, `Sent`,
/// `Succeeded`, `Failed`, with `AccountOnly` in front for an account-only wipe.
pub fn exchange_status(wipe: &EasWipe) -> String {
    let state = match wipe.state.as_str() {
        "pending" => "Pending",
        "sent" => "Sent",
        "succeeded" => "Succeeded",
        "failed" => "Failed",
        other => other,
    };
    let prefix = if wipe.account_only { "AccountOnly" } else { "" };
    format!("{prefix}{state}")
}

impl Easgate {
    /// `eas wipe DEVICE_ID [--account-only]`: order a wipe of a device the gateway has seen.
    /// Account-only needs EAS 16.1: refused when the device's last request spoke an older
    /// version (it is never turned into a full wipe).
    pub async fn request_eas_wipe(
        &self,
        eas_device_id: &str,
        account_only: bool,
    ) -> Result<EasWipe> {
        check_eas_device_id(eas_device_id)?;
        let seen = self.store.get_partnerships(eas_device_id).await?;
        let Some(latest) = seen
            .iter()
            .filter(|p| !p.suspect)
            .max_by_key(|p| p.last_seen)
        else {
            return Err(OpsError::not_found(
                "EAS device",
                eas_device_id,
                "it has not connected through the gateway; see `easgate eas list`",
            ));
        };
        if account_only && !version_at_least(latest.protocol.as_deref(), 16, 1) {
            return Err(OpsError::Invalid(format!(
                "an account-only wipe needs EAS 16.1, and device {eas_device_id} speaks {} (its last request); \
                 nothing was ordered. `easgate eas wipe {eas_device_id}` without --account-only wipes the whole device",
                latest.protocol.as_deref().unwrap_or("an unknown version")
            )));
        }
        Ok(self
            .store
            .request_wipe(&self.ctx(), eas_device_id, account_only, None)
            .await?)
    }

    /// `eas wipe DEVICE_ID --cancel`: withdraw a wipe not yet sent.
    pub async fn cancel_eas_wipe(&self, eas_device_id: &str) -> Result<()> {
        check_eas_device_id(eas_device_id)?;
        self.store
            .cancel_wipe(&self.ctx(), eas_device_id)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate eas show`"))
    }

    pub async fn list_eas_wipes(&self) -> Result<Vec<EasWipe>> {
        Ok(self.store.list_wipes().await?)
    }

    /// The wipe on record for one DeviceId.
    pub async fn eas_wipe(&self, eas_device_id: &str) -> Result<Option<EasWipe>> {
        Ok(self
            .list_eas_wipes()
            .await?
            .into_iter()
            .find(|w| w.eas_device_id.eq_ignore_ascii_case(eas_device_id)))
    }

    /// The gateway handed the wipe to the device.
    pub async fn eas_wipe_sent(&self, eas_device_id: &str) -> Result<bool> {
        Ok(self
            .store
            .mark_wipe_sent(&self.ctx(), eas_device_id)
            .await?)
    }

    /// The device acknowledged its wipe: recorded, then every valid certificate bound to the
    /// DeviceId is revoked, and an enrolled device the wipe was ordered for is marked wiped
    /// (which revokes its other certificates too). `None` when no wipe was pending or sent.
    pub async fn eas_wipe_acknowledged(
        &self,
        eas_device_id: &str,
        succeeded: bool,
    ) -> Result<Option<WipeAcknowledged>> {
        let ctx = self.ctx();
        let Some(wipe) = self
            .store
            .mark_wipe_acknowledged(&ctx, eas_device_id, succeeded)
            .await?
        else {
            return Ok(None);
        };
        let mut revoked = Vec::new();
        for binding in self.store.device_bindings(eas_device_id).await? {
            match self
                .revoke_certificate(&binding.serial, RevocationReason::CessationOfOperation)
                .await
            {
                Ok(_) => revoked.push(binding.serial),
                // Already revoked, or not one of ours (a trusted outside CA's).
                Err(OpsError::Conflict(_) | OpsError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(uid) = &wipe.device_uid {
            match self.end_device(uid, "wiped").await {
                Ok((_, serials)) => revoked.extend(serials),
                Err(OpsError::Conflict(_) | OpsError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(WipeAcknowledged { wipe, revoked }))
    }

    /// `device wipe UID`: a full wipe of every EAS DeviceId the device's certificates were
    /// used with. The device is marked wiped, and its certificates revoked, when a wipe is
    /// acknowledged; with no DeviceId to send a wipe to, that happens at once.
    pub async fn wipe_device(&self, uid: &str) -> Result<DeviceWipe> {
        let device = self.get_device(uid).await?;
        if matches!(device.state.as_str(), "retired" | "wiped") {
            return Err(OpsError::Conflict(format!(
                "device `{uid}` is already {}",
                device.state
            )));
        }
        let serials: Vec<String> = self
            .store
            .list_certificates(&CertFilter {
                device: Some(uid.to_string()),
                status: Some(CertStatus::Valid),
                now: self.now().unix_timestamp(),
            })
            .await?
            .into_iter()
            .map(|c| c.serial)
            .collect();
        let mut device_ids: Vec<String> = Vec::new();
        for serial in &serials {
            if let Some(binding) = self.store.get_binding(serial).await? {
                if !device_ids
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(&binding.eas_device_id))
                {
                    device_ids.push(binding.eas_device_id);
                }
            }
        }
        if device_ids.is_empty() {
            let (device, revoked) = self.end_device(uid, "wiped").await?;
            return Ok(DeviceWipe {
                device,
                wipes: Vec::new(),
                revoked,
            });
        }
        let ctx = self.ctx();
        let mut wipes = Vec::new();
        for id in &device_ids {
            wipes.push(self.store.request_wipe(&ctx, id, false, Some(uid)).await?);
        }
        Ok(DeviceWipe {
            device,
            wipes,
            revoked: Vec::new(),
        })
    }
}
