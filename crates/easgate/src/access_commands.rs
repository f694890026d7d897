//! `policy …` and `eas …`: the gateway's access rules, per-device decisions and partnerships.

use easgate_ops::access::WhatIf;
use easgate_ops::time_fmt::rfc3339;
use easgate_ops::Easgate;
use easgate_store::{AccessRule, Partnership};

use crate::cli::{word, EasCommand, PolicyCommand};
use crate::commands::CliError;
use crate::output::{fields, json, table};

fn conditions(rule: &AccessRule) -> String {
    let mut parts = Vec::new();
    for (key, values) in [
        ("user", &rule.users),
        ("group", &rule.groups),
        ("platform", &rule.platforms),
        ("client", &rule.clients),
        ("state", &rule.device_states),
        ("network", &rule.networks),
    ] {
        if !values.is_empty() {
            parts.push(format!("{key}={}", values.join(",")));
        }
    }
    if parts.is_empty() {
        "any request".into()
    } else {
        parts.join(" ")
    }
}

pub async fn policy(e: &Easgate, cmd: PolicyCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Add {
            name,
            priority,
            users,
            groups,
            platforms,
            clients,
            device_states,
            networks,
            action,
        } => {
            let rule = AccessRule {
                name,
                priority: 0,
                users,
                groups,
                platforms: platforms.iter().map(word).collect(),
                clients: clients.iter().map(word).collect(),
                device_states: device_states.iter().map(word).collect(),
                networks,
                action: action.as_str().into(),
            };
            let rule = e.add_rule(rule, priority).await?;
            if as_json {
                return json(&rule);
            }
            println!(
                "added rule `{}` (priority {}): {} when {}",
                rule.name,
                rule.priority,
                rule.action,
                conditions(&rule)
            );
            Ok(())
        }
        PolicyCommand::List => {
            let rules = e.list_rules().await?;
            let default = e.default_action().await?;
            for warning in e.shadowed_rules().await? {
                eprintln!("warning: {warning}");
            }
            if as_json {
                return json(&serde_json::json!({
                    "rules": rules,
                    "default": default.as_str(),
                }));
            }
            let rows = rules
                .iter()
                .map(|r| {
                    vec![
                        r.priority.to_string(),
                        r.name.clone(),
                        r.action.clone(),
                        conditions(r),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["PRIORITY", "NAME", "ACTION", "WHEN"], &rows);
            println!("default: {default}");
            Ok(())
        }
        PolicyCommand::Remove { name } => {
            e.remove_rule(&name).await?;
            crate::output::removed("rule", &name, as_json, &format!("removed rule `{name}`"))
        }
        PolicyCommand::Default { action } => {
            let action = e.set_default_action(action.as_str()).await?;
            if as_json {
                return json(&serde_json::json!({ "default": action.as_str() }));
            }
            println!("requests no rule matches: {action}");
            Ok(())
        }
        PolicyCommand::Test {
            user,
            platform,
            client,
            device_state,
            cert,
            ip,
            device_id,
        } => {
            let (platform, client) = (word(&platform), word(&client));
            let state = device_state.as_ref().map(word);
            let cert = cert.as_ref().map(word);
            let answer = e
                .policy_test(&WhatIf {
                    user: &user,
                    platform: Some(&platform),
                    client: Some(&client),
                    device_state: state.as_deref(),
                    ip: ip.as_deref(),
                    eas_device_id: device_id.as_deref(),
                    cert: cert.as_deref(),
                })
                .await?;
            for warning in &answer.warnings {
                eprintln!("warning: {warning}");
            }
            if as_json {
                return json(&answer);
            }
            if answer.suspect {
                eprintln!("note: this DeviceId is bound to a certificate the request does not present: a possible spoof, which inherits no override");
            }
            fields(&[
                ("decision", answer.action.clone()),
                ("because", answer.explanation.clone()),
                (
                    "request",
                    format!(
                        "user {} groups [{}] platform {} client {} certificate {} ({})",
                        answer.user,
                        answer.groups.join(","),
                        answer.platform,
                        answer.client,
                        answer.cert,
                        answer.device_state
                    ),
                ),
            ]);
            Ok(())
        }
    }
}

fn time_or_dash(t: Option<i64>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "-".into())
}

fn last_refusal(p: &Partnership) -> String {
    match (&p.last_refusal_at, &p.last_refusal) {
        (Some(at), Some(why)) => format!("{} {why}", rfc3339(*at)),
        (Some(at), None) => rfc3339(*at),
        _ => "-".into(),
    }
}

fn model(p: &Partnership) -> String {
    p.model
        .clone()
        .or_else(|| p.device_type.clone())
        .unwrap_or_else(|| "-".into())
}

