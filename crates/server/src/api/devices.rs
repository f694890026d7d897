//! `/api/v1` for devices: enrollment (what an MDM calls), re-enrollment, dynamic SCEP
//! challenges, retire and wipe, and a device with its certificates.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::Json;
use easgate_ops::devices::{DeviceChallenge, Enrollment};
use easgate_ops::eas_wipes::DeviceWipe;
use easgate_ops::tokens::Permission;
use easgate_store::{CertFilter, Certificate, Device, DeviceFilter, PageQuery as StorePage};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{require, Api};
use super::paging::{page_args, page_of, Page};
use super::problem::{ApiResult, Body, Path, Query};
use crate::App;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new()
        .routes(routes!(list_devices, enroll_device))
        .routes(routes!(show_device))
        .routes(routes!(reenroll_device))
        .routes(routes!(device_challenge))
        .routes(routes!(retire_device))
        .routes(routes!(wipe_device))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceListQuery {
    /// Only this user's devices (UPN).
    user: Option<String>,
    /// `pending`, `enrolled`, `retired` or `wiped`.
    state: Option<String>,
    /// `ios`, `android` or `windows`.
    platform: Option<String>,
    /// Substring of the uid, user or device serial.
    text: Option<String>,
    /// Records per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List devices (MDM records), by uid.
#[utoipa::path(get, path = "/devices", tag = "Devices", params(DeviceListQuery),
    responses((status = 200, body = Page<Device>)))]
async fn list_devices(
    Api { app, caller }: Api,
    Query(q): Query<DeviceListQuery>,
) -> ApiResult<Json<Page<Device>>> {
    require(&app, &caller, Permission::Read, "listing devices").await?;
    let args = page_args::<String>(q.limit, q.cursor.as_deref())?;
    let filter = DeviceFilter {
        user: q.user,
        state: q.state,
        platform: q.platform,
        text: q.text,
    };
    let devices = app
        .easgate
        .store
        .page_devices(
            &filter,
            &StorePage {
                after: args.after,
                limit: args.limit,
            },
        )
        .await
        .map_err(easgate_ops::OpsError::from)?;
    Ok(Json(page_of(devices, args.limit, |d| d.uid.clone())))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The owner's UPN.
    user: String,
    /// `ios`, `android` or `windows`.
    platform: String,
    /// Template (default: the default template).
    template: Option<String>,
    /// The device's uid (default: random); the MDM's device id fits here.
    uid: Option<String>,
    /// Hardware serial number, for `{DeviceSerial}`.
    device_serial: Option<String>,
    /// How long the challenge and profile link work, 1 to 90 days (default 7).
    challenge_days: Option<u32>,
}

/// Enroll a device (enroller): a record, a one-time SCEP challenge and profile link, shown
/// once.
#[utoipa::path(post, path = "/devices", tag = "Devices", request_body = EnrollRequest,
    responses((status = 201, body = Enrollment)))]
async fn enroll_device(
    Api { app, caller }: Api,
    Body(req): Body<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<Enrollment>)> {
    require(&app, &caller, Permission::Enroll, "enrolling a device").await?;
    let enrollment = app
        .easgate
        .enroll_device(
            &req.user,
            &req.platform,
            req.template.as_deref(),
            req.uid.as_deref(),
            req.device_serial.as_deref(),
            req.challenge_days,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(enrollment)))
}

#[derive(Serialize, ToSchema)]
pub struct DeviceDetail {
    pub device: Device,
    pub certificates: Vec<Certificate>,
}

/// Show a device with its certificates.
#[utoipa::path(get, path = "/devices/{uid}", tag = "Devices", params(("uid" = String, Path)),
    responses((status = 200, body = DeviceDetail)))]
async fn show_device(
    Api { app, caller }: Api,
    Path(uid): Path<String>,
) -> ApiResult<Json<DeviceDetail>> {
    require(&app, &caller, Permission::Read, "reading a device").await?;
    let device = app.easgate.get_device(&uid).await?;
    let certificates = app
        .easgate
        .store
        .list_certificates(&CertFilter {
            device: Some(device.uid.clone()),
            status: None,
            now: app.easgate.now().unix_timestamp(),
        })
        .await
        .map_err(easgate_ops::OpsError::from)?;
    Ok(Json(DeviceDetail {
        device,
        certificates,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReenrollRequest {
    /// How long the new challenge and profile link work, 1 to 90 days (default 7).
    challenge_days: Option<u32>,
}

/// Re-enroll a device (enroller): a new challenge and profile link; earlier unused ones stop
/// working.
#[utoipa::path(post, path = "/devices/{uid}/reenroll", tag = "Devices",
    params(("uid" = String, Path)), request_body = ReenrollRequest,
    responses((status = 200, body = Enrollment)))]
async fn reenroll_device(
    Api { app, caller }: Api,
    Path(uid): Path<String>,
    Body(req): Body<ReenrollRequest>,
) -> ApiResult<Json<Enrollment>> {
    require(&app, &caller, Permission::Enroll, "re-enrolling a device").await?;
    Ok(Json(
        app.easgate
            .reenroll_device(&uid, req.challenge_days)
            .await?,
    ))
}

/// A fresh one-time SCEP challenge for the device (enroller), valid one hour: what an MDM
/// fetches per enrollment.
#[utoipa::path(post, path = "/devices/{uid}/challenge", tag = "Devices",
    params(("uid" = String, Path)), responses((status = 201, body = DeviceChallenge)))]
async fn device_challenge(
    Api { app, caller }: Api,
    Path(uid): Path<String>,
) -> ApiResult<(StatusCode, Json<DeviceChallenge>)> {
    require(
        &app,
        &caller,
        Permission::Enroll,
        "fetching a SCEP challenge",
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(app.easgate.device_challenge(&uid).await?),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct EndedDevice {
    pub device: Device,
    /// Certificates revoked (cessationOfOperation).
    pub revoked: Vec<String>,
}

async fn end(
    app: &App,
    caller: &easgate_ops::tokens::Caller,
    uid: &str,
    state: &str,
) -> ApiResult<Json<EndedDevice>> {
    require(
        app,
        caller,
        Permission::Helpdesk,
        "retiring or wiping a device",
    )
    .await?;
    let (device, revoked) = app.easgate.end_device(uid, state).await?;
    Ok(Json(EndedDevice { device, revoked }))
}

/// Retire a device (helpdesk): its certificates are revoked and the gateway refuses it.
#[utoipa::path(post, path = "/devices/{uid}/retire", tag = "Devices",
    params(("uid" = String, Path)), responses((status = 200, body = EndedDevice)))]
async fn retire_device(
    Api { app, caller }: Api,
    Path(uid): Path<String>,
) -> ApiResult<Json<EndedDevice>> {
    end(&app, &caller, &uid, "retired").await
}

/// Wipe a device (helpdesk; `device wipe`): a full remote wipe of every EAS DeviceId its
/// certificates were used with; once one is acknowledged the device is marked wiped and its
/// certificates are revoked. A device never seen at the gateway is wiped and revoked at once.
#[utoipa::path(post, path = "/devices/{uid}/wipe", tag = "Devices",
    params(("uid" = String, Path)), responses((status = 200, body = DeviceWipe)))]
async fn wipe_device(
    Api { app, caller }: Api,
    Path(uid): Path<String>,
) -> ApiResult<Json<DeviceWipe>> {
    require(&app, &caller, Permission::Helpdesk, "wiping a device").await?;
    Ok(Json(app.easgate.wipe_device(&uid).await?))
}
