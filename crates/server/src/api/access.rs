//! `/api/v1` for the gateway's access control: device partnerships (with the field names of
//! Exchange's `Get-MobileDevice` beside easgate's own), per-device overrides, rules, the default
//! action and the what-if test.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use easgate_ops::access::{EasDevice, WhatIf, WhatIfAnswer};
use easgate_ops::tokens::Permission;
use easgate_store::{
    AccessRule, EasOverride, EasWipe, PageQuery as StorePage, Partnership, PartnershipFilter,
    PartnershipKey,
};
use serde::{Deserialize, Serialize};
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
        .routes(routes!(list_partnerships))
        .routes(routes!(show_partnership, clear_partnership))
        .routes(routes!(wipe_partnership, cancel_wipe))
        .routes(routes!(list_overrides))
        .routes(routes!(set_override, remove_override))
        .routes(routes!(list_rules, add_rule))
        .routes(routes!(remove_rule))
        .routes(routes!(get_default, set_default))
        .routes(routes!(test_rules))
}

/// A device partnership as Exchange's `Get-MobileDevice` names it, with easgate's own fields
/// beside (what Exchange has no name for). Built by moving the partnership's fields, never
/// copying them: a page of partnerships is the API's hottest answer.
#[derive(Serialize, ToSchema)]
pub struct MobileDevice {
    #[serde(rename = "DeviceId")]
    pub device_id: String,
    #[serde(rename = "DeviceType")]
    pub device_type: Option<String>,
    #[serde(rename = "DeviceModel")]
    pub device_model: Option<String>,
    #[serde(rename = "DeviceOS")]
    pub device_os: Option<String>,
    #[serde(rename = "DeviceUserAgent")]
    pub device_user_agent: Option<String>,
    #[serde(rename = "FriendlyName")]
    pub friendly_name: Option<String>,
    /// `EAS` for native mail apps, `Outlook` for Outlook, `Other`.
    #[serde(rename = "ClientType")]
    pub client_type: &'static str,
    #[serde(
        rename = "FirstSyncTime",
        serialize_with = "easgate_store::json_time::rfc3339"
    )]
    #[schema(value_type = String, format = DateTime)]
    pub first_sync_time: i64,
    /// The last request that reached the mailbox.
    #[serde(
        rename = "LastSuccessSync",
        serialize_with = "easgate_store::json_time::rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_sync: Option<i64>,
    /// `Allowed`, `Blocked` or `Quarantined`.
    #[serde(rename = "DeviceAccessState")]
    pub device_access_state: &'static str,
    /// `Individual` (a per-device override), `DeviceRule` (a rule), `Global` (the default) or
    /// `Policy` (a hard refusal: certificate, identity or user).
    #[serde(rename = "DeviceAccessStateReason")]
    pub device_access_state_reason: &'static str,
    /// The rule that decided, for `DeviceRule`.
    #[serde(rename = "DeviceAccessControlRule")]
    pub device_access_control_rule: Option<String>,
    /// The user the requests named (the mailbox).
    pub user: String,
    /// Requests that named this DeviceId without the certificate bound to it: a possible spoof,
    /// kept apart from the bound device's own partnership.
    pub suspect: bool,
    /// `ios`, `android`, `windows` or `other`.
    pub platform: String,
    /// `native`, `outlook` or `other`.
    pub client: String,
    /// EAS protocol version of the last request.
    pub protocol: Option<String>,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: i64,
    pub last_command: Option<String>,
    /// The serial of the certificate the device presented.
    pub cert_serial: Option<String>,
    /// `managed` or `unmanaged`, as of the last request.
    pub device_state: String,
    /// easgate's last decision: `allow`, `block`, `quarantine` or `refuse`.
    pub access_state: String,
    pub access_reason: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_refusal_at: Option<i64>,
    pub last_refusal: Option<String>,
    /// The EAS policy the device acknowledged at the gateway (`--provision gateway`).
    #[serde(rename = "DevicePolicyApplied")]
    pub device_policy_applied: Option<String>,
    /// `AppliedInFull`, `PartiallyApplied`, `NotApplied` or `ExternallyManaged`.
    #[serde(rename = "DevicePolicyApplicationStatus")]
    pub device_policy_application_status: Option<String>,
    #[serde(
        rename = "LastPolicyUpdateTime",
        serialize_with = "easgate_store::json_time::rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_policy_update_time: Option<i64>,
}

