//! The admin listener (loopback by default): health, metrics, the REST API (`/api`) and the
//! web console (`/`, `/console/…`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::App;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(crate::readiness::readyz))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&app))
        .merge(crate::api::router(Arc::clone(&app)))
        .merge(crate::console::router(app))
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.easgate.store.revision().await {
        Ok(revision) => Json(serde_json::json!({
            "status": "ok",
            "revision": revision,
            "cas": app.pki.all().len(),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "error", "error": format!("store: {e}")})),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    // As of this scrape, not of the last refresh attempt (one may be waiting on the database).
    app.metrics
        .store_snapshot_age
        .set(i64::try_from(app.freshness.age().as_secs()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
        .into_response()
}
