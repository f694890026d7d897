//! `easgate doctor` and `/readyz` against a running server: a healthy setup passes every line,
//! and each broken setup fails exactly its own line(s) while the others stay ok.
//!
//! The public URL is an IP literal, `http://127.0.0.1:PORT`: the doctor accepts an IP address
//! without resolving it, and a dotted name that resolves offline is not available on every
//! test machine (/etc/hosts may hold nothing but `localhost`, which is single-label). The
//! single-label case uses `localhost`, which resolves and reaches the same server, so only the
//! name itself is wrong.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, openssl_ok, Env, Server};
use serde_json::Value;

/// A stand-in EAS upstream: answers every request (OPTIONS included) 200 with
/// `MS-ASProtocolVersions`, as Exchange answers an authenticated OPTIONS. Stops listening on
/// drop, so its port refuses connections afterwards.
struct EasUpstream {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EasUpstream {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nMS-ASProtocolVersions: 2.5,12.0,12.1,14.0,14.1,16.0,16.1\r\n\
                      MS-ASProtocolCommands: Sync,FolderSync,Ping\r\nContent-Length: 0\r\n\
                      Connection: close\r\n\r\n",
                );
            }
        });
        EasUpstream {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/Microsoft-Server-ActiveSync", self.port)
    }
}

impl Drop for EasUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A complete setup: CA `default`, template, user, an enrolled iOS device with a certificate
/// (the one the OCSP check asks about), an iOS profile
/// naming the gateway by the public URL's host, `serve` with the upstream, the public URL
/// pointing at the public listener. Returns once `/readyz` says ready (CRLs published).
fn healthy(extra_serve: &[&str]) -> (Env, Server, EasUpstream) {
    let mut env = Env::new();
    // The host is fixed now (the first start names the gateway certificate after it); the
    // port is known once the server listens.
    env.public_url = "http://127.0.0.1:9".into();
    env.standard_setup();
    env.ok(&[
        "profile",
        "create",
        "ios-mail",
        "--platform",
        "ios",
        "--template",
        "phones",
        "--eas-host",
        "127.0.0.1",
        "--account-name",
        "Corp Mail",
    ]);
    let (cert, key) = (env.path("dev1.pem"), env.path("dev1.key"));
    env.ok(&[
        "cert",
        "issue",
        "--template",
        "phones",
        "--device",
        "dev1",
        "--out-key",
        key.to_str().unwrap(),
        "--out",
        cert.to_str().unwrap(),
    ]);
    let upstream = EasUpstream::start();
    let url = upstream.url();
    let mut args = vec!["--upstream", url.as_str()];
    args.extend_from_slice(extra_serve);
    let server = env.serve(&args);
    env.public_url = format!("http://127.0.0.1:{}", server.public.port());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, _) = http(server.admin, "GET", "/readyz", b"");
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never ready:\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (env, server, upstream)
}

/// `easgate doctor --json ARGS`: exit code and the report.
fn doctor(env: &Env, args: &[&str]) -> (i32, Value) {
    let r = env.run(&[&["doctor", "--json"][..], args].concat());
    let report = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}\n{}", r.stdout, r.stderr));
    if r.code != 0 {
        assert!(
            r.stderr.lines().any(|l| l.starts_with("error: ")),
            "exit {} without an `error:` line: {}",
            r.code,
            r.stderr
        );
    }
    (r.code, report)
}

fn statuses(report: &Value) -> BTreeMap<String, String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

/// Exactly `failing` fail (each with a fix), every other line is what a healthy setup shows.
fn only_these_fail(code: i32, report: &Value, failing: &[&str]) {
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["ok"], false);
    for (name, status) in statuses(report) {
        let expected = if failing.contains(&name.as_str()) {
            "fail"
        } else if name == "trusted-crls" {
            "skip"
        } else {
            "ok"
        };
        assert_eq!(status, expected, "check `{name}`:\n{report:#}");
    }
    for name in failing {
        assert!(
            check(report, name)["fix"].is_string(),
            "`{name}` has no fix: {report:#}"
        );
    }
}

