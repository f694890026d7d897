//! One gateway request: who is it, may it pass, and then the upstream's answer or ours.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use easgate_activesync::device::{device_information, provision};
use easgate_activesync::{classify, decode, Command, EasRequest};
use easgate_policy::{Action, DeviceState, Matched, Subject};
use easgate_store::Ctx;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rustls_pki_types::UnixTime;
use tracing::{info, warn};

use crate::gateway::certcheck::{check_now, Chained, ConnectionCertificate, Rejection};
use crate::gateway::config::{UpstreamAuth, LONG_POLL_LIMIT};
use crate::gateway::partnerships::{Binding, Sighting};
use crate::gateway::proxy::{
    empty_body, full_body, set_header, strip_hop_by_hop, FinishOnDrop, GatewayBody, TeeBody,
    DEVICE_INFO_LIMIT,
};
use crate::gateway::quarantine;
use crate::metrics::{DecisionLabels, KindLabels};
use crate::App;

/// One client connection: its address and its certificate.
pub struct Connection {
    pub peer: SocketAddr,
    pub certificate: ConnectionCertificate,
}

const EAS_PATH: &str = "/Microsoft-Server-ActiveSync";
const WBXML: &str = "application/vnd.ms-sync.wbxml";
/// Largest body a quarantined device's FolderSync or Sync may send (read whole, not proxied).
const QUARANTINE_BODY_LIMIT: usize = 1024 * 1024;

fn plain(status: StatusCode, text: &str) -> Response<GatewayBody> {
    let mut response = Response::new(full_body(format!("{text}\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn wbxml(status: StatusCode, body: impl Into<bytes::Bytes>) -> Response<GatewayBody> {
    let mut response = Response::new(full_body(body.into()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(WBXML));
    response
}

pub async fn handle(
    app: Arc<App>,
    conn: Arc<Connection>,
    req: Request<Incoming>,
) -> Response<GatewayBody> {
    let started = Instant::now();
    let response = route(&app, &conn, req).await;
    app.metrics
        .gateway_latency
        .observe(started.elapsed().as_secs_f64());
    response
}

async fn route(app: &Arc<App>, conn: &Connection, req: Request<Incoming>) -> Response<GatewayBody> {
    if !req.uri().path().eq_ignore_ascii_case(EAS_PATH) {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: the gateway serves /Microsoft-Server-ActiveSync",
        );
    }
    let now = app.easgate.now().unix_timestamp();
    let checked = certificate(app, &conn.certificate, now);
    if req.method() == Method::OPTIONS {
        return options(app, conn, req, checked.ok()).await;
    }
    if req.method() != Method::POST && req.method() != Method::GET {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use POST (or OPTIONS)",
        );
    }
    let query = req.uri().query().unwrap_or("");
    let parsed = EasRequest::parse(
        query,
        req.headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))),
    );
    let eas = match parsed {
        Ok(eas) => eas,
        Err(e) => {
            info!(peer = %conn.peer, error = %e, "gateway: refused a malformed EAS request");
            let response = plain(StatusCode::BAD_REQUEST, &format!("bad request: {e}"));
            return answer_unread(req, response).await;
        }
    };
    let Some(device_id) = eas.device_id.clone() else {
        let response = plain(StatusCode::BAD_REQUEST, "bad request: DeviceId is missing");
        return answer_unread(req, response).await;
    };
    decide(app, conn, req, &eas, &device_id, checked, now).await
}

/// The certificate checks; rejections are counted.
fn certificate(app: &App, cert: &ConnectionCertificate, now: i64) -> Result<Chained, Rejection> {
    let unix = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    let result = cert
        .chained(app, unix)
        .and_then(|chained| check_now(app, &chained, now).map(|()| chained));
    if let Err(rejection) = &result {
        app.metrics
            .gateway_cert_rejections
            .get_or_create(&KindLabels {
                kind: rejection.kind(),
            })
            .inc();
    }
    result
}

