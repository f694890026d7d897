//! An HTTP/1.1 keep-alive load generator for POST endpoints (OCSP, SCEP): N connections, each sending the same
//! request body back to back for a fixed time, reconnecting when the server closes. Written
//! here rather than using wrk because it needs nothing but a POST body and must also drive
//! `openssl ocsp -port`, which answers one request per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Stats {
    ok: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

/// Read one HTTP response (Content-Length bodies); returns (status, keep-alive).
pub(crate) async fn read_response(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), BoxError> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length: Option<usize> = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok());
            let keep_alive = !head.contains("connection: close") && head.starts_with("http/1.1");
            if head.contains("transfer-encoding: chunked") {
                // Walk the chunks: size line, data, CRLF; a zero size ends the body.
                let mut at = end + 4;
                loop {
                    let line_end = loop {
                        if let Some(p) = buf[at..].windows(2).position(|w| w == b"\r\n") {
                            break at + p;
                        }
                        let n = stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err("connection closed mid-body".into());
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    };
                    let size_text = String::from_utf8_lossy(&buf[at..line_end]).to_string();
                    let size = usize::from_str_radix(
                        size_text.split(';').next().unwrap_or("").trim(),
                        16,
                    )?;
                    let next = line_end + 2 + size + 2;
                    while buf.len() < next {
                        let n = stream.read(&mut chunk).await?;
                        if n == 0 {
                            return Err("connection closed mid-body".into());
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    if size == 0 {
                        return Ok((status, keep_alive));
                    }
                    at = next;
                }
            }
            let Some(length) = length else {
                // No length: the body runs to the end of the connection.
                while stream.read(&mut chunk).await? > 0 {}
                return Ok((status, false));
            };
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Err("connection closed mid-body".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok((status, keep_alive));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err("connection closed before the response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn worker(addr: SocketAddr, path: Arc<String>, body: Arc<Vec<u8>>, until: Instant) -> Stats {
    let mut stats = Stats {
        ok: 0,
        errors: 0,
        latencies_us: Vec::new(),
    };
    let request = {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r
    };
    let mut buf = Vec::with_capacity(8192);
    let mut conn: Option<TcpStream> = None;
    while Instant::now() < until {
        let started = Instant::now();
        if conn.is_none() {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(s);
                }
                Err(_) => {
                    stats.errors += 1;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            }
        }
        let Some(stream) = conn.as_mut() else {
            continue;
        };
        let exchange = async {
            stream.write_all(&request).await?;
            read_response(stream, &mut buf).await
        };
        let result = match tokio::time::timeout(Duration::from_secs(5), exchange).await {
            Ok(r) => r,
            Err(_) => Err("no answer within 5 s".into()),
        };
        match result {
            Ok((200, keep_alive)) => {
                stats.ok += 1;
                stats
                    .latencies_us
                    .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
                if !keep_alive {
                    conn = None;
                }
            }
            _ => {
                stats.errors += 1;
                conn = None;
            }
        }
    }
    stats
}

pub async fn run(
    url: &str,
    request_file: &std::path::Path,
    connections: usize,
    seconds: u64,
) -> Result<(), BoxError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("the URL must start with http://")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr: SocketAddr = host.parse()?;
    let path = Arc::new(format!("/{path}"));
    let body = Arc::new(std::fs::read(request_file)?);
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections.max(1))
        .map(|_| tokio::spawn(worker(addr, Arc::clone(&path), Arc::clone(&body), until)))
        .collect();
    let (mut ok, mut errors, mut latencies) = (0u64, 0u64, Vec::new());
    for task in tasks {
        let s = task.await?;
        ok += s.ok;
        errors += s.errors;
        latencies.extend(s.latencies_us);
    }
    let secs = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{ok} responses in {secs:.2} s: {:.0}/s, {errors} errors, latency p50 {} us, p99 {} us",
        ok as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
    Ok(())
}
