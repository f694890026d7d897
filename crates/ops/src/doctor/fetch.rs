//! The doctor's HTTP client: one request at a time, each bounded by a short timeout, so a
//! listener that is down or hanging makes its check fail within seconds instead of stalling
//! the whole report. HTTPS uses the system's roots plus the upstream CA `serve` recorded
//! (`--upstream-ca`), as the gateway's own fetches do.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Largest body read (a CRL of a big CA stays well below it).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Why a fetch gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("`{url}` is not an http(s) URL: {why}")]
    BadUrl { url: String, why: String },
    #[error("no answer from {url} within {} s", .after.as_secs())]
    Timeout { url: String, after: Duration },
    #[error("cannot reach {url}: {why}")]
    Unreachable { url: String, why: String },
    #[error("{url}: the body could not be read: {why}")]
    Body { url: String, why: String },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// An answer: status, headers, whole body.
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub struct Fetcher {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

/// The error and its causes on one line: hyper's top-level error says only "client error
/// (Connect)"; the cause says "Connection refused".
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

impl Fetcher {
    pub fn new(timeout: Duration, extra_ca: Option<&Path>) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = extra_ca {
            use rustls::pki_types::pem::PemObject;
            // A CA file that went missing is the upstream check's business: it fails with the
            // TLS error the gateway would see.
            if let Ok(certs) = rustls::pki_types::CertificateDer::pem_file_iter(path) {
                roots.add_parsable_certificates(certs.filter_map(Result::ok));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| FetchError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Fetcher {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(connector),
            timeout,
        })
    }

    /// `method url`, with `body` as `content_type` when given; the whole answer, whatever its
    /// status.
    pub async fn fetch(
        &self,
        method: Method,
        url: &str,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<Fetched, FetchError> {
        let bad = |why: String| FetchError::BadUrl {
            url: url.to_string(),
            why,
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
            return Err(bad("http:// or https:// and a host expected".into()));
        }
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::USER_AGENT, "easgate-doctor");
        let payload = match body {
            Some((content_type, bytes)) => {
                request = request.header(http::header::CONTENT_TYPE, content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| bad(e.to_string()))?;
        let work = async {
            let response =
                self.client
                    .request(request)
                    .await
                    .map_err(|e| FetchError::Unreachable {
                        url: url.to_string(),
                        why: chain(&e),
                    })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| FetchError::Body {
                    url: url.to_string(),
                    why: e.to_string(),
                })?
                .to_bytes();
            Ok(Fetched {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| FetchError::Timeout {
                url: url.to_string(),
                after: self.timeout,
            })?
    }
}
