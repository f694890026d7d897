//! The public PKI listener (plain HTTP, as CRL and OCSP clients expect): CA certificates,
//! CRLs and OCSP, answered from memory; SCEP, profile downloads, and the NDES-compatible
//! challenge page for MDMs (`ndes.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use easgate_ops::OpsError;
use easgate_pki::ocsp::{self, CertStatus, ErrorStatus};
use easgate_store::CrlScope;
use tracing::{info, warn};

use crate::metrics::{OcspLabels, RequestLabels};
use crate::state::{CaState, Presigned, PRESIGNED_MAX};
use crate::App;

/// Largest OCSP request body accepted.
pub const OCSP_BODY_LIMIT: usize = 64 * 1024;
/// Largest SCEP request body accepted.
pub const SCEP_BODY_LIMIT: usize = 2 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ca/{file}", get(ca_certificate))
        .route("/crl/{file}", get(crl))
        .route(
            "/ocsp/{ca}",
            post(ocsp_post).layer(DefaultBodyLimit::max(OCSP_BODY_LIMIT)),
        )
        .route("/ocsp/{ca}/{*request}", get(ocsp_get))
        .route(
            "/scep/{ca}",
            get(scep)
                .post(scep)
                .layer(DefaultBodyLimit::max(SCEP_BODY_LIMIT)),
        )
        .route(
            "/scep/{ca}/pkiclient.exe",
            get(scep)
                .post(scep)
                .layer(DefaultBodyLimit::max(SCEP_BODY_LIMIT)),
        )
        .route("/enroll/{token}", get(enroll))
        .merge(crate::ndes::routes())
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            log_request,
        ))
        .with_state(app)
}

fn bytes_response(content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn text(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// Unrouted paths: the NDES page in another letter case (IIS ignores case, and MDM admins
/// copy `/CertSrv/mscep_admin/` from Microsoft's documents), else 404.
async fn fallback(
    State(app): State<Arc<App>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    query: axum::extract::RawQuery,
) -> Response {
    if crate::ndes::is_page_path(uri.path()) {
        return crate::ndes::page(State(app), method, headers, query).await;
    }
    not_found().await
}

fn route_name(path: &str) -> &'static str {
    match path.split('/').nth(1) {
        Some("ca") => "ca",
        Some("crl") => "crl",
        Some("ocsp") => "ocsp",
        Some("scep") => "scep",
        Some("enroll") => "enroll",
        Some(s) if s.eq_ignore_ascii_case("certsrv") => "ndes",
        _ => "other",
    }
}

/// One log line and one metric per request.
async fn log_request(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route_name(&path),
            status,
        })
        .inc();
    // An enrollment link is a one-time secret: never logged.
    let shown: String = if path.starts_with("/enroll/") {
        "/enroll/…".into()
    } else {
        path.chars().take(200).collect()
    };
    info!(
        target: "easgate::public",
        %method,
        path = %shown,
        status,
        micros = started.elapsed().as_micros() as u64,
        client = %client,
        "request"
    );
    response
}

async fn ca_certificate(State(app): State<Arc<App>>, Path(file): Path<String>) -> Response {
    let (name, pem) = if let Some(name) = file.strip_suffix(".cer") {
        (name, false)
    } else if let Some(name) = file.strip_suffix(".pem") {
        (name, true)
    } else {
        return text(
            StatusCode::NOT_FOUND,
            "use /ca/NAME.cer (DER) or /ca/NAME.pem\n",
        );
    };
    match app.pki.get(name) {
        Some(ca) if pem => {
            bytes_response("application/x-pem-file", ca.cert_pem.as_str().to_owned())
        }
        Some(ca) => bytes_response("application/pkix-cert", ca.cert_der.clone()),
        None => text(StatusCode::NOT_FOUND, format!("no CA named `{name}`\n")),
    }
}

async fn crl(State(app): State<Arc<App>>, Path(file): Path<String>) -> Response {
    let Some(stem) = file.strip_suffix(".crl") else {
        return text(
            StatusCode::NOT_FOUND,
            "use /crl/NAME.crl or /crl/NAME-delta.crl\n",
        );
    };
    let (ca, scope) = match stem
        .strip_suffix("-delta")
        .and_then(|name| app.pki.get(name))
    {
        Some(ca) => (Some(ca), CrlScope::Delta),
        None => (app.pki.get(stem), CrlScope::Full),
    };
    let Some(ca) = ca else {
        return text(StatusCode::NOT_FOUND, format!("no CA for `{file}`\n"));
    };
    match ca.crl(scope) {
        Some(crl) => {
            let mut response = bytes_response("application/pkix-crl", crl.der.clone());
            if let Ok(value) = HeaderValue::from_str(&format!("\"{}-{}\"", ca.name, crl.number)) {
                response.headers_mut().insert(header::ETAG, value);
            }
            response
        }
        None => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the CRL is being made; retry in a few seconds\n",
        ),
    }
}

