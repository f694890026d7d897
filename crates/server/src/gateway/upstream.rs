//! HTTP/1.1 connections to the upstream mail server: one small pool per gateway thread.
//!
//! hyper-util's pooled client is built for many hosts: every request hashes the scheme and
//! authority, builds a lazy connect future and boxes its response future. The gateway has one
//! upstream and each thread its own pool, so the pool here is a list of idle connections
//! (hyper's own `client::conn::http1`, TLS from hyper-rustls). A connection goes back to the
//! list when the response body has been passed on whole; one whose response was abandoned is
//! closed. A request that hyper hands back unsent (the upstream closed an idle connection just
//! then) is sent again on a new connection. hyper-util's client cost about a sixth of the
//! gateway's CPU per proxied request (docs/BENCHMARKS.md). Idle connections are closed after
//! [`IDLE_TIMEOUT`]; at most [`MAX_IDLE`] are kept.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HeaderValue, HOST};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;
use tracing::debug;

use crate::gateway::proxy::GatewayBody;

type Sender = SendRequest<GatewayBody>;
/// Idle connections, the longest idle first, with when each became idle.
type Idle = Arc<Mutex<VecDeque<(Instant, Sender)>>>;

/// Most idle connections a thread keeps.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is closed rather than reused (the upstream may have
/// forgotten it; hyper-util's client uses the same figure).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a request did not get the upstream's answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Protocol(#[from] hyper::Error),
}

impl UpstreamError {
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Connect(_))
    }
}

/// One gateway thread's connections to the upstream.
#[derive(Clone)]
pub struct UpstreamPool {
    connector: hyper_rustls::HttpsConnector<HttpConnector>,
    /// Where to connect (scheme and authority of `--upstream`).
    target: Uri,
    /// The `Host` header requests carry.
    host: Option<HeaderValue>,
    idle: Idle,
}

impl UpstreamPool {
    pub fn new(connector: hyper_rustls::HttpsConnector<HttpConnector>, target: Uri) -> Self {
        let host = target
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok());
        UpstreamPool {
            connector,
            target,
            host,
            idle: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Send `request` (its URI in origin form, path and query) and return the response
    /// head; its body streams from the connection.
    pub async fn send(
        &self,
        request: Request<GatewayBody>,
    ) -> Result<Response<GatewayBody>, UpstreamError> {
        let mut request = request;
        if let Some(host) = &self.host {
            request.headers_mut().insert(HOST, host.clone());
        }
        // A pooled connection the upstream closed meanwhile hands the request back unsent.
        while let Some(mut sender) = self.checkout() {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.pooled(sender, response)),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(UpstreamError::Protocol(e.into_error())),
                },
            }
        }
        // Boxed: the connect state (TLS stream, handshake) is large and needed only now, not
        // in every request's future while it waits.
        let mut sender = Box::pin(self.connect(self.target.clone())).await?;
        let response = sender.send_request(request).await?;
        Ok(self.pooled(sender, response))
    }

    /// An idle connection ready for a request, if there is one.
    fn checkout(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // The most recently used first: it is the likeliest to be still open.
        while let Some((since, sender)) = idle.pop_back() {
            if sender.is_ready() && since.elapsed() < IDLE_TIMEOUT {
                return Some(sender);
            }
            // Closed, too old, or still finishing its last exchange: let it go.
        }
        None
    }

    async fn connect(&self, uri: Uri) -> Result<Sender, UpstreamError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let stream = connector
            .call(uri)
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let (sender, connection) = http1::Builder::new()
            .handshake(stream)
            .await
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        // `map`, not an async block, which would hold the connection twice while it lives.
        tokio::spawn(connection.map(|ended| {
            if let Err(e) = ended {
                debug!(error = %e, "upstream connection ended with an error");
            }
        }));
        Ok(sender)
    }

    /// The response with a body that returns the connection to the pool once read whole.
    fn pooled(&self, sender: Sender, response: Response<Incoming>) -> Response<GatewayBody> {
        let (parts, body) = response.into_parts();
        let body = if body.is_end_stream() {
            // No body to wait for (hyper will not even poll it).
            give_back(&self.idle, sender);
            http_body_util::BodyExt::boxed(body)
        } else {
            http_body_util::BodyExt::boxed(PooledBody {
                inner: body,
                sender: Some(sender),
                idle: Arc::clone(&self.idle),
            })
        };
        Response::from_parts(parts, body)
    }
}

fn give_back(idle: &Idle, sender: Sender) {
    if sender.is_closed() {
        return;
    }
    let mut idle = idle.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    while idle
        .front()
        .is_some_and(|(since, _)| now.duration_since(*since) >= IDLE_TIMEOUT)
    {
        idle.pop_front();
    }
    if idle.len() < MAX_IDLE {
        idle.push_back((now, sender));
    }
}

/// A response body that gives its connection back when it ends.
struct PooledBody {
    inner: Incoming,
    sender: Option<Sender>,
    idle: Idle,
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Ready(Some(Err(_))) => {
                this.sender = None;
                false
            }
            Poll::Pending => false,
        };
        if ended {
            if let Some(sender) = this.sender.take() {
                give_back(&this.idle, sender);
            }
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