#[test]
fn a_healthy_setup_passes_every_check_and_is_ready() {
    let (env, server, upstream) = healthy(&[]);
    let (code, report) = doctor(&env, &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["ok"], true);
    let expected = [
        ("public-url", "ok"),
        ("ca-cert:default", "ok"),
        ("crl:default", "ok"),
        ("delta-crl:default", "ok"),
        ("ocsp:default", "ok"),
        ("gateway-tls", "ok"),
        ("upstream", "ok"),
        ("trusted-crls", "skip"),
        ("file-modes", "ok"),
        ("templates-profiles", "ok"),
        ("profile-eas-host", "ok"),
        ("rules", "ok"),
        ("clock", "ok"),
    ];
    let got = statuses(&report);
    for (name, status) in expected {
        assert_eq!(
            got.get(name).map(String::as_str),
            Some(status),
            "{name}: {report:#}"
        );
    }
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["ok"], true, "{c}");
        assert!(c["fix"].is_null(), "{c}");
    }
    // serve recorded the upstream it runs with; the doctor used it.
    let line = check(&report, "upstream")["detail"].as_str().unwrap();
    assert!(line.contains(&upstream.url()), "{line}");
    assert!(line.contains("16.1"), "{line}");
    let crl = check(&report, "crl:default")["detail"].as_str().unwrap();
    assert!(
        crl.contains("signature verified") && crl.contains("fresh until"),
        "{crl}"
    );
    assert!(check(&report, "ocsp:default")["detail"]
        .as_str()
        .unwrap()
        .contains("`good`"));

    // Text: one line per check, exit 0.
    let text = env.ok(&["doctor"]);
    assert_eq!(text.lines().count(), expected.len(), "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("ok    crl:default") && l.contains("full CRL #")));
    assert!(text.lines().any(|l| l.starts_with("skip  trusted-crls")));

    // /readyz beside /healthz.
    let (status, _, body) = http(server.admin, "GET", "/readyz", b"");
    assert_eq!(status, 200);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["cas"], 1);
}

#[test]
fn a_stopped_server_fails_the_lines_fetched_through_the_public_url() {
    let (env, mut server, _upstream) = healthy(&[]);
    server.stop();
    let (code, report) = doctor(&env, &[]);
    only_these_fail(
        code,
        &report,
        &[
            "ca-cert:default",
            "crl:default",
            "delta-crl:default",
            "ocsp:default",
        ],
    );
    let crl = check(&report, "crl:default");
    assert!(
        crl["detail"].as_str().unwrap().contains("/crl/default.crl"),
        "{crl}"
    );
    assert!(
        crl["fix"].as_str().unwrap().contains("easgate serve"),
        "{crl}"
    );
    // Text: the fix follows its line.
    let r = env.run(&["doctor"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("FAIL  crl:default"))
        .unwrap();
    assert!(
        lines[at + 1].contains("→ fix: start `easgate serve`"),
        "{}",
        r.stdout
    );
}

#[test]
fn an_upstream_that_is_down_fails_the_upstream_line() {
    let (env, _server, upstream) = healthy(&[]);
    let url = upstream.url();
    drop(upstream);
    let (code, report) = doctor(&env, &[]);
    only_these_fail(code, &report, &["upstream"]);
    let line = check(&report, "upstream");
    assert!(line["detail"].as_str().unwrap().contains(&url), "{line}");
    assert!(
        line["detail"].as_str().unwrap().contains("refused"),
        "{line}"
    );

    // --upstream checks another one instead of the recorded one.
    let other = EasUpstream::start();
    let (code, report) = doctor(&env, &["--upstream", &other.url()]);
    assert_eq!(code, 0, "{report:#}");
}

#[test]
fn a_gateway_certificate_expiring_within_30_days_fails_its_line() {
    let dir = tempfile::tempdir().unwrap();
    openssl_ok(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "gw.key",
            "-out",
            "gw.pem",
            "-days",
            "10",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        dir.path(),
    );
    let cert = dir.path().join("gw.pem");
    let key = dir.path().join("gw.key");
    let (env, _server, _upstream) = healthy(&[
        "--gateway-cert",
        cert.to_str().unwrap(),
        "--gateway-key",
        key.to_str().unwrap(),
    ]);
    let (code, report) = doctor(&env, &[]);
    only_these_fail(code, &report, &["gateway-tls"]);
    let line = check(&report, "gateway-tls");
    let detail = line["detail"].as_str().unwrap();
    assert!(
        detail.contains("gw.pem") && detail.contains("expires"),
        "{line}"
    );
    assert!(detail.contains("less than 30"), "{line}");
    assert!(
        line["fix"].as_str().unwrap().contains("--gateway-cert"),
        "{line}"
    );
}

#[test]
fn a_single_label_public_url_fails_its_line() {
    let (mut env, server, _upstream) = healthy(&[]);
    // `localhost` resolves and reaches the same server: only the name is wrong.
    env.public_url = format!("http://localhost:{}", server.public.port());
    let (code, report) = doctor(&env, &[]);
    only_these_fail(code, &report, &["public-url"]);
    let line = check(&report, "public-url");
    assert!(
        line["detail"].as_str().unwrap().contains("single-label"),
        "{line}"
    );
}

#[test]
fn a_shadowed_rule_fails_the_rules_line() {
    let (env, _server, _upstream) = healthy(&[]);
    env.ok(&[
        "policy",
        "add",
        "ios-managed",
        "--priority",
        "10",
        "--platform",
        "ios",
        "--action",
        "allow",
    ]);
    env.ok(&[
        "policy",
        "add",
        "ios-managed-native",
        "--priority",
        "20",
        "--platform",
        "ios",
        "--client",
        "native",
        "--action",
        "quarantine",
    ]);
    let (code, report) = doctor(&env, &[]);
    only_these_fail(code, &report, &["rules"]);
    let line = check(&report, "rules");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("`ios-managed-native` can never match"),
        "{line}"
    );
}

