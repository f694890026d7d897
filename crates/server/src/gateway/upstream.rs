//! HTTP/1.1 connections to the upstream mail server: one small pool per gateway thread, and
//! the exchange of one request on one of them.
//!
//! The wire format is `easgate-http1` (its module doc says why not hyper's client); this
//! module owns the sockets. A request's head and the body bytes already at hand go out in one
//! write, the rest of the body streams after it (the upstream's final answer, should it come
//! before the body is through, ends the streaming: see `UpstreamPool::respond_early`), then
//! the response head is read and its body streams back to the device from the same
//! connection, which returns to the pool once that body has been read whole (a response
//! abandoned half-way closes it). While a long poll waits for its answer the exchange holds the
//! socket and no buffer: the read buffer is allocated when the upstream's first bytes are
//! readable.
//!
//! A pooled connection the upstream has closed is noticed before use (its socket reads as
//! closed) and dropped. If the upstream closes a reused connection while the request is being
//! written, the request is sent again on a new connection; if it closes one after the request
//! has gone out but before any answer, only GET, HEAD and OPTIONS are sent again (RFC 9112
//! §9.3.1: a POST such as SendMail must not be repeated blindly), others get 502. Idle
//! connections are closed after [`IDLE_TIMEOUT`]; at most [`MAX_IDLE`] are kept.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use easgate_http1::{
    encode_chunk, encode_request_head, parse_response_head, request_framing, BodyDecoder, Decoded,
    Http1Error, RequestFraming, ResponseHead, LAST_CHUNK,
};
use futures_util::FutureExt;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

use crate::gateway::proxy::{BodyError, GatewayBody};

/// Most idle connections a thread keeps.
const MAX_IDLE: usize = 1024;
/// An idle connection older than this is closed rather than reused (the upstream may have
/// forgotten it; hyper's and nginx's clients use similar figures).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a TCP connect (and TLS handshake) to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Request bytes gathered before a write (head plus the body already received).
const WRITE_BATCH: usize = 64 * 1024;
/// Bytes read from the upstream at a time.
const READ_SIZE: usize = 8 * 1024;
/// How long the rest of a request body is read after the upstream answered without it.
const LINGER: Duration = Duration::from_secs(30);

/// Most request-head buffers a gateway thread keeps for reuse, and the largest it keeps.
const KEPT_HEAD_BUFFERS: usize = 64;
const KEPT_HEAD_CAPACITY: usize = 16 * 1024;

thread_local! {
    /// This thread's spare request-head buffers.
    static HEAD_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// The buffer a request's head (and the body bytes at hand) are gathered in, taken from the
/// thread's spares and given back when done. Reused rather than allocated per request: a
/// head needs 1 KiB or more, and glibc's malloc tidies all its small free lists on every
/// allocation that large.
struct HeadBuffer(Vec<u8>);

impl HeadBuffer {
    fn take() -> Self {
        let spare = HEAD_BUFFERS.with(|spares| spares.borrow_mut().pop());
        HeadBuffer(spare.unwrap_or_else(|| Vec::with_capacity(1024)))
    }

    /// Give the buffer back now; what it held is gone.
    fn release(&mut self) {
        let mut buffer = std::mem::take(&mut self.0);
        if buffer.capacity() == 0 || buffer.capacity() > KEPT_HEAD_CAPACITY {
            return;
        }
        buffer.clear();
        HEAD_BUFFERS.with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < KEPT_HEAD_BUFFERS {
                spares.push(buffer);
            }
        });
    }
}

impl std::ops::Deref for HeadBuffer {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl std::ops::DerefMut for HeadBuffer {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Drop for HeadBuffer {
    fn drop(&mut self) {
        self.release();
    }
}

/// Why a request did not get the upstream's answer.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Response(#[from] Http1Error),
    #[error("the upstream closed the connection without answering")]
    ClosedBeforeAnswer,
    #[error("the request cannot be sent: {0}")]
    Request(String),
    #[error("the device's request body failed: {0}")]
    RequestBody(BodyError),
}

impl UpstreamError {
    /// Whether the device's request (its body failed, or did not match its length) is at
    /// fault: answered 400, not counted as an upstream error.
    pub fn is_device_fault(&self) -> bool {
        matches!(
            self,
            UpstreamError::Request(_) | UpstreamError::RequestBody(_)
        )
    }

    /// The `kind` label of `easgate_gateway_upstream_errors_total`: `connect`, `protocol`
    /// (the upstream's side of an exchange) or `request` (the device's body failed or did not
    /// match its length; the upstream is not at fault, and the device gets 400).
    pub fn kind(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Request(_) | UpstreamError::RequestBody(_) => "request",
            UpstreamError::Io(_)
            | UpstreamError::Response(_)
            | UpstreamError::ClosedBeforeAnswer => "protocol",
        }
    }
}

