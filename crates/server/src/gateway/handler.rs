//! One gateway request: who is it, may it pass, and then the upstream's answer or ours.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use easgate_activesync::device::reported_device_information;
use easgate_activesync::provision::{self, version_at_least, ProvisionRequest};
use easgate_activesync::responses;
use easgate_activesync::{
    classify, encode, Client, Command, EasRequest, Element, Platform, WbxmlError,
};
use easgate_policy::{Action, Certificate, Decision, Facts, Matched, Subject};
use easgate_store::Ctx;
use http::header::{self, HeaderName, HeaderValue, FORWARDED};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rustls_pki_types::UnixTime;
use tracing::{info, warn};

use crate::gateway::certcheck::{check_now, Chained, ConnectionCertificate, Rejection};
use crate::gateway::config::{ProvisionMode, UpstreamAuth, LONG_POLL_LIMIT};
use crate::gateway::partnerships::{AppliedPolicy, Binding, Sighting};
use crate::gateway::provisioning::{ActivePolicy, Provisioning, WipeState};
use crate::gateway::proxy::{
    empty_body, full_body, remove_fields, set_header, strip_hop_by_hop, FinishOnDrop, GatewayBody,
    TeeBody, DEVICE_INFO_LIMIT,
};
use crate::gateway::quarantine;
use crate::metrics::{DecisionLabels, KindLabels};
use crate::App;

/// One client connection: its address and its certificate.
pub struct Connection {
    pub peer: SocketAddr,
    pub certificate: ConnectionCertificate,
    /// `X-Forwarded-For` for its requests: the device's address.
    pub forwarded_for: HeaderValue,
    /// This thread's upstream connection pool.
    pub upstream: crate::gateway::upstream::UpstreamPool,
    /// The platform and client of the connection's last request.
    pub classified: ClassifyCache,
    /// The decision counter of the connection's last request.
    pub decisions: DecisionCounterCache,
}

/// The `gateway_decisions` counter of a connection's last decision: a device's requests on one
/// connection are nearly always decided the same way, and finding the counter in the metric
/// family (a lock, a hash of the labels and an owned copy of the rule's name) is what this
/// saves on every request after the first.
#[derive(Default)]
pub struct DecisionCounterCache(std::sync::Mutex<Option<(DecisionLabels, Counter)>>);

impl DecisionCounterCache {
    /// Count one decision of `action` made by `matched`.
    fn count(&self, family: &Family<DecisionLabels, Counter>, action: &'static str, matched: &str) {
        let Ok(mut last) = self.0.lock() else {
            return;
        };
        if let Some((labels, counter)) = last.as_ref() {
            if labels.action == action && labels.matched == matched {
                counter.inc();
                return;
            }
        }
        let labels = DecisionLabels {
            action,
            matched: matched.to_string(),
        };
        let counter = family.get_or_create(&labels).clone();
        counter.inc();
        *last = Some((labels, counter));
    }
}

/// What [`classify`] said for the DeviceType and User-Agent of a connection's last request: a
/// device sends the same two on every request of a connection, and classifying them is a few
/// dozen case-insensitive substring searches.
#[derive(Default)]
pub struct ClassifyCache(std::sync::Mutex<Option<Classified>>);

struct Classified {
    device_type: Option<String>,
    user_agent: Option<String>,
    platform: Platform,
    client: Client,
}

impl ClassifyCache {
    fn classify(&self, device_type: Option<&str>, user_agent: Option<&str>) -> (Platform, Client) {
        let Ok(mut last) = self.0.lock() else {
            return classify(device_type, user_agent);
        };
        if let Some(c) = last.as_ref() {
            if c.device_type.as_deref() == device_type && c.user_agent.as_deref() == user_agent {
                return (c.platform, c.client);
            }
        }
        let (platform, client) = classify(device_type, user_agent);
        *last = Some(Classified {
            device_type: device_type.map(str::to_string),
            user_agent: user_agent.map(str::to_string),
            platform,
            client,
        });
        (platform, client)
    }
}

const EAS_PATH: &str = "/Microsoft-Server-ActiveSync";
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The forwarding fields a device may not set: [`Forwarded`] writes the gateway's own. A
/// `static`, like `proxy::HOP_BY_HOP`: not built and dropped at every use.
static FORWARDING: [HeaderName; 4] = [
    FORWARDED,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
];
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

/// What to do with a request, decided before anything is awaited (so that none of the
/// deciding state is kept while a long poll waits on the upstream).
enum Plan {
    /// Answer with this, after reading the request body away.
    Refuse(Response<GatewayBody>),
    Quarantine {
        command: Command,
        user: String,
        device_id: String,
        suspect: bool,
    },
    Forward {
        command: Command,
        user: String,
        device_id: String,
        suspect: bool,
    },
    /// A Provision the gateway answers itself: a wipe to hand out, or the user's policy.
    Provision {
        order: ProvisionOrder,
        user: String,
        device_id: String,
    },
}

