//! The load generator of the gateway comparison (easgate's mutual-TLS gateway against nginx,
//! and both against the upstream reached directly). wrk cannot present a client certificate, so
//! this speaks HTTP/1.1 itself over plain TCP or rustls (client certificate, no session
//! resumption), with four modes:
//!
//! - `handshake`: every request on a new TCP + TLS connection (`Connection: close`), C loops
//!   in parallel: full handshakes per second.
//! - `keepalive`: C connections opened first, then requests back to back on each.
//! - `rate`: open loop, a fixed number of requests per second spread over C keep-alive
//!   connections. A request's latency counts from its scheduled send time when it went out late
//!   because its connection was still busy (no coordinated omission); when the connection was
//!   idle it counts from the actual send, so the 1 ms granularity of tokio's timer is not
//!   counted against the server.
//! - `hold`: N connections, each sending one request that the upstream holds (Ping), kept open
//!   for `--hold-secs` after all were sent; prints `READY held=N` once they are all out, so a
//!   script can measure the server's memory then.
//!
//! The request is built once; each connection keeps one read buffer; responses are parsed with
//! httparse and their bodies discarded as they arrive. Every run ends with one `RESULT k=v ...`
//! line for scripts.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::client::Resumption;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// A new TCP + TLS connection for every request.
    Handshake,
    /// C connections, requests back to back on each.
    Keepalive,
    /// Open loop at --rate requests/s over C keep-alive connections.
    Rate,
    /// Open --count requests the upstream holds and keep them for --hold-secs.
    Hold,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kx {
    /// X25519 only: what OpenSSL 3.0 (nginx 1.22 on Debian 12) and rustls both do fastest.
    X25519,
    /// rustls' default groups (X25519MLKEM768 first).
    Default,
}

#[derive(clap::Args)]
pub struct Args {
    /// http://HOST:PORT/PATH?QUERY (direct) or https://... (mutual TLS).
    #[arg(long)]
    url: String,
    #[arg(long, value_enum)]
    mode: Mode,
    /// Client certificate (PEM; the chain after it is sent too). With --key.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client private key (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long)]
    key: Option<PathBuf>,
    /// CA certificate(s) that the server certificate must chain to (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long, default_value = "POST")]
    method: String,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// The request body; without it, --body-size bytes of filler.
    #[arg(long)]
    body_file: Option<PathBuf>,
    #[arg(long, default_value_t = 300)]
    body_size: usize,
    /// Connections (keepalive, rate), parallel loops (handshake) or handshakes in flight (hold).
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// How long to measure (handshake, keepalive, rate).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Requests per second (rate).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Requests to hold (hold).
    #[arg(long, default_value_t = 20_000)]
    count: usize,
    /// How long to keep the held requests open once all are sent (hold).
    #[arg(long, default_value_t = 30.0)]
    hold_secs: f64,
    /// Give up on one connection attempt or exchange after this long.
    #[arg(long, default_value_t = 10.0)]
    timeout_secs: f64,
    /// Key exchange groups offered.
    #[arg(long, value_enum, default_value_t = Kx::X25519)]
    kx: Kx,
    /// Spread new connections over source addresses 127.0.0.1 .. 127.0.0.K (handshake mode
    /// against loopback, when the ephemeral ports of one source address run out).
    #[arg(long, default_value_t = 1)]
    source_ips: u8,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

// ---------------------------------------------------------------------------------------------
// Target: address, TLS and the prebuilt request.

struct Target {
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    request: Vec<u8>,
    source_ips: u8,
    next_source: AtomicUsize,
    /// What the first TLS connection negotiated, for the report.
    negotiated: OnceLock<String>,
}

fn tls_connector(args: &Args) -> Result<TlsConnector, BoxError> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if args.kx == Kx::X25519 {
        provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    }
    let mut roots = RootCertStore::empty();
    let ca = args.ca.as_ref().ok_or("https:// needs --ca")?;
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(key)?)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("--cert and --key go together".into()),
    };
    // Every connection a full handshake: no tickets, no session IDs.
    config.resumption = Resumption::disabled();
    Ok(TlsConnector::from(Arc::new(config)))
}

