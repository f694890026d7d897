//! `easgate eas-policy …`, `easgate eas wipe` and `easgate device wipe`: EAS policies and
//! remote wipes as the admin orders and reads them.

use easgate_ops::eas_policies::{policy_keys, PolicySpec};
use easgate_ops::eas_wipes::exchange_status;
use easgate_ops::time_fmt::rfc3339;
use easgate_ops::Easgate;
use easgate_store::{EasPolicy, EasWipe, Partnership};

use crate::cli::EasPolicyCommand;
use crate::commands::CliError;
use crate::output::{fields, json, table};

fn settings_text(p: &EasPolicy) -> String {
    p.settings
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn groups_text(p: &EasPolicy) -> String {
    let mut parts = p.groups.clone();
    if p.is_default {
        parts.push("(default)".into());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn key_of(p: &EasPolicy) -> u32 {
    policy_keys(&p.name, &p.settings).0
}

pub async fn eas_policy(e: &Easgate, cmd: EasPolicyCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        EasPolicyCommand::Create {
            name,
            settings,
            replace,
        } => {
            let spec = PolicySpec::from(settings);
            let policy = e.create_eas_policy(&name, &spec, replace).await?;
            if as_json {
                return json(&policy);
            }
            let verb = if replace { "saved" } else { "created" };
            println!(
                "{verb} EAS policy `{}` (key {}) for {}: {}",
                policy.name,
                key_of(&policy),
                groups_text(&policy),
                settings_text(&policy)
            );
            if replace {
                println!("devices with its earlier key are told to provision again (Status 143) with --provision gateway");
            }
            Ok(())
        }
        EasPolicyCommand::List => {
            let list = e.list_eas_policies().await?;
            if as_json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        groups_text(p),
                        key_of(p).to_string(),
                        settings_text(p),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["NAME", "GROUPS", "KEY", "SETTINGS"], &rows);
            Ok(())
        }
        EasPolicyCommand::Show { name } => {
            let p = e.get_eas_policy(&name).await?;
            if as_json {
                return json(&p);
            }
            let mut pairs = vec![
                ("name", p.name.clone()),
                ("groups", groups_text(&p)),
                ("policy key", key_of(&p).to_string()),
                ("created", rfc3339(p.created_at)),
                ("updated", rfc3339(p.updated_at)),
            ];
            for (k, v) in &p.settings {
                pairs.push((k.as_str(), v.clone()));
            }
            fields(&pairs);
            Ok(())
        }
        EasPolicyCommand::Remove { name } => {
            e.remove_eas_policy(&name).await?;
            if as_json {
                return json(&serde_json::json!({ "removed": name }));
            }
            println!("removed EAS policy `{name}`; its users get the default policy (or none) when they provision again");
            Ok(())
        }
    }
}

/// `eas wipe DEVICE_ID [--account-only | --cancel]`.
pub async fn eas_wipe(
    e: &Easgate,
    eas_device_id: &str,
    account_only: bool,
    cancel: bool,
    as_json: bool,
) -> Result<(), CliError> {
    if cancel {
        e.cancel_eas_wipe(eas_device_id).await?;
        if as_json {
            return json(&serde_json::json!({ "eas_device_id": eas_device_id, "cancelled": true }));
        }
        println!("cancelled the wipe of device {eas_device_id}: nothing was sent");
        return Ok(());
    }
    let wipe = e.request_eas_wipe(eas_device_id, account_only).await?;
    if as_json {
        return json(&wipe);
    }
    let kind = if wipe.account_only {
        "account-only wipe (mail account and its data)"
    } else {
        "full wipe (the whole device)"
    };
    println!("device {eas_device_id}: {kind} pending; it is sent with the device's next request, then the device is refused and its certificates revoked");
    println!("follow it with `easgate eas show {eas_device_id}`; `easgate eas wipe {eas_device_id} --cancel` withdraws it until it is sent");
    Ok(())
}

/// `device wipe UID`.
pub async fn wipe_device(e: &Easgate, uid: &str, as_json: bool) -> Result<(), CliError> {
    let done = e.wipe_device(uid).await?;
    if as_json {
        return json(&done);
    }
    if done.wipes.is_empty() {
        println!(
            "device {uid} never reached the gateway: no partnership to wipe; it is wiped, {} certificate(s) revoked",
            done.revoked.len()
        );
        for serial in &done.revoked {
            println!("  revoked {serial} (cessationOfOperation)");
        }
    } else {
        println!(
            "device {uid}: full wipe pending for {} partnership(s); when one is acknowledged the device is marked wiped and its certificates are revoked",
            done.wipes.len()
        );
        let rows = done
            .wipes
            .iter()
            .map(|w| vec![w.eas_device_id.clone(), w.state.clone()])
            .collect::<Vec<_>>();
        table(&["EAS DEVICE ID", "WIPE"], &rows);
    }
    Ok(())
}

/// A wipe's state as Get-MobileDeviceStatistics shows it (`AccountOnly…` for account-only),
/// with its times.
pub fn wipe_state(wipe: Option<&EasWipe>) -> String {
    let Some(w) = wipe else {
        return "none".into();
    };
    let mut text = format!(
        "{} (requested {} by {}",
        exchange_status(w),
        rfc3339(w.requested_at),
        w.requested_by
    );
    if let Some(at) = w.sent_at {
        text.push_str(&format!(", sent {}", rfc3339(at)));
    }
    if let Some(at) = w.ack_at {
        text.push_str(&format!(", acknowledged {}", rfc3339(at)));
    }
    text.push(')');
    text
}

/// `DevicePolicyApplied` and `DevicePolicyApplicationStatus` of a partnership.
pub fn applied_policy(p: &Partnership) -> String {
    match (&p.policy_applied, &p.policy_status, p.policy_updated_at) {
        (Some(name), Some(status), Some(at)) => format!("{name} ({status}, {})", rfc3339(at)),
        (Some(name), _, _) => name.clone(),
        _ => "-".into(),
    }
}