impl From<Partnership> for MobileDevice {
    fn from(p: Partnership) -> Self {
        let (reason, rule) = exchange_reason(&p.access_reason, &p.access_state);
        MobileDevice {
            device_id: p.eas_device_id,
            device_type: p.device_type,
            device_model: p.model,
            device_os: p.os,
            device_user_agent: p.user_agent,
            friendly_name: p.friendly_name,
            client_type: match p.client.as_str() {
                "native" => "EAS",
                "outlook" => "Outlook",
                _ => "Other",
            },
            first_sync_time: p.first_seen,
            last_success_sync: p.last_sync,
            device_access_state: match p.access_state.as_str() {
                "allow" => "Allowed",
                "quarantine" => "Quarantined",
                _ => "Blocked",
            },
            device_access_state_reason: reason,
            device_access_control_rule: rule,
            user: p.user,
            suspect: p.suspect,
            platform: p.platform,
            client: p.client,
            protocol: p.protocol,
            last_seen: p.last_seen,
            last_command: p.last_command,
            cert_serial: p.cert_serial,
            device_state: p.device_state,
            access_state: p.access_state,
            access_reason: p.access_reason,
            last_refusal_at: p.last_refusal_at,
            last_refusal: p.last_refusal,
            device_policy_applied: p.policy_applied,
            device_policy_application_status: p.policy_status,
            last_policy_update_time: p.policy_updated_at,
        }
    }
}

/// Exchange's DeviceAccessStateReason (and the rule) from easgate's decision text, e.g.
/// "allow (rule `managed`)".
fn exchange_reason(reason: &str, state: &str) -> (&'static str, Option<String>) {
    if state == "refuse" || reason.starts_with("refuse") {
        return ("Policy", None);
    }
    if let Some(rest) = reason.split_once("(rule `").map(|(_, r)| r) {
        return ("DeviceRule", rest.split('`').next().map(str::to_string));
    }
    if reason.contains("(override") {
        return ("Individual", None);
    }
    ("Global", None)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PartnershipQuery {
    /// Only this user's partnerships (UPN).
    user: Option<String>,
    /// Access state: `allow`, `block`, `quarantine` or `refuse`.
    state: Option<String>,
    /// Device status: `managed` or `unmanaged`.
    status: Option<String>,
    /// Substring of the DeviceId, user, model, friendly name or user agent.
    text: Option<String>,
    /// Platform: `ios`, `android`, `windows` or `other`.
    platform: Option<String>,
    /// Client: `native` (the phone's own mail app), `outlook` or `other`.
    client: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List device partnerships (like Get-MobileDevice), by user and DeviceId.
#[utoipa::path(get, path = "/partnerships", tag = "Partnerships", params(PartnershipQuery),
    responses((status = 200, body = Page<MobileDevice>)))]
