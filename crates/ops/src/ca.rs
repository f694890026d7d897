//! CA operations: create, list, show, export, and the Entra upload script.

use std::sync::Arc;

use aws_lc_rs::digest;
use easgate_pki::ca::CertificateAuthority;
use easgate_pki::input::to_pem;
use easgate_pki::issue::PublicUrls;
use easgate_pki::summary::summarize;
use easgate_pki::{KeyType, PrivateKey};
use easgate_store::{Ca, NewCa};
use serde::Serialize;

use crate::error::{OpsError, Result};
use crate::names::check_ca_name;
use crate::service_keys::ServiceRole;
use crate::Easgate;

pub const DEFAULT_VALIDITY_DAYS: u32 = 3650;

/// The associated data that binds a sealed CA key to its CA.
fn seal_context(name: &str) -> String {
    format!("ca:{name}")
}

/// The RSA certificate SCEP clients encrypt to when the CA key is EC (the "RA"), with the
/// fingerprints clients ask for: micromdm's `scepclient -ca-fingerprint` wants its SHA-256,
/// Apple's SCEP payload `CAFingerprint` and older NDES-era clients a SHA-1.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ScepRaInfo {
    pub subject: String,
    pub serial: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub not_after: i64,
    pub sha256_fingerprint: String,
    pub sha1_fingerprint: String,
    pub pem: String,
}

impl ScepRaInfo {
    fn of(der: &[u8]) -> Result<Self> {
        let summary = summarize(der)?;
        Ok(ScepRaInfo {
            subject: summary.subject,
            serial: summary.serial.to_hex(),
            not_after: summary.not_after,
            sha256_fingerprint: fingerprint(der),
            sha1_fingerprint: sha1_fingerprint(der),
            pem: to_pem("CERTIFICATE", der),
        })
    }
}

/// A CA with the facts an admin looks for.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CaInfo {
    #[serde(flatten)]
    pub ca: Ca,
    pub serial: String,
    pub sha256_fingerprint: String,
    pub crl_url: String,
    pub delta_crl_url: String,
    pub ocsp_url: String,
    pub ca_issuers_url: String,
    pub scep_url: String,
    /// The SCEP RA of an EC CA (made on first use; `ca show` makes it); `None`
    /// for an RSA CA, whose own key decrypts, or an EC CA whose RA does not exist yet.
    pub scep_ra: Option<ScepRaInfo>,
}

/// SHA-1 over DER, upper-case hex with colons (as `openssl x509 -fingerprint -sha1`).
pub fn sha1_fingerprint(der: &[u8]) -> String {
    colon_hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref())
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// SHA-256 over DER, upper-case hex with colons (as `openssl x509 -fingerprint -sha256`).
pub fn fingerprint(der: &[u8]) -> String {
    colon_hex(digest::digest(&digest::SHA256, der).as_ref())
}

impl Easgate {
    pub async fn create_ca(
        &self,
        name: &str,
        key_type: KeyType,
        subject: Option<&str>,
        validity_days: Option<u32>,
    ) -> Result<CaInfo> {
        self.create_ca_with(name, key_type, subject, validity_days, false)
            .await
    }

    /// `create_ca`, optionally refusing single-DES SCEP envelopes from the start.
    pub async fn create_ca_with(
        &self,
        name: &str,
        key_type: KeyType,
        subject: Option<&str>,
        validity_days: Option<u32>,
        scep_no_des: bool,
    ) -> Result<CaInfo> {
        check_ca_name(name)?;
        if self.store.get_ca(name).await?.is_some() {
            return Err(OpsError::AlreadyExists {
                kind: "CA",
                key: name.into(),
            });
        }
        let subject = subject
            .map(str::to_string)
            .unwrap_or_else(|| format!("CN=easgate {name} CA"));
        let validity = validity_days.unwrap_or(DEFAULT_VALIDITY_DAYS);
        let now = self.now();
        let ca = CertificateAuthority::create(&subject, key_type, validity, now)?;
        let sealed = self
            .master()
            .seal(&seal_context(name), &ca.key_pkcs8_der())?;
        let summary = summarize(ca.cert_der())?;
        let record = self
            .store
            .insert_ca(
                &self.ctx(),
                NewCa {
                    name: name.to_string(),
                    key_type: key_type.as_str().to_string(),
                    subject: summary.subject,
                    cert_der: ca.cert_der().to_vec(),
                    key_sealed: sealed,
                    not_before: summary.not_before,
                    not_after: summary.not_after,
                    scep_no_des,
                },
            )
            .await?;
        self.ca_info(record).await
    }

