//! Running one CLI command: open the store, call the operation, print the result.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use easgate_ops::certs::KeySource;
use easgate_ops::templates::TemplateRequest;
use easgate_ops::time_fmt::rfc3339;
use easgate_ops::{Easgate, OpenOptions, OpsError};
use easgate_pki::input::to_pem;
use easgate_pki::revocation::RevocationReason;
use easgate_store::CertStatus;
use thiserror::Error;

use crate::cli::*;
use crate::output::{fields, json, removed, table};

/// Why a command failed; printed after `error:`.
#[derive(Debug, Error)]
pub enum CliError {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("cannot print the result: {0}")]
    Output(String),
    #[error(transparent)]
    Serve(#[from] easgate_server::ServeError),
    #[error("the certificate is not fit for EAS certificate authentication: {0} check(s) failed")]
    Unfit(usize),
    #[error("{0} setup check(s) failed (see the FAIL lines above)")]
    SetupChecks(usize),
    #[error(transparent)]
    Migrate(#[from] easgate_store::copy::CopyError),
    #[error("not a certificate (PEM or DER): {} ({why})", .file.display())]
    NotACertificate { file: PathBuf, why: String },
}

fn read_file(path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|source| CliError::File {
        action: "read",
        path: path.to_path_buf(),
        source,
    })
}

/// Fail early, before anything is issued, if an output file cannot be written.
pub(crate) fn check_writable(path: &Path) -> Result<(), CliError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(CliError::File {
            action: "write",
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "its directory does not exist",
            ),
        });
    }
    Ok(())
}

pub(crate) fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), CliError> {
    let err = |source| CliError::File {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(data)
        .and_then(|_| file.sync_all())
        .map_err(err)
}

/// `cli:<OS user>` for the audit trail: `$USER`, else the name of the process's uid in
/// /etc/passwd (services and containers often run without `$USER`), else `cli:uid<N>`.
fn actor() -> String {
    if let Some(user) = std::env::var("USER").ok().filter(|u| !u.trim().is_empty()) {
        return format!("cli:{user}");
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "cli:uid-unknown".into();
    };
    let name = fs::read_to_string("/etc/passwd").ok().and_then(|passwd| {
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
    });
    match name {
        Some(name) => format!("cli:{name}"),
        None => format!("cli:uid{uid}"),
    }
}

/// Parse `90s`, `30m`, `24h`, `7d` into seconds.
pub fn parse_duration(text: &str) -> Result<i64, CliError> {
    easgate_ops::time_fmt::parse_duration(text).ok_or_else(|| {
        CliError::Usage(format!(
            "invalid duration `{}`: use a number with s, m, h or d, e.g. 24h",
            text.trim()
        ))
    })
}

/// The data directory when neither `--data-dir`, `EASGATE_DATA_DIR` nor a config file names one.
const DEFAULT_DATA_DIR: &str = "./easgate-data";

/// `init`: the data directory is made by opening it; the rest is what `serve` makes first.
async fn init(easgate: &Easgate, args: &InitArgs, public_url_given: bool) -> Result<(), CliError> {
    if args.no_ca {
        if easgate.initialised.is_empty() {
            println!("{}: already initialised", easgate.data_dir.display());
        }
        return Ok(());
    }
    let notes = easgate_server::init::initialise(easgate, public_url_given, None)
        .await
        .map_err(CliError::Serve)?;
    for note in &notes {
        eprintln!("easgate: {note}");
    }
    if notes.is_empty() && easgate.initialised.is_empty() {
        println!("{}: already initialised", easgate.data_dir.display());
    }
    Ok(())
}

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let file = match &cli.command {
        Command::Serve(args) => match &args.config {
            Some(path) => easgate_server::FileConfig::load(path).map_err(CliError::Serve)?,
            None => easgate_server::FileConfig::default(),
        },
        _ => easgate_server::FileConfig::default(),
    };
    // Settings are checked before anything is created on disk.
    let serve_settings = match &cli.command {
        Command::Serve(args) => Some(serve_config(args, &file)?),
        _ => None,
    };
    let public_url = cli.public_url.clone().or(file.public_url.clone());
    let easgate = Easgate::open(OpenOptions {
        data_dir: cli
            .data_dir
            .clone()
            .or(file.data_dir.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        database_url: cli.database_url.clone().or(file.database_url.clone()),
        public_url: public_url.clone(),
        master_key_env: std::env::var(easgate_ops::master_key::ENV_VAR).ok(),
        actor: actor(),
        create: matches!(cli.command, Command::Serve(_) | Command::Init(_)),
    })
    .await?;
    for note in &easgate.initialised {
        eprintln!("easgate: {note}");
    }
    if let Command::Ca(CaCommand::Create { .. }) = &cli.command {
        let url = easgate.public_url().await?;
        if let Some(warning) = easgate_ops::context::public_url_warning(&url) {
            eprintln!("warning: {warning}");
        }
    }
    let as_json = cli.json;
    match cli.command {
        Command::Serve(_) => match serve_settings {
            Some(config) => serve(easgate, config, public_url.is_some()).await,
            None => Err(CliError::Usage("serve settings missing".into())),
        },
        Command::Init(args) => init(&easgate, &args, public_url.is_some()).await,
        Command::Ca(cmd) => ca(&easgate, cmd, as_json).await,
        Command::Trust(cmd) => trust(&easgate, cmd, as_json).await,
        Command::User(cmd) => user(&easgate, cmd, as_json).await,
        Command::Group(cmd) => group(&easgate, cmd, as_json).await,
        Command::Template(cmd) => template(&easgate, cmd, as_json).await,
        Command::Device(cmd) => device(&easgate, cmd, as_json).await,
        Command::Cert(cmd) => cert(&easgate, cmd, as_json).await,
        Command::Crl(cmd) => crl(&easgate, cmd, as_json).await,
        Command::Profile(cmd) => crate::profile_commands::profile(&easgate, cmd, as_json).await,
        Command::Policy(cmd) => crate::access_commands::policy(&easgate, cmd, as_json).await,
        Command::Eas(cmd) => crate::access_commands::eas(&easgate, cmd, as_json).await,
        Command::EasPolicy(cmd) => {
            crate::provision_commands::eas_policy(&easgate, cmd, as_json).await
        }
        Command::Audit(args) => audit(&easgate, args, as_json).await,
        Command::Token(cmd) => crate::token_commands::token(&easgate, cmd, as_json).await,
        Command::Doctor(args) => doctor(&easgate, args, as_json).await,
        Command::Migrate(args) => crate::migrate_command::migrate(&easgate, args, as_json).await,
    }
}

/// `easgate doctor`: the report, one line per check (a failure's fix on the next line), or
/// the report as JSON; exit 1 when a check failed.
async fn doctor(e: &Easgate, args: DoctorArgs, as_json: bool) -> Result<(), CliError> {
    let report = e
        .doctor(&easgate_ops::doctor::DoctorOptions {
            upstream: args.upstream,
        })
        .await?;
    if as_json {
        json(&report)?;
    } else {
        let width = report
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0);
        for check in &report.checks {
            let status = match check.status {
                easgate_ops::doctor::CheckStatus::Fail => "FAIL",
                other => other.as_str(),
            };
            println!("{status:<5} {:<width$}  {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                println!("{:<5} {:<width$}  → fix: {fix}", "", "");
            }
        }
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        return Err(CliError::SetupChecks(failed));
    }
    Ok(())
}