/// What the gateway's own Provision answer carries.
enum ProvisionOrder {
    Wipe { account_only: bool },
    Policy(Arc<ActivePolicy>),
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
        return Box::pin(options(app, conn, req, checked.ok())).await;
    }
    if req.method() != Method::POST && req.method() != Method::GET {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: use POST (or OPTIONS)",
        );
    }
    let mut planned = plan(app, conn, &req, checked.clone(), now);
    if let Some(claim) = checked
        .as_ref()
        .ok()
        .and_then(|c| app.gateway.partnerships.take_new_binding(&c.cert.serial))
    {
        if claim_binding(app, claim).await {
            // Another gateway bound the certificate first: decide again with its binding.
            planned = plan(app, conn, &req, checked, now);
        }
    }
    match planned {
        Plan::Refuse(response) => Box::pin(answer_unread(req, response)).await,
        Plan::Quarantine {
            command,
            user,
            device_id,
            suspect,
        } => {
            let device = (device_id.as_str(), suspect);
            Box::pin(quarantined(app, req, &command, &user, device, now)).await
        }
        Plan::Forward {
            command,
            user,
            device_id,
            suspect,
        } => {
            let device = Some((device_id.as_str(), suspect));
            forward(app, conn, req, &command, Some(&user), device).await
        }
        Plan::Provision {
            order,
            user,
            device_id,
        } => Box::pin(provisioned(app, req, order, &user, &device_id, now)).await,
    }
}

/// Record a certificate's first binding in the store before answering; whether the store holds
/// another one (adopted, so the request must be decided again). On a store error the binding
/// stays in memory and is left to the next flush.
async fn claim_binding(app: &App, claim: easgate_store::CertificateBinding) -> bool {
    let partnerships = &app.gateway.partnerships;
    match app
        .easgate
        .store
        .save_bindings(std::slice::from_ref(&claim))
        .await
    {
        Ok(in_effect) => {
            let mut elsewhere = false;
            for binding in &in_effect {
                elsewhere |= !binding
                    .eas_device_id
                    .eq_ignore_ascii_case(&claim.eas_device_id);
                partnerships.adopt_binding(binding);
            }
            elsewhere
        }
        Err(e) => {
            warn!(serial = %claim.serial, error = %e, "cannot record a certificate binding now; kept for the next flush");
            partnerships.keep_for_flush(claim);
            false
        }
    }
}

/// Read the request's EAS parameters and decide.
fn plan(
    app: &Arc<App>,
    conn: &Connection,
    req: &Request<Incoming>,
    checked: Result<Arc<Chained>, Rejection>,
    now: i64,
) -> Plan {
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
            return Plan::Refuse(plain(StatusCode::BAD_REQUEST, &format!("bad request: {e}")));
        }
    };
    let Some(device_id) = eas.device_id.as_deref() else {
        return Plan::Refuse(plain(
            StatusCode::BAD_REQUEST,
            "bad request: DeviceId is missing",
        ));
    };
    decide(app, conn, &eas, device_id, checked, now)
}

/// The certificate checks; rejections are counted.
fn certificate(
    app: &App,
    cert: &ConnectionCertificate,
    now: i64,
) -> Result<Arc<Chained>, Rejection> {
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

/// Whether the request's `User` (`user`, `DOMAIN\\user` or `user@domain`) names `identity`
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

/// Why a request got its answer, as logs and partnerships show it; formatted only when
/// needed (a log line that is enabled, a partnership whose reason changed).
struct Reason<'a> {
    decision: &'a Decision,
    /// What the hard refusal found, in detail (the policy crate names only the cause).
    detail: Option<&'a str>,
    certificate: Result<(), &'a Rejection>,
    suspect: bool,
}

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.decision.refusal(), self.detail) {
            (Some(_), Some(detail)) => f.write_str(detail)?,
            (Some(refusal), None) => write!(f, "{refusal}")?,
            (None, _) => match self.certificate {
                Ok(()) => write!(f, "{}; valid certificate", self.decision)?,
                Err(rejection) => write!(f, "{}; {rejection}", self.decision)?,
            },
        }
        if self.suspect {
            f.write_str("; possible spoof: the DeviceId is bound to a certificate this request does not present")?;
        }
        Ok(())
    }
}

/// The cause word of a possible spoof in the audit trail and metrics.
const SPOOF_CAUSE: &str = "possible-spoof";

