//! `easgate doctor`: every setup check, one line each.
//!
//! Each command validates what it is given, but a setup fails in ways no single command sees:
//! a public URL phones cannot resolve, a CRL the server does not serve, a gateway certificate
//! that runs out next week, a mail server that moved. The doctor looks at the setup from the
//! outside, the way phones, mail servers and Entra will: CA certificates, CRLs and OCSP are
//! fetched **through the public URL** over HTTP and verified like a relying party would, so the
//! server must be running. Every fetch has a short timeout: a listener that is down makes its
//! line fail within seconds; nothing hangs.
//!
//! `serve` records what the doctor cannot know otherwise (the upstream it proxies to, the
//! upstream CA file, the gateway's certificate and key files) as store settings, as it records
//! the public URL and the upstream authentication mode.
//!
//! The same report backs the CLI (`easgate doctor`) and the REST API (`GET /api/v1/doctor`),
//! hence plain serde structs.

mod fetch;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use easgate_pki::crl_check::{read_crl, RevocationList};
use easgate_pki::input::pem_or_der;
use easgate_pki::ocsp_check::{read_response, request_der};
use easgate_pki::summary::{covers, host_names, summarize};
use easgate_pki::Serial;
use http::Method;
use serde::Serialize;

use crate::context::url_host;
use crate::error::Result;
use crate::time_fmt::rfc3339;
use crate::Easgate;

pub use fetch::FetchError;
use fetch::{Fetched, Fetcher};

/// The upstream URL `serve` proxies to; empty when it runs without `--upstream`.
pub const UPSTREAM_SETTING: &str = "gateway.upstream";
/// `serve`'s `--upstream-ca` file (absolute), empty when none.
pub const UPSTREAM_CA_SETTING: &str = "gateway.upstream_ca";
/// The gateway TLS certificate file `serve` uses (absolute).
pub const GATEWAY_CERT_SETTING: &str = "gateway.cert_file";
/// The gateway TLS key file `serve` uses (absolute).
pub const GATEWAY_KEY_SETTING: &str = "gateway.key_file";

/// Longest wait for one fetch (connect, answer and body).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A gateway certificate closer than this to its end fails (renew it before phones see it).
pub const EXPIRY_MARGIN_DAYS: i64 = 30;
/// Largest clock difference to the public listener or the upstream that passes.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;

const DAY: i64 = 86_400;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Fail,
    /// The check does not apply to this setup (no upstream, no trusted CA, no profile).
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DoctorCheck {
    /// Stable identifier, e.g. `public-url`, `crl:default`, `upstream`.
    pub name: String,
    /// `false` only for `fail`.
    pub ok: bool,
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// What to do, for a failure.
    pub fix: Option<String>,
}

impl DoctorCheck {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        DoctorCheck {
            name: name.into(),
            ok: true,
            status: CheckStatus::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        DoctorCheck {
            name: name.into(),
            ok: false,
            status: CheckStatus::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn skip(name: impl Into<String>, detail: impl Into<String>) -> Self {
        DoctorCheck {
            name: name.into(),
            ok: true,
            status: CheckStatus::Skip,
            detail: detail.into(),
            fix: None,
        }
    }
}

/// Every check, in a fixed order; `ok` when none failed.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DoctorReport {
    pub checks: Vec<DoctorCheck>,
    pub ok: bool,
}

/// What the caller may set.
#[derive(Clone, Debug, Default)]
pub struct DoctorOptions {
    /// Check this upstream instead of the one `serve` recorded.
    pub upstream: Option<String>,
}

/// What `serve` records for the doctor when it starts.
#[derive(Clone, Copy, Debug)]
pub struct ServeRecord<'a> {
    pub upstream: Option<&'a str>,
    pub upstream_ca: Option<&'a Path>,
    pub gateway_cert: &'a Path,
    pub gateway_key: &'a Path,
}