async fn ca(e: &Easgate, cmd: CaCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        CaCommand::Create {
            name,
            key,
            subject,
            validity_days,
            scep_static_challenge,
            scep_no_des,
        } => {
            if let Some(c) = &scep_static_challenge {
                if c.trim().len() < 8 {
                    return Err(CliError::Usage(
                        "--scep-static-challenge needs at least 8 characters".into(),
                    ));
                }
            }
            let info = e
                .create_ca_with(
                    &name,
                    key.into(),
                    subject.as_deref(),
                    Some(validity_days),
                    scep_no_des,
                )
                .await?;
            if let Some(c) = &scep_static_challenge {
                e.set_scep_static_challenge(&name, Some(c)).await?;
            }
            if as_json {
                return json(&info);
            }
            println!(
                "created CA `{}` ({}, {})",
                info.ca.name, info.ca.key_type, info.ca.subject
            );
            println!("SHA-256 fingerprint: {}", info.sha256_fingerprint);
            Ok(())
        }
        CaCommand::SetScepCacert { name, ra_only, .. } => {
            e.set_scep_ra_only(&name, ra_only).await?;
            if as_json {
                return json(&e.get_ca(&name).await?);
            }
            if ra_only {
                println!("CA `{name}`: GetCACert answers with the SCEP RA certificate alone");
            } else {
                println!("CA `{name}`: GetCACert answers with the CA and its SCEP RA");
            }
            Ok(())
        }
        CaCommand::SetScepDes { name, refuse, .. } => {
            e.set_scep_no_des(&name, refuse).await?;
            if as_json {
                return json(&e.get_ca(&name).await?);
            }
            if refuse {
                println!("CA `{name}` refuses single-DES SCEP requests (failInfo badAlg)");
            } else {
                println!("CA `{name}` accepts single-DES SCEP requests");
            }
            Ok(())
        }
        CaCommand::Remove { name, revoke_all } => {
            let gateway_ca = e
                .store
                .get_setting(easgate_ops::profiles::GATEWAY_TLS_CA_SETTING)
                .await
                .map_err(OpsError::from)?;
            let revoked = e.remove_ca(&name, revoke_all).await?;
            if gateway_ca.as_deref() == Some(name.as_str()) {
                eprintln!("warning: CA `{name}` issued the gateway's TLS certificate: delete gateway.pem and gateway.key in the data directory and restart `serve` to get one from another CA (profiles carry that CA as their root)");
            }
            if as_json {
                return json(
                    &serde_json::json!({ "removed": "CA", "name": name, "revoked": revoked }),
                );
            }
            println!(
                "removed CA `{name}`; revoked {} certificate(s)",
                revoked.len()
            );
            Ok(())
        }
        CaCommand::SetScepChallenge {
            name,
            challenge,
            none,
        } => {
            let said = match (challenge, none) {
                (Some(c), false) => {
                    e.set_scep_static_challenge(&name, Some(&c)).await?;
                    "accepts the static SCEP challenge (stored hashed)"
                }
                (None, true) => {
                    e.set_scep_static_challenge(&name, None).await?;
                    "accepts only per-device challenges"
                }
                _ => return Err(CliError::Usage("give --challenge SECRET or --none".into())),
            };
            if as_json {
                return json(&e.get_ca(&name).await?);
            }
            println!("CA `{name}` {said}");
            Ok(())
        }
        CaCommand::List => {
            let cas = e.list_cas().await?;
            if as_json {
                return json(&cas);
            }
            let rows = cas
                .iter()
                .map(|c| {
                    vec![
                        c.ca.name.clone(),
                        c.ca.key_type.clone(),
                        rfc3339(c.ca.not_after),
                        c.ca.subject.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["NAME", "KEY", "NOT AFTER", "SUBJECT"], &rows);
            Ok(())
        }
        CaCommand::Show { name } => {
            let c = e.show_ca(&name).await?;
            if as_json {
                return json(&c);
            }
            let mut pairs = vec![
                ("name", c.ca.name.clone()),
                ("subject", c.ca.subject.clone()),
                ("key", c.ca.key_type.clone()),
                ("serial", c.serial.clone()),
                ("not before", rfc3339(c.ca.not_before)),
                ("not after", rfc3339(c.ca.not_after)),
                ("sha256 fingerprint", c.sha256_fingerprint.clone()),
                ("CRL", c.crl_url.clone()),
                ("delta CRL", c.delta_crl_url.clone()),
                ("OCSP", c.ocsp_url.clone()),
                ("CA issuers", c.ca_issuers_url.clone()),
                ("SCEP", c.scep_url.clone()),
                (
                    "SCEP GetCACert",
                    if c.ca.scep_ra_only {
                        "the RA alone (--ra-only)"
                    } else {
                        "the CA (and its RA)"
                    }
                    .to_string(),
                ),
                (
                    "SCEP single DES",
                    if c.ca.scep_no_des {
                        "refused"
                    } else {
                        "accepted"
                    }
                    .to_string(),
                ),
            ];
            match &c.scep_ra {
                Some(ra) => pairs.extend([
                    ("SCEP RA", ra.subject.clone()),
                    ("SCEP RA serial", ra.serial.clone()),
                    ("SCEP RA not after", rfc3339(ra.not_after)),
                    ("SCEP RA sha256 fingerprint", ra.sha256_fingerprint.clone()),
                    ("SCEP RA sha1 fingerprint", ra.sha1_fingerprint.clone()),
                ]),
                None => pairs.push((
                    "SCEP RA",
                    "none (the CA's own RSA key decrypts SCEP requests)".to_string(),
                )),
            }
            fields(&pairs);
            if let Some(ra) = &c.scep_ra {
                print!("{}", ra.pem);
            }
            Ok(())
        }
        CaCommand::Export { name, format, out } => {
            let data = e
                .export_ca(&name, matches!(format, CertFormat::Pem))
                .await?;
            match out {
                Some(path) => {
                    check_writable(&path)?;
                    write_file(&path, &data, false)?;
                    eprintln!("wrote {}", path.display());
                    Ok(())
                }
                None => std::io::stdout()
                    .write_all(&data)
                    .map_err(|e| CliError::Output(e.to_string())),
            }
        }
        CaCommand::EntraScript { name } => {
            let script = e.entra_script(&name).await?;
            for line in script.lines() {
                if let Some(w) = line.strip_prefix("# WARNING: ") {
                    eprintln!("warning: {w}");
                }
            }
            print!("{script}");
            Ok(())
        }
    }
}

async fn trust(e: &Easgate, cmd: TrustCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        TrustCommand::Add {
            name,
            cert,
            crl_url,
            delta_crl_url,
        } => {
            let bytes = read_file(&cert)?;
            let t = e
                .add_trusted_ca(&name, &bytes, crl_url.as_deref(), delta_crl_url.as_deref())
                .await?;
            if as_json {
                return json(&t);
            }
            println!("trusting `{}` ({})", t.name, t.subject);
            if t.crl_url.is_none() {
                println!("note: no --crl-url: the gateway cannot check revocation of this CA's certificates and will refuse them unless told otherwise");
            }
            Ok(())
        }
        TrustCommand::List => {
            let list = e.list_trusted_cas().await?;
            if as_json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.subject.clone(),
                        t.crl_url.clone().unwrap_or_else(|| "-".into()),
                        t.delta_crl_url.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["NAME", "SUBJECT", "CRL", "DELTA CRL"], &rows);
            Ok(())
        }
        TrustCommand::Remove { name } => {
            e.remove_trusted_ca(&name).await?;
            removed(
                "trusted CA",
                &name,
                as_json,
                &format!("no longer trusting `{name}`"),
            )
        }
    }
}