pub async fn eas(e: &Easgate, cmd: EasCommand, as_json: bool) -> Result<(), CliError> {
    let (id, action, reason) = match cmd {
        EasCommand::List { user } => {
            let list = e.list_partnerships(user.as_deref()).await?;
            for o in e.unmanaged_overrides().await? {
                eprintln!("warning: device {o} is allowed WITHOUT a certificate (eas allow --unmanaged): anyone who sends its DeviceId gets to the mail server's password prompt");
            }
            if as_json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|p| {
                    vec![
                        p.user.clone(),
                        if p.suspect {
                            format!("{} (possible spoof)", p.eas_device_id)
                        } else {
                            p.eas_device_id.clone()
                        },
                        model(p),
                        format!("{}/{}", p.platform, p.client),
                        p.device_state.clone(),
                        p.access_state.clone(),
                        time_or_dash(p.last_sync),
                        last_refusal(p),
                        p.access_reason.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(
                &[
                    "USER",
                    "DEVICE ID",
                    "MODEL",
                    "PLATFORM/CLIENT",
                    "STATE",
                    "ACCESS",
                    "LAST SYNC",
                    "LAST REFUSAL",
                    "REASON",
                ],
                &rows,
            );
            return Ok(());
        }
        EasCommand::Show { eas_device_id } => {
            let device = e.show_eas_device(&eas_device_id).await?;
            if as_json {
                return json(&device);
            }
            let mut pairs = vec![("device id", device.eas_device_id.clone())];
            pairs.push((
                "override",
                device
                    .override_
                    .as_ref()
                    .map(|o| {
                        let action = if o.unmanaged {
                            format!("{} WITHOUT a certificate (--unmanaged)", o.action)
                        } else {
                            o.action.clone()
                        };
                        match &o.reason {
                            Some(r) => format!("{action} ({r})"),
                            None => action,
                        }
                    })
                    .unwrap_or_else(|| "none (rules decide)".into()),
            ));
            pairs.push((
                "remote wipe",
                crate::provision_commands::wipe_state(device.wipe.as_ref()),
            ));
            pairs.push((
                "certificates",
                if device.bound_certificates.is_empty() {
                    "-".into()
                } else {
                    device.bound_certificates.join(", ")
                },
            ));
            fields(&pairs);
            for p in &device.partnerships {
                println!();
                fields(&[
                    ("user", p.user.clone()),
                    (
                        "record",
                        if p.suspect {
                            "POSSIBLE SPOOF: requests that named this DeviceId without the certificate bound to it".into()
                        } else {
                            "the device".into()
                        },
                    ),
                    ("device type", p.device_type.clone().unwrap_or_default()),
                    ("model", p.model.clone().unwrap_or_default()),
                    ("os", p.os.clone().unwrap_or_default()),
                    ("friendly name", p.friendly_name.clone().unwrap_or_default()),
                    ("user agent", p.user_agent.clone().unwrap_or_default()),
                    ("platform", p.platform.clone()),
                    ("client", p.client.clone()),
                    ("protocol", p.protocol.clone().unwrap_or_default()),
                    ("first seen", rfc3339(p.first_seen)),
                    ("last seen", rfc3339(p.last_seen)),
                    ("last sync", time_or_dash(p.last_sync)),
                    ("last command", p.last_command.clone().unwrap_or_default()),
                    (
                        "certificate",
                        p.cert_serial.clone().unwrap_or_else(|| "none".into()),
                    ),
                    ("device state", p.device_state.clone()),
                    (
                        "access",
                        format!("{} ({})", p.access_state, p.access_reason),
                    ),
                    ("last refusal", last_refusal(p)),
                    ("eas policy", crate::provision_commands::applied_policy(p)),
                ]);
            }
            return Ok(());
        }
        EasCommand::Wipe {
            eas_device_id,
            account_only,
            cancel,
        } => {
            return crate::provision_commands::eas_wipe(
                e,
                &eas_device_id,
                account_only,
                cancel,
                as_json,
            )
            .await
        }
        EasCommand::Clear { eas_device_id } => {
            let n = e.clear_eas_device(&eas_device_id).await?;
            if as_json {
                return json(&serde_json::json!({
                    "eas_device_id": eas_device_id,
                    "partnerships_removed": n,
                }));
            }
            println!("cleared device {eas_device_id}: {n} partnership(s) forgotten, override and wipe record removed; the rules decide its next request");
            return Ok(());
        }
        EasCommand::Allow {
            eas_device_id,
            reason,
            unmanaged,
        } => {
            e.set_eas_override(&eas_device_id, "allow", reason.as_deref(), unmanaged)
                .await?;
            if as_json {
                return print_override(e, &eas_device_id).await;
            }
            if unmanaged {
                println!("device {eas_device_id}: allow, with or without a certificate (applies to its next request)");
                eprintln!("warning: device {eas_device_id} now reaches the mail server without a certificate; the mail server's own password check is all that stands in the way");
            } else {
                println!("device {eas_device_id}: allow with a valid certificate (applies to its next request)");
                let seen = e.list_partnerships(None).await?;
                let unmanaged_only = seen
                    .iter()
                    .filter(|p| p.eas_device_id.eq_ignore_ascii_case(&eas_device_id) && !p.suspect)
                    .all(|p| p.device_state == "unmanaged");
                if unmanaged_only
                    && seen
                        .iter()
                        .any(|p| p.eas_device_id.eq_ignore_ascii_case(&eas_device_id))
                {
                    eprintln!("note: device {eas_device_id} has only been seen without a certificate; this allow needs one (enroll the device, or `eas allow {eas_device_id} --unmanaged` with passthrough authentication)");
                }
            }
            return Ok(());
        }
        EasCommand::Block {
            eas_device_id,
            reason,
        } => (eas_device_id, "block", reason),
        EasCommand::Quarantine {
            eas_device_id,
            reason,
        } => (eas_device_id, "quarantine", reason),
    };
    let action = e
        .set_eas_override(&id, action, reason.as_deref(), false)
        .await?;
    if as_json {
        return print_override(e, &id).await;
    }
    println!("device {id}: {action} (applies to its next request)");
    Ok(())
}

/// `--json` of `eas allow|block|quarantine`: the override as stored.
async fn print_override(e: &Easgate, eas_device_id: &str) -> Result<(), CliError> {
    let device = e.show_eas_device(eas_device_id).await?;
    json(&device.override_)
}
