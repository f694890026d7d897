//! `GET /readyz` on the admin listener: whether the gateway can serve now, for load balancers
//! and orchestrators that should send devices elsewhere until it can. `/healthz` says the
//! process and store answer; ready means more: the PKI snapshot is loaded (at least one CA in
//! memory) and each CA's latest full CRL — and delta CRL, once one is published — is still
//! within its nextUpdate, so relying parties fetching them get something they accept.
//! Answered from memory, never the database.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use easgate_store::CrlScope;

use crate::App;

/// What keeps the server from being ready, one reason per problem; empty when ready.
pub fn reasons(app: &App) -> Vec<String> {
    let now = app.easgate.now().unix_timestamp();
    let cas = app.pki.all();
    let mut reasons = Vec::new();
    if cas.is_empty() {
        reasons.push("no CA loaded".to_string());
    }
    for ca in &cas {
        match ca.crl(CrlScope::Full) {
            None => reasons.push(format!("CA `{}`: no full CRL published yet", ca.name)),
            Some(crl) if crl.next_update <= now => reasons.push(format!(
                "CA `{}`: full CRL #{} is past its nextUpdate {}",
                ca.name,
                crl.number,
                easgate_ops::time_fmt::rfc3339(crl.next_update)
            )),
            Some(_) => {}
        }
        if let Some(delta) = ca.crl(CrlScope::Delta).filter(|d| d.next_update <= now) {
            reasons.push(format!(
                "CA `{}`: delta CRL #{} is past its nextUpdate {}",
                ca.name,
                delta.number,
                easgate_ops::time_fmt::rfc3339(delta.next_update)
            ));
        }
    }
    reasons
}

/// 200 `{"ready":true,"cas":N}`, or 503 `{"ready":false,"cas":N,"reasons":[…]}`.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    let reasons = reasons(&app);
    let cas = app.pki.all().len();
    if reasons.is_empty() {
        Json(serde_json::json!({"ready": true, "cas": cas})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"ready": false, "cas": cas, "reasons": reasons})),
        )
            .into_response()
    }
}