async fn user(e: &Easgate, cmd: UserCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        UserCommand::Add {
            upn,
            email,
            name,
            groups,
        } => {
            let u = e.add_user(&upn, &email, name.as_deref(), &groups).await?;
            if as_json {
                return json(&u);
            }
            println!("added user {} <{}>", u.upn, u.email);
            Ok(())
        }
        UserCommand::List => {
            let users = e.list_users().await?;
            if as_json {
                return json(&users);
            }
            let rows = users
                .iter()
                .map(|u| {
                    vec![
                        u.upn.clone(),
                        u.email.clone(),
                        u.display_name.clone().unwrap_or_default(),
                        u.groups.join(","),
                        if u.disabled {
                            "disabled".into()
                        } else {
                            "enabled".into()
                        },
                    ]
                })
                .collect::<Vec<_>>();
            table(&["UPN", "EMAIL", "NAME", "GROUPS", "STATE"], &rows);
            Ok(())
        }
        UserCommand::Show { upn } => {
            let u = e.get_user(&upn).await?;
            if as_json {
                return json(&u);
            }
            fields(&[
                ("upn", u.upn.clone()),
                ("email", u.email.clone()),
                ("name", u.display_name.clone().unwrap_or_default()),
                ("groups", u.groups.join(", ")),
                (
                    "state",
                    if u.disabled {
                        "disabled".into()
                    } else {
                        "enabled".into()
                    },
                ),
            ]);
            Ok(())
        }
        UserCommand::Disable { upn } => {
            let (u, revoked) = e.disable_user(&upn).await?;
            if as_json {
                return json(&serde_json::json!({ "user": u, "revoked": revoked }));
            }
            println!(
                "disabled {}; revoked {} certificate(s)",
                u.upn,
                revoked.len()
            );
            for serial in revoked {
                println!("  revoked {serial} (affiliationChanged)");
            }
            Ok(())
        }
        UserCommand::Enable { upn } => {
            let u = e.enable_user(&upn).await?;
            if as_json {
                return json(&u);
            }
            println!("enabled {}", u.upn);
            Ok(())
        }
        UserCommand::Remove { upn } => {
            e.remove_user(&upn).await?;
            removed("user", &upn, as_json, &format!("removed user {upn}"))
        }
        UserCommand::Set {
            upn,
            email,
            name,
            add_groups,
            remove_groups,
        } => {
            let u = e
                .update_user(
                    &upn,
                    easgate_store::UserChange {
                        email,
                        display_name: name,
                        add_groups,
                        remove_groups,
                    },
                )
                .await?;
            if as_json {
                return json(&u);
            }
            println!(
                "changed {} <{}> groups [{}]",
                u.upn,
                u.email,
                u.groups.join(",")
            );
            Ok(())
        }
    }
}

