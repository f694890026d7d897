//! `/api/v1` for the audit trail and the API's own tokens.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use easgate_ops::tokens::{CreatedToken, Permission, Role};
use easgate_store::{ApiToken, AuditEvent, AuditFilter, PageQuery as StorePage};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require, Api};
use super::paging::{page_args, page_in_memory, page_of, Page, PageQuery};
use super::pki::Removed;
use super::problem::{ApiError, ApiResult, Body, Path, Query};
use crate::App;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_audit))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(doctor))
}

#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuditOrder {
    Asc,
    Desc,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events at or after: a duration back (`24h`, `7d`) or a time (RFC 3339).
    since: Option<String>,
    /// Only this actor, e.g. `token:intune`, `cli:root`, `gateway`.
    actor: Option<String>,
    /// Only this action (`cert.revoke`) or family (`gateway` for `gateway.*`).
    action: Option<String>,
    /// Only events about this subject (device uid, serial, user, rule, …).
    subject: Option<String>,
    /// Substring of the subject or detail.
    text: Option<String>,
    /// `asc` (oldest first, the default) or `desc` (newest first).
    order: Option<AuditOrder>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The audit trail, oldest first, or newest first with `order=desc` (auditor).
#[utoipa::path(get, path = "/audit", tag = "Audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>)))]
async fn list_audit(
    Api { app, caller }: Api,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    require(
        &app,
        &caller,
        Permission::ReadAudit,
        "reading the audit trail",
    )
    .await?;
    let args = page_args::<i64>(q.limit, q.cursor.as_deref())?;
    let now = app.easgate.now().unix_timestamp();
    let since = q
        .since
        .as_deref()
        .map(|s| {
            easgate_ops::time_fmt::parse_since(s, now).ok_or_else(|| {
                ApiError::bad_field(
                    "since",
                    "use a duration such as 24h or a time such as 2026-12-01T00:00:00Z",
                )
            })
        })
        .transpose()?;
    let filter = AuditFilter {
        since,
        actor: q.actor,
        action: q.action,
        subject: q.subject,
        text: q.text,
        newest_first: matches!(q.order, Some(AuditOrder::Desc)),
    };
    let events = app
        .easgate
        .store
        .page_audit(
            &filter,
            &StorePage {
                after: args.after,
                limit: args.limit,
            },
        )
        .await
        .map_err(easgate_ops::OpsError::from)?;
    Ok(Json(page_of(events, args.limit, |e| e.id)))
}

/// List API tokens (auditor): names, roles and lives, never the tokens.
#[utoipa::path(get, path = "/tokens", tag = "Tokens", params(PageQuery),
    responses((status = 200, body = Page<ApiToken>)))]
async fn list_tokens(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<ApiToken>>> {
    require(&app, &caller, Permission::ReadAudit, "listing tokens").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let tokens = app.easgate.list_tokens().await?;
    // Revoked tokens keep their name; the created time orders those of one name.
    Ok(Json(page_in_memory(tokens, args, |t| {
        format!("{}:{:020}", t.name.to_lowercase(), t.created_at)
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Who or what uses it; the audit trail shows `token:NAME`.
    name: String,
    /// `admin`, `helpdesk`, `auditor` or `enroller`.
    role: String,
    /// Lifetime, e.g. `90d` (default: no expiry).
    expires: Option<String>,
}

/// Create an API token (admin). The response holds the token once; only its hash is kept.
#[utoipa::path(post, path = "/tokens", tag = "Tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken)))]
async fn create_token(
    Api { app, caller }: Api,
    Body(req): Body<NewToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    require(&app, &caller, Permission::Admin, "creating a token").await?;
    let role: Role = req
        .role
        .parse()
        .map_err(|e: easgate_ops::OpsError| ApiError::bad_field("role", e.to_string()))?;
    let lifetime = req
        .expires
        .as_deref()
        .map(|text| {
            easgate_ops::time_fmt::parse_duration(text)
                .ok_or_else(|| ApiError::bad_field("expires", "use a duration such as 90d"))
        })
        .transpose()?;
    let created = app.easgate.create_token(&req.name, role, lifetime).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke an API token (admin): its next call gets 401.
#[utoipa::path(delete, path = "/tokens/{name}", tag = "Tokens", params(("name" = String, Path)),
    responses((status = 200, body = Removed)))]
async fn revoke_token(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "revoking a token").await?;
    app.easgate.revoke_token(&name).await?;
    Ok(Json(Removed::named("token", name)))
}

/// Every setup check, as `easgate doctor` runs them (auditor): one entry each, with the fix.
#[utoipa::path(get, path = "/doctor", tag = "Audit",
    responses((status = 200, body = easgate_ops::doctor::DoctorReport)))]
async fn doctor(Api { app, caller }: Api) -> ApiResult<Json<easgate_ops::doctor::DoctorReport>> {
    require(&app, &caller, Permission::Read, "running the setup checks").await?;
    let report = app
        .easgate
        .doctor(&easgate_ops::doctor::DoctorOptions::default())
        .await?;
    Ok(Json(report))
}