async fn list_partnerships(
    Api { app, caller }: Api,
    Query(q): Query<PartnershipQuery>,
) -> ApiResult<Json<Page<MobileDevice>>> {
    require(&app, &caller, Permission::Read, "listing partnerships").await?;
    let args = page_args::<PartnershipKey>(q.limit, q.cursor.as_deref())?;
    let filter = PartnershipFilter {
        user: q.user,
        state: q.state,
        status: q.status,
        text: q.text,
        platform: q.platform,
        client: q.client,
    };
    let rows = app
        .easgate
        .store
        .page_partnerships(
            &filter,
            &StorePage {
                after: args.after,
                limit: args.limit,
            },
        )
        .await
        .map_err(easgate_ops::OpsError::from)?;
    let page = page_of(rows, args.limit, |p| {
        (p.user.clone(), p.eas_device_id.clone(), p.suspect)
    });
    Ok(Json(Page {
        items: page.items.into_iter().map(MobileDevice::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct EasDeviceDetail {
    #[serde(rename = "DeviceId")]
    pub device_id: String,
    pub partnerships: Vec<MobileDevice>,
    #[serde(rename = "override")]
    pub override_: Option<EasOverride>,
    /// Certificates bound to this DeviceId.
    pub bound_certificates: Vec<String>,
    /// The remote wipe on record, if any.
    pub wipe: Option<EasWipe>,
    /// The same as Exchange's Get-MobileDeviceStatistics names it: `Pending`, `Sent`,
    /// `Succeeded` or `Failed` (`AccountOnly…` for an account-only wipe).
    #[serde(rename = "DeviceWipeStatus")]
    pub device_wipe_status: Option<String>,
    #[serde(
        rename = "DeviceWipeRequestTime",
        serialize_with = "easgate_store::json_time::rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub device_wipe_request_time: Option<i64>,
    #[serde(
        rename = "DeviceWipeSentTime",
        serialize_with = "easgate_store::json_time::rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub device_wipe_sent_time: Option<i64>,
    #[serde(
        rename = "DeviceWipeAckTime",
        serialize_with = "easgate_store::json_time::rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub device_wipe_ack_time: Option<i64>,
}

impl From<EasDevice> for EasDeviceDetail {
    fn from(d: EasDevice) -> Self {
        EasDeviceDetail {
            device_id: d.eas_device_id,
            partnerships: d.partnerships.into_iter().map(MobileDevice::from).collect(),
            override_: d.override_,
            bound_certificates: d.bound_certificates,
            device_wipe_status: d.wipe.as_ref().map(easgate_ops::eas_wipes::exchange_status),
            device_wipe_request_time: d.wipe.as_ref().map(|w| w.requested_at),
            device_wipe_sent_time: d.wipe.as_ref().and_then(|w| w.sent_at),
            device_wipe_ack_time: d.wipe.as_ref().and_then(|w| w.ack_at),
            wipe: d.wipe,
        }
    }
}

/// One EAS DeviceId: its partnerships, override and bound certificates.
#[utoipa::path(get, path = "/partnerships/{device_id}", tag = "Partnerships",
    params(("device_id" = String, Path)), responses((status = 200, body = EasDeviceDetail)))]
async fn show_partnership(
    Api { app, caller }: Api,
    Path(device_id): Path<String>,
) -> ApiResult<Json<EasDeviceDetail>> {
    require(&app, &caller, Permission::Read, "reading a partnership").await?;
    Ok(Json(app.easgate.show_eas_device(&device_id).await?.into()))
}

#[derive(Serialize, ToSchema)]
pub struct Cleared {
    #[serde(rename = "DeviceId")]
    pub device_id: String,
    /// Partnerships removed.
    pub partnerships: usize,
}

/// Forget an EAS DeviceId (helpdesk): its partnerships and override (`eas clear`).
#[utoipa::path(delete, path = "/partnerships/{device_id}", tag = "Partnerships",
    params(("device_id" = String, Path)), responses((status = 200, body = Cleared)))]
async fn clear_partnership(
    Api { app, caller }: Api,
    Path(device_id): Path<String>,
) -> ApiResult<Json<Cleared>> {
    require(
        &app,
        &caller,
        Permission::Helpdesk,
        "clearing a partnership",
    )
    .await?;
    let partnerships = app.easgate.clear_eas_device(&device_id).await?;
    Ok(Json(Cleared {
        device_id,
        partnerships,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WipeRequest {
    /// Only the mail account and its data (EAS 16.1 devices only).
    #[serde(default)]
    account_only: bool,
}

/// Remotely wipe an EAS DeviceId (helpdesk; `eas wipe`): sent with its next request; once
/// acknowledged the device is refused and its certificates revoked. An account-only wipe of a
/// device older than EAS 16.1 is refused (400).
#[utoipa::path(post, path = "/partnerships/{device_id}/wipe", tag = "Partnerships",
    params(("device_id" = String, Path)), request_body = WipeRequest,
    responses((status = 200, body = EasWipe)))]
async fn wipe_partnership(
    Api { app, caller }: Api,
    Path(device_id): Path<String>,
    Body(req): Body<WipeRequest>,
) -> ApiResult<Json<EasWipe>> {
    require(&app, &caller, Permission::Helpdesk, "wiping a device").await?;
    Ok(Json(
        app.easgate
            .request_eas_wipe(&device_id, req.account_only)
            .await?,
    ))
}

/// Withdraw a remote wipe not yet sent (helpdesk; `eas wipe --cancel`); one already sent is a
/// conflict (409).
#[utoipa::path(delete, path = "/partnerships/{device_id}/wipe", tag = "Partnerships",
    params(("device_id" = String, Path)), responses((status = 200, body = Cleared)))]
async fn cancel_wipe(
    Api { app, caller }: Api,
    Path(device_id): Path<String>,
) -> ApiResult<Json<Cleared>> {
    require(&app, &caller, Permission::Helpdesk, "cancelling a wipe").await?;
    app.easgate.cancel_eas_wipe(&device_id).await?;
    Ok(Json(Cleared {
        device_id,
        partnerships: 0,
    }))
}

/// List per-device overrides.
#[utoipa::path(get, path = "/overrides", tag = "Partnerships", params(PageQuery),
    responses((status = 200, body = Page<EasOverride>)))]