async fn group(e: &Easgate, cmd: GroupCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        GroupCommand::Add { name } => {
            let g = e.add_group(&name).await?;
            if as_json {
                return json(&g);
            }
            println!("added group {}", g.name);
            Ok(())
        }
        GroupCommand::Remove { name } => {
            e.remove_group(&name).await?;
            removed("group", &name, as_json, &format!("removed group {name}"))
        }
        GroupCommand::List => {
            let groups = e.list_groups().await?;
            if as_json {
                return json(&groups);
            }
            let rows = groups
                .iter()
                .map(|g| vec![g.name.clone(), g.members.to_string()])
                .collect::<Vec<_>>();
            table(&["NAME", "MEMBERS"], &rows);
            Ok(())
        }
    }
}

fn template_fields(t: &easgate_store::Template) -> Vec<(&'static str, String)> {
    vec![
        ("name", t.name.clone()),
        ("ca", t.ca.clone()),
        ("subject", t.subject.clone()),
        ("sans", t.sans.join(", ")),
        ("key", t.key_type.clone()),
        ("validity days", t.validity_days.to_string()),
        ("renew before days", t.renew_before_days.to_string()),
        ("default", t.is_default.to_string()),
    ]
}

async fn template(e: &Easgate, cmd: TemplateCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        TemplateCommand::Create {
            name,
            ca,
            subject,
            sans,
            key,
            validity_days,
            renew_before_days,
            default,
        } => {
            let t = e
                .create_template(TemplateRequest {
                    name,
                    ca,
                    subject,
                    sans,
                    key_type: key.into(),
                    validity_days,
                    renew_before_days,
                    is_default: default,
                })
                .await?;
            if as_json {
                return json(&t);
            }
            println!("created template `{}`", t.name);
            fields(&template_fields(&t));
            Ok(())
        }
        TemplateCommand::List => {
            let list = e.list_templates().await?;
            if as_json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.ca.clone(),
                        t.subject.clone(),
                        t.sans.join(","),
                        t.validity_days.to_string(),
                        if t.is_default {
                            "yes".into()
                        } else {
                            String::new()
                        },
                    ]
                })
                .collect::<Vec<_>>();
            table(&["NAME", "CA", "SUBJECT", "SANS", "DAYS", "DEFAULT"], &rows);
            Ok(())
        }
        TemplateCommand::Show { name } => {
            let t = e.get_template(&name).await?;
            if as_json {
                return json(&t);
            }
            fields(&template_fields(&t));
            Ok(())
        }
        TemplateCommand::Set {
            name,
            subject,
            sans,
            key,
            validity_days,
            renew_before_days,
        } => {
            let t = e
                .update_template(easgate_ops::templates::TemplateChange {
                    name,
                    subject,
                    sans: (!sans.is_empty()).then_some(sans),
                    key_type: key.map(Into::into),
                    validity_days,
                    renew_before_days,
                })
                .await?;
            if as_json {
                return json(&t);
            }
            println!(
                "changed template `{}` (certificates already issued are unchanged)",
                t.name
            );
            fields(&template_fields(&t));
            Ok(())
        }
        TemplateCommand::Default { name } => {
            let t = e.set_default_template(&name).await?;
            if as_json {
                return json(&t);
            }
            println!("template `{}` is the default", t.name);
            Ok(())
        }
        TemplateCommand::Remove { name } => {
            e.remove_template(&name).await?;
            removed(
                "template",
                &name,
                as_json,
                &format!("removed template `{name}`"),
            )
        }
    }
}