fn decide(
    app: &Arc<App>,
    conn: &Connection,
    eas: &EasRequest,
    device_id: &str,
    checked: Result<Arc<Chained>, Rejection>,
    now: i64,
) -> Plan {
    let gw = &app.gateway;
    let directory = gw.directory();
    let request_user = eas.user.as_deref().unwrap_or_default();
    let (platform, client) = conn
        .classified
        .classify(eas.device_type.as_deref(), eas.user_agent.as_deref());

    // The facts the policy's hard refusals are made from, who the request is for, and whether
    // it names a DeviceId bound to a certificate it does not present.
    let mut facts = Facts {
        certificate: Certificate::Absent,
        identity_mismatch: false,
        user_disabled: false,
        bound_elsewhere: false,
        device_wiped: false,
    };
    let mut detail: Option<String> = None;
    let mut suspect = false;
    // A certificate that failed a check: its serial (is it the one bound to the device?).
    let mut failed_serial = None;
    let unmanaged_user: String;
    let dir_user: Option<Arc<crate::gateway::DirectoryUser>>;
    let (user, serial): (&str, Option<&str>) = match &checked {
        Ok(chained) => {
            facts.certificate = Certificate::Valid;
            dir_user = directory.find(&chained.identity);
            let upn = dir_user
                .as_ref()
                .map_or(chained.identity.as_str(), |u| u.upn.as_str());
            let email = chained.cert.emails.first().map(String::as_str);
            if !user_matches(request_user, &chained.identity, email)
                && !user_matches(request_user, upn, email)
            {
                facts.identity_mismatch = true;
                detail = Some(format!(
                    "request User `{request_user}` is not the certificate's user {}",
                    chained.identity
                ));
            } else if dir_user.as_ref().is_some_and(|u| u.disabled) {
                facts.user_disabled = true;
                detail = Some(format!("user {upn} is disabled"));
            } else if let Binding::Elsewhere(bound) =
                gw.partnerships
                    .bind(&chained.cert.serial, device_id, upn, now)
            {
                facts.bound_elsewhere = true;
                detail = Some(format!(
                    "certificate {} belongs to device {bound} (possible stolen certificate)",
                    chained.serial_hex
                ));
                flag_reuse(app, &chained.serial_hex, device_id, &bound, upn);
            }
            (upn, Some(chained.serial_hex.as_str()))
        }
        Err(rejection) => {
            // A certificate that failed a check is refused, never taken for "no certificate".
            if !matches!(rejection, Rejection::Missing) {
                facts.certificate = Certificate::Failed(rejection.kind());
                detail = Some(rejection.to_string());
                failed_serial = conn.certificate.leaf_serial();
            }
            let as_given = request_user.to_ascii_lowercase();
            dir_user = directory.find(&as_given);
            unmanaged_user = match &dir_user {
                Some(u) => u.upn.clone(),
                None => as_given,
            };
            if let Some(u) = dir_user.as_ref().filter(|u| u.disabled) {
                facts.user_disabled = true;
                detail.get_or_insert_with(|| format!("user {} is disabled", u.upn));
            }
            suspect = gw.partnerships.device_is_bound(device_id)
                && !failed_serial
                    .as_ref()
                    .is_some_and(|s| gw.partnerships.serial_bound_to(s, device_id));
            (unmanaged_user.as_str(), None)
        }
    };

    let groups: &[String] = dir_user.as_ref().map_or(&[], |u| u.groups.as_slice());
    let lower_id: std::borrow::Cow<'_, str> = if device_id.bytes().any(|b| b.is_ascii_uppercase()) {
        device_id.to_ascii_lowercase().into()
    } else {
        device_id.into()
    };
    let provisioning = gw.provisioning();
    let wipe = provisioning.wipe(&lower_id);
    facts.device_wiped = wipe == Some(WipeState::Done);
    let decision = gw.policy().evaluate(&Subject {
        user: (!user.is_empty()).then_some(user),
        groups,
        platform,
        client,
        ip: Some(conn.peer.ip()),
        eas_device_id: Some(&lower_id),
        facts,
        suspect,
    });
    let refusal = decision.refusal();
    let action = decision.action;
    let matched: &str = match &decision.matched {
        Matched::Refused(r) => r.cause(),
        Matched::Override { .. } => "override",
        Matched::Rule { name } => name.as_str(),
        Matched::Default => "default",
    };
    let reason = Reason {
        decision: &decision,
        detail: detail.as_deref(),
        certificate: checked.as_ref().map(|_| ()),
        suspect,
    };
    let action_word = if refusal.is_some() {
        "refuse"
    } else {
        action.as_str()
    };
    let state = facts.certificate.device_state();
    // For the log line: the valid certificate's serial, or the failed one's.
    let failed_hex = failed_serial.as_ref().map(|s| s.to_hex());
    info!(
        peer = %conn.peer,
        user = %user,
        device = %device_id,
        cmd = eas.command.name(),
        cert = serial.or(failed_hex.as_deref()).unwrap_or("-"),
        state = state.as_str(),
        action = action_word,
        matched = %matched,
        suspect,
        reason = %reason,
        "gateway decision"
    );
    let refused = refusal.is_some() || action == Action::Block;
    if !user.is_empty() {
        gw.partnerships.record(Sighting {
            user,
            eas_device_id: device_id,
            device_type: eas.device_type.as_deref(),
            user_agent: eas.user_agent.as_deref(),
            client: client.as_str(),
            platform: platform.as_str(),
            protocol: eas.protocol_version.as_deref(),
            command: eas.command.name(),
            cert_serial: serial.filter(|_| refusal.is_none()),
            device_state: state.as_str(),
            access_state: action_word,
            access_reason: &reason,
            synced: action == Action::Allow && refusal.is_none(),
            refused,
            suspect,
            now,
        });
    }
    if refused {
        let cause = refusal.map_or("blocked", |r| r.cause());
        gw.refusals
            .note(device_id, user, cause, &reason, false, now);
    }
    if suspect {
        gw.refusals
            .note(device_id, user, SPOOF_CAUSE, &reason, true, now);
    }
    conn.decisions
        .count(&app.metrics.gateway_decisions, action_word, matched);

    // The device is told the cause, never the details the log and the partnership keep (a
    // stolen certificate's holder must not learn the DeviceId it is bound to).
    if let Some(refusal) = refusal {
        return Plan::Refuse(plain(
            StatusCode::FORBIDDEN,
            &format!("forbidden: {refusal}"),
        ));
    }
    let asked = Asked {
        eas,
        user,
        device_id,
        suspect,
    };
    if let Some(plan) = provision_plan(gw, &provisioning, &asked, wipe, groups, action) {
        return plan;
    }
    match action {
        Action::Block => Plan::Refuse(match quarantine::blocked_body(&eas.command) {
            Some(body) => wbxml(StatusCode::FORBIDDEN, body),
            None => plain(
                StatusCode::FORBIDDEN,
                "forbidden: this device is blocked for this user",
            ),
        }),
        Action::Quarantine => Plan::Quarantine {
            command: eas.command.clone(),
            user: user.to_string(),
            device_id: device_id.to_string(),
            suspect,
        },
        Action::Allow => Plan::Forward {
            command: eas.command.clone(),
            user: user.to_string(),
            device_id: device_id.to_string(),
            suspect,
        },
    }
}

