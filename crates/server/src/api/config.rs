//! `/api/v1` for what devices are given: certificate templates and device profiles.

use std::str::FromStr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use easgate_ops::profiles::ProfileRequest;
use easgate_ops::templates::{TemplateChange, TemplateRequest};
use easgate_ops::tokens::Permission;
use easgate_pki::key::KeyType;
use easgate_store::{Profile, Template};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require, Api};
use super::paging::{page_args, page_in_memory, Page, PageQuery};
use super::pki::Removed;
use super::problem::{ApiError, ApiResult, Body, Path, Query};
use crate::App;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_templates, create_template))
        .routes(routes!(show_template, update_template, remove_template))
        .routes(routes!(make_default_template))
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(show_profile, remove_profile))
        .routes(routes!(render_profile))
}

fn key_type(text: Option<&str>) -> ApiResult<Option<KeyType>> {
    text.map(|t| KeyType::from_str(t).map_err(|e| ApiError::bad_field("key", e.to_string())))
        .transpose()
}

/// List templates.
#[utoipa::path(get, path = "/templates", tag = "Templates", params(PageQuery),
    responses((status = 200, body = Page<Template>)))]
async fn list_templates(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Template>>> {
    require(&app, &caller, Permission::Read, "listing templates").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let list = app.easgate.list_templates().await?;
    Ok(Json(page_in_memory(list, args, |t| t.name.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTemplate {
    name: String,
    ca: String,
    /// Subject with lookup values, e.g. `CN={DeviceUid}`.
    subject: String,
    /// SANs with lookup values: `email:{EmailAddress}`, `upn:{UserPrincipalName}`, `dns:…`,
    /// `uri:…`.
    #[serde(default)]
    sans: Vec<String>,
    /// Key type of server-generated keys (PKCS#12 delivery), default `rsa-2048`.
    key: Option<String>,
    validity_days: Option<u32>,
    renew_before_days: Option<u32>,
    /// Make it the default template.
    #[serde(default)]
    default: bool,
}

/// Create a template (admin).
#[utoipa::path(post, path = "/templates", tag = "Templates", request_body = NewTemplate,
    responses((status = 201, body = Template)))]
async fn create_template(
    Api { app, caller }: Api,
    Body(req): Body<NewTemplate>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    require(&app, &caller, Permission::Admin, "creating a template").await?;
    let t = app
        .easgate
        .create_template(TemplateRequest {
            name: req.name,
            ca: req.ca,
            subject: req.subject,
            sans: req.sans,
            key_type: key_type(req.key.as_deref())?.unwrap_or(KeyType::Rsa2048),
            validity_days: req.validity_days,
            renew_before_days: req.renew_before_days,
            is_default: req.default,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Show a template.
#[utoipa::path(get, path = "/templates/{name}", tag = "Templates",
    params(("name" = String, Path)), responses((status = 200, body = Template)))]
async fn show_template(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Template>> {
    require(&app, &caller, Permission::Read, "reading a template").await?;
    Ok(Json(app.easgate.get_template(&name).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateUpdate {
    subject: Option<String>,
    sans: Option<Vec<String>>,
    key: Option<String>,
    validity_days: Option<u32>,
    renew_before_days: Option<u32>,
}

/// Change a template (admin); certificates already issued keep what they have.
#[utoipa::path(patch, path = "/templates/{name}", tag = "Templates",
    params(("name" = String, Path)), request_body = TemplateUpdate,
    responses((status = 200, body = Template)))]
async fn update_template(
    Api { app, caller }: Api,
    Path(name): Path<String>,
    Body(req): Body<TemplateUpdate>,
) -> ApiResult<Json<Template>> {
    require(&app, &caller, Permission::Admin, "changing a template").await?;
    let t = app
        .easgate
        .update_template(TemplateChange {
            name,
            subject: req.subject,
            sans: req.sans,
            key_type: key_type(req.key.as_deref())?,
            validity_days: req.validity_days,
            renew_before_days: req.renew_before_days,
        })
        .await?;
    Ok(Json(t))
}

/// Make a template the default (admin).
#[utoipa::path(post, path = "/templates/{name}/default", tag = "Templates",
    params(("name" = String, Path)), responses((status = 200, body = Template)))]
async fn make_default_template(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Template>> {
    require(
        &app,
        &caller,
        Permission::Admin,
        "choosing the default template",
    )
    .await?;
    Ok(Json(app.easgate.set_default_template(&name).await?))
}

/// Remove a template nothing refers to (admin).
#[utoipa::path(delete, path = "/templates/{name}", tag = "Templates",
    params(("name" = String, Path)), responses((status = 200, body = Removed)))]
async fn remove_template(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a template").await?;
    app.easgate.remove_template(&name).await?;
    Ok(Json(Removed::named("template", name)))
}

/// List profiles.
#[utoipa::path(get, path = "/profiles", tag = "Profiles", params(PageQuery),
    responses((status = 200, body = Page<Profile>)))]
async fn list_profiles(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<Profile>>> {
    require(&app, &caller, Permission::Read, "listing profiles").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let list = app.easgate.list_profiles().await?;
    Ok(Json(page_in_memory(list, args, |p| p.name.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    name: String,
    /// `ios` or `android`.
    platform: String,
    template: String,
    /// The gateway's host name the mail app connects to.
    eas_host: String,
    account_name: String,
    /// Lookup-value template for the address (default `{EmailAddress}`).
    email: Option<String>,
    /// Lookup-value template for the user name (default `{UserPrincipalName}`).
    username: Option<String>,
    domain: Option<String>,
    /// `scep` (default) or `pkcs12`.
    delivery: Option<String>,
    /// Only users of these groups get this profile.
    #[serde(default)]
    groups: Vec<String>,
}

/// Create a profile (admin).
#[utoipa::path(post, path = "/profiles", tag = "Profiles", request_body = NewProfile,
    responses((status = 201, body = Profile)))]
async fn create_profile(
    Api { app, caller }: Api,
    Body(req): Body<NewProfile>,
) -> ApiResult<(StatusCode, Json<Profile>)> {
    require(&app, &caller, Permission::Admin, "creating a profile").await?;
    let p = app
        .easgate
        .create_profile(ProfileRequest {
            name: req.name,
            platform: req.platform,
            template: req.template,
            eas_host: req.eas_host,
            account_name: req.account_name,
            email: req.email,
            username: req.username,
            domain: req.domain,
            delivery: req.delivery,
            groups: req.groups,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(p)))
}

/// Show a profile.
#[utoipa::path(get, path = "/profiles/{name}", tag = "Profiles",
    params(("name" = String, Path)), responses((status = 200, body = Profile)))]
async fn show_profile(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Profile>> {
    require(&app, &caller, Permission::Read, "reading a profile").await?;
    Ok(Json(app.easgate.get_profile(&name).await?))
}

/// Remove a profile (admin).
#[utoipa::path(delete, path = "/profiles/{name}", tag = "Profiles",
    params(("name" = String, Path)), responses((status = 200, body = Removed)))]
async fn remove_profile(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a profile").await?;
    app.easgate.remove_profile(&name).await?;
    Ok(Json(Removed::named("profile", name)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RenderQuery {
    /// The device uid to render for.
    device: String,
    /// Sign the profile (CMS) with the CA's profile-signing certificate.
    #[serde(default)]
    signed: bool,
}

/// Render a profile for a device (admin): the file a phone installs. A SCEP profile carries a
/// new one-time challenge; a PKCS#12 one a new key and certificate.
#[utoipa::path(get, path = "/profiles/{name}/render", tag = "Profiles",
    params(("name" = String, Path), RenderQuery),
    responses((status = 200, description = "the rendered profile", content(
        (Vec<u8> = "application/x-apple-aspen-config"), (String = "application/json")))))]
async fn render_profile(
    Api { app, caller }: Api,
    Path(name): Path<String>,
    Query(q): Query<RenderQuery>,
) -> ApiResult<Response> {
    require(&app, &caller, Permission::Admin, "rendering a profile").await?;
    let rendered = app
        .easgate
        .render_profile(&name, &q.device, q.signed)
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, rendered.content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", rendered.file_name),
            ),
        ],
        rendered.bytes,
    )
        .into_response())
}