    /// Make EC CA `name` answer GetCACert with its RSA RA certificate alone (`true`), for
    /// clients that encrypt to every certificate of the answer (micromdm's scepclient), or
    /// with the CA and the RA as RFC 8894 asks (`false`, the default).
    pub async fn set_scep_ra_only(&self, name: &str, ra_only: bool) -> Result<()> {
        let ca = self.get_ca(name).await?;
        if ra_only && ca.key_type.parse::<KeyType>()?.is_rsa() {
            return Err(OpsError::Invalid(format!(
                "CA `{name}` has an RSA key: it has no RA, and GetCACert already holds one certificate"
            )));
        }
        Ok(self
            .store
            .set_ca_scep_ra_only(&self.ctx(), name, ra_only)
            .await?)
    }

    /// Make CA `name` refuse (`true`) or accept again single-DES SCEP envelopes.
    pub async fn set_scep_no_des(&self, name: &str, refuse: bool) -> Result<()> {
        self.get_ca(name).await?;
        Ok(self
            .store
            .set_ca_scep_no_des(&self.ctx(), name, refuse)
            .await?)
    }

    pub async fn list_cas(&self) -> Result<Vec<CaInfo>> {
        let mut out = Vec::new();
        for ca in self.store.list_cas().await? {
            out.push(self.ca_info(ca).await?);
        }
        Ok(out)
    }

    pub async fn get_ca(&self, name: &str) -> Result<Ca> {
        self.store
            .get_ca(name)
            .await?
            .ok_or_else(|| OpsError::not_found("CA", name, "see `easgate ca list`"))
    }

    /// One CA; an EC CA's SCEP RA is made first if it does not exist yet.
    pub async fn show_ca(&self, name: &str) -> Result<CaInfo> {
        let ca = self.get_ca(name).await?;
        self.scep_certificates(name).await?;
        self.ca_info(ca).await
    }

    async fn ca_info(&self, ca: Ca) -> Result<CaInfo> {
        let base = self.public_url().await?;
        let urls = PublicUrls::for_ca(&base, &ca.name);
        let scep_ra = match self
            .store
            .get_service_key(&ca.name, ServiceRole::ScepRa.as_str())
            .await?
        {
            Some(ra) if !ca.key_type.parse::<KeyType>()?.is_rsa() => {
                Some(ScepRaInfo::of(&ra.cert_der)?)
            }
            _ => None,
        };
        Ok(CaInfo {
            scep_ra,
            serial: summarize(&ca.cert_der)?.serial.to_hex(),
            sha256_fingerprint: fingerprint(&ca.cert_der),
            scep_url: urls.scep.clone(),
            crl_url: urls.crl,
            delta_crl_url: urls.delta_crl,
            ocsp_url: urls.ocsp,
            ca_issuers_url: urls.ca_issuers,
            ca,
        })
    }

    /// The CA certificate, DER or PEM.
    pub async fn export_ca(&self, name: &str, pem: bool) -> Result<Vec<u8>> {
        let ca = self.get_ca(name).await?;
        Ok(if pem {
            to_pem("CERTIFICATE", &ca.cert_der).into_bytes()
        } else {
            ca.cert_der
        })
    }