/// Who asks what, for [`provision_plan`].
struct Asked<'a> {
    eas: &'a EasRequest,
    user: &'a str,
    device_id: &'a str,
    suspect: bool,
}

/// The gateway's part in provisioning, once no hard refusal applies: a wipe due for the
/// DeviceId is handed out (to the device itself, never to a request that only names its
/// DeviceId), whatever the rules say; in `--provision gateway` mode an allowed device gets its
/// policy and every other command needs the policy's current key. `None`: decide as usual.
fn provision_plan(
    gw: &crate::gateway::Gateway,
    provisioning: &Provisioning,
    asked: &Asked<'_>,
    wipe: Option<WipeState>,
    groups: &[String],
    action: Action,
) -> Option<Plan> {
    let (eas, command) = (asked.eas, &asked.eas.command);
    let version = eas.protocol_version.as_deref();
    let owned = |order| Plan::Provision {
        order,
        user: asked.user.to_string(),
        device_id: asked.device_id.to_string(),
    };
    if let (Some(WipeState::Due { account_only }), false) = (wipe, asked.suspect) {
        if account_only && !version_at_least(version, 16, 1) {
            warn!(
                device = asked.device_id,
                version = version.unwrap_or("-"),
                "an account-only wipe is waiting for this device, which does not speak EAS 16.1: nothing is sent (never a full wipe instead)"
            );
        } else if matches!(command, Command::Provision) {
            return Some(owned(ProvisionOrder::Wipe { account_only }));
        } else {
            let status = provision::STATUS_REMOTE_WIPE_REQUESTED;
            return Some(Plan::Refuse(provision_demand(command, version, status)));
        }
    }
    if gw.config.provision != ProvisionMode::Gateway || action != Action::Allow {
        return None;
    }
    let policy = provisioning.policy_for(groups);
    if matches!(command, Command::Provision) {
        return Some(owned(ProvisionOrder::Policy(policy)));
    }
    let status = match eas.policy_key {
        Some(key) if key == policy.key => return None,
        None | Some(0) => provision::STATUS_DEVICE_NOT_PROVISIONED,
        Some(key)
            if gw.partnerships.policy_key(asked.user, asked.device_id) == Some(i64::from(key)) =>
        {
            provision::STATUS_POLICY_REFRESH
        }
        Some(_) => provision::STATUS_INVALID_POLICY_KEY,
    };
    Some(Plan::Refuse(provision_demand(command, version, status)))
}