async fn list_overrides(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Page<EasOverride>>> {
    require(&app, &caller, Permission::Read, "listing overrides").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let list = app
        .easgate
        .store
        .list_overrides()
        .await
        .map_err(easgate_ops::OpsError::from)?;
    Ok(Json(page_in_memory(list, args, |o| {
        o.eas_device_id.to_lowercase()
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRequest {
    /// `allow`, `block` or `quarantine`.
    action: String,
    reason: Option<String>,
    /// With `allow`: admit the device also without a certificate (refused in trusted-header
    /// mode).
    #[serde(default)]
    unmanaged: bool,
}

/// Set the override of an EAS DeviceId (helpdesk): allow, block or quarantine, before every
/// rule. No override admits a revoked, retired, forged or disabled user's request.
#[utoipa::path(put, path = "/overrides/{device_id}", tag = "Partnerships",
    params(("device_id" = String, Path)), request_body = OverrideRequest,
    responses((status = 200, body = EasOverride)))]
async fn set_override(
    Api { app, caller }: Api,
    Path(device_id): Path<String>,
    Body(req): Body<OverrideRequest>,
) -> ApiResult<Json<EasOverride>> {
    require(&app, &caller, Permission::Helpdesk, "setting an override").await?;
    if !matches!(req.action.as_str(), "allow" | "block" | "quarantine") {
        return Err(ApiError::bad_field(
            "action",
            "use allow, block or quarantine (DELETE the override to clear it)",
        ));
    }
    if req.unmanaged && req.action != "allow" {
        return Err(ApiError::bad_field(
            "unmanaged",
            "unmanaged goes with allow only",
        ));
    }
    app.easgate
        .set_eas_override(
            &device_id,
            &req.action,
            req.reason.as_deref(),
            req.unmanaged,
        )
        .await?;
    let list = app
        .easgate
        .store
        .list_overrides()
        .await
        .map_err(easgate_ops::OpsError::from)?;
    list.into_iter()
        .find(|o| o.eas_device_id.eq_ignore_ascii_case(&device_id))
        .map(Json)
        .ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "the override changed meanwhile"))
}

/// Clear an EAS DeviceId's override and partnerships (helpdesk), as `eas clear`.
#[utoipa::path(delete, path = "/overrides/{device_id}", tag = "Partnerships",
    params(("device_id" = String, Path)), responses((status = 200, body = Cleared)))]