    /// Load a CA with its key unsealed, ready to sign. Cached for the life of the process: a CA
    /// is never changed or deleted once created, so its name identifies it for good.
    pub async fn load_ca(&self, name: &str) -> Result<Arc<CertificateAuthority>> {
        if let Some(loaded) = self.cached_ca(name) {
            return Ok(loaded);
        }
        let ca = self.get_ca(name).await?;
        let key_type: KeyType = ca.key_type.parse()?;
        let pkcs8 = self.master().open(&seal_context(&ca.name), &ca.key_sealed).map_err(|_| {
            OpsError::MasterKey(format!(
                "cannot decrypt the key of CA `{name}`: the master key is not the one it was sealed with"
            ))
        })?;
        let key = PrivateKey::from_pkcs8_der(key_type, &pkcs8)?;
        let loaded = Arc::new(CertificateAuthority::load(ca.cert_der, key)?);
        self.cache_ca(name, Arc::clone(&loaded));
        Ok(loaded)
    }

    /// PowerShell that uploads the CA to Microsoft Entra ID as a certificate authority for
    /// certificate-based authentication, with its CRL and delta-CRL URLs — in the Microsoft
    /// Graph form and in the legacy AzureAD-module form.
    /// `ca remove`: refused while the CA has valid device certificates, unless `revoke_all`
    /// (they are revoked, cessationOfOperation). The CA stops being listed, served (CA
    /// certificate, CRLs, OCSP, SCEP) and trusted by the gateway; its record stays for the
    /// certificates it issued. Returns the serials revoked.
    pub async fn remove_ca(&self, name: &str, revoke_all: bool) -> Result<Vec<String>> {
        let ctx = self.ctx();
        let revoke = revoke_all.then(|| easgate_store::Revocation {
            reason: easgate_pki::revocation::RevocationReason::CessationOfOperation
                .as_str()
                .to_string(),
            at: ctx.now,
        });
        let revoked = self
            .store
            .remove_ca(&ctx, name, revoke)
            .await
            .map_err(|e| OpsError::from(e).hint_if_not_found("see `easgate ca list`"))?;
        self.forget_ca(name);
        Ok(revoked)
    }

    pub async fn entra_script(&self, name: &str) -> Result<String> {
        let ca = self.get_ca(name).await?;
        let urls = PublicUrls::for_ca(&self.public_url().await?, &ca.name);
        Ok(crate::ca::render_entra_script(&ca, &urls))
    }
}

/// Why Entra (on the internet) could not fetch `url`: a loopback, private, link-local or
/// unique-local address, `localhost`, a single-label name or a `.local` one.
pub fn unreachable_from_entra(url: &str) -> Option<String> {
    use std::net::IpAddr;
    let host = crate::context::url_host(url);
    let why = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_loopback() => Some("a loopback address"),
        Ok(IpAddr::V4(ip)) if ip.is_private() => Some("a private address"),
        Ok(IpAddr::V4(ip)) if ip.is_link_local() || ip.is_unspecified() => Some("a local address"),
        Ok(IpAddr::V6(ip)) if ip.is_loopback() || ip.is_unspecified() => Some("a loopback address"),
        Ok(IpAddr::V6(ip)) if (ip.segments()[0] & 0xfe00) == 0xfc00 => {
            Some("a unique local (private) address")
        }
        Ok(IpAddr::V6(ip)) if (ip.segments()[0] & 0xffc0) == 0xfe80 => Some("a link-local address"),
        Ok(_) => None,
        Err(_) if host.eq_ignore_ascii_case("localhost") => Some("localhost"),
        Err(_) if !host.contains('.') => Some("a single-label name"),
        Err(_) if host.to_ascii_lowercase().ends_with(".local") => Some("a .local (mDNS) name"),
        Err(_) => None,
    }?;
    Some(format!(
        "{url}: `{host}` is {why}, which Entra cannot reach from the internet; publish the CRLs under a public name (--public-url)"
    ))
}

/// The warnings for a CA's CRL URLs (see [`unreachable_from_entra`]).
pub fn crl_url_warnings(urls: &PublicUrls) -> Vec<String> {
    [&urls.crl, &urls.delta_crl]
        .into_iter()
        .filter_map(|u| unreachable_from_entra(u))
        .collect()
}

