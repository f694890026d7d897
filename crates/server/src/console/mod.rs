//! The web console on the admin listener: a small single-page app (`console/` beside this
//! crate's sources: one HTML page, one stylesheet, one ES module, no build step) embedded in
//! the binary, over the very REST API the CLI's remote users have (`/api/v1`).
//!
//! Why this shape: the API already validates, audits and role-checks every operation, so the
//! console adds no second way to change anything; the browser signs in with an API token and
//! then holds only an HttpOnly session cookie (see [`session`]). The pages are plain
//! JavaScript a small team can read and change without a toolchain; the strict
//! Content-Security-Policy (no inline script or style, nothing from elsewhere) keeps an
//! injected string from ever running.
//!
//! Routes: `GET /` (the page), `GET /console/app.js` and `/console/app.css`, and
//! `/console/session` (`POST` sign in with `{"token"}`, `GET` the session, `DELETE` sign out)
//! and `POST /console/qr` (an SVG QR code of an enrollment link, made here so no QR library
//! ships to the browser).

pub mod session;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use easgate_ops::tokens::{Caller, Permission};
use serde::{Deserialize, Serialize};

use crate::api::auth::unauthorized_for;
use crate::api::problem::{ApiError, ApiResult, Body};
use crate::App;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const APP_JS: &str = include_str!("../../console/app.js");
const APP_CSS: &str = include_str!("../../console/app.css");

/// What the pages may load and do: only this origin's script, style and connections.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The longest text `POST /console/qr` encodes.
const QR_MAX: usize = 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/console/app.js", get(app_js))
        .route("/console/app.css", get(app_css))
        .route(
            "/console/session",
            post(sign_in).get(current).delete(sign_out),
        )
        .route("/console/qr", post(qr))
        .with_state(app)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// A session as the page sees it.
#[derive(Serialize)]
pub struct SessionInfo {
    /// The API token's name.
    name: String,
    role: &'static str,
    /// What the role may do: `read`, `read_audit`, `helpdesk`, `enroll`, `admin`.
    permissions: Vec<&'static str>,
    /// Send as `X-CSRF-Token` with every change.
    csrf: String,
}

fn info(caller: &Caller, csrf: String) -> SessionInfo {
    SessionInfo {
        name: caller.name.clone(),
        role: caller.role.as_str(),
        permissions: Permission::ALL
            .into_iter()
            .filter(|p| caller.role.may(*p))
            .map(Permission::as_str)
            .collect(),
        csrf,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: String,
}

/// The session id of a request and the caller it stands for (401 when there is none).
pub async fn session_caller(
    app: &App,
    headers: &HeaderMap,
) -> ApiResult<(String, session::Session, Caller)> {
    let now = app.easgate.now().unix_timestamp();
    let ended = || ApiError::unauthorized("not signed in (or the session ended): sign in again");
    let id = session::cookie(headers).ok_or_else(ended)?;
    let s = app.console.touch(&id, now).ok_or_else(ended)?;
    match app.easgate.authenticate_hash(&s.token_hash).await? {
        Ok(caller) => Ok((id, s, caller)),
        Err(failure) => {
            app.console.end(&id);
            Err(unauthorized_for(failure))
        }
    }
}

async fn sign_in(State(app): State<Arc<App>>, Body(req): Body<SignIn>) -> ApiResult<Response> {
    let secret = req.token.trim();
    if secret.is_empty() {
        return Err(ApiError::bad_field("token", "enter an API token"));
    }
    let caller = app
        .easgate
        .authenticate(secret)
        .await?
        .map_err(unauthorized_for)?;
    let now = app.easgate.now().unix_timestamp();
    let (id, csrf) = app
        .console
        .start(easgate_ops::devices::secret_hash(secret), now)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot start a session (no randomness)",
            )
        })?;
    audit(
        &app,
        &caller,
        "console.sign-in",
        &format!("role {}", caller.role),
    )
    .await;
    let mut response = Json(info(&caller, csrf)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(Some(&id), app.config.admin_tls.is_some()),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn current(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Response> {
    let (_, s, caller) = session_caller(&app, &headers).await?;
    let mut response = Json(info(&caller, s.csrf)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn sign_out(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Response> {
    let (id, s, caller) = session_caller(&app, &headers).await?;
    csrf_or_refuse(&app, &headers, &s, &caller, "signing out").await?;
    app.console.end(&id);
    audit(&app, &caller, "console.sign-out", "").await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session::set_cookie(None, app.config.admin_tls.is_some()),
    );
    Ok(response)
}

/// 403 (audited) unless the request carries the session's CSRF token.
pub async fn csrf_or_refuse(
    app: &App,
    headers: &HeaderMap,
    s: &session::Session,
    caller: &Caller,
    what: &str,
) -> ApiResult<()> {
    if session::csrf_matches(headers, &s.csrf) {
        return Ok(());
    }
    audit(app, caller, "console.csrf-refused", what).await;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "missing or wrong X-CSRF-Token: a change made with the console's session cookie must \
         carry the session's CSRF token",
    ))
}

/// Record a console event with the token's name as the actor (a failure is logged: the
/// sign-in itself must not fail because the trail is busy).
async fn audit(app: &App, caller: &Caller, action: &str, detail: &str) {
    let ctx = easgate_store::Ctx {
        actor: caller.actor(),
        ..app.easgate.ctx()
    };
    if let Err(e) = app
        .easgate
        .store
        .record_event(&ctx, action, "token", &caller.name, detail)
        .await
    {
        tracing::warn!(error = %e, action, "console: cannot audit");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QrRequest {
    text: String,
}

async fn qr(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Body(req): Body<QrRequest>,
) -> ApiResult<Response> {
    let (_, s, caller) = session_caller(&app, &headers).await?;
    csrf_or_refuse(&app, &headers, &s, &caller, "making a QR code").await?;
    if req.text.is_empty() || req.text.len() > QR_MAX {
        return Err(ApiError::bad_field(
            "text",
            format!("1 to {QR_MAX} bytes of text to encode"),
        ));
    }
    let code = qrcode::QrCode::with_error_correction_level(req.text.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ApiError::bad_field("text", format!("cannot encode: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        svg,
    )
        .into_response())
}