async fn remove_override(
    Api { app, caller }: Api,
    Path(device_id): Path<String>,
) -> ApiResult<Json<Cleared>> {
    require(&app, &caller, Permission::Helpdesk, "clearing an override").await?;
    let partnerships = app.easgate.clear_eas_device(&device_id).await?;
    Ok(Json(Cleared {
        device_id,
        partnerships,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RulePage {
    #[serde(flatten)]
    pub page: Page<AccessRule>,
    /// The action when no rule matches.
    pub default: String,
    /// Rules that can never match, and why.
    pub warnings: Vec<String>,
}

/// List access rules in evaluation order, with the default action.
#[utoipa::path(get, path = "/rules", tag = "Rules", params(PageQuery),
    responses((status = 200, body = RulePage)))]
async fn list_rules(
    Api { app, caller }: Api,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<RulePage>> {
    require(&app, &caller, Permission::Read, "listing rules").await?;
    let args = page_args(q.limit, q.cursor.as_deref())?;
    let rules = app.easgate.list_rules().await?;
    // Keyed by evaluation order: priority, then name.
    let page = page_in_memory(rules, args, |r| {
        format!("{:011}:{}", i64::from(r.priority) + (1 << 31), r.name)
    });
    Ok(Json(RulePage {
        page,
        default: app.easgate.default_action().await?.as_str().to_string(),
        warnings: app.easgate.shadowed_rules().await?,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    name: String,
    /// Lower runs first (default: after the last rule).
    priority: Option<i32>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    /// `ios`, `android`, `windows`, `other`.
    #[serde(default)]
    platforms: Vec<String>,
    /// `native`, `outlook`, `other`.
    #[serde(default)]
    clients: Vec<String>,
    /// `managed`, `unmanaged`.
    #[serde(default)]
    device_states: Vec<String>,
    /// CIDRs, e.g. `10.0.0.0/8`.
    #[serde(default)]
    networks: Vec<String>,
    /// `allow`, `block` or `quarantine`.
    action: String,
}

/// Add an access rule (admin).
#[utoipa::path(post, path = "/rules", tag = "Rules", request_body = NewRule,
    responses((status = 201, body = AccessRule)))]
async fn add_rule(
    Api { app, caller }: Api,
    Body(req): Body<NewRule>,
) -> ApiResult<(StatusCode, Json<AccessRule>)> {
    require(&app, &caller, Permission::Admin, "adding a rule").await?;
    let rule = AccessRule {
        name: req.name,
        priority: 0,
        users: req.users,
        groups: req.groups,
        platforms: req.platforms,
        clients: req.clients,
        device_states: req.device_states,
        networks: req.networks,
        action: req.action,
    };
    Ok((
        StatusCode::CREATED,
        Json(app.easgate.add_rule(rule, req.priority).await?),
    ))
}

/// Remove an access rule (admin).
#[utoipa::path(delete, path = "/rules/{name}", tag = "Rules", params(("name" = String, Path)),
    responses((status = 200, body = Removed)))]
async fn remove_rule(
    Api { app, caller }: Api,
    Path(name): Path<String>,
) -> ApiResult<Json<Removed>> {
    require(&app, &caller, Permission::Admin, "removing a rule").await?;
    app.easgate.remove_rule(&name).await?;
    Ok(Json(Removed::named("rule", name)))
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultAction {
    /// `allow`, `block` or `quarantine`: what happens when no rule matches.
    action: String,
}

/// The default action.
#[utoipa::path(get, path = "/default-action", tag = "Rules",
    responses((status = 200, body = DefaultAction)))]
async fn get_default(Api { app, caller }: Api) -> ApiResult<Json<DefaultAction>> {
    require(
        &app,
        &caller,
        Permission::Read,
        "reading the default action",
    )
    .await?;
    Ok(Json(DefaultAction {
        action: app.easgate.default_action().await?.as_str().to_string(),
    }))
}

/// Set the default action (admin).
#[utoipa::path(put, path = "/default-action", tag = "Rules", request_body = DefaultAction,
    responses((status = 200, body = DefaultAction)))]
async fn set_default(
    Api { app, caller }: Api,
    Body(req): Body<DefaultAction>,
) -> ApiResult<Json<DefaultAction>> {
    require(
        &app,
        &caller,
        Permission::Admin,
        "setting the default action",
    )
    .await?;
    let action = app.easgate.set_default_action(&req.action).await?;
    Ok(Json(DefaultAction {
        action: action.as_str().to_string(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WhatIfRequest {
    user: String,
    /// `ios`, `android`, `windows`, `other` (default other).
    platform: Option<String>,
    /// `native` (default), `outlook`, `other`.
    client: Option<String>,
    /// `managed` or `unmanaged`.
    device_state: Option<String>,
    ip: Option<String>,
    /// The EAS DeviceId of the request (for overrides and bindings).
    device_id: Option<String>,
    /// `valid`, `none`, `revoked`, `expired`, `foreign`.
    cert: Option<String>,
}

/// What the gateway would decide for a request (what-if): the decision and the matched rule.
#[utoipa::path(post, path = "/what-if", tag = "Rules", request_body = WhatIfRequest,
    responses((status = 200, body = WhatIfAnswer)))]
async fn test_rules(
    Api { app, caller }: Api,
    Body(req): Body<WhatIfRequest>,
) -> ApiResult<Json<WhatIfAnswer>> {
    require(&app, &caller, Permission::Read, "testing the rules").await?;
    let answer = app
        .easgate
        .policy_test(&WhatIf {
            user: &req.user,
            platform: req.platform.as_deref(),
            client: req.client.as_deref(),
            device_state: req.device_state.as_deref(),
            ip: req.ip.as_deref(),
            eas_device_id: req.device_id.as_deref(),
            cert: req.cert.as_deref(),
        })
        .await?;
    Ok(Json(answer))
}