/// What `device enroll` and `device reenroll` print: the secrets, once.
fn print_enrollment(en: &easgate_ops::devices::Enrollment, as_json: bool) -> Result<(), CliError> {
    if as_json {
        return json(en);
    }
    fields(&[
        ("uid", en.uid.clone()),
        ("user", en.user.clone()),
        ("template", en.template.clone()),
        ("SCEP URL", en.scep_url.clone()),
        ("challenge", en.challenge.clone()),
        ("challenge expires", rfc3339(en.challenge_expires_at)),
        ("profile URL", en.profile_url.clone()),
    ]);
    println!("The challenge works once and is shown only now.");
    Ok(())
}

async fn device(e: &Easgate, cmd: DeviceCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        DeviceCommand::Reenroll {
            uid,
            challenge_days,
        } => {
            let en = e.reenroll_device(&uid, Some(challenge_days)).await?;
            print_enrollment(&en, as_json)
        }
        DeviceCommand::Enroll {
            user,
            platform,
            template,
            uid,
            serial_number,
            challenge_days,
        } => {
            let en = e
                .enroll_device(
                    &user,
                    platform.as_str(),
                    template.as_deref(),
                    uid.as_deref(),
                    serial_number.as_deref(),
                    Some(challenge_days),
                )
                .await?;
            print_enrollment(&en, as_json)
        }
        DeviceCommand::List { user } => {
            let list = e.list_devices(user.as_deref()).await?;
            if as_json {
                return json(&list);
            }
            let rows = list
                .iter()
                .map(|d| {
                    vec![
                        d.uid.clone(),
                        d.user.clone(),
                        d.platform.clone(),
                        d.state.clone(),
                        d.template.clone().unwrap_or_default(),
                        rfc3339(d.created_at),
                    ]
                })
                .collect::<Vec<_>>();
            table(
                &["UID", "USER", "PLATFORM", "STATE", "TEMPLATE", "CREATED"],
                &rows,
            );
            Ok(())
        }
        DeviceCommand::Show { uid } => {
            let d = e.get_device(&uid).await?;
            let certs = e.list_certificates(Some(&uid), None).await?;
            if as_json {
                return json(&serde_json::json!({ "device": d, "certificates": certs }));
            }
            fields(&[
                ("uid", d.uid.clone()),
                ("user", d.user.clone()),
                ("platform", d.platform.clone()),
                ("state", d.state.clone()),
                ("template", d.template.clone().unwrap_or_default()),
                ("serial number", d.device_serial.clone().unwrap_or_default()),
                ("created", rfc3339(d.created_at)),
                ("updated", rfc3339(d.updated_at)),
            ]);
            println!();
            cert_table(&certs);
            Ok(())
        }
        DeviceCommand::Retire { uid } => end_device(e, &uid, "retired", as_json).await,
        DeviceCommand::Wipe { uid } => {
            crate::provision_commands::wipe_device(e, &uid, as_json).await
        }
    }
}

async fn end_device(e: &Easgate, uid: &str, state: &str, as_json: bool) -> Result<(), CliError> {
    let (d, revoked) = e.end_device(uid, state).await?;
    if as_json {
        return json(&serde_json::json!({ "device": d, "revoked": revoked }));
    }
    println!(
        "device {} is {}; revoked {} certificate(s)",
        d.uid,
        d.state,
        revoked.len()
    );
    for serial in revoked {
        println!("  revoked {serial} (cessationOfOperation)");
    }
    Ok(())
}

