//! Streaming a request to the upstream mail server and its answer back.
//!
//! Bodies are never buffered: the request body goes upstream as it arrives (a copy of at most
//! [`DEVICE_INFO_LIMIT`] bytes is kept for Settings and Provision, whose DeviceInformation is
//! decoded once the body has passed), and the response body comes back the same way.
//! Hop-by-hop headers are dropped in both directions; HTTP/2 requests go upstream as HTTP/1.1.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

use crate::error::ServeError;

/// Why a body passed through the gateway failed.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The device's request body (reset stream, bad chunking, ...).
    #[error("device: {0}")]
    Device(#[from] hyper::Error),
    /// Reading the upstream's answer.
    #[error("upstream: {0}")]
    Upstream(#[from] std::io::Error),
    /// The upstream's answer is not well-formed HTTP/1.1.
    #[error("upstream: {0}")]
    UpstreamFraming(#[from] easgate_http1::Http1Error),
}

pub type GatewayBody = BoxBody<Bytes, BodyError>;
pub type OutboundClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, GatewayBody>;

pub fn full_body(bytes: impl Into<Bytes>) -> GatewayBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty_body() -> GatewayBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// Most request-body bytes kept to read DeviceInformation from.
pub const DEVICE_INFO_LIMIT: usize = 64 * 1024;

/// The HTTP(S) client for what easgate fetches or sends itself (trusted CAs' CRLs, renewal
/// webhooks): system roots plus `extra_ca`.
pub fn http_client(extra_ca: Option<&std::path::Path>) -> Result<OutboundClient, ServeError> {
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .build(outbound_connector(extra_ca)?))
}

/// TLS for outbound connections: the system's roots plus `extra_ca`.
pub fn outbound_tls(
    extra_ca: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, ServeError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs_roots();
    roots.add_parsable_certificates(native);
    if let Some(path) = extra_ca {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| ServeError::Config(format!("--upstream-ca {}: {e}", path.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ServeError::Config(format!("--upstream-ca {}: {e}", path.display())))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(ServeError::Config(format!(
                "--upstream-ca {}: no usable CA certificate in it",
                path.display()
            )));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ServeError::Config(format!("upstream TLS setup: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tls)
}

/// How easgate's own fetches connect (HTTP, or HTTPS with [`outbound_tls`]).
fn outbound_connector(
    extra_ca: Option<&std::path::Path>,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, ServeError> {
    let tls = outbound_tls(extra_ca)?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// The system's CA certificates (those it cannot read are skipped, as curl does).
fn rustls_native_certs_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus any the
/// `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(&HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// Remove every field named in `names`. Most messages carry none of them: one pass over the
/// message's names (standard names compare as enum tags) comes first, instead of a hashed
/// removal per name on every request and every answer.
pub fn remove_fields(headers: &mut HeaderMap, names: &[HeaderName]) {
    if headers.keys().any(|name| names.contains(name)) {
        for name in names {
            headers.remove(name);
        }
    }
}

/// Whether `name` is one of [`HOP_BY_HOP`]: one match on the name's text (its length first)
/// rather than nine `HeaderName` comparisons for every field of every request and answer.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "keep-alive"
            | "proxy-connection"
    )
}

/// The hop-by-hop headers. A `static`: a `const` array would be built and dropped (nine
/// `HeaderName` destructors) at every use.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

pub fn set_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// A request body passed on unchanged while its first bytes are copied aside; the copy is
/// sent when the body ends (not if it is larger than the limit or fails).
pub struct TeeBody<B> {
    inner: B,
    copy: BytesMut,
    limit: usize,
    done: Option<oneshot::Sender<Bytes>>,
}

impl<B> TeeBody<B> {
    pub fn new(inner: B, limit: usize) -> (Self, oneshot::Receiver<Bytes>) {
        let (tx, rx) = oneshot::channel();
        (
            TeeBody {
                inner,
                copy: BytesMut::new(),
                limit,
                done: Some(tx),
            },
            rx,
        )
    }
}

impl<B> Body for TeeBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    if this.done.is_some() && this.copy.len() + data.len() <= this.limit {
                        this.copy.extend_from_slice(data);
                    } else {
                        // Too large to be a Settings/Provision body worth reading: stop copying.
                        this.done = None;
                        this.copy = BytesMut::new();
                    }
                }
                // hyper stops polling once the body says it has ended: send the copy now.
                if this.inner.is_end_stream() {
                    if let Some(tx) = this.done.take() {
                        let _ = tx.send(std::mem::take(&mut this.copy).freeze());
                    }
                }
            }
            Poll::Ready(None) => {
                if let Some(tx) = this.done.take() {
                    let _ = tx.send(std::mem::take(&mut this.copy).freeze());
                }
            }
            Poll::Ready(Some(Err(_))) => this.done = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that, if dropped before its end (the upstream failed or answered early), is
/// read to its end on a task of its own, up to [`DRAIN_AFTER_DROP`] bytes: dropping it at once
/// would reset an HTTP/2 stream before the gateway's own answer (a 502) reaches the client.
pub struct FinishOnDrop {
    inner: Option<hyper::body::Incoming>,
}

/// Most bytes read from an abandoned request body.
pub const DRAIN_AFTER_DROP: usize = 64 * 1024;

impl FinishOnDrop {
    pub fn new(inner: hyper::body::Incoming) -> Self {
        FinishOnDrop { inner: Some(inner) }
    }
}

impl Body for FinishOnDrop {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_default()
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if inner.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let limited = http_body_util::Limited::new(inner, DRAIN_AFTER_DROP);
                let _ = tokio::time::timeout(std::time::Duration::from_secs(5), limited.collect())
                    .await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hop_by_hop_check_names_exactly_the_hop_by_hop_list() {
        for name in &HOP_BY_HOP {
            assert!(is_hop_by_hop(name), "{name}");
        }
        for name in [
            "host",
            "content-type",
            "content-length",
            "user-agent",
            "authorization",
            "ms-asprotocolversion",
            "x-ms-policykey",
            "tee",
            "upgrades",
            "keep-alive2",
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            assert!(!is_hop_by_hop(&name), "{name}");
        }
        let mut listed: Vec<&str> = HOP_BY_HOP.iter().map(HeaderName::as_str).collect();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(listed.len(), 9, "no name twice in the list");
    }

    fn headers(fields: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in fields {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        map.keys().map(HeaderName::as_str).collect()
    }

    #[test]
    fn a_message_without_hop_by_hop_headers_keeps_them_all() {
        let mut map = headers(&[
            ("content-type", "application/vnd.ms-sync.wbxml"),
            ("ms-asprotocolversion", "16.1"),
            ("x-ms-policykey", "1"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(
            names(&map),
            ["content-type", "ms-asprotocolversion", "x-ms-policykey"]
        );
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut map = headers(&[
            ("connection", "keep-alive, X-Secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("content-type", "text/plain"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-authenticate", "Basic"),
            ("proxy-connection", "keep-alive"),
            ("ms-asprotocolversion", "16.1"),
        ]);
        strip_hop_by_hop(&mut map);
        assert_eq!(names(&map), ["content-type", "ms-asprotocolversion"]);
    }

    #[test]
    fn a_lone_keep_alive_or_proxy_connection_header_is_dropped() {
        for name in ["keep-alive", "proxy-connection", "te"] {
            let mut map = headers(&[(name, "x"), ("content-length", "0")]);
            strip_hop_by_hop(&mut map);
            assert_eq!(names(&map), ["content-length"], "{name}");
        }
    }
}