/// Where the upstream is and how to reach it.
struct Target {
    host: String,
    port: u16,
    /// The `Host` header requests carry (the authority of `--upstream`).
    host_header: HeaderValue,
    /// TLS for an `https` upstream.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

/// One gateway thread's connections to the upstream.
#[derive(Clone)]
pub struct UpstreamPool {
    /// `None` without a usable `--upstream` (requests are answered 502 before they get here).
    target: Option<Arc<Target>>,
    idle: Idle,
}

/// Idle connections, the longest idle first, with when each became idle.
type Idle = Arc<Mutex<VecDeque<(Instant, Connection)>>>;

impl UpstreamPool {
    pub fn new(upstream: Option<&Uri>, tls: Arc<rustls::ClientConfig>) -> Self {
        let target = upstream.and_then(|uri| {
            let authority = uri.authority()?;
            let https = uri.scheme_str() == Some("https");
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tls = if https {
                let name = ServerName::try_from(host.to_string()).ok()?;
                Some((TlsConnector::from(tls), name))
            } else {
                None
            };
            Some(Arc::new(Target {
                host: host.to_string(),
                port,
                host_header: HeaderValue::from_str(authority.as_str()).ok()?,
                tls,
            }))
        });
        UpstreamPool {
            target,
            idle: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Send `request` (its URI in origin form, path and query; hop-by-hop headers already
    /// removed) with the `added` header fields after its own, and return the response head;
    /// its body streams from the connection.
    /// `long_wait`: the answer usually takes minutes (a Ping), so wait for it without holding
    /// a read buffer (other requests keep their connection's buffer: fewer allocations).
    ///
    /// The head is encoded before this returns, so the future borrows nothing of the caller's
    /// but the pool: what the caller built the request from need not stay alive (and take room
    /// in every held Ping) while the answer is awaited.
    pub fn send<'a>(
        &'a self,
        request: Request<GatewayBody>,
        added: &[(HeaderName, HeaderValue)],
        long_wait: bool,
    ) -> impl std::future::Future<Output = Result<Response<GatewayBody>, UpstreamError>> + Send + 'a
    {
        let outgoing = self.outgoing(request, added);
        async move { self.exchange(outgoing?, long_wait).await }
    }

    /// The request's head and the body bytes already at hand, encoded.
    fn outgoing(
        &self,
        request: Request<GatewayBody>,
        added: &[(HeaderName, HeaderValue)],
    ) -> Result<Outgoing, UpstreamError> {
        let target = self.target()?;
        let (parts, mut body) = request.into_parts();
        let framing = request_framing(
            &parts.method,
            &parts.headers,
            body.is_end_stream(),
            body.size_hint().exact(),
        )?;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut first = HeadBuffer::take();
        encode_request_head(
            &parts.method,
            path,
            Some(target.host_header.as_bytes()),
            &parts.headers,
            added,
            framing,
            &mut first,
        );
        let mut writer = BodyWriter::new(framing);
        writer.gather(&mut body, &mut first)?;
        Ok(Outgoing {
            retry_after_silence: matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::OPTIONS
            ) && writer.ended,
            request_was_head: parts.method == Method::HEAD,
            first,
            writer,
            body,
        })
    }

    fn target(&self) -> Result<&Target, UpstreamError> {
        self.target
            .as_deref()
            .ok_or_else(|| UpstreamError::Connect("no upstream configured".into()))
    }

    /// Write `outgoing` on a pooled or new connection and read the answer's head.
    async fn exchange(
        &self,
        outgoing: Outgoing,
        long_wait: bool,
    ) -> Result<Response<GatewayBody>, UpstreamError> {
        let target = self.target()?;
        let Outgoing {
            mut first,
            mut writer,
            mut body,
            retry_after_silence,
            request_was_head,
        } = outgoing;
        let (mut connection, mut reused) = match self.checkout() {
            Some(c) => (c, true),
            None => (Box::pin(self.connect(target)).await?, false),
        };
        loop {
            match connection.io.write_all(&first).await {
                Ok(()) => {}
                // The upstream closed a pooled connection as the request went out: it has not
                // seen the whole request, so send it on a new one.
                Err(_) if reused => {
                    connection = Box::pin(self.connect(target)).await?;
                    reused = false;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if !writer.ended {
                // Boxed: a body that streams on is rare (large uploads), and its states
                // would otherwise add to the size of every exchange, held Pings included.
                let rest = send_rest(&mut writer, &mut body, &mut connection, request_was_head);
                if let Some(head) = Box::pin(rest).await? {
                    return Ok(self.respond_early(connection, head, body));
                }
            }
            connection.io.flush().await?;
            if !retry_after_silence {
                // Not sent again from here on: a held Ping keeps no head buffer.
                first.release();
            }
            match connection.read_head(request_was_head, long_wait).await {
                Err(UpstreamError::ClosedBeforeAnswer) if reused && retry_after_silence => {
                    connection = Box::pin(self.connect(target)).await?;
                    reused = false;
                }
                Err(e) => return Err(e),
                Ok(head) => return Ok(self.respond(connection, head)),
            }
        }
    }

    /// An idle connection ready for a request, if there is one.
    fn checkout(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        // The most recently used first: it is the likeliest to be still open.
        while let Some((since, mut connection)) = idle.pop_back() {
            if since.elapsed() < IDLE_TIMEOUT && connection.still_open() {
                return Some(connection);
            }
        }
        None
    }

    async fn connect(&self, target: &Target) -> Result<Connection, UpstreamError> {
        let connect = TcpStream::connect((target.host.as_str(), target.port));
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(UpstreamError::Connect(e.to_string())),
            Err(_) => return Err(UpstreamError::Connect("timed out".into())),
        };
        let _ = tcp.set_nodelay(true);
        let io = match &target.tls {
            None => Either::Left(tcp),
            Some((connector, name)) => {
                let handshake = connector.connect(name.clone(), tcp);
                match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                    Ok(Ok(tls)) => Either::Right(Box::new(tls)),
                    Ok(Err(e)) => return Err(UpstreamError::Connect(format!("TLS: {e}"))),
                    Err(_) => return Err(UpstreamError::Connect("TLS handshake timed out".into())),
                }
            }
        };
        Ok(Connection {
            io,
            buf: BytesMut::new(),
        })
    }

    /// Respond with an answer that came before the request went out whole: the connection is
    /// out of step and closes after it, and the rest of the device's body is read and dropped
    /// in the background for up to [`LINGER`]. Not reading it would make the device's side
    /// reset the connection (HTTP/1.1) or the stream (HTTP/2) while it is still sending, often
    /// before it has read the answer (nginx's lingering close is there for the same reason).
    fn respond_early(
        &self,
        connection: Connection,
        mut head: ResponseHead,
        mut rest: GatewayBody,
    ) -> Response<GatewayBody> {
        tokio::spawn(async move {
            let drain = async { while let Some(Ok(_)) = rest.frame().await {} };
            let _ = tokio::time::timeout(LINGER, drain).await;
        });
        head.keep_alive = false;
        self.respond(connection, head)
    }

    /// The response, its body read from `connection`, which returns to the pool at its end.
    fn respond(&self, connection: Connection, head: ResponseHead) -> Response<GatewayBody> {
        let mut response = Response::new(crate::gateway::proxy::empty_body());
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        *response.version_mut() = Version::HTTP_11;
        let decoder = BodyDecoder::new(head.framing);
        if decoder.is_done() {
            if head.keep_alive {
                give_back(&self.idle, connection);
            }
            return response;
        }
        *response.body_mut() = UpstreamBody {
            connection: Some(connection),
            decoder,
            keep_alive: head.keep_alive,
            idle: Arc::clone(&self.idle),
        }
        .boxed();
        response
    }
}

fn give_back(idle: &Idle, connection: Connection) {
    if !connection.buf.is_empty() {
        // The upstream sent more than the response: the connection is out of step.
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
        idle.push_back((now, connection));
    }
}

/// A request ready to go: its encoded head (with the body bytes that were at hand) and the
/// rest of its body.
struct Outgoing {
    first: HeadBuffer,
    writer: BodyWriter,
    body: GatewayBody,
    /// It may be sent again if a reused connection closes before any answer.
    retry_after_silence: bool,
    request_was_head: bool,
}

/// Writes a request body in the framing its head announced, checking a declared length.
struct BodyWriter {
    framing: RequestFraming,
    written: u64,
    ended: bool,
}

impl BodyWriter {
    fn new(framing: RequestFraming) -> Self {
        BodyWriter {
            framing,
            written: 0,
            ended: matches!(framing, RequestFraming::None | RequestFraming::Length(0)),
        }
    }