/// Whether the request's `User` (`user`, `DOMAIN\user` or `user@domain`) names `identity`
/// (or the user's email address).
pub fn user_matches(request_user: &str, identity: &str, email: Option<&str>) -> bool {
    let user = request_user
        .rsplit('\\')
        .next()
        .unwrap_or(request_user)
        .trim();
    if user.contains('@') {
        user.eq_ignore_ascii_case(identity) || email.is_some_and(|e| user.eq_ignore_ascii_case(e))
    } else {
        let local = identity.split('@').next().unwrap_or(identity);
        !user.is_empty() && user.eq_ignore_ascii_case(local)
    }
}

/// A refusal decided before the rules: who, why.
struct Refusal {
    cause: &'static str,
    reason: String,
}

#[allow(clippy::too_many_arguments)]
async fn decide(
    app: &Arc<App>,
    conn: &Connection,
    req: Request<Incoming>,
    eas: &EasRequest,
    device_id: &str,
    checked: Result<Chained, Rejection>,
    now: i64,
) -> Response<GatewayBody> {
    let gw = &app.gateway;
    let directory = gw.directory();
    let request_user = eas.user.clone().unwrap_or_default();
    let (platform, client) = classify(eas.device_type.as_deref(), eas.user_agent.as_deref());

    // Who the request is for, in which state, and any refusal that comes before the rules.
    let mut refusal: Option<Refusal> = None;
    let (user, dir_user, state, serial, state_reason) = match &checked {
        Ok(chained) => {
            let dir_user = directory.find(&chained.identity);
            let upn = dir_user
                .as_ref()
                .map(|u| u.upn.clone())
                .unwrap_or_else(|| chained.identity.clone());
            let email = chained.cert.emails.first().map(String::as_str);
            if !user_matches(&request_user, &chained.identity, email)
                && !user_matches(&request_user, &upn, email)
            {
                refusal = Some(Refusal {
                    cause: "identity-mismatch",
                    reason: format!(
                        "request User `{request_user}` is not the certificate's user {}",
                        chained.identity
                    ),
                });
            } else if dir_user.as_ref().is_some_and(|u| u.disabled) {
                refusal = Some(Refusal {
                    cause: "user-disabled",
                    reason: format!("user {upn} is disabled"),
                });
            } else if let Binding::Elsewhere(bound) =
                gw.partnerships
                    .bind(&chained.cert.serial, device_id, &upn, now)
            {
                refusal = Some(Refusal {
                    cause: "certificate-bound-elsewhere",
                    reason: format!(
                        "certificate {} belongs to device {bound} (possible stolen certificate)",
                        chained.cert.serial
                    ),
                });
                flag_reuse(app, &chained.cert.serial.to_hex(), device_id, &bound, &upn);
            }
            (
                upn,
                dir_user,
                DeviceState::Managed,
                Some(chained.cert.serial.to_hex()),
                "valid certificate".to_string(),
            )
        }
        Err(rejection) => {
            let as_given = request_user.to_ascii_lowercase();
            let dir_user = directory.find(&as_given);
            let user = dir_user.as_ref().map(|u| u.upn.clone()).unwrap_or(as_given);
            (
                user,
                dir_user,
                DeviceState::Unmanaged,
                None,
                rejection.to_string(),
            )
        }
    };

    let groups = dir_user
        .as_ref()
        .map(|u| u.groups.clone())
        .unwrap_or_default();
    let lower_id = device_id.to_ascii_lowercase();
    let (action, matched, reason) = match &refusal {
        Some(r) => (Action::Block, r.cause.to_string(), r.reason.clone()),
        None => {
            let decision = gw.policy().evaluate(&Subject {
                user: (!user.is_empty()).then_some(user.as_str()),
                groups: &groups,
                platform,
                client,
                device_state: state,
                ip: Some(conn.peer.ip()),
                eas_device_id: Some(&lower_id),
            });
            let matched = match &decision.matched {
                Matched::Override { .. } => "override".to_string(),
                Matched::Rule { name } => name.clone(),
                Matched::Default => "default".to_string(),
            };
            (
                decision.action,
                matched,
                format!("{decision}; {state_reason}"),
            )
        }
    };

    let action_word = if refusal.is_some() {
        "refuse"
    } else {
        action.as_str()
    };
    app.metrics
        .gateway_decisions
        .get_or_create(&DecisionLabels {
            action: action_word,
            matched: matched.clone(),
        })
        .inc();
    info!(
        peer = %conn.peer,
        user = %user,
        device = %device_id,
        cmd = eas.command.name(),
        cert = serial.as_deref().unwrap_or("-"),
        state = state.as_str(),
        action = action_word,
        matched = %matched,
        reason = %reason,
        "gateway decision"
    );
    if !user.is_empty() {
        gw.partnerships.record(Sighting {
            user: &user,
            eas_device_id: device_id,
            device_type: eas.device_type.as_deref(),
            user_agent: eas.user_agent.as_deref(),
            client: client.as_str(),
            platform: platform.as_str(),
            protocol: eas.protocol_version.as_deref(),
            command: eas.command.name(),
            cert_serial: serial.clone(),
            device_state: state.as_str(),
            access_state: action.as_str(),
            access_reason: reason.clone(),
            synced: action == Action::Allow,
            now,
        });
    }

    match action {
        _ if refusal.is_some() => {
            let response = plain(StatusCode::FORBIDDEN, &format!("forbidden: {reason}"));
            answer_unread(req, response).await
        }
        Action::Block => {
            let response = match quarantine::blocked_body(&eas.command) {
                Some(body) => wbxml(StatusCode::FORBIDDEN, body),
                None => plain(
                    StatusCode::FORBIDDEN,
                    "forbidden: this device is blocked for this user",
                ),
            };
            answer_unread(req, response).await
        }
        Action::Quarantine => quarantined(app, req, eas, &user, now).await,
        Action::Allow => forward(app, conn, req, &eas.command, Some(&user), Some(device_id)).await,
    }
}