/// Absolute, so a CLI started elsewhere finds the same file.
fn absolute(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// `http://host:port/…` → port (default by scheme).
fn url_port(url: &str) -> u16 {
    let default = if url.starts_with("https://") { 443 } else { 80 };
    url.parse::<http::Uri>()
        .ok()
        .and_then(|u| u.port_u16())
        .unwrap_or(default)
}

/// `host[:port]` → host (IPv6 in brackets keeps its colons).
fn host_of(host_port: &str) -> &str {
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    }
}

fn single_label(host: &str) -> bool {
    host.parse::<IpAddr>().is_err() && !host.trim_end_matches('.').contains('.')
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate) → Unix seconds.
fn http_date(fetched: &Fetched) -> Option<i64> {
    let text = fetched.headers.get(http::header::DATE)?.to_str().ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text, format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

fn days_left(until: i64, now: i64) -> i64 {
    (until - now).div_euclid(DAY)
}

const START_SERVE: &str =
    "start `easgate serve` (its public listener must answer at the public URL), or correct --public-url";

/// What the fetch of a public-URL document gave, as a check failure when it gave nothing
/// usable.
fn fetched_ok(
    name: &str,
    what: &str,
    got: std::result::Result<Fetched, FetchError>,
) -> std::result::Result<Fetched, DoctorCheck> {
    match got {
        Err(e) => Err(DoctorCheck::fail(name, format!("{what}: {e}"), START_SERVE)),
        Ok(f) if !f.status.is_success() => Err(DoctorCheck::fail(
            name,
            format!("{what}: HTTP {}", f.status),
            "the server at the public URL does not serve this CA: is --public-url this data directory's server? restart `easgate serve`",
        )),
        Ok(f) => Ok(f),
    }
}

impl Easgate {
    /// Record what `serve` runs with, for `easgate doctor` (each setting written only when
    /// it changed).
    pub async fn record_serve_settings(&self, record: &ServeRecord<'_>) -> Result<()> {
        let values = [
            (
                UPSTREAM_SETTING,
                record.upstream.unwrap_or_default().to_string(),
            ),
            (
                UPSTREAM_CA_SETTING,
                record.upstream_ca.map(absolute).unwrap_or_default(),
            ),
            (GATEWAY_CERT_SETTING, absolute(record.gateway_cert)),
            (GATEWAY_KEY_SETTING, absolute(record.gateway_key)),
        ];
        for (key, value) in values {
            if self.store.get_setting(key).await?.as_deref() != Some(value.as_str()) {
                self.store.set_setting(&self.ctx(), key, &value).await?;
            }
        }
        Ok(())
    }

    async fn setting(&self, key: &str) -> Result<Option<String>> {
        Ok(self.store.get_setting(key).await?)
    }

    /// Run every setup check. Fails only when the store cannot be read; everything the
    /// checks find is in the report.
    pub async fn doctor(&self, options: &DoctorOptions) -> Result<DoctorReport> {
        let now = self.now().unix_timestamp();
        let public_url = self.public_url().await?;
        let upstream_ca = self
            .setting(UPSTREAM_CA_SETTING)
            .await?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let fetcher = Fetcher::new(FETCH_TIMEOUT, upstream_ca.as_deref());
        let mut checks = vec![public_url_check(&public_url).await];
        let mut dates: Vec<(String, i64)> = Vec::new();

        match &fetcher {
            Ok(fetcher) => {
                for ca in self.list_cas().await? {
                    self.check_ca(fetcher, &ca, now, &mut checks, &mut dates)
                        .await?;
                }
            }
            Err(e) => checks.push(DoctorCheck::fail(
                "http-client",
                e.to_string(),
                "the system's TLS setup is broken; nothing could be fetched",
            )),
        }

        let profiles = self.list_profiles().await?;
        let gateway = self.gateway_certificate().await?;
        checks.push(gateway_tls_check(
            &gateway,
            &public_url,
            profiles.is_empty(),
            now,
        ));

        let upstream = match &options.upstream {
            Some(url) => Some(url.clone()),
            None => self.setting(UPSTREAM_SETTING).await?,
        };
        if let Ok(fetcher) = &fetcher {
            checks.push(upstream_check(fetcher, upstream.as_deref(), &mut dates).await);
            let trusted = self.list_trusted_cas().await?;
            if trusted.is_empty() {
                checks.push(DoctorCheck::skip(
                    "trusted-crls",
                    "no trusted CA (`easgate trust add`)",
                ));
            }
            for ca in &trusted {
                checks.push(trusted_crl_check(fetcher, ca, now).await);
            }
        }

        checks.push(self.file_modes_check().await?);
        checks.push(self.templates_profiles_check(&profiles).await?);
        checks.push(profile_host_check(&profiles, &gateway));
        checks.push(self.rules_check().await?);
        checks.push(self.clock_check(now, &dates).await?);

        let ok = checks.iter().all(|c| c.ok);
        Ok(DoctorReport { checks, ok })
    }

    /// One CA of ours: its certificate, full and delta CRL and OCSP, through the public URL.
    async fn check_ca(
        &self,
        fetcher: &Fetcher,
        ca: &crate::ca::CaInfo,
        now: i64,
        checks: &mut Vec<DoctorCheck>,
        dates: &mut Vec<(String, i64)>,
    ) -> Result<()> {
        let name = &ca.ca.name;
        let cert_der = &ca.ca.cert_der;

        let line = format!("ca-cert:{name}");
        let got = fetcher.fetch(Method::GET, &ca.ca_issuers_url, None).await;
        checks.push(match fetched_ok(&line, &ca.ca_issuers_url, got) {
            Err(check) => check,
            Ok(f) => {
                if let Some(date) = http_date(&f) {
                    dates.push(("the public listener".into(), date));
                }
                let served = pem_or_der(&f.body, &["CERTIFICATE"], "certificate").unwrap_or_default();
                if served != *cert_der {
                    DoctorCheck::fail(
                        &line,
                        format!("{} serves another certificate than CA `{name}` in the store", ca.ca_issuers_url),
                        "is --public-url this data directory's server? restart `easgate serve`",
                    )
                } else if ca.ca.not_after <= now {
                    DoctorCheck::fail(
                        &line,
                        format!("the CA certificate expired {}", rfc3339(ca.ca.not_after)),
                        format!("create a new CA and move templates to it (`easgate ca create`, `easgate template set`); `{name}` issues nothing valid any more"),
                    )
                } else {
                    DoctorCheck::pass(
                        &line,
                        format!(
                            "served at {}, the store's certificate, valid until {}",
                            ca.ca_issuers_url,
                            rfc3339(ca.ca.not_after)
                        ),
                    )
                }
            }
        });

        for delta in [false, true] {
            let (line, url) = if delta {
                (format!("delta-crl:{name}"), &ca.delta_crl_url)
            } else {
                (format!("crl:{name}"), &ca.crl_url)
            };
            let got = fetcher.fetch(Method::GET, url, None).await;
            checks.push(match fetched_ok(&line, url, got) {
                Err(check) => check,
                Ok(f) => crl_verdict(&line, url, &f.body, cert_der, delta, now, &format!(
                    "a running server publishes CRLs itself; `easgate crl generate {name}{}` publishes one now",
                    if delta { " --delta" } else { "" }
                )),
            });
        }

        let line = format!("ocsp:{name}");
        let serial = self
            .store
            .list_certificates(&easgate_store::CertFilter {
                device: None,
                status: None,
                now,
            })
            .await?
            .into_iter()
            .filter(|c| c.ca == *name && c.device.is_some())
            .max_by_key(|c| c.issued_at)
            .and_then(|c| c.serial.parse::<Serial>().ok());
        let (serial, asked) = match serial {
            Some(s) => (s, "its newest device certificate"),
            None => match Serial::random() {
                Ok(s) => (s, "a serial it never issued"),
                Err(e) => {
                    checks.push(DoctorCheck::fail(
                        &line,
                        e.to_string(),
                        "the system's random source failed",
                    ));
                    return Ok(());
                }
            },
        };
        let request = match request_der(cert_der, &serial) {
            Ok(r) => r,
            Err(e) => {
                checks.push(DoctorCheck::fail(
                    &line,
                    e.to_string(),
                    "the CA certificate in the store does not parse",
                ));
                return Ok(());
            }
        };
        let got = fetcher
            .fetch(
                Method::POST,
                &ca.ocsp_url,
                Some(("application/ocsp-request", request)),
            )
            .await;
        checks.push(match fetched_ok(&line, &ca.ocsp_url, got) {
            Err(check) => check,
            Ok(f) => match read_response(&f.body, cert_der, &serial) {
                Err(e) => DoctorCheck::fail(
                    &line,
                    format!("{}: {e}", ca.ocsp_url),
                    "is --public-url this data directory's server? restart `easgate serve`",
                ),
                Ok(answer) if answer.next_update.is_some_and(|n| n <= now) => DoctorCheck::fail(
                    &line,
                    format!(
                        "{}: the answer is stale (nextUpdate {})",
                        ca.ocsp_url,
                        rfc3339(answer.next_update.unwrap_or_default())
                    ),
                    "restart `easgate serve`; check the server's clock",
                ),
                Ok(answer) => DoctorCheck::pass(
                    &line,
                    format!(
                        "{} answers for {asked} ({}): `{}`, signed by {}",
                        ca.ocsp_url,
                        serial.to_hex(),
                        answer.status.as_str(),
                        answer.signer
                    ),
                ),
            },
        });
        Ok(())
    }

    /// The certificate file the gateway serves (recorded by `serve`, else the one the first
    /// start makes) and what reading it gave.
    async fn gateway_certificate(&self) -> Result<GatewayCert> {
        let path = self
            .setting(GATEWAY_CERT_SETTING)
            .await?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let recorded = path.is_some();
        let path = path.unwrap_or_else(|| self.data_dir.join("gateway.pem"));
        let read = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                pem_or_der(&bytes, &["CERTIFICATE"], "certificate").map_err(|e| e.to_string())
            })
            .and_then(|der| {
                let summary = summarize(&der).map_err(|e| e.to_string())?;
                let names = host_names(&der).map_err(|e| e.to_string())?;
                Ok((summary.not_before, summary.not_after, names))
            });
        Ok(GatewayCert {
            own: recorded && path != self.data_dir.join("gateway.pem"),
            path,
            read,
        })
    }

    async fn file_modes_check(&self) -> Result<DoctorCheck> {
        let name = "file-modes";
        let data = &self.data_dir;
        let mut secrets: Vec<PathBuf> = vec![
            data.join(crate::master_key::FILE_NAME),
            data.join("admin-token"),
        ];
        // The SQLite file the store really uses (a `--database-url sqlite://…` may put it
        // outside the data directory) and its WAL files; a PostgreSQL database has no file
        // here, its access is the server's to guard.
        if let Some(db) = easgate_store::sqlite_file(&self.database_url) {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = db.as_os_str().to_owned();
                name.push(suffix);
                secrets.push(PathBuf::from(name));
            }
        }
        secrets.push(
            self.setting(GATEWAY_KEY_SETTING)
                .await?
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| data.join("gateway.key")),
        );
        let mut open = Vec::new();
        let mut checked = 0;
        for path in std::iter::once(data.clone()).chain(secrets) {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            checked += 1;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                open.push((path, mode));
            }
        }
        Ok(if open.is_empty() {
            DoctorCheck::pass(
                name,
                format!("the data directory and {} secret file(s) in use allow no group or other access", checked - 1),
            )
        } else {
            let list: Vec<String> = open
                .iter()
                .map(|(p, m)| format!("{} is mode {m:04o}", p.display()))
                .collect();
            let fix: Vec<String> = open
                .iter()
                .map(|(p, _)| {
                    format!(
                        "chmod {} {}",
                        if p.is_dir() { "700" } else { "600" },
                        p.display()
                    )
                })
                .collect();
            DoctorCheck::fail(
                name,
                format!("group or other users may access: {}", list.join("; ")),
                fix.join("; "),
            )
        })
    }

    async fn templates_profiles_check(
        &self,
        profiles: &[easgate_store::Profile],
    ) -> Result<DoctorCheck> {
        let name = "templates-profiles";
        let templates = self.list_templates().await?;
        if templates.is_empty() {
            return Ok(DoctorCheck::fail(
                name,
                "no certificate template: no device can get a certificate",
                "easgate template create NAME --ca CA --subject 'CN={DeviceUid}' --san 'email:{EmailAddress}' --san 'upn:{UserPrincipalName}'",
            ));
        }
        // Platforms with profiles: iOS and Android (Windows devices get certificates by other
        // means).
        let in_use: BTreeSet<String> = self
            .list_devices(None)
            .await?
            .into_iter()
            .filter(|d| d.state != "retired" && d.state != "wiped")
            .map(|d| d.platform)
            .filter(|p| p == "ios" || p == "android")
            .collect();
        let missing: Vec<&String> = in_use
            .iter()
            .filter(|p| !profiles.iter().any(|pr| pr.platform == **p))
            .collect();
        Ok(match missing.as_slice() {
            [] => DoctorCheck::pass(
                name,
                format!(
                    "{} template(s); {} profile(s){}",
                    templates.len(),
                    profiles.len(),
                    if in_use.is_empty() {
                        String::from(" (no iOS or Android device enrolled yet)")
                    } else {
                        format!(
                            ", one for each platform in use ({})",
                            in_use.iter().cloned().collect::<Vec<_>>().join(", ")
                        )
                    }
                ),
            ),
            missing => DoctorCheck::fail(
                name,
                format!(
                    "devices are enrolled for {} but no profile exists for it: their enrollment links cannot be used (409)",
                    missing.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "easgate profile create NAME --platform {} --template {} --eas-host GATEWAY-HOST --account-name TEXT",
                    missing[0], templates[0].name
                ),
            ),
        })
    }

    async fn rules_check(&self) -> Result<DoctorCheck> {
        let shadowed = self.shadowed_rules().await?;
        Ok(if shadowed.is_empty() {
            DoctorCheck::pass("rules", "no access rule is shadowed by an earlier one")
        } else {
            DoctorCheck::fail(
                "rules",
                shadowed.join("; "),
                "remove the shadowed rule (`easgate policy remove NAME`) or add it again with a lower --priority number than the rule that covers it",
            )
        })
    }

    /// The clock against the HTTP Date of the public listener and the upstream, and against
    /// the newest issuance (a clock that went backwards).
    async fn clock_check(&self, now: i64, dates: &[(String, i64)]) -> Result<DoctorCheck> {
        let name = "clock";
        let fix = "synchronise the clocks (NTP: `timedatectl set-ntp true`, chrony)";
        for (peer, date) in dates {
            let skew = now - date;
            if skew.abs() > MAX_CLOCK_SKEW_SECS {
                return Ok(DoctorCheck::fail(
                    name,
                    format!(
                        "this machine's clock is {} s {} {peer}'s (its Date header says {})",
                        skew.abs(),
                        if skew > 0 { "ahead of" } else { "behind" },
                        rfc3339(*date)
                    ),
                    fix,
                ));
            }
        }
        let newest = self
            .store
            .list_certificates(&easgate_store::CertFilter {
                device: None,
                status: None,
                now,
            })
            .await?
            .into_iter()
            .map(|c| c.issued_at)
            .max();
        if let Some(issued) = newest.filter(|&at| at > now + 60) {
            return Ok(DoctorCheck::fail(
                name,
                format!(
                    "the clock says {}, before the newest certificate was issued ({}): it went backwards",
                    rfc3339(now),
                    rfc3339(issued)
                ),
                fix,
            ));
        }
        let compared: Vec<&str> = dates.iter().map(|(p, _)| p.as_str()).collect();
        Ok(DoctorCheck::pass(
            name,
            format!(
                "{}{}",
                rfc3339(now),
                if compared.is_empty() {
                    String::from(" (no HTTP Date to compare with; after the newest issuance)")
                } else {
                    format!(
                        ", within {MAX_CLOCK_SKEW_SECS} s of {} and after the newest issuance",
                        compared.join(" and ")
                    )
                }
            ),
        ))
    }
}