fn cert_table(certs: &[easgate_store::Certificate]) {
    let rows = certs
        .iter()
        .map(|c| {
            vec![
                c.serial.clone(),
                c.status.as_str().to_string(),
                c.device.clone().unwrap_or_default(),
                c.ca.clone(),
                rfc3339(c.not_after),
                c.subject.clone(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &["SERIAL", "STATUS", "DEVICE", "CA", "NOT AFTER", "SUBJECT"],
        &rows,
    );
}

async fn cert(e: &Easgate, cmd: CertCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        CertCommand::Issue {
            template,
            device,
            csr,
            out_key,
            out,
            p12,
            p12_password,
        } => {
            check_writable(&out)?;
            for path in [&out_key, &p12].into_iter().flatten() {
                check_writable(path)?;
            }
            let csr_bytes = csr.as_deref().map(read_file).transpose()?;
            let source = match &csr_bytes {
                Some(bytes) => KeySource::Csr(bytes),
                None => KeySource::Generate,
            };
            let p12_password = match (&p12, p12_password) {
                (Some(_), Some(p)) if p.is_empty() => {
                    return Err(CliError::Usage("--p12-password must not be empty".into()))
                }
                (_, p) => p,
            };
            let issued = e.issue_certificate(&template, &device, source).await?;
            write_file(&out, to_pem("CERTIFICATE", &issued.der).as_bytes(), false)?;
            if let (Some(path), Some(key)) = (&out_key, &issued.key) {
                write_file(path, key.pkcs8_pem().as_bytes(), true)?;
            }
            if let (Some(path), Some(key), Some(password)) = (&p12, &issued.key, &p12_password) {
                let bundle = easgate_pki::pkcs12::build(
                    key,
                    &issued.der,
                    &issued.ca_der,
                    &issued.record.subject,
                    password,
                    easgate_pki::pkcs12::Pkcs12Format::Modern,
                )
                .map_err(OpsError::from)?;
                write_file(path, &bundle, true)?;
            }
            if as_json {
                return json(&issued.record);
            }
            println!(
                "issued {} for device {} ({})",
                issued.record.serial, device, issued.record.subject
            );
            println!("certificate: {}", out.display());
            if let Some(path) = out_key {
                println!("private key: {} (mode 0600)", path.display());
            }
            if let Some(path) = p12 {
                println!("PKCS#12:     {} (mode 0600)", path.display());
            }
            Ok(())
        }
        CertCommand::List {
            device,
            expiring: true,
            ..
        } => {
            let mut expiring = e.expiring_certificates().await?;
            if let Some(uid) = &device {
                e.get_device(uid).await?;
                expiring.retain(|x| x.certificate.device.as_deref() == Some(uid.as_str()));
            }
            if as_json {
                return json(&expiring);
            }
            let rows = expiring
                .iter()
                .map(|x| {
                    let c = &x.certificate;
                    vec![
                        c.serial.clone(),
                        c.device.clone().unwrap_or_default(),
                        rfc3339(c.not_after),
                        rfc3339(x.renew_from),
                        if x.renewal_started {
                            "started"
                        } else {
                            "not yet"
                        }
                        .to_string(),
                        c.subject.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(
                &[
                    "SERIAL",
                    "DEVICE",
                    "NOT AFTER",
                    "RENEW FROM",
                    "RENEWAL",
                    "SUBJECT",
                ],
                &rows,
            );
            Ok(())
        }
        CertCommand::List { device, status, .. } => {
            let status = status.map(|s| match s {
                StatusArg::Valid => CertStatus::Valid,
                StatusArg::Revoked => CertStatus::Revoked,
                StatusArg::Expired => CertStatus::Expired,
            });
            let certs = e.list_certificates(device.as_deref(), status).await?;
            if as_json {
                return json(&certs);
            }
            cert_table(&certs);
            Ok(())
        }
        CertCommand::Show { serial, pem } => {
            let c = e.get_certificate(&serial).await?;
            if as_json {
                let mut value =
                    serde_json::to_value(&c).map_err(|e| CliError::Output(e.to_string()))?;
                value["pem"] = serde_json::Value::String(to_pem("CERTIFICATE", &c.der));
                return json(&value);
            }
            let mut pairs = vec![
                ("serial", c.serial.clone()),
                ("status", c.status.as_str().to_string()),
                ("subject", c.subject.clone()),
                ("sans", c.sans.join(", ")),
                ("ca", c.ca.clone()),
                ("device", c.device.clone().unwrap_or_default()),
                ("template", c.template.clone().unwrap_or_default()),
                ("key", c.key_type.clone()),
                ("not before", rfc3339(c.not_before)),
                ("not after", rfc3339(c.not_after)),
                ("issued", rfc3339(c.issued_at)),
            ];
            if let Some(at) = c.revoked_at {
                pairs.push(("revoked", rfc3339(at)));
                pairs.push(("reason", c.revocation_reason.clone().unwrap_or_default()));
            }
            fields(&pairs);
            if pem {
                print!("{}", to_pem("CERTIFICATE", &c.der));
            }
            Ok(())
        }
        CertCommand::Revoke { serial, reason } => {
            let reason = match reason {
                ReasonArg::Unspecified => RevocationReason::Unspecified,
                ReasonArg::KeyCompromise => RevocationReason::KeyCompromise,
                ReasonArg::AffiliationChanged => RevocationReason::AffiliationChanged,
                ReasonArg::Superseded => RevocationReason::Superseded,
                ReasonArg::CessationOfOperation => RevocationReason::CessationOfOperation,
                ReasonArg::CertificateHold => RevocationReason::CertificateHold,
            };
            let c = e.revoke_certificate(&serial, reason).await?;
            if as_json {
                return json(&c);
            }
            println!("revoked {} ({})", c.serial, reason);
            Ok(())
        }
        CertCommand::Doctor { file, ca } => {
            let bytes = read_file(&file)?;
            let report = e.doctor_certificate(&bytes, ca.as_deref()).await?;
            if let Some(why) = report.unreadable() {
                return Err(CliError::NotACertificate {
                    file: file.clone(),
                    why: why.to_string(),
                });
            }
            if as_json {
                let checks: Vec<_> = report
                    .checks
                    .iter()
                    .map(|c| serde_json::json!({"check": c.id, "result": c.verdict.to_string(), "detail": c.detail}))
                    .collect();
                json(&serde_json::json!({"fit": report.fit(), "checks": checks}))?;
            } else {
                for c in &report.checks {
                    println!("{:<4}  {:<20} {}", c.verdict.to_string(), c.id, c.detail);
                }
            }
            let failed = report.failures();
            if failed > 0 {
                return Err(CliError::Unfit(failed));
            }
            if !as_json {
                println!("fit for EAS certificate authentication");
            }
            Ok(())
        }
    }
}

/// `serve` settings from flags, the config file and defaults, validated.
fn serve_config(
    args: &ServeArgs,
    file: &easgate_server::FileConfig,
) -> Result<easgate_server::ServeConfig, CliError> {
    use easgate_server::config::{pick_addr, pick_duration};
    Ok(easgate_server::ServeConfig {
        public_listen: pick_addr(
            "--public-listen",
            args.public_listen.as_deref(),
            file.public_listen.as_deref(),
            "0.0.0.0:8080",
        )?,
        admin_listen: pick_addr(
            "--admin-listen",
            args.admin_listen.as_deref(),
            file.admin_listen.as_deref(),
            "127.0.0.1:9090",
        )?,
        admin_tls: {
            let cert = args
                .admin_tls_cert
                .clone()
                .or_else(|| file.admin_tls_cert.clone())
                .map(PathBuf::from);
            let key = args
                .admin_tls_key
                .clone()
                .or_else(|| file.admin_tls_key.clone())
                .map(PathBuf::from);
            if cert.is_some() != key.is_some() {
                return Err(CliError::Usage(
                    "admin_tls_cert and admin_tls_key go together".into(),
                ));
            }
            (args.admin_tls || file.admin_tls.unwrap_or(false) || cert.is_some())
                .then_some(easgate_server::config::AdminTls { cert, key })
        },
        crl_interval: pick_duration(
            "--crl-interval",
            args.crl_interval.as_deref(),
            file.crl_interval.as_deref(),
            "12h",
        )?,
        crl_validity: pick_duration(
            "--crl-validity",
            args.crl_validity.as_deref(),
            file.crl_validity.as_deref(),
            "24h",
        )?,
        delta_crl_delay: pick_duration(
            "--delta-crl-delay",
            args.delta_crl_delay.as_deref(),
            file.delta_crl_delay.as_deref(),
            "60s",
        )?,
        delta_crl_validity: pick_duration(
            "--delta-crl-validity",
            args.delta_crl_validity.as_deref(),
            file.delta_crl_validity.as_deref(),
            "1h",
        )?,
        ocsp_validity: pick_duration(
            "--ocsp-validity",
            args.ocsp_validity.as_deref(),
            file.ocsp_validity.as_deref(),
            "1h",
        )?,
        change_poll_interval: pick_duration(
            "--change-poll-interval",
            args.change_poll_interval.as_deref(),
            file.change_poll_interval.as_deref(),
            "1s",
        )?,
        max_staleness: pick_duration(
            "--max-staleness",
            args.max_staleness.as_deref(),
            file.max_staleness.as_deref(),
            "5m",
        )?,
        renewal_interval: pick_duration(
            "--renewal-interval",
            args.renewal_interval.as_deref(),
            file.renewal_interval.as_deref(),
            "1h",
        )?,
        http_limits: easgate_server::http_listener::HttpLimits {
            header_timeout: pick_duration(
                "--http-header-timeout",
                args.http_header_timeout.as_deref(),
                file.http_header_timeout.as_deref(),
                "15s",
            )?,
            max_connections: args
                .http_max_connections
                .or(file.http_max_connections)
                .unwrap_or(1024)
                .max(1),
        },
        renewal_webhook: args
            .renewal_webhook
            .clone()
            .or_else(|| file.renewal_webhook.clone())
            .map(|url| easgate_server::config::parse_webhook(&url))
            .transpose()?,
        gateway: gateway_config(args, file)?,
    }
    .validate()?)
}

fn gateway_config(
    args: &ServeArgs,
    file: &easgate_server::FileConfig,
) -> Result<easgate_server::gateway::GatewayConfig, CliError> {
    use easgate_server::config::{pick_addr, pick_duration};
    use easgate_server::gateway::config::{
        parse_identity_order, parse_provision_mode, parse_upstream, parse_upstream_auth,
    };
    let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
    let upstream = pick(&args.upstream, &file.upstream)
        .map(|u| parse_upstream(&u))
        .transpose()?;
    let auth_mode =
        pick(&args.upstream_auth, &file.upstream_auth).unwrap_or_else(|| "passthrough".into());
    let user_header = pick(&args.upstream_user_header, &file.upstream_user_header)
        .unwrap_or_else(|| "X-Remote-User".into());
    Ok(easgate_server::gateway::GatewayConfig {
        listen: pick_addr(
            "--gateway-listen",
            args.gateway_listen.as_deref(),
            file.gateway_listen.as_deref(),
            "0.0.0.0:8443",
        )?,
        threads: args
            .gateway_threads
            .map(usize::from)
            .or(file.gateway_threads)
            .unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(2)
            }),
        upstream,
        upstream_ca: pick(&args.upstream_ca, &file.upstream_ca).map(PathBuf::from),
        upstream_auth: parse_upstream_auth(&auth_mode, &user_header)?,
        provision: parse_provision_mode(
            &pick(&args.provision, &file.provision).unwrap_or_else(|| "upstream".into()),
        )?,
        upstream_timeout: pick_duration(
            "--upstream-timeout",
            args.upstream_timeout.as_deref(),
            file.upstream_timeout.as_deref(),
            "120s",
        )?,
        cert: pick(&args.gateway_cert, &file.gateway_cert).map(PathBuf::from),
        key: pick(&args.gateway_key, &file.gateway_key).map(PathBuf::from),
        identity_order: parse_identity_order(
            &pick(&args.identity_order, &file.identity_order).unwrap_or_else(|| "upn,email".into()),
        )?,
        crl_max_age: pick_duration(
            "--crl-max-age",
            args.crl_max_age.as_deref(),
            file.crl_max_age.as_deref(),
            "1h",
        )?,
        allow_unknown_revocation: args.danger_allow_unknown_revocation
            || file.danger_allow_unknown_revocation.unwrap_or(false),
    })
}

async fn serve(
    easgate: Easgate,
    config: easgate_server::ServeConfig,
    public_url_given: bool,
) -> Result<(), CliError> {
    easgate_server::init_logging();
    Ok(easgate_server::serve(easgate, config, public_url_given).await?)
}

async fn crl(e: &Easgate, cmd: CrlCommand, as_json: bool) -> Result<(), CliError> {
    match cmd {
        CrlCommand::Generate {
            ca,
            delta,
            validity,
            out,
        } => {
            if let Some(path) = &out {
                check_writable(path)?;
            }
            let validity = match validity {
                Some(text) => time::Duration::seconds(parse_duration(&text)?),
                None if delta => easgate_ops::crl::DELTA_CRL_VALIDITY,
                None => easgate_ops::crl::FULL_CRL_VALIDITY,
            };
            let published = if delta {
                e.generate_delta_crl(&ca, validity).await?
            } else {
                e.generate_full_crl(&ca, validity).await?
            };
            if let Some(path) = &out {
                write_file(path, &published.der, false)?;
            }
            if as_json {
                return json(&published);
            }
            println!(
                "published {} CRL number {} of CA `{}` with {} entr{} (next update {})",
                published.scope.as_str(),
                published.number,
                published.ca,
                published.entries,
                if published.entries == 1 { "y" } else { "ies" },
                rfc3339(published.next_update)
            );
            Ok(())
        }
    }
}

async fn audit(e: &Easgate, args: AuditArgs, as_json: bool) -> Result<(), CliError> {
    let now = e.now().unix_timestamp();
    let since = easgate_ops::time_fmt::parse_since(&args.since, now).ok_or_else(|| {
        CliError::Usage(format!(
            "invalid --since `{}`: use a duration such as 24h or a time such as 2026-12-01T00:00:00Z",
            args.since
        ))
    })?;
    let filter = easgate_store::AuditFilter {
        since: Some(since),
        actor: args.actor,
        action: args.action,
        subject: args.subject,
        text: None,
        newest_first: false,
    };
    let events = e.audit_events(&filter).await?;
    if as_json {
        return json(&events);
    }
    let rows = events
        .iter()
        .map(|ev| {
            vec![
                rfc3339(ev.at),
                ev.actor.clone(),
                ev.action.clone(),
                ev.target.clone(),
                ev.detail.clone(),
            ]
        })
        .collect::<Vec<_>>();
    table(&["TIME", "ACTOR", "ACTION", "TARGET", "DETAIL"], &rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("24h").unwrap(), 86_400);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        for bad in ["", "h", "10", "10y", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