/// Most of a refused request's body read (and dropped) so the connection stays usable.
const DRAIN_LIMIT: usize = 64 * 1024;

/// Answer a request whose body the gateway does not want. The body is read first (up to
/// [`DRAIN_LIMIT`], briefly): a client still sending when the answer comes would see an HTTP/2
/// stream reset or a half-read HTTP/1.1 connection. A body too big or too slow to drain closes
/// an HTTP/1.1 connection instead (`Connection: close`).
async fn answer_unread(
    req: Request<Incoming>,
    mut response: Response<GatewayBody>,
) -> Response<GatewayBody> {
    let version = req.version();
    let limited = http_body_util::Limited::new(req.into_body(), DRAIN_LIMIT);
    let drained = matches!(
        tokio::time::timeout(Duration::from_secs(5), limited.collect()).await,
        Ok(Ok(_))
    );
    if !drained && version == Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn flag_reuse(app: &Arc<App>, serial: &str, device_id: &str, bound: &str, upn: &str) {
    let first = app
        .gateway
        .flagged
        .lock()
        .map(|mut f| f.insert((serial.to_string(), device_id.to_ascii_lowercase())))
        .unwrap_or(false);
    if !first {
        return;
    }
    warn!(
        serial,
        device = device_id,
        bound_to = bound,
        user = upn,
        "certificate presented by a second device: refused (possible stolen certificate)"
    );
    let app = Arc::clone(app);
    let (serial, detail) = (
        serial.to_string(),
        format!("used by device {device_id}, bound to device {bound}, user {upn}"),
    );
    tokio::spawn(async move {
        let ctx = Ctx {
            actor: "gateway".into(),
            now: app.easgate.now().unix_timestamp(),
        };
        if let Err(e) = app
            .easgate
            .store
            .record_event(
                &ctx,
                "gateway.certificate.reuse",
                "certificate",
                &serial,
                &detail,
            )
            .await
        {
            warn!(error = %e, "cannot record the stolen-certificate signal in the audit trail");
        }
    });
}

async fn quarantined(
    app: &App,
    req: Request<Incoming>,
    eas: &EasRequest,
    user: &str,
    now: i64,
) -> Response<GatewayBody> {
    if !matches!(
        eas.command,
        Command::FolderSync | Command::Sync | Command::Provision | Command::Settings
    ) {
        let response = plain(
            StatusCode::FORBIDDEN,
            "forbidden: this device is waiting for approval (quarantined)",
        );
        return answer_unread(req, response).await;
    }
    let limited = http_body_util::Limited::new(req.into_body(), QUARANTINE_BODY_LIMIT);
    let body = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let received = easgate_ops::time_fmt::rfc3339(now);
    if matches!(eas.command, Command::Provision | Command::Settings) {
        if let (Some(info), Some(device_id)) = (quarantine::device_info(&body), &eas.device_id) {
            app.gateway
                .partnerships
                .record_device_information(user, device_id, &info);
        }
    }
    match quarantine::answer(&eas.command, &body, user, &received) {
        Some(answer) => wbxml(StatusCode::OK, answer),
        None => plain(
            StatusCode::FORBIDDEN,
            "forbidden: this device is waiting for approval (quarantined)",
        ),
    }
}

/// OPTIONS: from the upstream for a device with a good certificate, else built in.
async fn options(
    app: &Arc<App>,
    conn: &Connection,
    req: Request<Incoming>,
    checked: Option<Chained>,
) -> Response<GatewayBody> {
    if let (Some(chained), Some(_)) = (&checked, &app.gateway.config.upstream) {
        let user = app
            .gateway
            .directory()
            .find(&chained.identity)
            .map(|u| u.upn.clone())
            .unwrap_or_else(|| chained.identity.clone());
        return forward(
            app,
            conn,
            req,
            &Command::from_name("OPTIONS"),
            Some(&user),
            None,
        )
        .await;
    }
    let mut response = Response::new(empty_body());
    let h = response.headers_mut();
    for (name, value) in [
        ("allow", "OPTIONS,POST"),
        ("ms-server-activesync", "16.1"),
        ("ms-asprotocolversions", "2.5,12.0,12.1,14.0,14.1,16.0,16.1"),
        (
            "ms-asprotocolcommands",
            "Sync,SendMail,SmartForward,SmartReply,GetAttachment,GetHierarchy,CreateCollection,DeleteCollection,MoveCollection,FolderSync,FolderCreate,FolderDelete,FolderUpdate,MoveItems,GetItemEstimate,MeetingResponse,Search,Settings,Ping,ItemOperations,Provision,ResolveRecipients,ValidateCert,Find",
        ),
        ("public", "OPTIONS,POST"),
    ] {
        set_header(h, name, value);
    }
    response
}

fn upstream_uri(base: &Uri, query: Option<&str>) -> Option<Uri> {
    let path = base.path();
    let path_and_query = match query {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    };
    Uri::builder()
        .scheme(base.scheme_str()?)
        .authority(base.authority()?.as_str())
        .path_and_query(path_and_query)
        .build()
        .ok()
}

/// Decrements the open long-poll gauge when the request ends, however it ends.
struct LongPoll<'a>(&'a App);

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        self.0.metrics.gateway_long_polls.dec();
    }
}

