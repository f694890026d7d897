//! EAS provisioning records (device policies and remote wipes) as both backends describe them:
//! the audit details, the refusals and the JSON of a policy's settings. Kept in one place so
//! SQLite and PostgreSQL say the same words; the SQL lives in `sqlite_provision.rs` and
//! `postgres/provision.rs`.

use std::collections::BTreeMap;

use crate::error::StoreError;
use crate::model::{EasPolicy, EasWipe};

/// The kind named by a policy's `AlreadyExists` / `NotFound`.
pub(crate) const POLICY_KIND: &str = "EAS policy";
/// The kind named by a wipe's `NotFound`.
pub(crate) const WIPE_KIND: &str = "wipe";

/// The stored state of an acknowledged wipe.
pub(crate) fn ack_state(succeeded: bool) -> &'static str {
    if succeeded {
        "succeeded"
    } else {
        "failed"
    }
}

/// A policy's settings as stored: a JSON object of strings, keys in order (the map's order).
pub(crate) fn settings_to_json(settings: &BTreeMap<String, String>) -> String {
    serde_json::Value::Object(
        settings
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
    .to_string()
}

/// A policy's stored settings read back (each backend wraps the error as its own corruption).
pub(crate) fn settings_from_json(text: &str) -> serde_json::Result<BTreeMap<String, String>> {
    serde_json::from_str(text)
}

/// What the audit trail says of a created or updated policy: its settings, groups and whether
/// it is the default, so the trail alone shows what devices were told.
pub(crate) fn policy_detail(policy: &EasPolicy) -> String {
    let settings = if policy.settings.is_empty() {
        "no settings".to_string()
    } else {
        let pairs: Vec<String> = policy
            .settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("settings {}", pairs.join(", "))
    };
    let groups = if policy.groups.is_empty() {
        "no groups".to_string()
    } else {
        format!("groups {}", policy.groups.join(", "))
    };
    let default = if policy.is_default { "; default" } else { "" };
    format!("{settings}; {groups}{default}")
}

/// What the audit trail says of an ordered wipe: its kind, and the enrolled device it was
/// ordered for, if any.
pub(crate) fn wipe_request_detail(account_only: bool, device_uid: Option<&str>) -> String {
    let kind = if account_only {
        "account-only wipe"
    } else {
        "full wipe"
    };
    match device_uid {
        Some(uid) => format!("{kind} for device {uid}"),
        None => kind.to_string(),
    }
}

/// The refusal of a second wipe for a DeviceId that has one on record, whatever its state: a
/// wipe is ordered once, and its record (its acknowledgement above all) must not be lost to a
/// new order.
pub(crate) fn wipe_on_record(eas_device_id: &str, state: &str) -> StoreError {
    StoreError::Conflict(format!(
        "device {eas_device_id} already has a {state} wipe on record \
         (`easgate eas clear {eas_device_id}` forgets it)"
    ))
}

/// Whether `wipe` may still be withdrawn: only while `pending`, since once sent the device may
/// already be erasing itself. The refusal says when it went out or came back.
pub(crate) fn check_cancellable(eas_device_id: &str, wipe: &EasWipe) -> Result<(), StoreError> {
    let at = |time: Option<i64>| {
        time.map(crate::json_time::format)
            .unwrap_or_else(|| "an unknown time".to_string())
    };
    match wipe.state.as_str() {
        "pending" => Ok(()),
        "sent" => Err(StoreError::Conflict(format!(
            "the wipe of device {eas_device_id} was already sent at {}; it cannot be cancelled",
            at(wipe.sent_at)
        ))),
        state => Err(StoreError::Conflict(format!(
            "the wipe of device {eas_device_id} was already acknowledged ({state}) at {}; it \
             cannot be cancelled (`easgate eas clear {eas_device_id}` forgets it)",
            at(wipe.ack_at)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(settings: &[(&str, &str)], groups: &[&str], is_default: bool) -> EasPolicy {
        EasPolicy {
            name: "p".into(),
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            is_default,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_policy_detail_names_settings_groups_and_default() {
        assert_eq!(
            policy_detail(&policy(
                &[
                    ("MinDevicePasswordLength", "6"),
                    ("DevicePasswordEnabled", "1")
                ],
                &["sales", "ops"],
                true
            )),
            "settings DevicePasswordEnabled=1, MinDevicePasswordLength=6; groups sales, ops; \
             default"
        );
        assert_eq!(
            policy_detail(&policy(&[], &[], false)),
            "no settings; no groups"
        );
    }

    #[test]
    fn settings_survive_their_json() {
        let p = policy(&[("A", "1"), ("B", "x \"y\"")], &[], false);
        let json = settings_to_json(&p.settings);
        assert_eq!(json, r#"{"A":"1","B":"x \"y\""}"#);
        assert_eq!(settings_from_json(&json).ok(), Some(p.settings));
        assert!(settings_from_json("[1]").is_err());
    }

    #[test]
    fn a_wipe_request_detail_names_its_kind_and_device() {
        assert_eq!(wipe_request_detail(false, None), "full wipe");
        assert_eq!(
            wipe_request_detail(true, Some("dev1")),
            "account-only wipe for device dev1"
        );
    }

    #[test]
    fn only_a_pending_wipe_is_cancellable() {
        let mut wipe = EasWipe {
            eas_device_id: "D".into(),
            account_only: false,
            state: "pending".into(),
            requested_by: "admin".into(),
            requested_at: 0,
            sent_at: None,
            ack_at: None,
            device_uid: None,
        };
        assert!(check_cancellable("d", &wipe).is_ok());
        wipe.state = "sent".into();
        wipe.sent_at = Some(60);
        let sent = check_cancellable("d", &wipe).err().map(|e| e.to_string());
        assert_eq!(
            sent.as_deref(),
            Some(
                "the wipe of device d was already sent at 1970-01-01T00:01:00Z; it cannot be \
                 cancelled"
            )
        );
        wipe.state = "failed".into();
        wipe.ack_at = Some(120);
        let acked = check_cancellable("d", &wipe).err().map(|e| e.to_string());
        assert!(
            acked.as_deref().is_some_and(
                |m| m.contains("already acknowledged (failed) at 1970-01-01T00:02:00Z")
            ),
            "{acked:?}"
        );
    }
}
