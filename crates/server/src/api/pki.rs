//! `/api/v1` for the PKI: CAs, trusted external CAs, CRLs and certificates.

use std::str::FromStr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use easgate_ops::ca::CaInfo;
use easgate_ops::certs::KeySource;
use easgate_ops::tokens::Permission;
use easgate_pki::key::KeyType;
use easgate_pki::revocation::RevocationReason;
use easgate_store::{
    CertPageFilter, CertStatus, Certificate, Crl, PageQuery as StorePage, TrustedCa,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require, Api};
use super::paging::{page_args, page_in_memory, page_of, Page, PageQuery};
use super::problem::{ApiError, ApiResult, Body, Path, Query};
use crate::App;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_cas, create_ca))
        .routes(routes!(show_ca, remove_ca))
        .routes(routes!(export_ca))
        .routes(routes!(entra_script))
        .routes(routes!(generate_crl))
        .routes(routes!(list_trusted, add_trusted))
        .routes(routes!(remove_trusted))
        .routes(routes!(list_certificates, issue_certificate))
        .routes(routes!(show_certificate))
        .routes(routes!(revoke_certificate))
        .routes(routes!(set_scep))
        .routes(routes!(doctor_certificate))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCa {
    /// 1-64 letters, digits, `.`, `_`, `-`.
    name: String,
    /// `rsa-2048`, `rsa-3072`, `rsa-4096`, `ec-p256` (default) or `ec-p384`.
    key: Option<String>,
    /// Subject DN, e.g. `CN=Corp Mail CA,O=Corp` (default `CN=NAME`).
    subject: Option<String>,
    validity_days: Option<u32>,
    /// Refuse single-DES SCEP envelopes.
    #[serde(default)]
    scep_no_des: bool,
}

fn key_type(text: Option<&str>, default: KeyType) -> ApiResult<KeyType> {
    match text {
        None => Ok(default),
        Some(t) => KeyType::from_str(t).map_err(|e| ApiError::bad_field("key", e.to_string())),
    }
}

/// List CAs.
#[utoipa::path(get, path = "/cas", tag = "CAs", params(PageQuery),
    responses((status = 200, body = Page<CaInfo>)))]
async fn list_cas(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<CaInfo>>> {
    require(&app, &caller, Permission::Read, "listing CAs").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let cas = app.easgate.list_cas().await?;
    Ok(Json(page_in_memory(cas, args, |c| c.ca.name.clone())))
}

/// Create a CA (admin).
#[utoipa::path(post, path = "/cas", tag = "CAs", request_body = NewCa,
    responses((status = 201, body = CaInfo)))]
async fn create_ca(
    Api { app, caller }: Api,
    Body(req): Body<NewCa>,
) -> ApiResult<(StatusCode, Json<CaInfo>)> {
    require(&app, &caller, Permission::Admin, "creating a CA").await?;
    let key = key_type(req.key.as_deref(), KeyType::EcP256)?;
    let info = app
        .easgate
        .create_ca_with(
            &req.name,
            key,
            req.subject.as_deref(),
            req.validity_days,
            req.scep_no_des,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Show a CA with its URLs and fingerprints.
#[utoipa::path(get, path = "/cas/{name}", tag = "CAs", params(("name" = String, Path)),
    responses((status = 200, body = CaInfo)))]