async fn target(args: &Args, body: &[u8]) -> Result<Target, BoxError> {
    let (tls, rest) = if let Some(rest) = args.url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = args.url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err("the URL must start with http:// or https://".into());
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let default_port = if tls { 443 } else { 80 };
    let host_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let addr = tokio::net::lookup_host(&host_port)
        .await?
        .next()
        .ok_or_else(|| format!("{host_port}: no address"))?;
    let tls = if tls {
        let host = host_port
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .unwrap_or(authority);
        Some((
            tls_connector(args)?,
            ServerName::try_from(host.to_string())?,
        ))
    } else {
        None
    };
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: easgate-bench\r\n",
        args.method
    );
    for header in &args.headers {
        if !header.contains(':') {
            return Err(format!("header {header:?}: expected `Name: value`").into());
        }
        head.push_str(header);
        head.push_str("\r\n");
    }
    if !body.is_empty() || args.method.eq_ignore_ascii_case("POST") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    if args.mode == Mode::Handshake {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    Ok(Target {
        addr,
        tls,
        request,
        source_ips: args.source_ips.max(1),
        next_source: AtomicUsize::new(0),
        negotiated: OnceLock::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Failures and statistics.

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Failure {
    /// TCP connect refused, reset or out of ports/descriptors.
    Connect,
    /// The TLS handshake failed, or a TLS alert arrived later (a refused client certificate
    /// shows up at the first read in TLS 1.3).
    Tls,
    /// Reading or writing failed after the handshake.
    Io,
    /// The server closed the connection before a whole response.
    Closed,
    /// Not HTTP/1.x.
    Parse,
    /// No answer within --timeout-secs.
    Timeout,
    /// An answer other than 2xx.
    Status(u16),
}

impl Failure {
    fn name(self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Tls => "tls".into(),
            Failure::Io => "io".into(),
            Failure::Closed => "closed".into(),
            Failure::Parse => "parse".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Status(code) => format!("http_{code}"),
        }
    }
}

/// An I/O error, told apart: rustls errors (alerts included) are TLS failures.
fn io_failure(e: &io::Error) -> (Failure, String) {
    let tls = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
    (if tls { Failure::Tls } else { Failure::Io }, e.to_string())
}

#[derive(Default)]
struct Stats {
    ok: u64,
    latencies_us: Vec<u32>,
    failures: BTreeMap<Failure, u64>,
    /// The first message seen of each kind, to say what went wrong.
    first_message: BTreeMap<Failure, String>,
}

impl Stats {
    fn with_capacity(n: usize) -> Self {
        Stats {
            latencies_us: Vec::with_capacity(n),
            ..Stats::default()
        }
    }

    fn success(&mut self, latency: Duration) {
        self.ok += 1;
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }

    fn failure(&mut self, kind: Failure, message: impl FnOnce() -> String) {
        *self.failures.entry(kind).or_default() += 1;
        self.first_message.entry(kind).or_insert_with(message);
    }

    fn merge(&mut self, other: Stats) {
        self.ok += other.ok;
        self.latencies_us.extend(other.latencies_us);
        for (kind, n) in other.failures {
            *self.failures.entry(kind).or_default() += n;
        }
        for (kind, message) in other.first_message {
            self.first_message.entry(kind).or_insert(message);
        }
    }

    fn errors(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The human line, the failure details and the `RESULT` line.
    fn report(&mut self, mode: Mode, secs: f64, extra: &str) {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| -> u32 {
            let n = self.latencies_us.len();
            if n == 0 {
                return 0;
            }
            let rank = ((n as f64) * p).ceil() as usize;
            self.latencies_us
                .get(rank.clamp(1, n) - 1)
                .copied()
                .unwrap_or(0)
        };
        let (p50, p90, p99, max) = (pct(0.50), pct(0.90), pct(0.99), pct(1.0));
        let rps = if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        };
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|(kind, n)| format!("{}={n}", kind.name()))
            .collect();
        println!(
            "{mode:?}: {} ok in {secs:.2} s = {rps:.0}/s; latency p50 {p50} us, p90 {p90} us, p99 {p99} us, max {max} us; errors {} [{}]{extra}",
            self.ok,
            self.errors(),
            failures.join(" ")
        );
        for (kind, message) in &self.first_message {
            println!("  first {} error: {message}", kind.name());
        }
        println!(
            "RESULT mode={} ok={} secs={secs:.3} rps={rps:.1} p50_us={p50} p90_us={p90} p99_us={p99} max_us={max} errors={} {}{}",
            format!("{mode:?}").to_lowercase(),
            self.ok,
            self.errors(),
            failures.join(" "),
            extra.replace(", ", " ").replace(';', "")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Connections.

/// Plain TCP or TLS.
type Stream = Either<TcpStream, Box<TlsStream<TcpStream>>>;

struct Conn {
    io: Stream,
    buf: Vec<u8>,
}

type Outcome<T> = Result<T, (Failure, String)>;

async fn connect(target: &Target) -> Outcome<Conn> {
    let tcp = if target.source_ips > 1 {
        let n = target.next_source.fetch_add(1, Ordering::Relaxed) % usize::from(target.source_ips);
        let source = Ipv4Addr::new(127, 0, 0, 1 + u8::try_from(n).unwrap_or(0));
        let socket = TcpSocket::new_v4().map_err(|e| (Failure::Connect, e.to_string()))?;
        socket
            .set_reuseaddr(true)
            .and_then(|()| socket.bind(SocketAddr::new(IpAddr::V4(source), 0)))
            .map_err(|e| (Failure::Connect, format!("bind {source}: {e}")))?;
        socket.connect(target.addr).await
    } else {
        TcpStream::connect(target.addr).await
    }
    .map_err(|e| (Failure::Connect, e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let io = match &target.tls {
        None => Either::Left(tcp),
        Some((connector, name)) => {
            let tls = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| (Failure::Tls, e.to_string()))?;
            target.negotiated.get_or_init(|| {
                let (_, session) = tls.get_ref();
                let name = |v: Option<String>| v.unwrap_or_else(|| "?".into());
                format!(
                    "{}/{}/{}",
                    name(session.protocol_version().map(|v| format!("{v:?}"))),
                    name(
                        session
                            .negotiated_cipher_suite()
                            .map(|s| format!("{:?}", s.suite()))
                    ),
                    name(
                        session
                            .negotiated_key_exchange_group()
                            .map(|g| format!("{:?}", g.name()))
                    ),
                )
            });
            Either::Right(Box::new(tls))
        }
    };
    Ok(Conn {
        io,
        buf: Vec::with_capacity(16 * 1024),
    })
}

/// Connect and make one request, so that the server has finished its side of the handshake
/// (in TLS 1.3 the client is done first: the server checks the client certificate after) and
/// the connection is warm before measuring starts.
async fn connect_warm(target: &Target) -> Outcome<Conn> {
    let mut conn = connect(target).await?;
    let (status, keep_alive) = conn.exchange(&target.request).await?;
    check_status(status)?;
    if keep_alive {
        Ok(conn)
    } else {
        connect(target).await
    }
}

enum BodyKind {
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    async fn send(&mut self, request: &[u8]) -> Outcome<()> {
        self.io
            .write_all(request)
            .await
            .map_err(|e| io_failure(&e))?;
        self.io.flush().await.map_err(|e| io_failure(&e))
    }

    /// Read more into the buffer; end of stream is an error.
    async fn fill(&mut self) -> Outcome<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Err((Failure::Closed, "connection closed".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(io_failure(&e)),
        }
    }

    /// Drop `n` body bytes, reading as needed.
    async fn discard(&mut self, mut n: usize) -> Outcome<()> {
        loop {
            let take = n.min(self.buf.len());
            self.buf.drain(..take);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            self.fill().await?;
        }
    }

    /// Read one whole response: (status, whether the connection can carry another request).
    async fn receive(&mut self) -> Outcome<(u16, bool)> {
        let (status, keep_alive, body) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = response.code.unwrap_or(0);
                    let mut keep_alive = response.version == Some(1);
                    let mut body = BodyKind::UntilClose;
                    for header in response.headers.iter() {
                        let value = std::str::from_utf8(header.value).unwrap_or("");
                        if header.name.eq_ignore_ascii_case("content-length") {
                            if !matches!(body, BodyKind::Chunked) {
                                let n = value
                                    .trim()
                                    .parse()
                                    .map_err(|_| (Failure::Parse, "bad Content-Length".into()))?;
                                body = BodyKind::Length(n);
                            }
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            if value.to_ascii_lowercase().contains("chunked") {
                                body = BodyKind::Chunked;
                            }
                        } else if header.name.eq_ignore_ascii_case("connection") {
                            let value = value.to_ascii_lowercase();
                            if value.contains("close") {
                                keep_alive = false;
                            } else if value.contains("keep-alive") {
                                keep_alive = true;
                            }
                        }
                    }
                    if status == 204 || status == 304 || (100..200).contains(&status) {
                        body = BodyKind::Length(0);
                    }
                    self.buf.drain(..head_len);
                    break (status, keep_alive, body);
                }
                Ok(httparse::Status::Partial) => self.fill().await?,
                Err(e) => return Err((Failure::Parse, format!("response head: {e}"))),
            }
        };
        match body {
            BodyKind::Length(n) => self.discard(n).await?,
            BodyKind::Chunked => loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete((at, 0))) => {
                        self.buf.drain(..at);
                        // Trailers, if any, then the empty line.
                        loop {
                            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                                self.buf.drain(..p + 2);
                                if p == 0 {
                                    break;
                                }
                            } else {
                                self.fill().await?;
                            }
                        }
                        break;
                    }
                    Ok(httparse::Status::Complete((at, size))) => {
                        self.buf.drain(..at);
                        let size = usize::try_from(size)
                            .map_err(|_| (Failure::Parse, "chunk too large".into()))?;
                        self.discard(size + 2).await?;
                    }
                    Ok(httparse::Status::Partial) => self.fill().await?,
                    Err(_) => return Err((Failure::Parse, "bad chunk size".into())),
                }
            },
            BodyKind::UntilClose => loop {
                self.buf.clear();
                match self.fill().await {
                    Ok(()) => {}
                    Err((Failure::Closed, _)) => return Ok((status, false)),
                    Err(e) => return Err(e),
                }
            },
        }
        Ok((status, keep_alive))
    }

    async fn exchange(&mut self, request: &[u8]) -> Outcome<(u16, bool)> {
        self.send(request).await?;
        self.receive().await
    }
}