async fn forward(
    app: &Arc<App>,
    conn: &Connection,
    req: Request<Incoming>,
    command: &Command,
    user: Option<&str>,
    device_id: Option<&str>,
) -> Response<GatewayBody> {
    let gw = &app.gateway;
    let Some(base) = &gw.config.upstream else {
        app.metrics
            .gateway_upstream_errors
            .get_or_create(&KindLabels { kind: "none" })
            .inc();
        warn!(
            upstream = "none",
            "gateway: allowed request not proxied: no --upstream configured"
        );
        let response = plain(
            StatusCode::BAD_GATEWAY,
            "bad gateway: no upstream mail server is configured (--upstream)",
        );
        return answer_unread(req, response).await;
    };
    let (mut parts, body) = req.into_parts();
    let body = FinishOnDrop::new(body);
    let Some(uri) = upstream_uri(base, parts.uri.query()) else {
        return plain(
            StatusCode::BAD_GATEWAY,
            "bad gateway: cannot form the upstream URL",
        );
    };
    let original_host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()));
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    headers.remove(header::HOST);
    for name in [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
    ] {
        headers.remove(name);
    }
    set_header(headers, "x-forwarded-for", &conn.peer.ip().to_string());
    set_header(headers, "x-forwarded-proto", "https");
    if let Some(host) = &original_host {
        set_header(headers, "x-forwarded-host", host);
    }
    if let UpstreamAuth::TrustedHeader { header: name } = &gw.config.upstream_auth {
        headers.remove(name);
        headers.remove(header::AUTHORIZATION);
        if let Some(user) = user {
            if let Ok(value) = HeaderValue::from_str(user) {
                headers.insert(name.clone(), value);
            }
        }
    }
    parts.uri = uri;
    parts.version = Version::HTTP_11;

    let body = match (command, user, device_id) {
        (Command::Settings | Command::Provision, Some(user), Some(device_id)) => {
            let (tee, copy) = TeeBody::new(body, DEVICE_INFO_LIMIT);
            let book = Arc::clone(&gw.partnerships);
            let (user, device_id) = (user.to_string(), device_id.to_string());
            tokio::spawn(async move {
                if let Ok(bytes) = copy.await {
                    if let Ok(doc) = decode(&bytes) {
                        let info = device_information(doc.root())
                            .or_else(|| provision(doc.root()).and_then(|p| p.device_information));
                        if let Some(info) = info {
                            book.record_device_information(&user, &device_id, &info);
                        }
                    }
                }
            });
            tee.boxed()
        }
        _ => body.boxed(),
    };
    let upstream_request = Request::from_parts(parts, body);

    let long_poll = matches!(command, Command::Ping | Command::Sync);
    let _guard = long_poll.then(|| {
        app.metrics.gateway_long_polls.inc();
        LongPoll(app)
    });
    let limit = if long_poll {
        LONG_POLL_LIMIT
    } else {
        gw.config.upstream_timeout
    };
    let result = tokio::time::timeout(limit, gw.upstream_client.request(upstream_request)).await;
    let upstream_error = |kind: &'static str| {
        app.metrics
            .gateway_upstream_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    };
    match result {
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Ok(Err(e)) => {
            let kind = if e.is_connect() {
                "connect"
            } else {
                "protocol"
            };
            upstream_error(kind);
            warn!(upstream = %base, kind, error = %e, cmd = command.name(), "gateway: upstream failed");
            plain(
                StatusCode::BAD_GATEWAY,
                "bad gateway: the mail server could not be reached",
            )
        }
        Err(_) => {
            upstream_error("timeout");
            warn!(upstream = %base, kind = "timeout", after = ?limit, cmd = command.name(), "gateway: upstream did not answer in time");
            plain(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway timeout: the mail server did not answer in time",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::user_matches;

    #[test]
    fn the_request_user_must_name_the_certificate_user() {
        let upn = "alice@corp.example";
        assert!(user_matches("alice@corp.example", upn, None));
        assert!(user_matches("ALICE@Corp.Example", upn, None));
        assert!(user_matches("CORP\\alice", upn, None));
        assert!(user_matches("alice", upn, None));
        assert!(user_matches(
            "alice.smith@mail.example",
            upn,
            Some("alice.smith@mail.example")
        ));
        assert!(!user_matches("bob@corp.example", upn, None));
        assert!(!user_matches("CORP\\bob", upn, None));
        assert!(!user_matches("", upn, None));
        assert!(!user_matches("alice@other.example", upn, None));
    }
}