async fn show_ca(Api { app, caller }: Api, Path(name): Path<String>) -> ApiResult<Json<CaInfo>> {
    require(&app, &caller, Permission::Read, "reading a CA").await?;
    Ok(Json(app.easgate.show_ca(&name).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RemoveCaQuery {
    /// Also revoke every valid certificate the CA issued.
    #[serde(default)]
    revoke_all: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    /// What was removed.
    pub removed: String,
    pub name: String,
    /// Serials revoked with it, if any.
    pub revoked: Vec<String>,
}

impl Removed {
    /// `name`, of kind `kind`, removed without revoking anything.
    pub fn named(kind: &str, name: String) -> Self {
        Removed {
            removed: kind.to_string(),
            name,
            revoked: Vec::new(),
        }
    }
}

/// Remove a CA (admin): no longer listed, served or trusted.
#[utoipa::path(delete, path = "/cas/{name}", tag = "CAs",
    params(("name" = String, Path), RemoveCaQuery), responses((status = 200, body = Removed)))]
async fn remove_ca(
    Api { app, caller }: Api,
    Path(name): Path<String>,
    Query(q): Query<RemoveCaQuery>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a CA").await?;
    let revoked = app.easgate.remove_ca(&name, q.revoke_all).await?;
    Ok(Json(Removed {
        removed: "ca".into(),
        name,
        revoked,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `pem` (default) or `der`.
    format: Option<String>,
}

/// The CA certificate, PEM or DER.
#[utoipa::path(get, path = "/cas/{name}/certificate", tag = "CAs",
    params(("name" = String, Path), ExportQuery),
    responses((status = 200, description = "the certificate", content(
        (String = "application/x-pem-file"), (Vec<u8> = "application/pkix-cert")))))]
async fn export_ca(
    Api { app, caller }: Api,
    Path(name): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    require(
        &app,
        &caller,
        Permission::Read,
        "exporting a CA certificate",
    )
    .await?;
    let pem = match q.format.as_deref() {
        None | Some("pem") => true,
        Some("der") => false,
        Some(other) => {
            return Err(ApiError::bad_field(
                "format",
                format!("unknown format `{other}`: use pem or der"),
            ))
        }
    };
    let bytes = app.easgate.export_ca(&name, pem).await?;
    let content_type = if pem {
        "application/x-pem-file"
    } else {
        "application/pkix-cert"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// A PowerShell script that uploads the CA (and its CRL URLs) to Microsoft Entra ID.
#[utoipa::path(get, path = "/cas/{name}/entra-script", tag = "CAs",
    params(("name" = String, Path)),
    responses((status = 200, description = "the script", content((String = "text/plain")))))]
async fn entra_script(Api { app, caller }: Api, Path(name): Path<String>) -> ApiResult<Response> {
    require(&app, &caller, Permission::Read, "reading an Entra script").await?;
    let script = app.easgate.entra_script(&name).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        script,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrlRequest {
    /// A delta CRL (revocations since the latest full CRL) instead of a full one.
    #[serde(default)]
    delta: bool,
    /// Time until nextUpdate, e.g. `24h` (default 24h full, 1h delta).
    validity: Option<String>,
}

/// Publish a CRL of the CA now (admin).
#[utoipa::path(post, path = "/cas/{name}/crls", tag = "CAs", params(("name" = String, Path)),
    request_body = CrlRequest, responses((status = 201, body = Crl)))]
async fn generate_crl(
    Api { app, caller }: Api,
    Path(name): Path<String>,
    Body(req): Body<CrlRequest>,
) -> ApiResult<(StatusCode, Json<Crl>)> {
    require(&app, &caller, Permission::Admin, "publishing a CRL").await?;
    let validity = match req.validity.as_deref() {
        Some(text) => {
            let secs = easgate_ops::time_fmt::parse_duration(text)
                .filter(|s| *s > 0 && *s <= 366 * 86_400)
                .ok_or_else(|| {
                    ApiError::bad_field("validity", "use a duration up to 366d, e.g. 24h")
                })?;
            time::Duration::seconds(secs)
        }
        None if req.delta => easgate_ops::crl::DELTA_CRL_VALIDITY,
        None => easgate_ops::crl::FULL_CRL_VALIDITY,
    };
    let crl = if req.delta {
        app.easgate.generate_delta_crl(&name, validity).await?
    } else {
        app.easgate.generate_full_crl(&name, validity).await?
    };
    Ok((StatusCode::CREATED, Json(crl)))
}

/// List trusted external CAs.
#[utoipa::path(get, path = "/trusted-cas", tag = "Trusted CAs", params(PageQuery),
    responses((status = 200, body = Page<TrustedCa>)))]
async fn list_trusted(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<TrustedCa>>> {
    require(&app, &caller, Permission::Read, "listing trusted CAs").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let cas = app.easgate.list_trusted_cas().await?;
    Ok(Json(page_in_memory(cas, args, |c| c.name.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTrustedCa {
    name: String,
    /// The CA certificate, PEM.
    certificate_pem: String,
    crl_url: Option<String>,
    delta_crl_url: Option<String>,
}

/// Trust an external CA's device certificates (admin).
#[utoipa::path(post, path = "/trusted-cas", tag = "Trusted CAs", request_body = NewTrustedCa,
    responses((status = 201, body = TrustedCa)))]
async fn add_trusted(
    Api { app, caller }: Api,
    Body(req): Body<NewTrustedCa>,
) -> ApiResult<(StatusCode, Json<TrustedCa>)> {
    require(&app, &caller, Permission::Admin, "trusting a CA").await?;
    let ca = app
        .easgate
        .add_trusted_ca(
            &req.name,
            req.certificate_pem.as_bytes(),
            req.crl_url.as_deref(),
            req.delta_crl_url.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(ca)))
}

/// Stop trusting an external CA (admin).
#[utoipa::path(delete, path = "/trusted-cas/{name}", tag = "Trusted CAs",
    params(("name" = String, Path)), responses((status = 200, body = Removed)))]