    /// Append to `out` the body frames that are ready now, up to [`WRITE_BATCH`] bytes.
    fn gather(&mut self, body: &mut GatewayBody, out: &mut Vec<u8>) -> Result<(), UpstreamError> {
        while !self.ended && out.len() < WRITE_BATCH {
            match body.frame().now_or_never() {
                None => break,
                Some(frame) => self.encode(frame, out)?,
            }
        }
        Ok(())
    }

    /// Stream what is left of the body, batching frames that are ready together, until it
    /// ends (`None`) or the upstream's final answer comes first (then the rest is not sent;
    /// interim answers such as 100 Continue do not stop the body).
    async fn stream_rest(
        &mut self,
        body: &mut GatewayBody,
        connection: &mut Connection,
        request_was_head: bool,
    ) -> Result<Option<ResponseHead>, UpstreamError> {
        let mut out = Vec::new();
        while !self.ended {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                head = connection.early_answer(request_was_head) => return head.map(Some),
            };
            self.encode(frame, &mut out)?;
            self.gather(body, &mut out)?;
            let answered = connection
                .write_unless_answered(&out, request_was_head)
                .await?;
            if answered.is_some() {
                return Ok(answered);
            }
            out.clear();
        }
        Ok(None)
    }

    fn encode(
        &mut self,
        frame: Option<Result<Frame<Bytes>, BodyError>>,
        out: &mut Vec<u8>,
    ) -> Result<(), UpstreamError> {
        let data = match frame {
            None => {
                if let RequestFraming::Length(n) = self.framing {
                    if self.written != n {
                        return Err(UpstreamError::Request(format!(
                            "the body ended after {} of its {n} bytes",
                            self.written
                        )));
                    }
                }
                if self.framing == RequestFraming::Chunked {
                    out.extend_from_slice(LAST_CHUNK);
                }
                self.ended = true;
                return Ok(());
            }
            Some(Err(e)) => return Err(UpstreamError::RequestBody(e)),
            // Trailers are not passed on.
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => return Ok(()),
            },
        };
        self.written += data.len() as u64;
        match self.framing {
            RequestFraming::Chunked => encode_chunk(&data, out),
            RequestFraming::Length(n) if self.written > n => {
                return Err(UpstreamError::Request(format!(
                    "the body is longer than its Content-Length {n}"
                )))
            }
            RequestFraming::Length(n) => {
                out.extend_from_slice(&data);
                // The body has all its bytes: its end need not be waited for.
                self.ended = self.written == n;
            }
            RequestFraming::None => {
                if !data.is_empty() {
                    return Err(UpstreamError::Request(
                        "a body on a bodiless request".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Send what is left of a request body: `Some` with the upstream's final answer if it came
/// first. The upstream may also have answered and closed before taking the whole body (a 413,
/// say): when writing fails, that answer, if it got here, is the device's.
async fn send_rest(
    writer: &mut BodyWriter,
    body: &mut GatewayBody,
    connection: &mut Connection,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, UpstreamError> {
    match writer.stream_rest(body, connection, request_was_head).await {
        Err(UpstreamError::Io(e)) => match connection.read_head(request_was_head, false).await {
            Ok(head) => Ok(Some(head)),
            Err(_) => Err(UpstreamError::Io(e)),
        },
        sent => sent,
    }
}

/// A connection to the upstream and the bytes read from it but not yet used.
struct Connection {
    io: Io,
    buf: BytesMut,
}

impl Connection {
    /// An idle connection is usable when reading it would wait: no end of stream, no stray
    /// bytes. Polled without a waker: the readiness the event loop last saw decides.
    fn still_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        let mut read = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut read),
            Poll::Pending
        )
    }

    /// Read what the upstream sends while the request is still going out: `Ready` with its
    /// final answer's head (interim answers are skipped), or an error if it closed.
    fn poll_early_answer(
        &mut self,
        cx: &mut Context<'_>,
        request_was_head: bool,
    ) -> Poll<Result<ResponseHead, UpstreamError>> {
        loop {
            if let Some(head) = parse_response_head(&mut self.buf, request_was_head)? {
                return Poll::Ready(Ok(head));
            }
            self.buf.reserve(READ_SIZE);
            let read = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut self.io),
                cx,
                &mut self.buf
            ))?;
            if read == 0 {
                return Poll::Ready(Err(UpstreamError::ClosedBeforeAnswer));
            }
        }
    }

    async fn early_answer(
        &mut self,
        request_was_head: bool,
    ) -> Result<ResponseHead, UpstreamError> {
        std::future::poll_fn(|cx| self.poll_early_answer(cx, request_was_head)).await
    }

    /// Write `bytes`, unless the upstream's final answer comes first: an upstream that refuses
    /// the body may stop reading it, and the write would wait for ever.
    async fn write_unless_answered(
        &mut self,
        bytes: &[u8],
        request_was_head: bool,
    ) -> Result<Option<ResponseHead>, UpstreamError> {
        let mut written = 0;
        std::future::poll_fn(|cx| {
            while written < bytes.len() {
                if let Poll::Ready(head) = self.poll_early_answer(cx, request_was_head) {
                    return Poll::Ready(head.map(Some));
                }
                match ready!(Pin::new(&mut self.io).poll_write(cx, &bytes[written..]))? {
                    0 => return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into())),
                    n => written += n,
                }
            }
            Poll::Ready(Ok(None))
        })
        .await
    }

