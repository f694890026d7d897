//! Shared helpers for the binary's integration tests: a fresh data directory per test, the
//! real `easgate` binary, and the outside peers (OpenSSL, pkilint) that `scripts/test` installs.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod crash;
pub mod pg;
pub mod upstream;

/// One easgate installation in a temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub public_url: String,
    /// `--database-url` for every command; `None`: the default SQLite file in the data dir.
    pub database_url: Option<String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    /// A data directory made with `easgate init --no-ca`: master key and database, no CA.
    pub fn new() -> Self {
        let env = Env::bare();
        env.ok(&["init", "--no-ca"]);
        env
    }

    /// No data directory at all (first starts, and commands that must refuse to make one).
    pub fn bare() -> Self {
        Env {
            dir: tempfile::tempdir().expect("tempdir"),
            public_url: "http://pki.corp.example:8080".to_string(),
            database_url: None,
        }
    }

    /// No data directory, and every command given `--database-url url`.
    pub fn bare_with_database(url: &str) -> Self {
        Env {
            database_url: Some(url.to_string()),
            ..Env::bare()
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self) -> Command {
        self.with_options(Command::new(env!("CARGO_BIN_EXE_easgate")))
    }

    /// The binary run under `wrapper` (e.g. `["faketime", "-f", "-25d"]`), same options.
    pub fn command_under(&self, wrapper: &[&str]) -> Command {
        let mut cmd = Command::new(wrapper[0]);
        cmd.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_easgate"));
        self.with_options(cmd)
    }

    fn with_options(&self, mut cmd: Command) -> Command {
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .arg("--public-url")
            .arg(&self.public_url)
            .env_remove("EASGATE_MASTER_KEY")
            .env_remove("EASGATE_DATABASE_URL")
            .env_remove("EASGATE_DATA_DIR")
            .env_remove("EASGATE_PUBLIC_URL");
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command().args(args).output().expect("run easgate");
        to_run(out)
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "easgate {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Run and require exit 1 with an `error:` line; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 1,
            "easgate {args:?} should fail with 1:\n{}\n{}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.lines().any(|l| l.starts_with("error: ")),
            "no `error:` line for {args:?}: {}",
            r.stderr
        );
        r.stderr
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.ok(&full);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{out}"))
    }

    /// Template `phones` on CA `ca` with subject `subject` and SANs email + UPN.
    pub fn phones_template(&self, ca: &str, subject: &str) {
        self.ok(&[
            "template",
            "create",
            "phones",
            "--ca",
            ca,
            "--subject",
            subject,
            "--san",
            "email:{EmailAddress}",
            "--san",
            "upn:{UserPrincipalName}",
        ]);
    }

    /// User alice@corp.example, whose mail address is alice@mail.example.
    pub fn add_alice(&self) {
        self.ok(&[
            "user",
            "add",
            "alice@corp.example",
            "--email",
            "alice@mail.example",
            "--name",
            "Alice",
        ]);
    }

    /// CA `default` (EC P-256), template `phones` with email + UPN SANs, user alice, device dev1.
    pub fn standard_setup(&self) {
        self.ok(&["ca", "create", "default"]);
        self.phones_template("default", "CN={DeviceUid}");
        self.add_alice();
        self.enroll("alice@corp.example", "ios", "dev1", &[]);
    }

    /// `device enroll --user USER --platform PLATFORM --uid UID` and `extra`: its JSON output
    /// (challenge, profile URL, …).
    pub fn enroll(
        &self,
        user: &str,
        platform: &str,
        uid: &str,
        extra: &[&str],
    ) -> serde_json::Value {
        let args = [
            &[
                "device",
                "enroll",
                "--user",
                user,
                "--platform",
                platform,
                "--uid",
                uid,
            ][..],
            extra,
        ]
        .concat();
        self.json(&args)
    }

    /// Enroll device `uid` (iOS) for `user` and issue its certificate from template `phones`
    /// with the CLI: (certificate, key, serial), the files named after `uid`.
    pub fn issue_device_cert(&self, user: &str, uid: &str) -> (PathBuf, PathBuf, String) {
        self.enroll(user, "ios", uid, &[]);
        let cert = self.path(&format!("{uid}.pem"));
        let key = self.path(&format!("{uid}.key"));
        let issued = self.json(&[
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            uid,
            "--out-key",
            key.to_str().expect("utf8"),
            "--out",
            cert.to_str().expect("utf8"),
        ]);
        let serial = issued["serial"].as_str().expect("serial").to_string();
        (cert, key, serial)
    }

    /// Export CA `name` as PEM to a file and return its path.
    pub fn export_ca(&self, name: &str) -> PathBuf {
        // Written aside and renamed into place: tests call this from several threads at once,
        // and a reader must never see a half-written file.
        static EXPORTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = EXPORTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.path(&format!("{name}-ca.pem"));
        let aside = self.path(&format!("{name}-ca.pem.{n}.tmp"));
        self.ok(&["ca", "export", name, "--out", aside.to_str().expect("utf8")]);
        std::fs::rename(&aside, &path).expect("rename the exported CA into place");
        path
    }

    /// Every listing as JSON: the observable state of the store.
    pub fn snapshot(&self) -> String {
        let mut all = String::new();
        for args in [
            &["ca", "list"][..],
            &["trust", "list"],
            &["user", "list"],
            &["group", "list"],
            &["template", "list"],
            &["device", "list"],
            &["cert", "list"],
            &["policy", "list"],
            &["eas", "list"],
            &["audit", "--since", "1d"],
        ] {
            all.push_str(&self.json(args).to_string());
            all.push('\n');
        }
        all
    }
}

