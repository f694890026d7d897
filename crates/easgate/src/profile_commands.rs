//! `profile …`: create, list and show device profiles, and render one for a device.

use std::io::Write;

use easgate_ops::profiles::ProfileRequest;
use easgate_ops::time_fmt::rfc3339;
use easgate_ops::Easgate;
use easgate_store::Profile;

use crate::cli::{word, ProfileCommand};
use crate::commands::{write_file, CliError};
use crate::output::{fields, json, table};

fn profile_fields(p: &Profile) -> Vec<(&'static str, String)> {
    vec![
        ("name", p.name.clone()),
        ("platform", p.platform.clone()),
        ("template", p.template.clone()),
        ("eas host", p.eas_host.clone()),
        ("account name", p.account_name.clone()),
        ("email", p.email.clone()),
        ("username", p.username.clone()),
        ("domain", p.domain.clone().unwrap_or_default()),
        ("delivery", p.delivery.clone()),
        ("groups", p.groups.join(", ")),
        ("created", rfc3339(p.created_at)),
    ]
}

pub async fn profile(e: &Easgate, cmd: ProfileCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        ProfileCommand::Create {
            name,
            platform,
            template,
            eas_host,
            account_name,
            email,
            username,
            domain,
            delivery,
            groups,
        } => {
            let p = e
                .create_profile(ProfileRequest {
                    name,
                    platform: word(&platform),
                    template,
                    eas_host,
                    account_name,
                    email,
                    username,
                    domain,
                    delivery: Some(word(&delivery)),
                    groups,
                })
                .await?;
            if as_json {
                return json(&p);
            }
            println!("created profile `{}`", p.name);
            fields(&profile_fields(&p));
            Ok(())
        }
        ProfileCommand::List => {
            let profiles = e.list_profiles().await?;
            if as_json {
                return json(&profiles);
            }
            let rows = profiles
                .iter()
                .map(|p| {
                    vec![
                        p.name.clone(),
                        p.platform.clone(),
                        p.template.clone(),
                        p.eas_host.clone(),
                        p.delivery.clone(),
                        p.groups.join(","),
                    ]
                })
                .collect::<Vec<_>>();
            table(
                &[
                    "NAME", "PLATFORM", "TEMPLATE", "EAS HOST", "DELIVERY", "GROUPS",
                ],
                &rows,
            );
            Ok(())
        }
        ProfileCommand::Show { name } => {
            let p = e.get_profile(&name).await?;
            if as_json {
                return json(&p);
            }
            fields(&profile_fields(&p));
            Ok(())
        }
        ProfileCommand::Remove { name } => {
            e.remove_profile(&name).await?;
            crate::output::removed(
                "profile",
                &name,
                as_json,
                &format!("removed profile `{name}`"),
            )
        }
        ProfileCommand::Render {
            name,
            device,
            signed,
            out,
        } => {
            if let Some(path) = &out {
                crate::commands::check_writable(path)?;
            }
            let rendered = e.render_profile(&name, &device, signed).await?;
            match &out {
                Some(path) => {
                    write_file(path, &rendered.bytes, true)?;
                    eprintln!(
                        "wrote {} profile `{}` for device {} to {} ({} bytes{})",
                        rendered.platform,
                        rendered.profile,
                        rendered.device,
                        path.display(),
                        rendered.bytes.len(),
                        if rendered.signed { ", signed" } else { "" }
                    );
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(&rendered.bytes)
                        .and_then(|_| stdout.flush())
                        .map_err(|e| CliError::Output(e.to_string()))?;
                }
            }
            Ok(())
        }
    }
}