async fn ocsp_post(State(app): State<Arc<App>>, Path(ca): Path<String>, body: Bytes) -> Response {
    answer_ocsp(&app, &ca, &body)
}

async fn ocsp_get(
    State(app): State<Arc<App>>,
    Path((ca, request)): Path<(String, String)>,
) -> Response {
    // The path segment is base64 (RFC 6960 A.1), often with `/` kept and `+`/`=` URL-encoded
    // by the client; axum has already percent-decoded it.
    let cleaned: String = request.chars().filter(|c| !c.is_whitespace()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(cleaned.as_bytes()));
    match decoded {
        Ok(der) if der.len() <= OCSP_BODY_LIMIT => answer_ocsp(&app, &ca, &der),
        _ => {
            if app.pki.get(&ca).is_none() {
                return text(StatusCode::NOT_FOUND, format!("no CA named `{ca}`\n"));
            }
            app.metrics
                .ocsp_answers
                .get_or_create(&OcspLabels {
                    status: "malformed",
                })
                .inc();
            ocsp_bytes(ocsp::error_response(ErrorStatus::MalformedRequest))
        }
    }
}

/// SCEP (RFC 8894): GetCACaps, GetCACert, and PKIOperation by POST (body) or GET
/// (`message=` with URL-encoded base64).
async fn scep(
    State(app): State<Arc<App>>,
    Path(ca_name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let Some(ca) = app.pki.get(&ca_name) else {
        return text(StatusCode::NOT_FOUND, format!("no CA named `{ca_name}`\n"));
    };
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| {
                pair.strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('='))
            })
            .unwrap_or("")
    };
    match param("operation") {
        "GetCACaps" => bytes_response("text/plain", easgate_scep::capabilities_text()),
        "GetCACert" => get_ca_cert(&app, &ca_name, &ca).await,
        "PKIOperation" => {
            let message = if body.is_empty() {
                let encoded = param("message");
                let Ok(decoded) = percent_decode(encoded) else {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "message= is not URL-encoded base64\n",
                    );
                };
                let cleaned: String = decoded.chars().filter(|c| !c.is_whitespace()).collect();
                match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
                    Ok(bytes) if bytes.len() <= SCEP_BODY_LIMIT => bytes,
                    _ => return text(StatusCode::BAD_REQUEST, "message= is not base64\n"),
                }
            } else {
                body.to_vec()
            };
            let ip = client.ip().to_string();
            let answered = easgate_ops::context::acting_as(
                format!("scep:{ip}"),
                app.easgate.scep_pki_operation(&ca_name, &message, &ip),
            )
            .await;
            match answered {
                Ok(Ok(answer)) => {
                    match &answer.refused {
                        Some(why) => {
                            info!(ca = %ca_name, transaction = %answer.transaction_id, client = %client.ip(), reason = %why, "SCEP request refused")
                        }
                        None => {
                            info!(ca = %ca_name, transaction = %answer.transaction_id, client = %client.ip(), "SCEP certificate issued")
                        }
                    }
                    bytes_response("application/x-pki-message", answer.body)
                }
                Ok(Err(unreadable)) => text(StatusCode::BAD_REQUEST, format!("{}\n", unreadable.0)),
                Err(e) => {
                    warn!(ca = %ca_name, error = %e, "SCEP PKIOperation failed");
                    text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the SCEP request could not be answered\n",
                    )
                }
            }
        }
        "" => text(
            StatusCode::BAD_REQUEST,
            "missing operation= (GetCACaps, GetCACert or PKIOperation)\n",
        ),
        other => text(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown SCEP operation `{}`\n",
                other.chars().take(40).collect::<String>()
            ),
        ),
    }
}

/// `%XX` decoding of a query value (`+` is kept: in base64 it is a digit).
pub(crate) fn percent_decode(s: &str) -> Result<String, ()> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(())?;
            let hex = std::str::from_utf8(hex).map_err(|_| ())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ())
}

fn ocsp_bytes(der: Vec<u8>) -> Response {
    bytes_response("application/ocsp-response", der)
}

