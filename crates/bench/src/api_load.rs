//! Enrollment load on the admin API, as an MDM drives it: over N keep-alive connections, each
//! enrolls a new device (`POST /api/v1/devices`, unique uid) and then fetches its SCEP
//! challenge (`POST /api/v1/devices/{uid}/challenge`), back to back for a fixed time. A pair
//! counts only when both answers are 201. wrk cannot do this: its Lua request hook is shared by
//! a thread's connections, so a challenge could be sent before its device's enrollment ended.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::ocsp_load::read_response;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The admin listener, e.g. http://127.0.0.1:9090.
    #[arg(long)]
    pub url: String,
    /// File holding an API token with the enroller (or admin) role.
    #[arg(long)]
    pub token_file: std::path::PathBuf,
    /// Owners of the new devices: bench{0..USERS}@corp.example, taken in turn (they must exist).
    #[arg(long, default_value_t = 100_000)]
    pub users: u64,
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Prefix of the new devices' uids (`PREFIX-CONNECTION-N`); change it between runs on one
    /// data directory.
    #[arg(long, default_value = "api")]
    pub uid_prefix: String,
}

#[derive(Default)]
struct Stats {
    pairs: u64,
    failures: u64,
    pair_us: Vec<u32>,
    first_failure: Option<String>,
}

fn request(method: &str, addr: SocketAddr, path: &str, token: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn exchange(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    req: &[u8],
) -> Result<(u16, bool), BoxError> {
    let io = async {
        stream.write_all(req).await?;
        read_response(stream, buf).await
    };
    match tokio::time::timeout(Duration::from_secs(5), io).await {
        Ok(r) => r,
        Err(_) => Err("no answer within 5 s".into()),
    }
}

struct Worker {
    addr: SocketAddr,
    token: Arc<String>,
    users: u64,
    prefix: Arc<String>,
    index: usize,
    connections: usize,
    until: Instant,
}

impl Worker {
    async fn run(self) -> Stats {
        let mut stats = Stats::default();
        let mut buf = Vec::with_capacity(8192);
        let mut conn: Option<TcpStream> = None;
        let mut n: u64 = 0;
        while Instant::now() < self.until {
            if conn.is_none() {
                match TcpStream::connect(self.addr).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        conn = Some(s);
                    }
                    Err(e) => {
                        stats.failures += 1;
                        stats.first_failure.get_or_insert(format!("connect: {e}"));
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                }
            }
            let Some(stream) = conn.as_mut() else {
                continue;
            };
            let uid = format!("{}-{}-{n}", self.prefix, self.index);
            let user = (n * self.connections as u64 + self.index as u64) % self.users.max(1);
            n += 1;
            let enroll = request(
                "POST",
                self.addr,
                "/api/v1/devices",
                &self.token,
                &format!(r#"{{"user":"bench{user}@corp.example","platform":"ios","uid":"{uid}"}}"#),
            );
            let challenge = request(
                "POST",
                self.addr,
                &format!("/api/v1/devices/{uid}/challenge"),
                &self.token,
                "",
            );
            let started = Instant::now();
            let mut ok = true;
            for (what, req) in [("enroll", &enroll), ("challenge", &challenge)] {
                match exchange(stream, &mut buf, req).await {
                    Ok((201, true)) => {}
                    Ok((201, false)) => {
                        conn = None;
                        if what == "enroll" {
                            ok = false;
                            stats.first_failure.get_or_insert(
                                "the server closed the connection after enrolling".into(),
                            );
                        }
                        break;
                    }
                    Ok((status, _)) => {
                        ok = false;
                        stats.first_failure.get_or_insert(format!(
                            "{what} {uid}: HTTP {status}: {}",
                            String::from_utf8_lossy(&buf).lines().last().unwrap_or("")
                        ));
                        conn = None;
                        break;
                    }
                    Err(e) => {
                        ok = false;
                        stats
                            .first_failure
                            .get_or_insert(format!("{what} {uid}: {e}"));
                        conn = None;
                        break;
                    }
                }
            }
            if ok {
                stats.pairs += 1;
                stats
                    .pair_us
                    .push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
            } else {
                stats.failures += 1;
            }
        }
        stats
    }
}

pub async fn run(args: Args) -> Result<(), BoxError> {
    let host = args
        .url
        .strip_prefix("http://")
        .ok_or("the URL must start with http://")?
        .trim_end_matches('/');
    let addr: SocketAddr = host.parse()?;
    let token = Arc::new(
        std::fs::read_to_string(&args.token_file)?
            .trim()
            .to_string(),
    );
    let prefix = Arc::new(args.uid_prefix.clone());
    let connections = args.connections.max(1);
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..connections)
        .map(|index| {
            tokio::spawn(
                Worker {
                    addr,
                    token: Arc::clone(&token),
                    users: args.users,
                    prefix: Arc::clone(&prefix),
                    index,
                    connections,
                    until,
                }
                .run(),
            )
        })
        .collect();
    let mut total = Stats::default();
    for task in tasks {
        let s = task.await?;
        total.pairs += s.pairs;
        total.failures += s.failures;
        total.pair_us.extend(s.pair_us);
        if total.first_failure.is_none() {
            total.first_failure = s.first_failure;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    total.pair_us.sort_unstable();
    let pct = |p: f64| {
        total
            .pair_us
            .get(((total.pair_us.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{} pairs in {secs:.2} s: {:.0}/s, {} failures, pair latency p50 {} us, p99 {} us",
        total.pairs,
        total.pairs as f64 / secs,
        total.failures,
        pct(0.50),
        pct(0.99)
    );
    if let Some(first) = total.first_failure {
        println!("first failure: {first}");
    }
    Ok(())
}
