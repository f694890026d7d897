//! The recording upstream (tests/peers/recording_upstream.py) and curl through the gateway,
//! for the tests that put the gateway between a real client and a real upstream.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use super::{Env, Server};

/// The recording upstream, killed on drop.
pub struct Upstream {
    child: Child,
    pub port: u16,
    pub record: PathBuf,
    pub files: PathBuf,
}

impl Upstream {
    pub fn start(env: &Env) -> Self {
        Self::start_with(env, None, None)
    }

    /// With `idle`, the upstream closes a keep-alive connection after that many seconds
    /// without a request.
    pub fn start_closing_idle_after(env: &Env, idle: Option<f64>) -> Self {
        Self::start_with(env, idle, None)
    }

    /// `tls`: speak HTTPS with this (certificate, key).
    pub fn start_with(env: &Env, idle: Option<f64>, tls: Option<(&Path, &Path)>) -> Self {
        let record = env.path("upstream.jsonl");
        let files = env.path("files");
        std::fs::create_dir_all(&files).unwrap();
        let mut command = Command::new("python3");
        if let Some((cert, key)) = tls {
            command
                .env("UPSTREAM_TLS_CERT", cert)
                .env("UPSTREAM_TLS_KEY", key);
        }
        let mut child = command
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/recording_upstream.py"))
            .arg(&record)
            .arg(&files)
            .args(idle.map(|s| s.to_string()))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the recording upstream");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().strip_prefix("port ").unwrap().parse().unwrap();
        Upstream {
            child,
            port,
            record,
            files,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/Microsoft-Server-ActiveSync", self.port)
    }

    pub fn https_url(&self) -> String {
        format!(
            "https://localhost:{}/Microsoft-Server-ActiveSync",
            self.port
        )
    }

    pub fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn header<'a>(request: &'a Value, name: &str) -> Vec<&'a str> {
        request["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0].as_str().unwrap().eq_ignore_ascii_case(name))
            .map(|h| h[1].as_str().unwrap())
            .collect()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// curl through the gateway: (HTTP status, body). `cert` is (certificate, key).
pub fn curl(
    env: &Env,
    server: &Server,
    query: &str,
    cert: Option<&(PathBuf, PathBuf)>,
    extra: &[&str],
) -> (u16, Vec<u8>) {
    curl_trusting(env, &env.export_ca("default"), server, query, cert, extra)
}

/// As [`curl`], trusting the CA certificate in `ca` (exported earlier: the CLI cannot export
/// while the database is down).
pub fn curl_trusting(
    env: &Env,
    ca: &Path,
    server: &Server,
    query: &str,
    cert: Option<&(PathBuf, PathBuf)>,
    extra: &[&str],
) -> (u16, Vec<u8>) {
    // A file of its own per call: tests run curl from several threads at once.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let port = server.gateway.port();
    let body = env.path(&format!("curl-body-{call}"));
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o"])
        .arg(&body)
        .args(["-w", "%{http_code}", "--cacert"])
        .arg(ca)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    if let Some((c, k)) = cert {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    let out = cmd
        .args(extra)
        .arg(format!(
            "https://localhost:{port}/Microsoft-Server-ActiveSync?{query}"
        ))
        .output()
        .expect("curl");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    if status == 0 {
        eprintln!("curl failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    (status, std::fs::read(&body).unwrap_or_default())
}
