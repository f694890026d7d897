//! First start on an empty data directory: a CA named `default`, the admin token, the gateway's
//! TLS certificate. Each step runs only when its result is missing, so later starts reuse
//! everything; the master key and database are made by opening the store.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use easgate_ops::context::{hostname, url_host, PUBLIC_URL_SETTING};
use easgate_ops::devices::{random_hex, secret_hash};
use easgate_ops::profiles::GATEWAY_TLS_CA_SETTING;
use easgate_ops::Easgate;
use easgate_pki::input::to_pem;
use easgate_pki::KeyType;

use crate::error::ServeError;

/// Settings key holding the SHA-256 of the admin token.
pub const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
pub const GATEWAY_CERT_FILE: &str = "gateway.pem";
pub const GATEWAY_KEY_FILE: &str = "gateway.key";

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), ServeError> {
    let err = |source| ServeError::File {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(data)
        .and_then(|_| file.sync_all())
        .map_err(err)
}

/// Make whatever is missing; returns a line for each thing made.
pub async fn initialise(
    easgate: &Easgate,
    public_url_given: bool,
    gateway_listen: Option<std::net::SocketAddr>,
) -> Result<Vec<String>, ServeError> {
    let mut notes = Vec::new();
    if easgate.list_cas().await?.is_empty() {
        let ca = easgate
            .create_ca("default", KeyType::EcP256, None, None)
            .await?;
        notes.push(format!(
            "created CA `default` ({}, SHA-256 {})",
            ca.ca.subject, ca.sha256_fingerprint
        ));
    }
    if public_url_given {
        let url = easgate.public_url().await?;
        if easgate
            .store
            .get_setting(PUBLIC_URL_SETTING)
            .await
            .map_err(easgate_ops::OpsError::from)?
            != Some(url.clone())
        {
            easgate
                .store
                .set_setting(&easgate.ctx(), PUBLIC_URL_SETTING, &url)
                .await
                .map_err(easgate_ops::OpsError::from)?;
            notes.push(format!(
                "recorded public URL {url} (CLI commands use it from now on)"
            ));
        }
    }
    let has_token = easgate
        .store
        .get_setting(ADMIN_TOKEN_SETTING)
        .await
        .map_err(easgate_ops::OpsError::from)?
        .is_some();
    if !has_token {
        let token = format!("egt_{}", random_hex(32)?);
        let path = easgate.data_dir.join(ADMIN_TOKEN_FILE);
        write_new(&path, format!("{token}\n").as_bytes(), 0o600)?;
        // The setting marks that the first token was made (so revoking every token and
        // restarting does not mint a new one); the token itself is an `admin` API token.
        easgate
            .store
            .insert_api_token(
                &easgate.ctx(),
                easgate_store::NewApiToken {
                    name: "admin".into(),
                    role: easgate_ops::tokens::Role::Admin.as_str().into(),
                    hash: secret_hash(&token),
                    expires_at: None,
                },
            )
            .await
            .map_err(easgate_ops::OpsError::from)?;
        easgate
            .store
            .set_setting(&easgate.ctx(), ADMIN_TOKEN_SETTING, &secret_hash(&token))
            .await
            .map_err(easgate_ops::OpsError::from)?;
        notes.push(format!(
            "created the first admin token in {} (mode 0600; stored hashed)",
            path.display()
        ));
    }
    let cert_path = easgate.data_dir.join(GATEWAY_CERT_FILE);
    let key_path = easgate.data_dir.join(GATEWAY_KEY_FILE);
    if !cert_path.exists() || !key_path.exists() {
        let ca = easgate
            .list_cas()
            .await?
            .into_iter()
            .find(|c| c.ca.name == "default")
            .or(easgate.list_cas().await?.into_iter().next())
            .ok_or_else(|| ServeError::Config("no CA to issue the gateway certificate".into()))?;
        // The name devices use (the public URL's host), the machine's name, localhost, and
        // the address the gateway listens on when it is a specific one.
        let public_url = easgate.public_url().await?;
        let mut names: Vec<String> = vec![url_host(&public_url).to_string(), hostname()];
        names.push("localhost".into());
        if let Some(listen) = gateway_listen.filter(|a| !a.ip().is_unspecified()) {
            names.push(listen.ip().to_string());
        }
        let mut seen = std::collections::HashSet::new();
        names.retain(|n| !n.is_empty() && seen.insert(n.to_ascii_lowercase()));
        let (der, key) = easgate
            .issue_server_certificate(&ca.ca.name, &names)
            .await?;
        let _ = fs::remove_file(&cert_path);
        let _ = fs::remove_file(&key_path);
        write_new(&key_path, key.pkcs8_pem().as_bytes(), 0o600)?;
        let chain = format!(
            "{}{}",
            to_pem("CERTIFICATE", &der),
            to_pem("CERTIFICATE", &ca.ca.cert_der)
        );
        write_new(&cert_path, chain.as_bytes(), 0o644)?;
        notes.push(format!(
            "created the gateway TLS certificate {} for {} (issued by CA `{}`)",
            cert_path.display(),
            names.join(", "),
            ca.ca.name
        ));
    }
    Ok(notes)
}

/// Record which CA of ours signed the gateway's TLS certificate (profiles then carry it as a
/// root payload), or that none did. Returns a note when the record changed.
pub async fn record_gateway_tls_ca(
    easgate: &Easgate,
    identity: &crate::gateway::tls::Identity,
    our_cas: &[(String, Vec<u8>)],
) -> Result<Option<String>, ServeError> {
    let issuer = identity
        .chain
        .first()
        .and_then(|leaf| easgate_pki::summary::issuing_ca(leaf.as_ref(), our_cas))
        .unwrap_or_default()
        .to_string();
    let store = &easgate.store;
    let recorded = store
        .get_setting(GATEWAY_TLS_CA_SETTING)
        .await
        .map_err(easgate_ops::OpsError::from)?;
    if recorded.as_deref() == Some(issuer.as_str()) {
        return Ok(None);
    }
    store
        .set_setting(&easgate.ctx(), GATEWAY_TLS_CA_SETTING, &issuer)
        .await
        .map_err(easgate_ops::OpsError::from)?;
    Ok(Some(if issuer.is_empty() {
        "the gateway TLS certificate is not from a CA of ours: profiles carry no root payload"
            .into()
    } else {
        format!("the gateway TLS certificate is from CA `{issuer}`: iOS profiles carry it as a root payload")
    }))
}