/// The Entra script text (pure, for tests).
pub fn render_entra_script(ca: &Ca, urls: &PublicUrls) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&ca.cert_der);
    format!(
        r#"# Upload easgate CA `{name}` ({subject}) to Microsoft Entra ID as a trusted certificate
# authority for certificate-based authentication, with its CRL and delta CRL.
# SHA-256 fingerprint: {fp}
# Run ONE of the two forms below as an administrator of the tenant.
{warnings}
$certBase64  = "{b64}"
$crlUrl      = "{crl}"
$deltaCrlUrl = "{delta}"

# --- Form 1: Microsoft Graph PowerShell (current) -------------------------------------------
# The tenant keeps its trusted CAs in one configuration object. This adds easgate's CA to it
# without ever leaving the tenant with none: the old list is saved to a file first, the new
# configuration is created before the old one is removed where Entra allows two, and if
# anything fails after the old one is gone it is put back from the saved list.
# Install-Module Microsoft.Graph -Scope CurrentUser
$ErrorActionPreference = "Stop"
Connect-MgGraph -Scopes "Organization.ReadWrite.All"
$orgId = (Get-MgOrganization).Id
$ca = @{{
    isRootAuthority                 = $true
    certificate                     = $certBase64
    certificateRevocationListUrl    = $crlUrl
    deltaCertificateRevocationListUrl = $deltaCrlUrl
}}
$existing = @(Get-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId)
if ($existing.Count -eq 0) {{
    New-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `
        -BodyParameter @{{ certificateAuthorities = @($ca) }}
    Write-Host "easgate CA '{name}' is now trusted."
    return
}}
$old = $existing[0]
$oldCas = @($old.CertificateAuthorities | ForEach-Object {{ @{{
    isRootAuthority                   = $_.IsRootAuthority
    certificate                       = [System.Convert]::ToBase64String($_.Certificate)
    certificateRevocationListUrl      = $_.CertificateRevocationListUrl
    deltaCertificateRevocationListUrl = $_.DeltaCertificateRevocationListUrl
}} }})
if ($oldCas | Where-Object {{ $_.certificate -eq $certBase64 }}) {{
    Write-Host "easgate CA '{name}' is already trusted; nothing changed."
    return
}}
$backup = "entra-cas-backup-$(Get-Date -Format yyyyMMddHHmmss).json"
$oldCas | ConvertTo-Json -Depth 4 | Set-Content -Path $backup
Write-Host "Saved the tenant's current trusted CAs to $backup"
$all = @($oldCas) + $ca
try {{
    # Where Entra accepts a second configuration, the new one exists before the old goes.
    New-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `
        -BodyParameter @{{ certificateAuthorities = $all }}
    Remove-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `
        -CertificateBasedAuthConfigurationId $old.Id
}} catch {{
    # Only one configuration allowed: replace it, and restore the saved list on failure.
    Remove-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `
        -CertificateBasedAuthConfigurationId $old.Id
    try {{
        New-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `
            -BodyParameter @{{ certificateAuthorities = $all }}
    }} catch {{
        Write-Warning "Adding easgate's CA failed; restoring the previous trusted CAs from $backup"
        New-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `
            -BodyParameter @{{ certificateAuthorities = $oldCas }}
        throw
    }}
}}
Write-Host "easgate CA '{name}' is now trusted, with the tenant's $($oldCas.Count) other CA(s)."

# --- Form 2: legacy AzureAD module ------------------------------------------------------------
# Install-Module AzureAD -Scope CurrentUser
# Connect-AzureAD
# $new = New-Object -TypeName Microsoft.Open.AzureAD.Model.CertificateAuthorityInformation
# $new.AuthorityType = 0   # 0 = root authority
# $new.TrustedCertificate = [System.Convert]::FromBase64String($certBase64)
# $new.crlDistributionPoint = $crlUrl
# $new.DeltaCrlDistributionPoint = $deltaCrlUrl
# New-AzureADTrustedCertificateAuthority -CertificateAuthorityInformation $new
"#,
        name = ca.name,
        subject = ca.subject,
        fp = fingerprint(&ca.cert_der),
        crl = urls.crl,
        delta = urls.delta_crl,
        warnings = crl_url_warnings(urls)
            .iter()
            .map(|w| format!("# WARNING: {w}\n"))
            .collect::<String>(),
    )
}
