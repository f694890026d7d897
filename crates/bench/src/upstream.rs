//! A stand-in ActiveSync upstream for the gateway benchmark: HTTP/1.1 (hyper), every request
//! answered 200 with a small fixed body, except requests whose query has `Cmd=Ping`, which are
//! held for `hold` before the same answer (a long-poll that nothing wakes). `GET /__stats`
//! answers `held=N served=M` so a benchmark can check that held requests really reached it.
//!
//! A held request whose client goes away is dropped with its connection (hyper closes a
//! connection whose peer closes mid-request), so the held count goes back down.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every answer: a few bytes standing in for a WBXML Sync response.
const BODY: &[u8] = b"\x03\x01\x6a\x00\x45\x4e\x03\x31\x00\x01\x01";

#[derive(Default)]
struct Counters {
    held: AtomicU64,
    served: AtomicU64,
}

/// Counts one held request for as long as it lives, however it ends.
struct HeldGuard(Arc<Counters>);

impl Drop for HeldGuard {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

fn is_ping(query: Option<&str>) -> bool {
    query.is_some_and(|q| q.split('&').any(|kv| kv.eq_ignore_ascii_case("cmd=ping")))
}

fn answer(body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/vnd.ms-sync.wbxml"),
    );
    response
}

async fn handle(
    request: Request<Incoming>,
    counters: Arc<Counters>,
    hold: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/__stats" {
        let text = format!(
            "held={} served={}\n",
            counters.held.load(Ordering::Relaxed),
            counters.served.load(Ordering::Relaxed)
        );
        return Ok(answer(Bytes::from(text)));
    }
    let ping = is_ping(request.uri().query());
    // Read the request body to its end so the connection can carry the next request.
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    if ping {
        counters.held.fetch_add(1, Ordering::Relaxed);
        let _guard = HeldGuard(Arc::clone(&counters));
        tokio::time::sleep(hold).await;
    }
    counters.served.fetch_add(1, Ordering::Relaxed);
    Ok(answer(Bytes::from_static(BODY)))
}

/// Serve on `listen` until the process is stopped.
pub async fn run(listen: SocketAddr, hold: Duration) -> Result<(), BoxError> {
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    let listener = socket.listen(4096)?;
    eprintln!("upstream listening on {listen}, holding Cmd=Ping for {hold:?}");
    let counters = Arc::new(Counters::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: say so and keep serving.
                eprintln!("upstream: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&counters), hold));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::is_ping;

    #[test]
    fn ping_is_found_in_the_query() {
        assert!(is_ping(Some("Cmd=Ping&User=a")));
        assert!(is_ping(Some("User=a&cmd=ping")));
        assert!(!is_ping(Some("Cmd=Sync&User=Ping")));
        assert!(!is_ping(None));
    }
}
