//! Bearer-token authentication of `/api/v1` and the role check every operation makes.
//!
//! The middleware looks the token up on every call (so expiry and revocation take effect on the
//! next request), puts the [`Caller`] in the request's extensions and runs the handler as that
//! caller: everything the call changes is audited with `token:NAME` as the actor, and every
//! call, reads included, is counted into the token's `api.calls` event of the minute
//! ([`super::call_log`]). A refused operation (403) is audited at once; an unauthenticated call
//! (401) is not audited, so that nobody without a token can fill the audit trail.
//!
//! The web console's pages call the same API with a session cookie instead of the bearer token
//! ([`crate::console::session`]); a change made that way must also carry the session's CSRF
//! token.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use easgate_ops::context::acting_as;
use easgate_ops::tokens::{AuthFailure, Caller, Permission, Role};

use super::problem::{ApiError, ApiResult};
use crate::console::{self, session};
use crate::App;

/// The token of `Authorization: Bearer …`, or the password of HTTP Basic (as NDES clients send
/// it).
pub fn presented_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        return text
            .split_once(':')
            .map(|(_, password)| password.to_string());
    }
    None
}

/// The caller a request's token stands for, or the 401 to answer.
pub async fn caller_of(app: &App, headers: &HeaderMap) -> ApiResult<Caller> {
    let Some(secret) = presented_token(headers) else {
        return Err(ApiError::unauthorized(
            "send an API token as `Authorization: Bearer TOKEN` (easgate token create)",
        ));
    };
    app.easgate
        .authenticate(&secret)
        .await?
        .map_err(unauthorized_for)
}

/// The 401 for a token that does not authenticate.
pub fn unauthorized_for(failure: AuthFailure) -> ApiError {
    ApiError::unauthorized(match failure {
        AuthFailure::Expired => "the token has expired",
        AuthFailure::Revoked => "the token was revoked",
        AuthFailure::Unknown => "unknown token",
    })
}

/// The caller of an API request: its bearer token, or else the web console's session cookie,
/// whose changes must carry the session's CSRF token (403, audited, without it).
async fn request_caller(
    app: &App,
    method: &Method,
    headers: &HeaderMap,
    operation: &str,
) -> ApiResult<Caller> {
    if headers.contains_key(header::AUTHORIZATION) || session::cookie(headers).is_none() {
        return caller_of(app, headers).await;
    }
    let (_, s, caller) = console::session_caller(app, headers).await?;
    if session::changes(method) {
        console::csrf_or_refuse(app, headers, &s, &caller, operation).await?;
    }
    Ok(caller)
}

pub async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let operation = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map_or("?", MatchedPath::as_str)
    );
    let method = req.method().clone();
    let caller = match request_caller(&app, &method, req.headers(), &operation).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    let actor = caller.actor();
    let name = caller.name.clone();
    req.extensions_mut().insert(caller);
    let response = acting_as(actor, next.run(req)).await;
    app.api_calls.note(
        &name,
        &operation,
        response.status().as_u16(),
        app.easgate.now().unix_timestamp(),
    );
    response
}

/// Refuse (403, audited) unless `caller` may do `need`.
pub async fn require(app: &App, caller: &Caller, need: Permission, what: &str) -> ApiResult<()> {
    if caller.role.may(need) {
        return Ok(());
    }
    let role = Role::least_for(need);
    let ctx = app.easgate.ctx();
    if let Err(e) = app
        .easgate
        .store
        .record_event(
            &ctx,
            "api.denied",
            "token",
            &caller.name,
            &format!("{what}: needs role {role}, token has {}", caller.role),
        )
        .await
    {
        tracing::warn!(error = %e, "admin API: cannot audit a refused call");
    }
    let holders = Role::ALL
        .into_iter()
        .filter(|r| r.may(need))
        .map(Role::as_str)
        .collect::<Vec<_>>()
        .join(" or ");
    Err(ApiError::forbidden(
        role.as_str(),
        format!(
            "{what} needs role {holders}; token `{}` has role {}",
            caller.name, caller.role
        ),
    ))
}

/// What every `/api/v1` handler starts from: the server and the authenticated caller (put in
/// the request by [`authenticate`]).
pub struct Api {
    pub app: Arc<App>,
    pub caller: Caller,
}

impl axum::extract::FromRequestParts<Arc<App>> for Api {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<App>,
    ) -> ApiResult<Self> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("no authenticated caller"))?;
        Ok(Api {
            app: Arc::clone(state),
            caller,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::presented_token;
    use axum::http::{header, HeaderMap, HeaderValue};
    use proptest::prelude::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(header::AUTHORIZATION, v);
        }
        h
    }

    #[test]
    fn bearer_and_basic() {
        assert_eq!(
            presented_token(&headers("Bearer egt_1")).as_deref(),
            Some("egt_1")
        );
        // Basic: the password is the token (NDES clients send user:password).
        assert_eq!(
            presented_token(&headers("Basic dXNlcjplZ3RfMg==")).as_deref(),
            Some("egt_2")
        );
        assert_eq!(presented_token(&headers("Digest x")), None);
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }

    proptest! {
        #[test]
        fn any_authorization_header_is_handled(value in "[ -~]{0,100}") {
            let _ = presented_token(&headers(&value));
        }
    }
}