    /// Wait, holding no buffer of ours, until the upstream has sent bytes of its answer, or
    /// closed, or failed (the read that follows reports which). Over TLS the socket's bytes go
    /// to rustls first: a session ticket or another post-handshake message makes the socket
    /// readable without any answer (TLS 1.3 servers send tickets after the handshake, so a
    /// Ping on a new connection gets them while it waits), and the wait goes on until rustls
    /// holds plaintext.
    async fn wait_for_answer(&mut self) -> io::Result<()> {
        let tls = match &mut self.io {
            Either::Left(tcp) => return tcp.readable().await,
            Either::Right(tls) => tls,
        };
        let (tcp, session) = tls.get_mut();
        loop {
            match session.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {}
                _ => return Ok(()),
            }
            tcp.readable().await?;
            match session.read_tls(&mut TryRead(tcp)) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return Ok(()),
            }
        }
    }

    /// Read until a final response head is complete. With `long_wait` the buffer is given up
    /// while waiting (for minutes) and a new one taken when the answer comes.
    async fn read_head(
        &mut self,
        request_was_head: bool,
        long_wait: bool,
    ) -> Result<ResponseHead, UpstreamError> {
        loop {
            if let Some(head) = parse_response_head(&mut self.buf, request_was_head)? {
                return Ok(head);
            }
            if self.buf.is_empty() {
                if long_wait {
                    self.buf = BytesMut::new();
                }
                self.wait_for_answer().await?;
            }
            self.buf.reserve(READ_SIZE);
            let read = std::future::poll_fn(|cx| {
                tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
            })
            .await?;
            if read == 0 {
                return Err(UpstreamError::ClosedBeforeAnswer);
            }
        }
    }
}

