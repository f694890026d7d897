//! The NDES-compatible challenge page, `GET /certsrv/mscep_admin/` on the public listener.
//!
//! MDMs that enroll devices through Microsoft NDES with a "dynamic challenge" (Workspace ONE,
//! MaaS360, Jamf, Fleet, Zentral, …) log in to that page with HTTP Basic, scrape the one-time
//! password out of its HTML and put it in the device's SCEP payload. Serving the same page lets
//! them use easgate without an easgate-specific connector. It lives on the public listener
//! because the MDM's cloud reaches the SCEP host, while the admin listener stays on loopback.
//!
//! - Authentication: HTTP Basic whose password is an API token (the user name is ignored; a
//!   bearer token works too) of role enroller or admin. No or a bad token: 401 with
//!   `WWW-Authenticate: Basic realm="easgate"`; another role: 403, audited as `api.denied`.
//!   Helpdesk tokens, which may fetch a challenge for a named device over the API, are refused
//!   here: a challenge from this page enrolls whichever device the request names, which is
//!   the MDM's business (enroller) or the admin's.
//! - The challenge is one-time, expires in 60 minutes and is bound to no device: the SCEP
//!   request's common name names the device, which must already be enrolled (`ops::ndes`).
//!   `?ca=NAME` limits it to that CA's SCEP URL; without, it works at any of ours.
//! - Encoding: UTF-16 (little-endian, with a byte-order mark), as real NDES answers. Clients
//!   decode it that way: Fleet reads the body as UTF-16 honouring the BOM (big-endian without
//!   one), Zentral decodes it as Python's `utf-16` (BOM required); a UTF-8 page breaks both.
//!   `?encoding=utf-8` gives UTF-8 for scripts that want it.
//! - Parsed shape: `The enrollment challenge password is: <B> CHALLENGE </B>` with the challenge
//!   as 32 upper-case hex digits, since parsers match `<B> (\S*)`, `<B> ([A-Z0-9]{16,32}) </B>`
//!   or the first hex run after "challenge password" (so nothing before it says that).
//!   When too many challenges are outstanding the answer is 503 saying "The password cache is
//!   full.", NDES's own words, which Fleet recognises.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use easgate_ops::context::acting_as;
use easgate_ops::devices::DYNAMIC_CHALLENGE_SECS;
use easgate_ops::ndes::{ChallengeCacheFull, UnboundChallenge};
use easgate_ops::tokens::{AuthFailure, Caller, Role};
use easgate_ops::OpsError;
use tracing::{info, warn};

use crate::api::auth::presented_token;
use crate::App;

/// The paths NDES clients are configured with (IIS serves them case-insensitively; see
/// [`is_page_path`] for the other spellings).
const PATHS: [&str; 4] = [
    "/certsrv/mscep_admin/",
    "/certsrv/mscep_admin",
    "/certsrv/mscep_admin/default.aspx",
    "/certsrv/mscep_admin/mscep.dll",
];

pub fn routes() -> Router<Arc<App>> {
    PATHS
        .into_iter()
        .fold(Router::new(), |router, path| router.route(path, any(page)))
}

/// Whether `path` is the page in another spelling (`/CertSrv/mscep_admin/`, as IIS ignores
/// case): the public listener's fallback answers it with [`page`].
pub fn is_page_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    PATHS.contains(&lower.as_str())
}

/// The page's text encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Utf16,
    Utf8,
}

/// What the query asks for: `ca=NAME`, `encoding=utf-16|utf-8`; other parameters are ignored,
/// as IIS would.
struct PageQuery {
    ca: Option<String>,
    encoding: Encoding,
}

fn parse_query(query: Option<&str>) -> Result<PageQuery, String> {
    let mut out = PageQuery {
        ca: None,
        encoding: Encoding::Utf16,
    };
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = crate::public::percent_decode(value)
            .map_err(|()| format!("query parameter `{key}` is not URL-encoded text"))?;
        match key {
            "ca" if !value.is_empty() => out.ca = Some(value),
            "encoding" => {
                out.encoding = match value.to_ascii_lowercase().as_str() {
                    "utf-16" | "utf16" | "" => Encoding::Utf16,
                    "utf-8" | "utf8" => Encoding::Utf8,
                    _ => return Err("encoding= takes utf-16 (the default) or utf-8".into()),
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut response = plain(StatusCode::UNAUTHORIZED, message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"easgate\""),
    );
    response
}

/// `GET /certsrv/mscep_admin/`: a fresh one-time challenge in NDES's page.
pub async fn page(
    State(app): State<Arc<App>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    // Every GET makes a challenge; a HEAD or a POST must not.
    if method != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET this page to get a one-time SCEP challenge",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let Some(secret) = presented_token(&headers) else {
        return unauthorized(
            "log in with HTTP Basic: any user name, an easgate API token of role enroller as the password (easgate token create NAME --role enroller)",
        );
    };
    let caller = match app.easgate.authenticate(&secret).await {
        Ok(Ok(caller)) => caller,
        Ok(Err(failure)) => {
            let why = match failure {
                AuthFailure::Expired => "the token has expired",
                AuthFailure::Revoked => "the token was revoked",
                AuthFailure::Unknown => "unknown token",
            };
            return unauthorized(why);
        }
        Err(e) => {
            warn!(target: "easgate::public", error = %e, "NDES page: cannot check a token");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the token could not be checked; the server log says why",
            );
        }
    };
    let query = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(why) => return plain(StatusCode::BAD_REQUEST, &why),
    };
    let actor = caller.actor();
    acting_as(actor, async {
        if !may_fetch(&caller) {
            deny(&app, &caller).await;
            return plain(
                StatusCode::FORBIDDEN,
                &format!(
                    "token `{}` has role {}: the challenge page needs role enroller or admin",
                    caller.name, caller.role
                ),
            );
        }
        match app.easgate.unbound_challenge(query.ca.as_deref()).await {
            Ok(Ok(challenge)) => {
                info!(
                    target: "easgate::public",
                    token = %caller.name,
                    ca = challenge.ca.as_deref().unwrap_or("any"),
                    "NDES challenge handed out"
                );
                let scep = app.easgate.public_url().await.ok().map(|base| {
                    format!(
                        "{base}/scep/{}",
                        challenge.ca.as_deref().unwrap_or("CA-NAME")
                    )
                });
                html(
                    &render(&challenge, scep.as_deref(), DYNAMIC_CHALLENGE_SECS / 60),
                    query.encoding,
                )
            }
            Ok(Err(ChallengeCacheFull)) => {
                let mut response = plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The password cache is full. Unused challenges expire within 60 minutes; retry later.",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("300"));
                response
            }
            Err(e @ OpsError::NotFound { .. }) => {
                plain(StatusCode::NOT_FOUND, &format!("{e} (the ca= parameter)"))
            }
            Err(e) => {
                warn!(target: "easgate::public", error = %e, "NDES page: cannot make a challenge");
                plain(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the challenge could not be made; the server log says why",
                )
            }
        }
    })
    .await
}