#[test]
fn a_secret_readable_by_others_fails_the_file_modes_line() {
    use std::os::unix::fs::PermissionsExt;
    let (env, _server, _upstream) = healthy(&[]);
    let token = env.data_dir().join("admin-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, report) = doctor(&env, &[]);
    only_these_fail(code, &report, &["file-modes"]);
    let line = check(&report, "file-modes");
    assert!(
        line["detail"]
            .as_str()
            .unwrap()
            .contains("admin-token is mode 0644"),
        "{line}"
    );
    assert!(
        line["fix"].as_str().unwrap().contains("chmod 600"),
        "{line}"
    );
}

/// A reverse proxy (Python's http.server) in front of the public listener that answers 404
/// for the full CRL of CA `default` and passes everything else on: the CRL alone is
/// unreachable. Returns the child and its port.
fn proxy_without_full_crl(target: std::net::SocketAddr) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let script = r#"
import http.server, sys, urllib.request, urllib.error
target = sys.argv[1]
class Proxy(http.server.BaseHTTPRequestHandler):
    def relay(self):
        if self.path.split('?')[0] == '/crl/default.crl':
            self.send_error(404, 'hidden by the test')
            return
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ('host', 'connection')}
        request = urllib.request.Request(target + self.path, data=body, headers=headers, method=self.command)
        try:
            answer = urllib.request.urlopen(request, timeout=10)
        except urllib.error.HTTPError as e:
            answer = e
        data = answer.read()
        self.send_response_only(answer.status)
        for k, v in answer.headers.items():
            if k.lower() not in ('transfer-encoding', 'connection', 'content-length'):
                self.send_header(k, v)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = relay
    do_POST = relay
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, &format!("http://{target}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().expect("proxy port"))
}

#[test]
fn an_unreachable_crl_fails_only_its_line() {
    let (mut env, server, _upstream) = healthy(&[]);
    let (mut proxy, port) = proxy_without_full_crl(server.public);
    // The CLI reaches the PKI through the proxy, as devices would through a broken path.
    env.public_url = format!("http://127.0.0.1:{port}");
    let (code, report) = doctor(&env, &[]);
    let _ = proxy.kill();
    only_these_fail(code, &report, &["crl:default"]);
    let crl = check(&report, "crl:default");
    assert!(crl["detail"].as_str().unwrap().contains("404"), "{crl}");
}