/// The gateway's certificate file, read.
struct GatewayCert {
    path: PathBuf,
    /// Given with `--gateway-cert` rather than made by the first start.
    own: bool,
    /// (notBefore, notAfter, DNS and IP names), or why not.
    read: std::result::Result<(i64, i64, Vec<String>), String>,
}

impl GatewayCert {
    fn renew_fix(&self) -> String {
        if self.own {
            format!(
                "renew {} (given with --gateway-cert) and restart `easgate serve`",
                self.path.display()
            )
        } else {
            format!(
                "delete {} and the gateway.key beside it and restart `easgate serve`: a new pair is made",
                self.path.display()
            )
        }
    }
}

async fn public_url_check(url: &str) -> DoctorCheck {
    let name = "public-url";
    let host = url_host(url);
    let fix = "serve once with --public-url http://pki.corp.example:8080 (a fully qualified name devices and mail services resolve); certificates keep the URL they were issued with";
    if host.parse::<IpAddr>().is_ok() {
        return DoctorCheck::pass(
            name,
            format!("{url}: an IP address, nothing to resolve (devices must reach it as is)"),
        );
    }
    if single_label(host) {
        return DoctorCheck::fail(
            name,
            format!("{url}: `{host}` is a single-label name; phones, mail servers and Entra resolve certificate URLs with their own DNS, which rarely knows it (pkilint flags it)"),
            fix,
        );
    }
    let target = format!("{host}:{}", url_port(url));
    match tokio::time::timeout(FETCH_TIMEOUT, tokio::net::lookup_host(target)).await {
        Ok(Ok(addrs)) => {
            let addrs: BTreeSet<String> = addrs.map(|a| a.ip().to_string()).collect();
            if addrs.is_empty() {
                DoctorCheck::fail(name, format!("{url}: `{host}` resolves to no address"), fix)
            } else {
                DoctorCheck::pass(
                    name,
                    format!(
                        "{url}: `{host}` resolves to {}",
                        addrs.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                )
            }
        }
        Ok(Err(e)) => DoctorCheck::fail(
            name,
            format!("{url}: `{host}` does not resolve ({e})"),
            format!("add `{host}` to DNS, or {fix}"),
        ),
        Err(_) => DoctorCheck::fail(
            name,
            format!(
                "{url}: resolving `{host}` took longer than {} s",
                FETCH_TIMEOUT.as_secs()
            ),
            "check this machine's DNS resolver",
        ),
    }
}

/// A fetched CRL: signed by the CA, of the right kind, fresh.
fn crl_verdict(
    line: &str,
    url: &str,
    body: &[u8],
    issuer_der: &[u8],
    delta: bool,
    now: i64,
    stale_fix: &str,
) -> DoctorCheck {
    let kind = if delta { "delta CRL" } else { "full CRL" };
    let list: RevocationList = match read_crl(body, issuer_der) {
        Ok(l) => l,
        Err(e) => {
            return DoctorCheck::fail(
                line,
                format!("{url}: {e}"),
                "the URL serves something else than this CA's CRL: correct the URL",
            )
        }
    };
    if list.delta_base.is_some() != delta {
        return DoctorCheck::fail(
            line,
            format!(
                "{url} serves a {} where a {kind} belongs",
                if delta { "full CRL" } else { "delta CRL" }
            ),
            "correct the URL",
        );
    }
    let number = list.number.map(|n| format!(" #{n}")).unwrap_or_default();
    match list.next_update {
        Some(next) if next <= now => DoctorCheck::fail(
            line,
            format!(
                "{kind}{number} from {url} is stale: nextUpdate {} has passed",
                rfc3339(next)
            ),
            stale_fix,
        ),
        next => DoctorCheck::pass(
            line,
            format!(
                "{kind}{number} ({} revoked) from {url}, signature verified, {}",
                list.revoked.len(),
                match next {
                    Some(n) => format!("fresh until {}", rfc3339(n)),
                    None => String::from("no nextUpdate"),
                }
            ),
        ),
    }
}

fn gateway_tls_check(
    cert: &GatewayCert,
    public_url: &str,
    no_profiles: bool,
    now: i64,
) -> DoctorCheck {
    let name = "gateway-tls";
    let path = cert.path.display();
    let (not_before, not_after, names) = match &cert.read {
        Ok(read) => read,
        Err(e) => {
            return DoctorCheck::fail(
                name,
                format!("cannot read the gateway's TLS certificate {path}: {e}"),
                if cert.own {
                    "give a readable PEM certificate with --gateway-cert".to_string()
                } else {
                    "start `easgate serve` once (it makes the gateway's certificate)".to_string()
                },
            )
        }
    };
    if *not_before > now {
        return DoctorCheck::fail(
            name,
            format!("{path} is not valid before {}", rfc3339(*not_before)),
            cert.renew_fix(),
        );
    }
    if *not_after <= now {
        return DoctorCheck::fail(
            name,
            format!(
                "{path} expired {}: phones refuse the gateway",
                rfc3339(*not_after)
            ),
            cert.renew_fix(),
        );
    }
    let left = days_left(*not_after, now);
    if left < EXPIRY_MARGIN_DAYS {
        return DoctorCheck::fail(
            name,
            format!(
                "{path} expires {} (in {left} day(s), less than {EXPIRY_MARGIN_DAYS})",
                rfc3339(*not_after)
            ),
            cert.renew_fix(),
        );
    }
    // With profiles, the names phones use are the profiles' EAS hosts (`profile-eas-host`);
    // without, the gateway goes by the public URL's host, which the first start names it for.
    let host = url_host(public_url);
    if no_profiles && !covers(names, host) {
        return DoctorCheck::fail(
            name,
            format!(
                "{path} is not valid for `{host}`, the public URL's host (it names {})",
                names.join(", ")
            ),
            cert.renew_fix(),
        );
    }
    DoctorCheck::pass(
        name,
        format!(
            "{path} valid until {} ({left} days), for {}",
            rfc3339(*not_after),
            names.join(", ")
        ),
    )
}

fn profile_host_check(profiles: &[easgate_store::Profile], gateway: &GatewayCert) -> DoctorCheck {
    let name = "profile-eas-host";
    if profiles.is_empty() {
        return DoctorCheck::skip(name, "no profile (`easgate profile create`)");
    }
    let names = gateway.read.as_ref().map(|(_, _, n)| n.as_slice()).ok();
    let mut wrong = Vec::new();
    for profile in profiles {
        let host = host_of(&profile.eas_host);
        if single_label(host) {
            wrong.push(format!(
                "profile `{}`: --eas-host `{host}` is a single-label name phones may not resolve",
                profile.name
            ));
        } else if let Some(names) = names.filter(|n| !covers(n, host)) {
            wrong.push(format!(
                "profile `{}`: --eas-host `{host}` is not a name of the gateway's TLS certificate ({}): phones would refuse the connection",
                profile.name,
                names.join(", ")
            ));
        }
    }
    if wrong.is_empty() {
        let hosts: BTreeSet<&str> = profiles.iter().map(|p| host_of(&p.eas_host)).collect();
        DoctorCheck::pass(
            name,
            format!(
                "every profile names the gateway by a name its certificate carries ({})",
                hosts.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )
    } else {
        DoctorCheck::fail(
            name,
            wrong.join("; "),
            format!(
                "remove the profile and create it again with --eas-host set to the gateway's name, or give the gateway a certificate for that name ({})",
                gateway.renew_fix()
            ),
        )
    }
}

async fn upstream_check(
    fetcher: &Fetcher,
    upstream: Option<&str>,
    dates: &mut Vec<(String, i64)>,
) -> DoctorCheck {
    let name = "upstream";
    let Some(url) = upstream.filter(|u| !u.is_empty()) else {
        return DoctorCheck::skip(
            name,
            match upstream {
                Some(_) => "`easgate serve` runs without --upstream: devices are checked and recorded, allowed requests get 502",
                None => "no upstream recorded: `easgate serve --upstream URL` records it (or pass --upstream to check one)",
            },
        );
    };
    let fix = "start the mail server, or correct --upstream (`easgate serve --upstream URL`; `easgate doctor --upstream URL` checks another)";
    match fetcher.fetch(Method::OPTIONS, url, None).await {
        Err(e) => DoctorCheck::fail(name, e.to_string(), fix),
        Ok(f) => {
            if let Some(date) = http_date(&f) {
                dates.push(("the upstream".into(), date));
            }
            let versions = f
                .headers
                .get("ms-asprotocolversions")
                .and_then(|v| v.to_str().ok());
            match versions {
                Some(v) if f.status.is_success() => DoctorCheck::pass(
                    name,
                    format!("{url} answers OPTIONS with MS-ASProtocolVersions: {v}"),
                ),
                _ if f.status == http::StatusCode::UNAUTHORIZED => DoctorCheck::pass(
                    name,
                    format!("{url} answers OPTIONS with 401: it wants the user's credentials first, as Exchange does (protocol versions not checked)"),
                ),
                _ => DoctorCheck::fail(
                    name,
                    format!(
                        "{url} answers OPTIONS with HTTP {} and no MS-ASProtocolVersions header: not an ActiveSync endpoint",
                        f.status
                    ),
                    "point --upstream at the mail server's EAS endpoint, e.g. https://mail.corp.example/Microsoft-Server-ActiveSync",
                ),
            }
        }
    }
}

async fn trusted_crl_check(
    fetcher: &Fetcher,
    ca: &easgate_store::TrustedCa,
    now: i64,
) -> DoctorCheck {
    let line = format!("trusted-crl:{}", ca.name);
    let Some(url) = &ca.crl_url else {
        return DoctorCheck::fail(
            &line,
            "trusted without --crl-url: the gateway has no revocation information and refuses its certificates",
            format!(
                "easgate trust remove {0} && easgate trust add {0} --cert FILE --crl-url URL",
                ca.name
            ),
        );
    };
    let fix = "the CA's CRL must be reachable from this machine: check the URL and the network (`easgate trust add … --crl-url` to correct it)";
    let mut details = Vec::new();
    for (delta, url) in [(false, Some(url)), (true, ca.delta_crl_url.as_ref())] {
        let Some(url) = url else { continue };
        let fetched = match fetcher.fetch(Method::GET, url, None).await {
            Err(e) => return DoctorCheck::fail(&line, e.to_string(), fix),
            Ok(f) if !f.status.is_success() => {
                return DoctorCheck::fail(&line, format!("{url}: HTTP {}", f.status), fix)
            }
            Ok(f) => f,
        };
        let verdict = crl_verdict(
            &line,
            url,
            &fetched.body,
            &ca.cert_der,
            delta,
            now,
            "the CA's operator must publish a fresh CRL; until then the gateway refuses its certificates",
        );
        if !verdict.ok {
            return verdict;
        }
        details.push(verdict.detail);
    }
    DoctorCheck::pass(&line, details.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_labels() {
        assert_eq!(host_of("mail.corp.example:443"), "mail.corp.example");
        assert_eq!(host_of("mail.corp.example"), "mail.corp.example");
        assert_eq!(host_of("[::1]:8443"), "::1");
        assert!(single_label("mail"));
        assert!(!single_label("mail.corp.example"));
        assert!(!single_label("127.0.0.1"));
        assert!(!single_label("::1"));
        assert_eq!(url_port("http://pki.corp.example:8080/x"), 8080);
        assert_eq!(url_port("https://pki.corp.example"), 443);
        assert_eq!(days_left(10 * DAY + 5, 0), 10);
    }

    #[test]
    fn report_serializes_as_documented() {
        let report = DoctorReport {
            checks: vec![
                DoctorCheck::pass("rules", "fine"),
                DoctorCheck::skip("upstream", "none"),
                DoctorCheck::fail("clock", "off", "fix it"),
            ],
            ok: false,
        };
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["checks"][0]["status"], "ok");
        assert_eq!(json["checks"][1]["status"], "skip");
        assert_eq!(json["checks"][1]["ok"], true);
        assert_eq!(json["checks"][2]["status"], "fail");
        assert_eq!(json["checks"][2]["fix"], "fix it");
        assert_eq!(json["ok"], false);
    }
}