/// `std::io::Read` over a tokio socket's non-blocking read (which clears the socket's
/// readiness when it would block), for rustls's `read_tls`.
struct TryRead<'a>(&'a TcpStream);

impl io::Read for TryRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// Plain TCP or TLS to the upstream.
type Io = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// A response body read from its connection; the connection goes back to the pool at the
/// body's end when the upstream allows, and is closed if the body is dropped before.
struct UpstreamBody {
    connection: Option<Connection>,
    decoder: BodyDecoder,
    keep_alive: bool,
    idle: Idle,
}

impl UpstreamBody {
    fn finish(&mut self) {
        if let Some(connection) = self.connection.take() {
            if self.keep_alive {
                give_back(&self.idle, connection);
            }
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            match this.decoder.decode(&mut connection.buf) {
                Ok(Decoded::Data(data)) => {
                    if this.decoder.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Decoded::End) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(Decoded::NeedMore) => {}
                Err(e) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            if connection.buf.capacity() - connection.buf.len() < READ_SIZE / 4 {
                connection.buf.reserve(READ_SIZE);
            }
            let read = tokio_util::io::poll_read_buf(
                Pin::new(&mut connection.io),
                cx,
                &mut connection.buf,
            );
            match ready!(read) {
                Ok(0) => {
                    this.connection = None;
                    return match this.decoder.closed() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err(e.into()))),
                    };
                }
                Ok(_) => {}
                Err(e) => {
                    this.connection = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.connection.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_buffers_are_reused_empty_and_big_ones_are_not_kept() {
        let mut head = HeadBuffer::take();
        head.extend_from_slice(b"POST /Microsoft-Server-ActiveSync?Cmd=Ping HTTP/1.1\r\n");
        let address = head.as_ptr();
        head.release();
        assert!(head.is_empty(), "released: nothing left to send");
        drop(head);
        let again = HeadBuffer::take();
        assert_eq!(again.as_ptr(), address, "the thread's spare is reused");
        assert!(again.is_empty());

        let mut big = HeadBuffer::take();
        big.resize(KEPT_HEAD_CAPACITY + 1, b'x');
        drop(big);
        drop(again);
        let spares =
            HEAD_BUFFERS.with(|s| s.borrow().iter().map(Vec::capacity).collect::<Vec<_>>());
        assert!(
            spares.iter().all(|&c| c <= KEPT_HEAD_CAPACITY),
            "{spares:?}"
        );
    }
}
