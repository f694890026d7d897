//! EAS device policies (`easgate eas-policy …`): the passcode and encryption demands the
//! gateway hands out in `--provision gateway` mode, each assigned to groups, one the default.
//!
//! A policy's key is derived from its name and settings, so every instance computes the same
//! key without asking the database, and any change to a policy gives it a new key: devices
//! holding the old one are told to provision again (Status 143).

use std::collections::BTreeMap;

use easgate_store::EasPolicy;

use crate::error::{OpsError, Result};
use crate::names::check_name;
use crate::Easgate;

/// What an admin asks of a policy; `None` leaves a setting out of the policy document (the
/// device's own default applies).
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    pub require_passcode: bool,
    pub min_passcode_length: Option<u8>,
    pub alphanumeric: bool,
    pub max_inactivity_minutes: Option<u32>,
    pub require_encryption: bool,
    pub max_failed_attempts: Option<u8>,
    pub allow_simple_passcode: Option<bool>,
    pub passcode_expiration_days: Option<u32>,
    pub passcode_history: Option<u32>,
    pub allow_camera: Option<bool>,
    pub allow_storage_card: Option<bool>,
    pub groups: Vec<String>,
    pub is_default: bool,
}

/// The name of the built-in policy of users no policy applies to: an empty policy (no
/// passcode), so that devices can still complete provisioning.
pub const NO_POLICY: &str = "none";

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_string()
}

fn in_range(what: &str, value: u32, low: u32, high: u32) -> Result<u32> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(OpsError::Invalid(format!(
            "{what} must be from {low} to {high} (got {value})"
        )))
    }
}

/// The MS-ASPROV settings of a spec, validated.
pub fn settings(spec: &PolicySpec) -> Result<BTreeMap<String, String>> {
    let passcode_only = [
        ("--min-passcode-length", spec.min_passcode_length.is_some()),
        ("--alphanumeric", spec.alphanumeric),
        ("--max-failed-attempts", spec.max_failed_attempts.is_some()),
        (
            "--allow-simple-passcode",
            spec.allow_simple_passcode.is_some(),
        ),
        (
            "--passcode-expiration-days",
            spec.passcode_expiration_days.is_some(),
        ),
        ("--passcode-history", spec.passcode_history.is_some()),
        (
            "--max-inactivity-minutes",
            spec.max_inactivity_minutes.is_some(),
        ),
    ];
    if !spec.require_passcode {
        if let Some((option, _)) = passcode_only.iter().find(|(_, given)| *given) {
            return Err(OpsError::Invalid(format!(
                "{option} is a passcode setting: add --require-passcode"
            )));
        }
    }
    let mut s = BTreeMap::new();
    s.insert("DevicePasswordEnabled".into(), flag(spec.require_passcode));
    if spec.alphanumeric {
        s.insert("AlphanumericDevicePasswordRequired".into(), flag(true));
    }
    if let Some(n) = spec.min_passcode_length {
        let n = in_range("--min-passcode-length", n.into(), 1, 16)?;
        s.insert("MinDevicePasswordLength".into(), n.to_string());
    }
    if let Some(minutes) = spec.max_inactivity_minutes {
        // Sent in seconds (MS-ASPROV MaxInactivityTimeDeviceLock), at most 9999.
        let minutes = in_range("--max-inactivity-minutes", minutes, 1, 166)?;
        s.insert(
            "MaxInactivityTimeDeviceLock".into(),
            (minutes * 60).to_string(),
        );
    }
    if let Some(n) = spec.max_failed_attempts {
        let n = in_range("--max-failed-attempts", n.into(), 4, 16)?;
        s.insert("MaxDevicePasswordFailedAttempts".into(), n.to_string());
    }
    if let Some(allow) = spec.allow_simple_passcode {
        s.insert("AllowSimpleDevicePassword".into(), flag(allow));
    }
    if let Some(days) = spec.passcode_expiration_days {
        let days = in_range("--passcode-expiration-days", days, 1, 730)?;
        s.insert("DevicePasswordExpiration".into(), days.to_string());
    }
    if let Some(n) = spec.passcode_history {
        let n = in_range("--passcode-history", n, 1, 50)?;
        s.insert("DevicePasswordHistory".into(), n.to_string());
    }
    if let Some(allow) = spec.allow_storage_card {
        s.insert("AllowStorageCard".into(), flag(allow));
    }
    if let Some(allow) = spec.allow_camera {
        s.insert("AllowCamera".into(), flag(allow));
    }
    if spec.require_encryption {
        s.insert("RequireDeviceEncryption".into(), flag(true));
    }
    Ok(s)
}