/// A response's status as an outcome: 2xx is success.
fn check_status(status: u16) -> Outcome<()> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err((Failure::Status(status), format!("HTTP {status}")))
    }
}

/// One request on `conn`, or on a new connection when there is none; the connection comes back
/// with the answer's status and whether the server keeps it open.
async fn exchange_on(target: &Target, conn: Option<Conn>) -> Outcome<(Conn, u16, bool)> {
    let mut c = match conn {
        Some(c) => c,
        None => connect(target).await?,
    };
    let (status, keep_alive) = c.exchange(&target.request).await?;
    Ok((c, status, keep_alive))
}

// ---------------------------------------------------------------------------------------------
// Modes.

/// handshake and keepalive: a loop sending back to back until `until`. With `reuse`, one
/// connection (opened beforehand, reopened only when the server closes it or after a failure);
/// without, a new connection for every request.
async fn closed_loop(
    target: Arc<Target>,
    mut conn: Option<Conn>,
    reuse: bool,
    until: Instant,
    timeout: Duration,
) -> Stats {
    let mut stats = Stats::with_capacity(64 * 1024);
    while Instant::now() < until {
        let started = Instant::now();
        let deadline = (started + timeout).min(until);
        match tokio::time::timeout_at(deadline, exchange_on(&target, conn.take())).await {
            Ok(Ok((c, status, keep_alive))) => {
                match check_status(status) {
                    Ok(()) => stats.success(started.elapsed()),
                    Err((kind, message)) => stats.failure(kind, || message),
                }
                if reuse && keep_alive {
                    conn = Some(c);
                }
            }
            Ok(Err((kind, message))) => {
                stats.failure(kind, || message);
                if kind == Failure::Connect {
                    // Out of ports or refused: do not spin.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Err(_) if Instant::now() >= until => break,
            Err(_) => stats.failure(Failure::Timeout, || "no answer in time".into()),
        }
    }
    stats
}

/// rate: take the next slot of the global schedule, wait for it, send; see the module comment
/// for where latency counts from.
async fn open_loop(
    target: Arc<Target>,
    mut conn: Option<Conn>,
    start: Instant,
    interval_ns: f64,
    slots: u64,
    next: Arc<AtomicU64>,
    timeout: Duration,
) -> (Stats, u64) {
    let mut stats = Stats::with_capacity(64 * 1024);
    let mut late = 0u64;
    loop {
        let slot = next.fetch_add(1, Ordering::Relaxed);
        if slot >= slots {
            break;
        }
        let scheduled = start + Duration::from_nanos((slot as f64 * interval_ns) as u64);
        let from = if Instant::now() > scheduled {
            late += 1;
            scheduled
        } else {
            tokio::time::sleep_until(scheduled).await;
            Instant::now()
        };
        match tokio::time::timeout(timeout, exchange_on(&target, conn.take())).await {
            Ok(Ok((c, status, keep_alive))) => {
                match check_status(status) {
                    Ok(()) => stats.success(from.elapsed()),
                    Err((kind, message)) => stats.failure(kind, || message),
                }
                if keep_alive {
                    conn = Some(c);
                }
            }
            Ok(Err((kind, message))) => stats.failure(kind, || message),
            Err(_) => stats.failure(Failure::Timeout, || "no answer in time".into()),
        }
    }
    (stats, late)
}

#[derive(Default)]
struct HoldCounters {
    connecting: AtomicU64,
    held: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
}

async fn hold_one(
    target: Arc<Target>,
    gate: Arc<Semaphore>,
    counters: Arc<HoldCounters>,
    stats: Arc<Mutex<Stats>>,
    timeout: Duration,
) {
    let fail = |kind: Failure, message: String| {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut stats) = stats.lock() {
            stats.failure(kind, || message);
        }
    };
    let Ok(permit) = gate.acquire_owned().await else {
        return;
    };
    counters.connecting.fetch_add(1, Ordering::Relaxed);
    let opened = tokio::time::timeout(timeout, async {
        let mut c = connect(&target).await?;
        c.send(&target.request).await?;
        Ok::<_, (Failure, String)>(c)
    })
    .await;
    counters.connecting.fetch_sub(1, Ordering::Relaxed);
    drop(permit);
    let mut conn = match opened {
        Ok(Ok(c)) => c,
        Ok(Err((kind, message))) => return fail(kind, message),
        Err(_) => return fail(Failure::Timeout, "connect and send timed out".into()),
    };
    counters.held.fetch_add(1, Ordering::Relaxed);
    // Held until the process ends, unless something answers or fails.
    let outcome = conn.receive().await;
    counters.held.fetch_sub(1, Ordering::Relaxed);
    match outcome {
        Ok((status, _)) => {
            counters.answered.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut stats) = stats.lock() {
                match check_status(status) {
                    Ok(()) => stats.ok += 1,
                    Err((kind, message)) => stats.failure(kind, || message),
                }
            }
        }
        Err((kind, message)) => fail(kind, message),
    }
}