async fn remove_trusted(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a trusted CA").await?;
    app.easgate.remove_trusted_ca(&name).await?;
    Ok(Json(Removed::named("trusted-ca", name)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CertListQuery {
    /// Only this device's certificates.
    device: Option<String>,
    /// Only this user's devices' certificates.
    user: Option<String>,
    /// `valid`, `revoked` or `expired`.
    status: Option<String>,
    /// Only certificates of this CA.
    ca: Option<String>,
    /// Substring of the subject or serial.
    text: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub fn cert_status(text: Option<&str>) -> ApiResult<Option<CertStatus>> {
    match text {
        None => Ok(None),
        Some("valid") => Ok(Some(CertStatus::Valid)),
        Some("revoked") => Ok(Some(CertStatus::Revoked)),
        Some("expired") => Ok(Some(CertStatus::Expired)),
        Some(other) => Err(ApiError::bad_field(
            "status",
            format!("unknown status `{other}`: use valid, revoked or expired"),
        )),
    }
}

/// List certificates, by serial.
#[utoipa::path(get, path = "/certificates", tag = "Certificates", params(CertListQuery),
    responses((status = 200, body = Page<Certificate>)))]
async fn list_certificates(
    Api { app, caller }: Api,
    Query(q): Query<CertListQuery>,
) -> ApiResult<Json<Page<Certificate>>> {
    require(&app, &caller, Permission::Read, "listing certificates").await?;
    let args = page_args::<String>(q.limit, q.cursor.as_deref())?;
    let filter = CertPageFilter {
        device: q.device,
        user: q.user,
        status: cert_status(q.status.as_deref())?,
        ca: q.ca,
        text: q.text,
        now: app.easgate.now().unix_timestamp(),
    };
    let certs = app
        .easgate
        .store
        .page_certificates(
            &filter,
            &StorePage {
                after: args.after,
                limit: args.limit,
            },
        )
        .await
        .map_err(easgate_ops::OpsError::from)?;
    Ok(Json(page_of(certs, args.limit, |c| c.serial.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    template: String,
    /// The device uid the certificate is for.
    device: String,
    /// A PKCS#10 certificate request, PEM.
    csr_pem: String,
}

#[derive(Serialize, ToSchema)]
pub struct IssuedCertificate {
    pub certificate: Certificate,
    /// The certificate, PEM.
    pub pem: String,
    /// The issuing CA's certificate, PEM.
    pub ca_pem: String,
}

fn pem_of(tag: &str, der: &[u8]) -> String {
    pem::encode(&pem::Pem::new(tag, der.to_vec()))
}

/// Issue a certificate from a CSR (admin).
#[utoipa::path(post, path = "/certificates", tag = "Certificates", request_body = IssueRequest,
    responses((status = 201, body = IssuedCertificate)))]
async fn issue_certificate(
    Api { app, caller }: Api,
    Body(req): Body<IssueRequest>,
) -> ApiResult<(StatusCode, Json<IssuedCertificate>)> {
    require(&app, &caller, Permission::Admin, "issuing a certificate").await?;
    let issued = app
        .easgate
        .issue_certificate(
            &req.template,
            &req.device,
            KeySource::Csr(req.csr_pem.as_bytes()),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedCertificate {
            pem: pem_of("CERTIFICATE", &issued.der),
            ca_pem: pem_of("CERTIFICATE", &issued.ca_der),
            certificate: issued.record,
        }),
    ))
}

/// Show a certificate (serial in any case, colons allowed).
#[utoipa::path(get, path = "/certificates/{serial}", tag = "Certificates",
    params(("serial" = String, Path)), responses((status = 200, body = Certificate)))]
async fn show_certificate(
    Api { app, caller }: Api,
    Path(serial): Path<String>,
) -> ApiResult<Json<Certificate>> {
    require(&app, &caller, Permission::Read, "reading a certificate").await?;
    Ok(Json(app.easgate.get_certificate(&serial).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// unspecified (default), keyCompromise, affiliationChanged, superseded,
    /// cessationOfOperation or certificateHold.
    reason: Option<String>,
}

/// Revoke a certificate (helpdesk): the gateway refuses it on the next request.
#[utoipa::path(post, path = "/certificates/{serial}/revoke", tag = "Certificates",
    params(("serial" = String, Path)), request_body = RevokeRequest,
    responses((status = 200, body = Certificate)))]