/// HTTP 449 ("Retry With"): how EAS 12.x is told to provision, and EAS 14.0+ for commands
/// without a WBXML answer.
const RETRY_WITH: u16 = 449;

/// Tell a device to provision: EAS 14.0 and later in the command's own Status, older versions
/// with HTTP 449.
fn provision_demand(
    command: &Command,
    version: Option<&str>,
    status: &str,
) -> Response<GatewayBody> {
    if version_at_least(version, 14, 0) {
        if let Some(body) = responses::status_only(command, status)
            .ok()
            .flatten()
            .and_then(|e| encode(&e).ok())
        {
            return wbxml(StatusCode::OK, body);
        }
    }
    plain(
        StatusCode::from_u16(RETRY_WITH).unwrap_or(StatusCode::FORBIDDEN),
        "retry with: this device must provision first (EAS Provision)",
    )
}

/// Largest Provision body the gateway reads when it answers Provision itself.
const PROVISION_BODY_LIMIT: usize = 64 * 1024;

/// An EAS answer the gateway built, or a 500 if it cannot be encoded (it always can).
fn eas_answer(element: Result<Element, WbxmlError>) -> Response<GatewayBody> {
    match element.and_then(|e| encode(&e)) {
        Ok(body) => wbxml(StatusCode::OK, body),
        Err(e) => {
            warn!(error = %e, "gateway: cannot encode its own Provision answer");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Answer a Provision: read its body, then hand out the wipe or the policy. A body that is not
/// a Provision request gets Provision Status 2 and changes nothing.
async fn provisioned(
    app: &App,
    req: Request<Incoming>,
    order: ProvisionOrder,
    user: &str,
    device_id: &str,
    now: i64,
) -> Response<GatewayBody> {
    let limited = http_body_util::Limited::new(req.into_body(), PROVISION_BODY_LIMIT);
    let body = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
    };
    let request = match provision::read_request(&body) {
        Ok(request) => request,
        Err(e) => {
            info!(device = device_id, error = %e, "gateway: refused a malformed Provision request");
            return eas_answer(provision::provision_status(
                provision::PROVISION_PROTOCOL_ERROR,
            ));
        }
    };
    if let Some(info) = reported_device_information(&body) {
        app.gateway
            .partnerships
            .record_device_information(user, device_id, false, &info);
    }
    match order {
        ProvisionOrder::Wipe { account_only } => {
            wipe_exchange(app, request, account_only, device_id).await
        }
        ProvisionOrder::Policy(policy) => {
            policy_exchange(app, request, &policy, user, device_id, now)
        }
    }
}

/// Hand a due wipe to the device (recorded as sent), or record its acknowledgement: the
/// DeviceId is refused from then on and its certificates are revoked.
async fn wipe_exchange(
    app: &App,
    request: ProvisionRequest,
    account_only: bool,
    device_id: &str,
) -> Response<GatewayBody> {
    let easgate = &app.easgate;
    match request {
        ProvisionRequest::WipeAcknowledged {
            account_only: acknowledged,
            status,
        } if acknowledged == account_only => {
            let succeeded = status == "1";
            let recorded = easgate_ops::context::acting_as(
                "gateway",
                easgate.eas_wipe_acknowledged(device_id, succeeded),
            )
            .await;
            match recorded {
                Ok(Some(done)) => {
                    app.gateway.note_wipe(&done.wipe);
                    warn!(
                        device = device_id,
                        succeeded,
                        revoked = ?done.revoked,
                        "remote wipe acknowledged: the device is refused from now on and its certificates are revoked"
                    );
                    eas_answer(provision::provision_status("1"))
                }
                // Recorded already (a repeated acknowledgement, or through another instance).
                Ok(None) => eas_answer(provision::provision_status("1")),
                Err(e) => {
                    warn!(device = device_id, error = %e, "cannot record a remote wipe's acknowledgement; the device will repeat it");
                    eas_answer(provision::provision_status(
                        provision::PROVISION_SERVER_ERROR,
                    ))
                }
            }
        }
        ProvisionRequest::WipeAcknowledged { .. } => {
            info!(
                device = device_id,
                "gateway: a wipe acknowledgement of the other kind than ordered; refused"
            );
            eas_answer(provision::provision_status(
                provision::PROVISION_PROTOCOL_ERROR,
            ))
        }
        ProvisionRequest::Download { .. } | ProvisionRequest::Acknowledge { .. } => {
            let sent =
                easgate_ops::context::acting_as("gateway", easgate.eas_wipe_sent(device_id)).await;
            match sent {
                Ok(true) => warn!(
                    device = device_id,
                    account_only, "remote wipe sent to the device"
                ),
                Ok(false) => info!(
                    device = device_id,
                    account_only, "remote wipe sent to the device again"
                ),
                Err(e) => {
                    warn!(device = device_id, error = %e, "remote wipe sent, but not recorded as sent")
                }
            }
            eas_answer(provision::wipe_order(account_only))
        }
    }
}

/// MS-ASPROV's two phases with the user's policy: the download with a temporary key, then the
/// acknowledgement, answered with the policy key and recorded on the partnership.
fn policy_exchange(
    app: &App,
    request: ProvisionRequest,
    policy: &ActivePolicy,
    user: &str,
    device_id: &str,
    now: i64,
) -> Response<GatewayBody> {
    let element = match request {
        ProvisionRequest::Download { policy_type }
        | ProvisionRequest::Acknowledge { policy_type, .. }
            if policy_type != provision::POLICY_TYPE =>
        {
            provision::policy_refused(&policy_type, provision::POLICY_UNKNOWN_TYPE)
        }
        ProvisionRequest::Download { .. } => {
            provision::policy_download(&policy.settings(), policy.temporary_key)
        }
        ProvisionRequest::Acknowledge { key, status, .. } => {
            if key.trim().parse::<u32>() != Ok(policy.temporary_key) {
                info!(device = device_id, key = %key, policy = %policy.name(), "gateway: a Provision acknowledged a key it was not given");
                provision::policy_refused(provision::POLICY_TYPE, provision::POLICY_WRONG_KEY)
            } else {
                let status = provision::application_status(status.as_deref());
                app.gateway.partnerships.record_policy(
                    user,
                    device_id,
                    &AppliedPolicy {
                        name: policy.name(),
                        key: policy.key,
                        status,
                        at: now,
                    },
                );
                info!(device = device_id, policy = %policy.name(), status, "EAS policy acknowledged");
                provision::policy_acknowledged(policy.key)
            }
        }
        ProvisionRequest::WipeAcknowledged { .. } => {
            info!(
                device = device_id,
                "gateway: a wipe acknowledgement without a wipe; refused"
            );
            provision::provision_status(provision::PROVISION_PROTOCOL_ERROR)
        }
    };
    eas_answer(element)
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
    command: &Command,
    user: &str,
    (device_id, suspect): (&str, bool),
    now: i64,
) -> Response<GatewayBody> {
    if !matches!(
        command,
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
    if matches!(command, Command::Provision | Command::Settings) {
        if let Some(info) = reported_device_information(&body) {
            app.gateway
                .partnerships
                .record_device_information(user, device_id, suspect, &info);
        }
    }
    match quarantine::answer(command, &body, user, &received) {
        Some(answer) => wbxml(StatusCode::OK, answer),
        None => plain(
            StatusCode::FORBIDDEN,
            "forbidden: this device is waiting for approval (quarantined)",
        ),
    }
}

/// OPTIONS: from the upstream for a device with a good certificate of a user who is not
/// disabled, else built in (it names no mailbox, so nothing else is checked).
async fn options(
    app: &Arc<App>,
    conn: &Connection,
    req: Request<Incoming>,
    checked: Option<Arc<Chained>>,
) -> Response<GatewayBody> {
    if let (Some(chained), Some(_)) = (&checked, &app.gateway.config.upstream) {
        let found = app.gateway.directory().find(&chained.identity);
        if found.as_ref().is_some_and(|u| u.disabled) {
            return plain(StatusCode::FORBIDDEN, "forbidden: user is disabled");
        }
        let user = found
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

/// The upstream request's target in origin form: the upstream's path and the device's query.
/// When the two paths are the same (the usual `/Microsoft-Server-ActiveSync`), the device's
/// already-parsed target is reused as it is.
fn upstream_uri(base: &Uri, device: &Uri) -> Option<Uri> {
    let path = base.path();
    if device.path() == path && device.query() != Some("") {
        if let Some(target) = device.path_and_query() {
            let mut parts = http::uri::Parts::default();
            parts.path_and_query = Some(target.clone());
            return Uri::from_parts(parts).ok();
        }
    }
    let path_and_query = match device.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_string(),
    };
    Uri::try_from(path_and_query).ok()
}

/// Decrements the open long-poll gauge when the request ends, however it ends.
struct LongPoll<'a>(&'a App);

impl Drop for LongPoll<'_> {
    fn drop(&mut self) {
        self.0.metrics.gateway_long_polls.dec();
    }
}

/// The `X-Forwarded-*` fields of an upstream request. The upstream client writes them after
/// the request's own fields: inserted into the request's header map they would make it grow
/// (a reallocation and a rehash of every field) on most requests.
struct Forwarded {
    fields: [(HeaderName, HeaderValue); 3],
    /// `X-Forwarded-Host` is left out when the device gave no host.
    count: usize,
}

impl Forwarded {
    fn new(forwarded_for: HeaderValue, host: Option<HeaderValue>) -> Self {
        let count = if host.is_some() { 3 } else { 2 };
        Forwarded {
            fields: [
                (X_FORWARDED_FOR, forwarded_for),
                (X_FORWARDED_PROTO, HeaderValue::from_static("https")),
                (
                    X_FORWARDED_HOST,
                    host.unwrap_or_else(|| HeaderValue::from_static("")),
                ),
            ],
            count,
        }
    }

    fn fields(&self) -> &[(HeaderName, HeaderValue)] {
        &self.fields[..self.count]
    }
}

/// A request made ready for the upstream, or the answer instead.
enum Prepared {
    Send(Request<GatewayBody>, Forwarded),
    Answer(Response<GatewayBody>),
    AnswerUnread(Request<Incoming>, Response<GatewayBody>),
}

async fn forward(
    app: &Arc<App>,
    conn: &Connection,
    req: Request<Incoming>,
    command: &Command,
    user: Option<&str>,
    device: Option<(&str, bool)>,
) -> Response<GatewayBody> {
    // Prepared and encoded without awaiting, in a block of its own, so that a held long poll
    // keeps only the upstream exchange (not the request's parts or its forwarding fields).
    let sending = {
        let (upstream_request, forwarded) = match prepare(app, conn, req, command, user, device) {
            Prepared::Send(request, forwarded) => (request, forwarded),
            Prepared::Answer(response) => return response,
            Prepared::AnswerUnread(req, response) => {
                return Box::pin(answer_unread(req, response)).await
            }
        };
        conn.upstream.send(
            upstream_request,
            forwarded.fields(),
            matches!(command, Command::Ping),
        )
    };
    let gw = &app.gateway;
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
    let result = tokio::time::timeout(limit, sending).await;
    let upstream_error = |kind: &'static str| {
        app.metrics
            .gateway_upstream_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    };
    // For the log lines of failures only (formatting it is not free).
    let base = || {
        gw.config
            .upstream
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    match result {
        Ok(Ok(mut response)) => {
            strip_hop_by_hop(response.headers_mut());
            response
        }
        Ok(Err(e)) if e.is_device_fault() => {
            // The device's own body was malformed or cut short: its fault, not the upstream's.
            info!(peer = %conn.peer, error = %e, cmd = command.name(), "gateway: refused a malformed request body");
            let mut response = plain(StatusCode::BAD_REQUEST, &format!("bad request: {e}"));
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Ok(Err(e)) => {
            let kind = e.kind();
            upstream_error(kind);
            warn!(upstream = %base(), kind, error = %e, cmd = command.name(), "gateway: upstream failed");
            plain(
                StatusCode::BAD_GATEWAY,
                "bad gateway: the mail server could not be reached",
            )
        }
        Err(_) => {
            upstream_error("timeout");
            warn!(upstream = %base(), kind = "timeout", after = ?limit, cmd = command.name(), "gateway: upstream did not answer in time");
            plain(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway timeout: the mail server did not answer in time",
            )
        }
    }
}

/// The upstream request: the upstream's path with the device's query, hop-by-hop headers
/// dropped, `X-Forwarded-*` set, the user header in trusted-header mode, and for Settings and
/// Provision a body that keeps a copy for the DeviceInformation.
fn prepare(
    app: &Arc<App>,
    conn: &Connection,
    req: Request<Incoming>,
    command: &Command,
    user: Option<&str>,
    device: Option<(&str, bool)>,
) -> Prepared {
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
        return Prepared::AnswerUnread(req, response);
    };
    let (mut parts, body) = req.into_parts();
    let body = FinishOnDrop::new(body);
    let Some(uri) = upstream_uri(base, &parts.uri) else {
        return Prepared::Answer(plain(
            StatusCode::BAD_GATEWAY,
            "bad gateway: cannot form the upstream URL",
        ));
    };
    let original_host = parts.headers.remove(header::HOST).or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let headers = &mut parts.headers;
    strip_hop_by_hop(headers);
    remove_fields(headers, &FORWARDING);
    let forwarded = Forwarded::new(conn.forwarded_for.clone(), original_host);
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

    let body = match (command, user, device) {
        (Command::Settings | Command::Provision, Some(user), Some((device_id, suspect))) => {
            let (tee, copy) = TeeBody::new(body, DEVICE_INFO_LIMIT);
            let book = Arc::clone(&gw.partnerships);
            let (user, device_id) = (user.to_string(), device_id.to_string());
            tokio::spawn(async move {
                if let Some(info) = copy
                    .await
                    .ok()
                    .and_then(|b| reported_device_information(&b))
                {
                    book.record_device_information(&user, &device_id, suspect, &info);
                }
            });
            tee.boxed()
        }
        _ => body.boxed(),
    };
    Prepared::Send(Request::from_parts(parts, body), forwarded)
}

#[cfg(test)]
mod tests {
    use super::{upstream_uri, user_matches, ClassifyCache, DecisionCounterCache};
    use crate::metrics::DecisionLabels;
    use easgate_activesync::{Client, Platform};
    use http::Uri;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;

    #[test]
    fn a_connection_counts_each_decision_under_its_own_labels() {
        let family = Family::<DecisionLabels, Counter>::default();
        let cache = DecisionCounterCache::default();
        // The same decision again (the cached counter), then others, then the first again.
        for (action, matched) in [
            ("allow", "managed"),
            ("allow", "managed"),
            ("block", "managed"),
            ("allow", "default"),
            ("refuse", "identity-mismatch"),
            ("allow", "managed"),
        ] {
            cache.count(&family, action, matched);
        }
        let count = |action: &'static str, matched: &str| {
            family
                .get_or_create(&DecisionLabels {
                    action,
                    matched: matched.to_string(),
                })
                .get()
        };
        assert_eq!(count("allow", "managed"), 3);
        assert_eq!(count("block", "managed"), 1);
        assert_eq!(count("allow", "default"), 1);
        assert_eq!(count("refuse", "identity-mismatch"), 1);
        // A second connection counts into the same family.
        DecisionCounterCache::default().count(&family, "allow", "managed");
        assert_eq!(count("allow", "managed"), 4);
    }

    #[test]
    fn the_upstream_target_is_the_upstream_path_with_the_device_query() {
        let uri = |s: &str| s.parse::<Uri>().expect("uri");
        let base = uri("http://mail.internal:8080/SOGo/Microsoft-Server-ActiveSync");
        let device = uri("/Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b&DeviceId=X1");
        assert_eq!(
            upstream_uri(&base, &device).expect("target").to_string(),
            "/SOGo/Microsoft-Server-ActiveSync?Cmd=Sync&User=a%40b&DeviceId=X1"
        );
        // The same path: the device's target as it is (HTTP/2 gives it in absolute form).
        let base = uri("https://mail.internal/Microsoft-Server-ActiveSync");
        let device = uri("https://gw.example/Microsoft-Server-ActiveSync?Cmd=Ping&DeviceId=X1");
        let target = upstream_uri(&base, &device).expect("target");
        assert_eq!(
            target.to_string(),
            "/Microsoft-Server-ActiveSync?Cmd=Ping&DeviceId=X1"
        );
        assert!(target.authority().is_none());
        // No query, or an empty one: the path alone.
        for device in [
            "/Microsoft-Server-ActiveSync",
            "/Microsoft-Server-ActiveSync?",
        ] {
            assert_eq!(
                upstream_uri(&base, &uri(device))
                    .expect("target")
                    .to_string(),
                "/Microsoft-Server-ActiveSync",
                "{device}"
            );
        }
        // A path that differs only in case is replaced by the upstream's.
        let device = uri("/microsoft-server-activesync?Cmd=Sync");
        assert_eq!(
            upstream_uri(&base, &device).expect("target").to_string(),
            "/Microsoft-Server-ActiveSync?Cmd=Sync"
        );
    }

    #[test]
    fn a_connection_reclassifies_when_its_device_type_or_user_agent_changes() {
        let cache = ClassifyCache::default();
        let iphone = (Some("iPhone"), Some("Apple-iPhone14C2/2104.96"));
        assert_eq!(
            cache.classify(iphone.0, iphone.1),
            (Platform::Ios, Client::Native)
        );
        assert_eq!(
            cache.classify(iphone.0, iphone.1),
            (Platform::Ios, Client::Native)
        );
        assert_eq!(
            cache.classify(Some("Outlook"), Some("Outlook-Android/2.0")),
            (Platform::Android, Client::Outlook)
        );
        assert_eq!(
            cache.classify(Some("iPhone"), None),
            (Platform::Ios, Client::Other)
        );
        assert_eq!(cache.classify(None, None), (Platform::Other, Client::Other));
    }

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
