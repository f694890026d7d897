//! `GET /api/v1/dashboard`: the numbers an admin looks at first, in one call — devices by
//! access state, the quarantine queue's length, this instance's refusals of the last hour by
//! cause, certificates inside their renewal window, and how fresh each CA's CRLs are. The
//! setup checks are `GET /api/v1/doctor` (they fetch URLs and can take seconds).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use easgate_ops::tokens::Permission;
use easgate_store::{CrlScope, ExpiringCertificate};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::MobileDevice;
use super::auth::{require, Api};
use super::problem::ApiResult;
use crate::App;

/// The most expiring certificates the dashboard lists.
const EXPIRING_SHOWN: usize = 100;

pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::new().routes(routes!(dashboard))
}

#[derive(Serialize, ToSchema)]
pub struct Dashboard {
    /// Partnerships by `DeviceAccessState` (`Allowed`, `Blocked`, `Quarantined`).
    pub devices: BTreeMap<&'static str, u64>,
    /// Partnerships waiting in quarantine for an admin's decision (not yet allowed or blocked
    /// by an override).
    pub quarantine_queue: u64,
    /// Requests this instance refused in the last hour, by cause, most first.
    pub refusals_last_hour: Vec<RefusalCount>,
    /// Certificates inside their template's renewal window, soonest expiry first (at most 100).
    pub expiring_certificates: Vec<ExpiringCertificate>,
    /// How many certificates are inside their renewal window in all.
    pub expiring_total: u64,
    /// Each CA's current full and delta CRL.
    pub crls: Vec<CrlFreshness>,
}

#[derive(Serialize, ToSchema)]
pub struct RefusalCount {
    /// e.g. `certificate-revoked`, `user-disabled`, `device-retired`.
    pub cause: String,
    pub count: u64,
}

#[derive(Serialize, ToSchema)]
pub struct CrlFreshness {
    pub ca: String,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub full_next_update: Option<i64>,
    #[serde(serialize_with = "easgate_store::json_time::rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delta_next_update: Option<i64>,
    /// Both CRLs exist and neither is past its nextUpdate.
    pub fresh: bool,
}

/// The dashboard's numbers.
#[utoipa::path(get, path = "/dashboard", tag = "Dashboard",
    responses((status = 200, body = Dashboard)))]
async fn dashboard(Api { app, caller }: Api) -> ApiResult<Json<Dashboard>> {
    require(&app, &caller, Permission::Read, "reading the dashboard").await?;
    let store = &app.easgate.store;
    let now = app.easgate.now().unix_timestamp();
    let mut devices: BTreeMap<&'static str, u64> = ["Allowed", "Blocked", "Quarantined"]
        .into_iter()
        .map(|state| (state, 0))
        .collect();
    // A device approved or blocked by an override has left the queue, even before its next
    // request updates its partnership (as the console's queue shows it).
    let decided: std::collections::HashSet<String> = store
        .list_overrides()
        .await
        .map_err(easgate_ops::OpsError::from)?
        .into_iter()
        .filter(|o| o.action != "quarantine")
        .map(|o| o.eas_device_id.to_ascii_lowercase())
        .collect();
    let mut quarantine_queue = 0;
    for p in store
        .list_partnerships(None)
        .await
        .map_err(easgate_ops::OpsError::from)?
    {
        if p.access_state == "quarantine"
            && !p.suspect
            && !decided.contains(&p.eas_device_id.to_ascii_lowercase())
        {
            quarantine_queue += 1;
        }
        *devices
            .entry(MobileDevice::from(p).device_access_state)
            .or_default() += 1;
    }
    let refusals_last_hour = app
        .gateway
        .refusals
        .last_hour(now)
        .into_iter()
        .map(|(cause, count)| RefusalCount {
            cause: cause.to_string(),
            count,
        })
        .collect();
    let mut expiring_certificates = store
        .expiring_certificates(now)
        .await
        .map_err(easgate_ops::OpsError::from)?;
    let expiring_total = expiring_certificates.len() as u64;
    expiring_certificates.truncate(EXPIRING_SHOWN);
    let mut crls = Vec::new();
    for ca in app.easgate.list_cas().await? {
        let full = store
            .latest_crl_meta(&ca.ca.name, CrlScope::Full)
            .await
            .map_err(easgate_ops::OpsError::from)?
            .map(|m| m.next_update);
        let delta = store
            .latest_crl_meta(&ca.ca.name, CrlScope::Delta)
            .await
            .map_err(easgate_ops::OpsError::from)?
            .map(|m| m.next_update);
        crls.push(CrlFreshness {
            ca: ca.ca.name,
            fresh: full.is_some_and(|t| t > now) && delta.is_some_and(|t| t > now),
            full_next_update: full,
            delta_next_update: delta,
        });
    }
    Ok(Json(Dashboard {
        devices,
        quarantine_queue,
        refusals_last_hour,
        expiring_certificates,
        expiring_total,
        crls,
    }))
}