async fn revoke_certificate(
    Api { app, caller }: Api,
    Path(serial): Path<String>,
    Body(req): Body<RevokeRequest>,
) -> ApiResult<Json<Certificate>> {
    require(
        &app,
        &caller,
        Permission::Helpdesk,
        "revoking a certificate",
    )
    .await?;
    let reason = match req.reason.as_deref() {
        None => RevocationReason::Unspecified,
        Some(r) => RevocationReason::from_str(r).map_err(|e| ApiError::bad_field("reason", e))?,
    };
    Ok(Json(app.easgate.revoke_certificate(&serial, reason).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScepSettings {
    /// Refuse single-DES SCEP envelopes (failInfo badAlg).
    no_des: Option<bool>,
    /// GetCACert answers with the RSA RA certificate alone (for clients that encrypt to every
    /// certificate of the answer) instead of the CA and its RA.
    ra_only: Option<bool>,
    /// A static challenge (at least 8 characters; stored hashed): the device is named by the
    /// CSR's CN and must be enrolled.
    static_challenge: Option<String>,
    /// Remove the static challenge: only one-time challenges work.
    #[serde(default)]
    remove_static_challenge: bool,
}

/// Change a CA's SCEP settings (admin), as `ca set-scep-des`, `set-scep-cacert`,
/// `set-scep-challenge`.
#[utoipa::path(patch, path = "/cas/{name}/scep", tag = "CAs", params(("name" = String, Path)),
    request_body = ScepSettings, responses((status = 200, body = CaInfo)))]
async fn set_scep(
    Api { app, caller }: Api,
    Path(name): Path<String>,
    Body(req): Body<ScepSettings>,
) -> ApiResult<Json<CaInfo>> {
    require(&app, &caller, Permission::Admin, "changing SCEP settings").await?;
    if req.static_challenge.is_some() && req.remove_static_challenge {
        return Err(ApiError::bad_field(
            "remove_static_challenge",
            "give static_challenge or remove_static_challenge, not both",
        ));
    }
    if let Some(challenge) = &req.static_challenge {
        if challenge.trim().len() < 8 {
            return Err(ApiError::bad_field(
                "static_challenge",
                "a static SCEP challenge needs at least 8 characters",
            ));
        }
    }
    let e = &app.easgate;
    // Checked first, so that a CA that does not exist changes nothing.
    e.show_ca(&name).await?;
    // First the one that can still be refused (an RSA CA has no RA), so a refusal changes
    // nothing.
    if let Some(ra_only) = req.ra_only {
        e.set_scep_ra_only(&name, ra_only).await?;
    }
    if let Some(refuse) = req.no_des {
        e.set_scep_no_des(&name, refuse).await?;
    }
    if let Some(challenge) = &req.static_challenge {
        e.set_scep_static_challenge(&name, Some(challenge)).await?;
    } else if req.remove_static_challenge {
        e.set_scep_static_challenge(&name, None).await?;
    }
    Ok(Json(e.show_ca(&name).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoctorRequest {
    /// The certificate, PEM.
    certificate_pem: String,
    /// Check it against this CA (default: the one it chains to).
    ca: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CertificateCheck {
    /// Stable id, e.g. `eku-client-auth`.
    pub check: String,
    /// `PASS`, `FAIL` or `SKIP`.
    pub result: String,
    pub detail: String,
}

#[derive(Serialize, ToSchema)]
pub struct CertificateDoctor {
    /// Fit for EAS certificate authentication: no check failed.
    pub fit: bool,
    pub checks: Vec<CertificateCheck>,
}

/// Say exactly what is wrong with a certificate for EAS (as `cert doctor`).
#[utoipa::path(post, path = "/certificates/doctor", tag = "Certificates",
    request_body = DoctorRequest, responses((status = 200, body = CertificateDoctor)))]
async fn doctor_certificate(
    Api { app, caller }: Api,
    Body(req): Body<DoctorRequest>,
) -> ApiResult<Json<CertificateDoctor>> {
    require(&app, &caller, Permission::Read, "checking a certificate").await?;
    let report = app
        .easgate
        .doctor_certificate(req.certificate_pem.as_bytes(), req.ca.as_deref())
        .await?;
    if let Some(why) = report.unreadable() {
        return Err(ApiError::bad_field(
            "certificate_pem",
            format!("not a certificate: {why}"),
        ));
    }
    Ok(Json(CertificateDoctor {
        fit: report.fit(),
        checks: report
            .checks
            .iter()
            .map(|c| CertificateCheck {
                check: c.id.to_string(),
                result: c.verdict.to_string(),
                detail: c.detail.clone(),
            })
            .collect(),
    }))
}
