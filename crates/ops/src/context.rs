//! The handle every operation works through: the store, the master key and the settings that
//! shape what is issued.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use easgate_pki::ca::CertificateAuthority;

use easgate_pki::sealed::MasterKey;
use easgate_store::{Ctx, Store};
use time::OffsetDateTime;

use crate::error::{OpsError, Result};
use crate::master_key;

/// Settings key under which `serve` records the public base URL.
pub const PUBLIC_URL_SETTING: &str = "public_url";

/// How to open easgate's state.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub data_dir: PathBuf,
    /// `None`: SQLite file `easgate.db` in the data dir; else `sqlite://PATH` or
    /// `postgres://…` (see `easgate_store::open`).
    pub database_url: Option<String>,
    /// `--public-url`; `None`: the stored setting, else `http://<hostname>:8080`.
    pub public_url: Option<String>,
    /// Value of `EASGATE_MASTER_KEY`, if set.
    pub master_key_env: Option<String>,
    /// Who acts, for the audit trail (e.g. `cli:root`).
    pub actor: String,
    /// Create the data directory, master key and database when missing (`serve`, `init`);
    /// otherwise a missing data directory is [`OpsError::NoDataDir`].
    pub create: bool,
}

tokio::task_local! {
    /// Who acts in this task, when it is not the one who opened the store.
    static ACTOR: String;
}

/// Run `work` with `actor` in the audit trail of everything it changes: `serve`'s background
/// jobs name their channel (`job:crl`, `job:renewal`) rather than the admin who started the
/// server.
pub async fn acting_as<F: std::future::Future>(actor: impl Into<String>, work: F) -> F::Output {
    ACTOR.scope(actor.into(), work).await
}

/// Opened state: store + master key.
pub struct Easgate {
    pub store: Arc<dyn Store>,
    master: MasterKey,
    pub data_dir: PathBuf,
    /// The database URL in use (SQLite by default); may hold a password: show it redacted.
    pub database_url: String,
    public_url_override: Option<String>,
    actor: String,
    /// What opening created (first use of a data dir), for the caller to tell the admin.
    pub initialised: Vec<String>,
    /// CAs with their keys unsealed, by name: a CA never changes and is never deleted once
    /// made, so unsealing and parsing it once per process is enough.
    loaded_cas: RwLock<HashMap<String, Arc<CertificateAuthority>>>,
    /// The stored public URL once read (every issuance writes it into the certificate): a
    /// running server drops it when a setting changes ([`Easgate::forget_settings`]).
    stored_public_url: RwLock<Option<String>>,
}

impl Easgate {
    pub async fn open(opts: OpenOptions) -> Result<Self> {
        let mut initialised = Vec::new();
        if !opts.create && !opts.data_dir.exists() {
            return Err(OpsError::NoDataDir(opts.data_dir));
        }
        if !opts.data_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&opts.data_dir)
                .map_err(|e| OpsError::io("create directory", &opts.data_dir, e))?;
            initialised.push(format!(
                "created data directory {}",
                opts.data_dir.display()
            ));
        }
        let url = match &opts.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", opts.data_dir.join("easgate.db").display()),
        };
        let store = easgate_store::open(&url).await?;
        let may_create = store.list_cas().await?.is_empty();
        let (master, source) =
            master_key::load(&opts.data_dir, opts.master_key_env.clone(), may_create)?;
        if let master_key::Source::Created = source {
            initialised.push(format!(
                "created master key {} (mode 0600) — back it up: without it the CA keys cannot be decrypted",
                opts.data_dir.join(master_key::FILE_NAME).display()
            ));
        }
        if let Some(url) = &opts.public_url {
            check_public_url(url)?;
        }
        Ok(Easgate {
            store,
            master,
            data_dir: opts.data_dir,
            database_url: url,
            public_url_override: opts.public_url,
            actor: opts.actor,
            initialised,
            loaded_cas: RwLock::new(HashMap::new()),
            stored_public_url: RwLock::new(None),
        })
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// A fresh audit/change context for one operation: the actor of the task (a background
    /// job, see [`acting_as`]) or, outside one, the actor the store was opened by.
    pub fn ctx(&self) -> Ctx {
        Ctx {
            actor: ACTOR
                .try_with(Clone::clone)
                .unwrap_or_else(|_| self.actor.clone()),
            now: self.now().unix_timestamp(),
        }
    }

    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    pub(crate) fn cached_ca(&self, name: &str) -> Option<Arc<CertificateAuthority>> {
        self.loaded_cas.read().ok()?.get(name).cloned()
    }

    /// Drop what was read of the settings (a setting changed, here or in another process).
    pub fn forget_settings(&self) {
        if let Ok(mut cached) = self.stored_public_url.write() {
            *cached = None;
        }
    }

    /// Drop a CA's loaded key (removed, or made again under the same name elsewhere).
    pub fn forget_ca(&self, name: &str) {
        if let Ok(mut cache) = self.loaded_cas.write() {
            cache.remove(name);
        }
    }

    pub(crate) fn cache_ca(&self, name: &str, ca: Arc<CertificateAuthority>) {
        if let Ok(mut cache) = self.loaded_cas.write() {
            cache.insert(name.to_string(), ca);
        }
    }

    /// The base URL written into certificates and profiles.
    pub async fn public_url(&self) -> Result<String> {
        if let Some(url) = &self.public_url_override {
            return Ok(url.trim_end_matches('/').to_string());
        }
        if let Some(url) = self.stored_public_url.read().ok().and_then(|u| u.clone()) {
            return Ok(url);
        }
        if let Some(url) = self.store.get_setting(PUBLIC_URL_SETTING).await? {
            if let Ok(mut cached) = self.stored_public_url.write() {
                *cached = Some(url.clone());
            }
            return Ok(url);
        }
        Ok(format!("http://{}:8080", hostname()))
    }
}

/// `http(s)://host[:port][/path]`, no query, no credentials.
pub fn check_public_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| {
            OpsError::Invalid(format!(
                "public URL `{url}` must start with http:// or https://"
            ))
        })?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') || url.contains(['?', '#', ' ']) {
        return Err(OpsError::Invalid(format!(
            "public URL `{url}` must be http(s)://host[:port][/path] without credentials, query or spaces"
        )));
    }
    Ok(())
}

/// This machine's host name, for the default public URL.
/// The host of a URL (`http://host:port/…`), without brackets for IPv6.
pub fn url_host(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

/// The warning for a public URL whose host is neither a fully qualified name nor an IP
/// address: certificates carry it for years, devices and Entra must resolve it, and pkilint
/// flags a single-label name.
pub fn public_url_warning(url: &str) -> Option<String> {
    let host = url_host(url);
    (!host.contains('.') && host.parse::<std::net::IpAddr>().is_err()).then(|| {
        format!(
            "the public URL {url} names `{host}`, not a fully qualified host name: certificates carry their CRL and OCSP URLs for years, and devices and Entra must resolve them (set --public-url, e.g. http://pki.corp.example:8080)"
        )
    })
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
