//! The HTTP/1.1 listeners (public PKI, and admin, which may serve TLS), served with limits that `axum::serve`
//! does not offer: a request head must arrive within `header_timeout` — which also closes a
//! keep-alive connection idle that long, since hyper starts the same timer while it waits for
//! the next request — and at most `max_connections` are open at once (a connection over the
//! cap is closed as soon as it is accepted). Without them a slowloris client holds a descriptor
//! per connection for ever.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// Limits of one plain-HTTP listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Longest a client may take to send a request head, or leave a connection idle.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(15),
            max_connections: 1024,
        }
    }
}

/// How long connections in flight may finish after shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Counts a connection out when it ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serve `router` on `listener` until shutdown; requests carry the client's address as
/// axum's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = GracefulShutdown::new();
    let mut last_warning: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(listener = name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= limits.max_connections {
            drop(tcp);
            if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                warn!(
                    listener = name,
                    max = limits.max_connections,
                    "connection limit reached: new connections are closed until others end"
                );
                last_warning = Some(Instant::now());
            }
            continue;
        }
        open.fetch_add(1, Ordering::Relaxed);
        let guard = Open(Arc::clone(&open));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut router = router.clone();
            async move { tower_service::Service::call(&mut router, req).await }
        });
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let result = match tls {
                None => serve_io(TokioIo::new(tcp), service, limits, watcher).await,
                Some(acceptor) => {
                    // The handshake gets the same deadline as a request head.
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_io(TokioIo::new(stream), service, limits, watcher).await
                        }
                        Ok(Err(e)) => {
                            debug!(listener = name, peer = %peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            debug!(listener = name, peer = %peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                debug!(listener = name, peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

/// One HTTP/1.1 connection over `io` (plain TCP or TLS), drained at shutdown.
async fn serve_io<I, S>(
    io: TokioIo<I>,
    service: S,
    limits: HttpLimits,
    watcher: hyper_util::server::graceful::Watcher,
) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service);
    watcher.watch(connection).await
}