fn answer_ocsp(app: &App, ca_name: &str, der: &[u8]) -> Response {
    let Some(ca) = app.pki.get(ca_name) else {
        return text(StatusCode::NOT_FOUND, format!("no CA named `{ca_name}`\n"));
    };
    let request = match ocsp::parse_request(der) {
        Ok(r) => r,
        Err(e) => {
            app.metrics
                .ocsp_answers
                .get_or_create(&OcspLabels {
                    status: "malformed",
                })
                .inc();
            info!(ca = %ca_name, error = %e, "malformed OCSP request");
            return ocsp_bytes(ocsp::error_response(ErrorStatus::MalformedRequest));
        }
    };
    let answers: Vec<(&[u8], CertStatus)> = request
        .certs
        .iter()
        .map(|c| {
            let status = if ca.hashes.matches(c) {
                ca.status_of(&c.serial)
            } else {
                CertStatus::Unknown
            };
            (c.cert_id_der.as_slice(), status)
        })
        .collect();
    for (_, status) in &answers {
        let label = match status {
            CertStatus::Good => "good",
            CertStatus::Revoked { .. } => "revoked",
            CertStatus::Unknown => "unknown",
        };
        app.metrics
            .ocsp_answers
            .get_or_create(&OcspLabels { status: label })
            .inc();
    }
    // Without a nonce the answer may be reused until its state changes: sign once, serve many.
    let cache_key = request.nonce.is_none().then(|| {
        request
            .certs
            .iter()
            .flat_map(|c| c.cert_id_der.clone())
            .collect::<Vec<u8>>()
    });
    if let Some(key) = &cache_key {
        if let Some(der) = presigned(&ca, key) {
            return bytes_response("application/ocsp-response", der);
        }
    }
    let now = app.easgate.now();
    let validity =
        time::Duration::try_from(app.config.ocsp_validity).unwrap_or(time::Duration::HOUR);
    match ca
        .responder()
        .respond(&answers, request.nonce.as_deref(), now, now + validity)
    {
        Ok(der) => {
            if let Some(key) = cache_key {
                remember(&ca, key, &der, app.config.ocsp_validity / 4);
            }
            ocsp_bytes(der)
        }
        Err(e) => {
            warn!(ca = %ca_name, error = %e, "signing an OCSP response failed");
            ocsp_bytes(ocsp::error_response(ErrorStatus::InternalError))
        }
    }
}

fn presigned(ca: &CaState, key: &[u8]) -> Option<Bytes> {
    let cache = ca.presigned.lock().ok()?;
    cache
        .get(key)
        .filter(|p| p.until > Instant::now())
        .map(|p| p.der.clone())
}

fn remember(ca: &CaState, key: Vec<u8>, der: &[u8], for_how_long: std::time::Duration) {
    if let Ok(mut cache) = ca.presigned.lock() {
        if cache.len() >= PRESIGNED_MAX {
            cache.clear();
        }
        cache.insert(
            key,
            Presigned {
                der: Bytes::copy_from_slice(der),
                until: Instant::now() + for_how_long,
            },
        );
    }
}

/// GetCACert: the CA (and an EC CA's RSA RA), or for an EC CA set to `--ra-only` the RA alone
/// (read from the store: a rare request, and the setting may change while serving).
async fn get_ca_cert(app: &App, ca_name: &str, ca: &crate::state::CaState) -> Response {
    let ra_only = matches!(app.easgate.get_ca(ca_name).await, Ok(stored) if stored.scep_ra_only);
    if ra_only {
        match app.easgate.scep_certificates(ca_name).await {
            Ok(certs) => {
                if let Some(ra) = certs.ra_der {
                    return bytes_response(
                        "application/x-x509-ca-ra-cert",
                        easgate_scep::certs_only(&[&ra]),
                    );
                }
            }
            Err(e) => {
                warn!(ca = %ca_name, error = %e, "cannot load the SCEP RA certificate");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the SCEP RA certificate could not be loaded\n",
                );
            }
        }
    }
    bytes_response(ca.scep_ca_cert.0, ca.scep_ca_cert.1.clone())
}

/// `GET /enroll/{token}`: the device's rendered profile, once. Used or expired → 410 with the
/// reason; unknown → 404; nothing fits the device → 409.
async fn enroll(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return text(StatusCode::NOT_FOUND, "unknown enrollment link\n");
    }
    let downloaded = easgate_ops::context::acting_as(
        format!("enroll:{}", client.ip()),
        app.easgate.download_profile(&token),
    )
    .await;
    match downloaded {
        Ok(profile) => {
            info!(
                target: "easgate::public",
                device = %profile.device,
                profile = %profile.profile,
                signed = profile.signed,
                "profile downloaded"
            );
            let mut response = bytes_response(profile.content_type, profile.bytes);
            let headers = response.headers_mut();
            if let Ok(value) =
                HeaderValue::from_str(&format!("attachment; filename=\"{}\"", profile.file_name))
            {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(OpsError::Gone(why)) => text(StatusCode::GONE, format!("{why}\n")),
        Err(e @ OpsError::NotFound { .. }) => text(StatusCode::NOT_FOUND, format!("{e}\n")),
        Err(e @ OpsError::Conflict(_)) => text(StatusCode::CONFLICT, format!("{e}\n")),
        Err(e) => {
            warn!(target: "easgate::public", error = %e, "could not make an enrollment profile");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the profile could not be made; the server log says why\n",
            )
        }
    }
}
