//! `token …`: admin API tokens. The secret is printed once, on creation.

use easgate_ops::time_fmt::rfc3339;
use easgate_ops::tokens::Role;
use easgate_ops::Easgate;

use crate::cli::{RoleArg, TokenCommand};
use crate::commands::{parse_duration, CliError};
use crate::output::{json, removed, table};

fn role(arg: RoleArg) -> Role {
    match arg {
        RoleArg::Admin => Role::Admin,
        RoleArg::Helpdesk => Role::Helpdesk,
        RoleArg::Auditor => Role::Auditor,
        RoleArg::Enroller => Role::Enroller,
    }
}

pub async fn token(e: &Easgate, cmd: TokenCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        TokenCommand::Create {
            name,
            role: role_arg,
            expires,
        } => {
            let lifetime = expires.as_deref().map(parse_duration).transpose()?;
            let created = e.create_token(&name, role(role_arg), lifetime).await?;
            if as_json {
                return json(&created);
            }
            let expiry = created.token.expires_at.map_or_else(
                || "never expires".to_string(),
                |at| format!("expires {}", rfc3339(at)),
            );
            eprintln!(
                "created token {} (role {}, {expiry}); it is shown once, keep it safe:",
                created.token.name, created.token.role
            );
            println!("{}", created.secret);
            Ok(())
        }
        TokenCommand::List => {
            let tokens = e.list_tokens().await?;
            if as_json {
                return json(&tokens);
            }
            let rows = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.role.clone(),
                        rfc3339(t.created_at),
                        t.expires_at.map_or_else(|| "never".into(), rfc3339),
                        t.revoked_at
                            .map_or_else(|| "-".into(), |at| format!("revoked {}", rfc3339(at))),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["NAME", "ROLE", "CREATED", "EXPIRES", "STATUS"], &rows);
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            e.revoke_token(&name).await?;
            removed(
                "token",
                &name,
                as_json,
                &format!("revoked token {name}: its next call gets 401"),
            )
        }
    }
}