async fn hold(target: Arc<Target>, args: &Args, timeout: Duration) -> Result<(), BoxError> {
    let count = args.count;
    let gate = Arc::new(Semaphore::new(args.connections.max(1)));
    let counters = Arc::new(HoldCounters::default());
    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    for _ in 0..count {
        tokio::spawn(hold_one(
            Arc::clone(&target),
            Arc::clone(&gate),
            Arc::clone(&counters),
            Arc::clone(&stats),
            timeout,
        ));
    }
    let snapshot = |c: &HoldCounters| {
        (
            c.held.load(Ordering::Relaxed),
            c.answered.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
            c.connecting.load(Ordering::Relaxed),
        )
    };
    // Ramp: until every request is out (held, answered or failed).
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (held, answered, failed, connecting) = snapshot(&counters);
        println!(
            "  {:.1} s: held {held}, answered {answered}, failed {failed}, connecting {connecting}",
            started.elapsed().as_secs_f64()
        );
        if held + answered + failed >= count as u64 {
            break;
        }
    }
    let ramp = started.elapsed().as_secs_f64();
    // Let the servers settle (proxies connect upstream after the request arrives).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (held, answered, failed, _) = snapshot(&counters);
    println!("READY held={held} answered={answered} failed={failed} ramp_secs={ramp:.2}");
    tokio::time::sleep(Duration::from_secs_f64(args.hold_secs)).await;
    let (held, answered, failed, _) = snapshot(&counters);
    let mut stats = match Arc::try_unwrap(stats) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(shared) => shared
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default(),
    };
    stats.report(
        Mode::Hold,
        ramp,
        &format!(", held={held}, answered={answered}, failed={failed}"),
    );
    Ok(())
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    let body = match &args.body_file {
        Some(path) => std::fs::read(path)?,
        None => (0..args.body_size).map(|i| (i % 251) as u8).collect(),
    };
    let target = Arc::new(target(&args, &body).await?);
    let timeout = Duration::from_secs_f64(args.timeout_secs.max(0.001));
    let connections = args.connections.max(1);
    match args.mode {
        Mode::Handshake | Mode::Keepalive => {
            let reuse = args.mode == Mode::Keepalive;
            let mut opened = Vec::new();
            if reuse {
                // Connect everyone first so the measurement is of requests only.
                let tasks: Vec<_> = (0..connections)
                    .map(|_| {
                        let target = Arc::clone(&target);
                        tokio::spawn(async move {
                            tokio::time::timeout(timeout, connect_warm(&target)).await
                        })
                    })
                    .collect();
                for task in tasks {
                    opened.push(task.await?);
                }
            }
            let start = Instant::now();
            let until = start + Duration::from_secs_f64(args.seconds);
            let mut setup = Stats::default();
            let tasks: Vec<_> = if reuse {
                opened
                    .into_iter()
                    .map(|c| {
                        let target = Arc::clone(&target);
                        let conn = match c {
                            Ok(Ok(conn)) => Some(conn),
                            Ok(Err((kind, message))) => {
                                setup.failure(kind, || message);
                                None
                            }
                            Err(_) => {
                                setup.failure(Failure::Timeout, || "connect timed out".into());
                                None
                            }
                        };
                        tokio::spawn(closed_loop(target, conn, true, until, timeout))
                    })
                    .collect()
            } else {
                (0..connections)
                    .map(|_| {
                        tokio::spawn(closed_loop(
                            Arc::clone(&target),
                            None,
                            false,
                            until,
                            timeout,
                        ))
                    })
                    .collect()
            };
            let mut stats = setup;
            for task in tasks {
                stats.merge(task.await?);
            }
            // Only exchanges finished by `until` count (the rest are cut off there).
            let secs = until.duration_since(start).as_secs_f64();
            stats.report(args.mode, secs, &format!(", connections={connections}"));
        }
        Mode::Rate => {
            let tasks: Vec<_> = (0..connections)
                .map(|_| {
                    let target = Arc::clone(&target);
                    tokio::spawn(async move {
                        tokio::time::timeout(timeout, connect_warm(&target)).await
                    })
                })
                .collect();
            let mut conns = Vec::new();
            let mut stats = Stats::default();
            for task in tasks {
                match task.await? {
                    Ok(Ok(c)) => conns.push(Some(c)),
                    Ok(Err((kind, message))) => {
                        stats.failure(kind, || message);
                        conns.push(None);
                    }
                    Err(_) => {
                        stats.failure(Failure::Timeout, || "connect timed out".into());
                        conns.push(None);
                    }
                }
            }
            let rate = args.rate.max(1.0);
            let slots = (rate * args.seconds).round() as u64;
            let interval_ns = 1e9 / rate;
            let next = Arc::new(AtomicU64::new(0));
            // A little ahead so no connection starts late.
            let start = Instant::now() + Duration::from_millis(20);
            let tasks: Vec<_> = conns
                .into_iter()
                .map(|conn| {
                    tokio::spawn(open_loop(
                        Arc::clone(&target),
                        conn,
                        start,
                        interval_ns,
                        slots,
                        Arc::clone(&next),
                        timeout,
                    ))
                })
                .collect();
            let mut late = 0;
            for task in tasks {
                let (s, l) = task.await?;
                stats.merge(s);
                late += l;
            }
            let secs = start.elapsed().as_secs_f64();
            stats.report(
                Mode::Rate,
                secs,
                &format!(", target_rate={rate:.0}, connections={connections}, late_sends={late}"),
            );
        }
        Mode::Hold => hold(Arc::clone(&target), &args, timeout).await?,
    }
    if let Some(negotiated) = target.negotiated.get() {
        println!("  tls: {negotiated}");
    }
    Ok(())
}