/// Enroller and admin tokens only (see the module documentation for why not helpdesk).
fn may_fetch(caller: &Caller) -> bool {
    matches!(caller.role, Role::Enroller | Role::Admin)
}

/// Audit a refused fetch as the admin API audits a refused call.
async fn deny(app: &App, caller: &Caller) {
    let ctx = app.easgate.ctx();
    if let Err(e) = app
        .easgate
        .store
        .record_event(
            &ctx,
            "api.denied",
            "token",
            &caller.name,
            &format!(
                "fetching a SCEP challenge from /certsrv/mscep_admin/: needs role enroller or admin, token has {}",
                caller.role
            ),
        )
        .await
    {
        warn!(target: "easgate::public", error = %e, "NDES page: cannot audit a refused fetch");
    }
}

/// The page: NDES's layout and the sentences clients parse, in easgate's words otherwise.
fn render(challenge: &UnboundChallenge, scep_url: Option<&str>, minutes: i64) -> String {
    let scope = match (&challenge.ca, scep_url) {
        (Some(ca), Some(url)) => format!(
            "It is accepted only by CA <B>{}</B>, at {}.",
            escape(ca),
            escape(url)
        ),
        (Some(ca), None) => format!("It is accepted only by CA <B>{}</B>.", escape(ca)),
        (None, Some(url)) => format!(
            "It is accepted by every easgate CA, at {} (CA-NAME being the CA of the device's template).",
            escape(url)
        ),
        (None, None) => "It is accepted by every easgate CA.".to_string(),
    };
    format!(
        "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-16\">\r\n\
         <Title>Network Device Enrollment Service</Title></Head>\r\n\
         <Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\">\r\n\
         <P><B>easgate</B> answers here as the Network Device Enrollment Service does, for MDMs that fetch a one-time secret per SCEP enrollment.<P>\r\n\
         <P> The enrollment challenge password is: <B> {} </B> <P> This password can be used only once and will expire within {minutes} minutes. <P>\r\n\
         <P> {scope} The common name of the certificate request must be the uid of a device already enrolled in easgate. <P>\r\n\
         <P> Fetch a new one for every enrollment. <P>\r\n\
         </Font></Body></HTML>\r\n",
        challenge.challenge
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(page: &str, encoding: Encoding) -> Response {
    let (content_type, body) = match encoding {
        Encoding::Utf16 => {
            let mut bytes = Vec::with_capacity(2 + page.len() * 2);
            bytes.extend_from_slice(&[0xFF, 0xFE]);
            for unit in page.encode_utf16() {
                bytes.extend_from_slice(&unit.to_le_bytes());
            }
            ("text/html; charset=utf-16", bytes)
        }
        Encoding::Utf8 => (
            "text/html; charset=utf-8",
            page.replace("charset=UTF-16", "charset=UTF-8").into_bytes(),
        ),
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn other_spellings_of_the_path_are_the_page() {
        assert!(is_page_path("/CertSrv/mscep_admin/"));
        assert!(is_page_path("/certsrv/MSCEP_ADMIN/Default.aspx"));
        assert!(!is_page_path("/certsrv/mscep/mscep.dll"));
    }

    #[test]
    fn the_query_names_a_ca_and_an_encoding() {
        let q = parse_query(Some("ca=mail&encoding=UTF-8&other=1")).unwrap();
        assert_eq!(q.ca.as_deref(), Some("mail"));
        assert!(q.encoding == Encoding::Utf8);
        let q = parse_query(None).unwrap();
        assert!(q.ca.is_none() && q.encoding == Encoding::Utf16);
        assert!(parse_query(Some("encoding=latin1")).is_err());
    }

    #[test]
    fn nothing_before_the_challenge_says_challenge_password() {
        let page = render(
            &UnboundChallenge {
                challenge: "0123456789ABCDEF0123456789ABCDEF".into(),
                ca: Some("mail".into()),
                expires_at: 0,
            },
            Some("http://pki.example/scep/mail"),
            60,
        );
        let first = page
            .to_ascii_lowercase()
            .find("challenge password")
            .unwrap();
        assert_eq!(
            &page[first..first + 59],
            "challenge password is: <B> 0123456789ABCDEF0123456789ABCDEF"
        );
        assert!(page.contains("can be used only once and will expire within 60 minutes."));
    }
}