/// The policy key of a policy with this name and these settings, and the temporary key of
/// its download (the device acknowledges with it): both non-zero, below 2³¹ (some clients read
/// the key as a signed number), and different from each other.
pub fn policy_keys(name: &str, settings: &BTreeMap<String, String>) -> (u32, u32) {
    let key = |label: &str| {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [label, name] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        for (k, v) in settings {
            for part in [k, v] {
                ctx.update(part.as_bytes());
                ctx.update(&[0]);
            }
        }
        let digest = ctx.finish();
        let mut first = [0u8; 4];
        first.copy_from_slice(&digest.as_ref()[..4]);
        (u32::from_be_bytes(first) & 0x7FFF_FFFF).max(1)
    };
    let (final_key, temporary) = (key("easgate policy key"), key("easgate temporary key"));
    if temporary == final_key {
        (final_key, final_key % 0x7FFF_FFFF + 1)
    } else {
        (final_key, temporary)
    }
}

impl Easgate {
    /// `eas-policy create NAME …` (or with `replace`, the same name's settings replaced).
    pub async fn create_eas_policy(
        &self,
        name: &str,
        spec: &PolicySpec,
        replace: bool,
    ) -> Result<EasPolicy> {
        check_name("EAS policy", name)?;
        if name.eq_ignore_ascii_case(NO_POLICY) {
            return Err(OpsError::Invalid(format!(
                "`{NO_POLICY}` names the built-in empty policy of users no policy applies to; choose another name"
            )));
        }
        let settings = settings(spec)?;
        let known = self.store.list_groups().await?;
        for group in &spec.groups {
            if !known.iter().any(|g| g.name == *group) {
                return Err(OpsError::not_found(
                    "group",
                    group,
                    "see `easgate group list`",
                ));
            }
        }
        let ctx = self.ctx();
        let existing = self
            .store
            .list_eas_policies()
            .await?
            .into_iter()
            .find(|p| p.name == name);
        let policy = EasPolicy {
            name: name.to_string(),
            settings,
            groups: spec.groups.clone(),
            is_default: spec.is_default,
            created_at: existing.as_ref().map_or(ctx.now, |p| p.created_at),
            updated_at: ctx.now,
        };
        match (existing, replace) {
            (Some(_), true) => self.store.update_eas_policy(&ctx, &policy).await?,
            (Some(_), false) => {
                return Err(OpsError::Conflict(format!(
                    "EAS policy `{name}` already exists (add --replace to replace its settings)"
                )))
            }
            (None, _) => self.store.insert_eas_policy(&ctx, &policy).await?,
        }
        Ok(policy)
    }

    pub async fn list_eas_policies(&self) -> Result<Vec<EasPolicy>> {
        Ok(self.store.list_eas_policies().await?)
    }

    pub async fn get_eas_policy(&self, name: &str) -> Result<EasPolicy> {
        self.list_eas_policies()
            .await?
            .into_iter()
            .find(|p| p.name == name)
            .ok_or_else(|| OpsError::not_found("EAS policy", name, "see `easgate eas-policy list`"))
    }

    pub async fn remove_eas_policy(&self, name: &str) -> Result<()> {
        self.store
            .remove_eas_policy(&self.ctx(), name)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate eas-policy list`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passcode_settings_need_a_passcode_and_ranges_hold() {
        let spec = PolicySpec {
            min_passcode_length: Some(6),
            ..PolicySpec::default()
        };
        let e = settings(&spec).unwrap_err().to_string();
        assert!(e.contains("--require-passcode"), "{e}");
        let spec = PolicySpec {
            require_passcode: true,
            max_failed_attempts: Some(3),
            ..PolicySpec::default()
        };
        assert!(settings(&spec).unwrap_err().to_string().contains("4 to 16"));
        let spec = PolicySpec {
            require_passcode: true,
            min_passcode_length: Some(6),
            max_inactivity_minutes: Some(5),
            require_encryption: true,
            allow_simple_passcode: Some(false),
            ..PolicySpec::default()
        };
        let s = settings(&spec).unwrap();
        assert_eq!(s["DevicePasswordEnabled"], "1");
        assert_eq!(s["MinDevicePasswordLength"], "6");
        assert_eq!(s["MaxInactivityTimeDeviceLock"], "300");
        assert_eq!(s["RequireDeviceEncryption"], "1");
        assert_eq!(s["AllowSimpleDevicePassword"], "0");
    }

    #[test]
    fn keys_follow_the_settings() {
        let a = settings(&PolicySpec::default()).unwrap();
        let b = settings(&PolicySpec {
            require_encryption: true,
            ..PolicySpec::default()
        })
        .unwrap();
        let (key_a, temp_a) = policy_keys("std", &a);
        assert_eq!(policy_keys("std", &a), (key_a, temp_a));
        assert_ne!(key_a, temp_a);
        assert_ne!(policy_keys("std", &b).0, key_a);
        assert_ne!(policy_keys("other", &a).0, key_a);
        assert!(key_a > 0 && key_a < 0x8000_0000);
    }
}