fn to_run(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run a peer tool; returns (exit code, stdout + stderr).
pub fn peer(program: &Path, args: &[&str], cwd: &Path) -> (i32, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (scripts/test installs the peers)",
                program.display()
            )
        });
    let r = to_run(out);
    (r.code, format!("{}{}", r.stdout, r.stderr))
}

pub fn openssl(args: &[&str], cwd: &Path) -> (i32, String) {
    peer(Path::new("openssl"), args, cwd)
}

/// Run openssl and require success.
pub fn openssl_ok(args: &[&str], cwd: &Path) -> String {
    let (code, out) = openssl(args, cwd);
    assert_eq!(code, 0, "openssl {args:?} failed: {out}");
    out
}

/// The Python of the peers' venv (`$EASGATE_PEERS_VENV`, made by scripts/test with pkilint,
/// pyactivesync and PyScep).
pub fn peers_python() -> PathBuf {
    let dir = std::env::var_os("EASGATE_PEERS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/venv"));
    let python = dir.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs the Python peers",
        python.display()
    );
    python
}

/// micromdm's `scepclient` (Debian `scep`) in `dir`: enroll with `challenge` (PKCSReq), or with
/// an empty challenge renew the `cert.pem` / `key.pem` already there (RenewalReq). Its CSR asks
/// for CN `ignored-by-the-template`, which easgate must not use. (exit code, output)
pub fn scepclient(dir: &Path, url: &str, challenge: &str) -> (i32, String) {
    std::fs::create_dir_all(dir).expect("mkdir");
    peer(
        Path::new("/usr/bin/scepclient"),
        &[
            "-server-url",
            url,
            "-challenge",
            challenge,
            "-cn",
            "ignored-by-the-template",
            "-keySize",
            "2048",
            "-private-key",
            "key.pem",
            "-certificate",
            "cert.pem",
        ],
        dir,
    )
}

/// A P-256 key `NAME.key` and a CSR for `/CN=NAME` in `dir`: the CSR as PEM.
pub fn p256_csr(dir: &Path, name: &str) -> String {
    openssl_ok(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{name}.csr"),
        ],
        dir,
    );
    std::fs::read_to_string(dir.join(format!("{name}.csr"))).expect("read the CSR")
}

/// pkilint's console scripts: `$EASGATE_PKILINT_BIN` or the venv scripts/test makes.
pub fn pkilint(tool: &str) -> PathBuf {
    let dir = std::env::var_os("EASGATE_PKILINT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/venv/bin")
        });
    let path = dir.join(tool);
    assert!(
        path.exists(),
        "pkilint tool {} is missing: run scripts/test, which installs pkilint 0.13.3",
        path.display()
    );
    path
}

/// Lint with pkilint at `-s WARNING`; panics with the findings unless clean.
pub fn lint_clean(tool: &str, extra: &[&str], files: &[&Path], cwd: &Path) {
    let mut args: Vec<&str> = vec!["lint"];
    args.extend_from_slice(extra);
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    let (code, out) = peer(&pkilint(tool), &args, cwd);
    assert_eq!(code, 0, "{tool} {args:?} reported findings:\n{out}");
}

/// A running `easgate serve`, on ephemeral loopback ports, stopped (SIGTERM) on drop.
pub struct Server {
    pub child: Option<std::process::Child>,
    pub public: std::net::SocketAddr,
    pub admin: std::net::SocketAddr,
    /// The EAS gateway (TLS).
    pub gateway: std::net::SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Env {
    /// Start `serve` with `extra` flags; waits until both listeners are up.
    pub fn serve(&self, extra: &[&str]) -> Server {
        use std::io::BufRead;
        let mut cmd = self.command();
        cmd.args([
            "serve",
            "--public-listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--gateway-listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("EASGATE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("start easgate serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line.clone());
                sink.lock().unwrap().push(line);
            }
        });
        let (mut public, mut admin, mut gateway) = (None, None, None);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while public.is_none() || admin.is_none() || gateway.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!("serve did not start:\n{}", log.lock().unwrap().join("\n"));
                }
            };
            let addr = |l: &str| l.rsplit("://").next().and_then(|a| a.trim().parse().ok());
            if line.contains("public PKI listening on") {
                public = addr(&line);
            } else if line.contains("admin listening on") {
                admin = addr(&line);
            } else if line.contains("gateway listening on") {
                gateway = line
                    .split("listening on https://")
                    .nth(1)
                    .and_then(|a| a.split_whitespace().next())
                    .and_then(|a| a.parse().ok());
            }
        }
        Server {
            child: Some(child),
            public: public.unwrap(),
            admin: admin.unwrap(),
            gateway: gateway.unwrap(),
            log,
        }
    }
}

impl Server {
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal HTTP/1.1 client for tests (one request per connection): (status, headers, body).
pub fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/ocsp-request\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    exchange(addr, &head, body)
}

/// One HTTP/1.1 request with the given extra header lines (`"Cookie: …"`): (status, head, body).
pub fn http_with(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[String],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    );
    exchange(addr, &head, body)
}

/// Send one request (`head` ends with the blank line) on a new connection and read the whole
/// answer: (status, head, body with any chunking removed).
fn exchange(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

/// Poll `f` until it returns true or `secs` pass; true if it did.
pub fn eventually(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// One admin API call over plain HTTP/1.1: (status, Content-Type, body as JSON or as a JSON
/// string when it is not JSON). `token` goes in `Authorization: Bearer`.
pub fn api(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, serde_json::Value) {
    api_raw(
        addr,
        method,
        path,
        token,
        "application/json",
        body.unwrap_or("").as_bytes(),
    )
}

/// As [`api`], with any content type and body bytes.
pub fn api_raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String, serde_json::Value) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, head, body) = exchange(addr, &head, body);
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, content_type, json)
}
