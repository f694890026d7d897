//! The EAS gateway against a recording upstream (tests/peers/recording_upstream.py) and curl as
//! the client: trusted external CAs and their CRLs, what reaches the upstream in each auth
//! mode, HTTP/2, device information, and upstream failures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::upstream::{curl, Upstream};
use common::{eventually, Env, Server};
use serde_json::Value;

fn query(cmd: &str, user: &str, device: &str) -> String {
    format!("Cmd={cmd}&User={user}&DeviceId={device}&DeviceType=iPhone")
}

/// Status of alice's Sync from `device` with certificate `phone`.
fn sync_status(env: &Env, server: &Server, phone: &(PathBuf, PathBuf), device: &str) -> u16 {
    let q = query("Sync", "alice@corp.example", device);
    curl(env, server, &q, Some(phone), &["-d", "x"]).0
}

/// alice's `cmd` from PHONE1 over HTTP/1.1 with a small body, the recording upstream answering
/// as `kind` (its `X-Test-Answer`): (HTTP status, body).
fn answered(
    env: &Env,
    server: &Server,
    phone: &(PathBuf, PathBuf),
    cmd: &str,
    kind: &str,
) -> (u16, Vec<u8>) {
    let header = format!("X-Test-Answer: {kind}");
    let q = query(cmd, "alice@corp.example", "PHONE1");
    let extra = ["--http1.1", "-H", &header, "--data-binary", "x"];
    curl(env, server, &q, Some(phone), &extra)
}

/// The standard setup and alice's device `phone1` with its certificate (certificate, key).
fn alice_with_a_phone() -> (Env, (PathBuf, PathBuf)) {
    let env = Env::new();
    env.standard_setup();
    let (phone, _) = issue(&env, "phone1");
    (env, phone)
}

/// A device of alice's with its certificate: ((certificate, key), serial).
fn issue(env: &Env, uid: &str) -> ((PathBuf, PathBuf), String) {
    let (cert, key, serial) = env.issue_device_cert("alice@corp.example", uid);
    ((cert, key), serial)
}

#[test]
fn trusted_external_ca_passes_until_its_crl_revokes_and_fails_closed_without_a_crl() {
    // The external CA: another easgate, publishing its CRL through the upstream's /files/.
    let external = Env::new();
    external.ok(&["ca", "create", "mdm"]);
    external.phones_template("mdm", "CN={DeviceUid}");
    external.add_alice();
    let (phone1, serial1) = issue(&external, "ext1");
    let (phone2, _) = issue(&external, "ext2");

    let env = Env::new();
    env.add_alice();
    let upstream = Upstream::start(&env);
    let crl_file = upstream.files.join("mdm.crl");
    let publish_crl = || {
        external.ok(&[
            "crl",
            "generate",
            "mdm",
            "--out",
            crl_file.to_str().unwrap(),
        ]);
    };
    publish_crl();
    let crl_url = format!("http://127.0.0.1:{}/files/mdm.crl", upstream.port);
    let mdm_ca = external.export_ca("mdm");
    env.ok(&[
        "trust",
        "add",
        "mdm",
        "--cert",
        mdm_ca.to_str().unwrap(),
        "--crl-url",
        &crl_url,
    ]);
    let mut server = env.serve(&["--upstream", &upstream.url(), "--crl-max-age", "1s"]);

    // A certificate of the trusted CA is managed: allowed, proxied.
    assert!(
        eventually(5.0, || sync_status(&env, &server, &phone1, "EXT1") == 200),
        "{}",
        server.log_text()
    );
    assert_eq!(sync_status(&env, &server, &phone2, "EXT2"), 200);

    // Revoked by the external CA: refused once the new CRL is published and fetched.
    external.ok(&["cert", "revoke", &serial1]);
    publish_crl();
    assert!(
        eventually(6.0, || sync_status(&env, &server, &phone1, "EXT1") == 403),
        "{}",
        server.log_text()
    );
    assert_eq!(sync_status(&env, &server, &phone2, "EXT2"), 200);

    // The CRL disappears: once the last one is older than --crl-max-age the CA's certificates
    // fail closed, loudly.
    std::fs::remove_file(&crl_file).unwrap();
    assert!(
        eventually(6.0, || sync_status(&env, &server, &phone2, "EXT2") == 403),
        "{}",
        server.log_text()
    );
    assert!(
        eventually(3.0, || server
            .log_text()
            .contains("no current CRL for trusted CA")),
        "{}",
        server.log_text()
    );
    let log = server.log_text();
    assert!(
        log.contains("revocation state of the client certificate is unknown"),
        "{log}"
    );
    let (status, _, metrics) = common::http(server.admin, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&metrics).contains("easgate_trusted_crl_unknown{ca=\"mdm\"} 1"),
        "{}",
        String::from_utf8_lossy(&metrics)
    );
    // Failed closed: the request does not reach the upstream.
    let before = upstream.requests().len();
    assert_eq!(sync_status(&env, &server, &phone2, "EXT2"), 403);
    assert_eq!(upstream.requests().len(), before);
    // The outage is one error line however many retries fail (one a second here), and its
    // end one line more.
    let outage_lines = |server: &Server| {
        server
            .log_text()
            .matches("no current CRL for trusted CA")
            .count()
    };
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(outage_lines(&server), 1, "{}", server.log_text());
    publish_crl();
    assert!(
        eventually(6.0, || sync_status(&env, &server, &phone2, "EXT2") == 200),
        "{}",
        server.log_text()
    );
    assert!(
        eventually(3.0, || server.log_text().contains("the outage is over")),
        "{}",
        server.log_text()
    );
    assert_eq!(outage_lines(&server), 1);
    assert_eq!(server.log_text().matches("the outage is over").count(), 1);
    server.stop();

    // An admin who accepts the risk can fail open instead.
    let server = env.serve(&[
        "--upstream",
        &upstream.url(),
        "--danger-allow-unknown-revocation",
    ]);
    assert_eq!(
        sync_status(&env, &server, &phone2, "EXT2"),
        200,
        "{}",
        server.log_text()
    );
}

#[test]
fn what_reaches_the_upstream_in_each_auth_mode() {
    let (env, phone) = alice_with_a_phone();
    let upstream = Upstream::start(&env);
    let mut server = env.serve(&["--upstream", &upstream.url()]);
    let q = query("FolderSync", "alice@corp.example", "PHONE1");

    // Passthrough: the device's Authorization goes on; hop-by-hop headers and client copies of
    // X-Forwarded-* do not; the query string arrives as sent.
    let (status, body) = curl(
        &env,
        &server,
        &q,
        Some(&phone),
        &[
            "--http1.1",
            "-H",
            "Authorization: Basic YWxpY2U6cHc=",
            "-H",
            "Connection: keep-alive, X-Secret",
            "-H",
            "X-Secret: do-not-forward",
            "-H",
            "X-Forwarded-For: 6.6.6.6",
            "-H",
            "X-Forwarded-Host: evil.example",
            "-H",
            "Forwarded: for=6.6.6.6",
            "-H",
            "X-Remote-User: mallory@corp.example",
            "--data-binary",
            "0123456789",
        ],
    );
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    let seen = upstream.requests();
    let last = seen.last().unwrap();
    assert_eq!(last["path"], format!("/Microsoft-Server-ActiveSync?{q}"));
    assert_eq!(last["body_len"], 10);
    assert_eq!(
        Upstream::header(last, "authorization"),
        ["Basic YWxpY2U6cHc="]
    );
    assert!(Upstream::header(last, "x-secret").is_empty());
    assert_eq!(Upstream::header(last, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(Upstream::header(last, "x-forwarded-proto"), ["https"]);
    // The host the device asked for, not its own copy of the field.
    let forwarded_host = Upstream::header(last, "x-forwarded-host");
    assert_eq!(forwarded_host.len(), 1, "{forwarded_host:?}");
    assert!(
        forwarded_host[0].ends_with(&format!(":{}", server.gateway.port())),
        "{forwarded_host:?}"
    );
    assert!(Upstream::header(last, "forwarded").is_empty());

    // HTTP/2 from the device (chosen by ALPN) arrives as HTTP/1.1 with its body.
    let head = env.path("h2-head");
    let (status, _) = curl(
        &env,
        &server,
        &q,
        Some(&phone),
        &[
            "--http2",
            "--data-binary",
            "abc",
            "-D",
            head.to_str().unwrap(),
        ],
    );
    assert_eq!(status, 200);
    let head = std::fs::read_to_string(&head).unwrap();
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    let last = upstream.requests().last().unwrap().clone();
    assert_eq!(last["version"], "HTTP/1.1");
    assert_eq!(last["body_len"], 3);

    // Every decision is counted by action and rule; request times go into a histogram.
    let (status, _, metrics) = common::http(server.admin, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains(
            "easgate_gateway_decisions_total{action=\"allow\",matched=\"allow-managed\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("easgate_gateway_request_seconds_count 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("easgate_gateway_open_long_polls 0"),
        "{metrics}"
    );
    server.stop();

    // Trusted header: no Authorization, the client's header copy replaced by the UPN.
    let mut server = env.serve(&[
        "--upstream",
        &upstream.url(),
        "--upstream-auth",
        "trusted-header",
    ]);
    let (status, _) = curl(
        &env,
        &server,
        &q,
        Some(&phone),
        &[
            "-H",
            "Authorization: Basic YWxpY2U6cHc=",
            "-H",
            "X-Remote-User: mallory@corp.example",
            "-d",
            "x",
        ],
    );
    assert_eq!(status, 200);
    let last = upstream.requests().last().unwrap().clone();
    assert!(Upstream::header(&last, "authorization").is_empty());
    assert_eq!(
        Upstream::header(&last, "x-remote-user"),
        ["alice@corp.example"]
    );
    server.stop();
}

/// Requests reuse their thread's upstream connection; one the upstream closed while idle is
/// not used again.
#[test]
fn upstream_connections_are_reused_until_the_upstream_closes_them() {
    let (env, phone) = alice_with_a_phone();
    let upstream = Upstream::start_closing_idle_after(&env, Some(1.5));
    let server = env.serve(&["--upstream", &upstream.url(), "--gateway-threads", "1"]);
    let q = query("FolderSync", "alice@corp.example", "PHONE1");
    let ports = || -> Vec<u64> {
        upstream
            .requests()
            .iter()
            .map(|r| r["peer_port"].as_u64().unwrap())
            .collect()
    };
    // Three devices' connections one after another: one upstream connection.
    for _ in 0..3 {
        let (status, _) = curl(&env, &server, &q, Some(&phone), &["--data-binary", "x"]);
        assert_eq!(status, 200);
    }
    let first = ports();
    assert_eq!(first.len(), 3);
    assert!(
        first.iter().all(|p| *p == first[0]),
        "sequential requests should share one upstream connection: {first:?}"
    );
    // The upstream drops it after 1.5 s idle; the next request gets a new one, not an error.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (status, _) = curl(&env, &server, &q, Some(&phone), &["--data-binary", "x"]);
    assert_eq!(status, 200, "{}", server.log_text());
    let after = ports();
    assert_eq!(after.len(), 4);
    assert_ne!(after[3], first[0]);
}

#[test]
fn device_information_is_recorded_and_upstream_failures_are_502() {
    let (env, phone) = alice_with_a_phone();
    let upstream = Upstream::start(&env);

    // A Settings request made by libwbxml2 from the corpus: the gateway reads the device's
    // model, OS and name while streaming it on.
    let xml = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../activesync/tests/corpus/settings-deviceinformation.xml");
    let wbxml = env.path("settings.wbxml");
    let status = Command::new("xml2wbxml")
        .args(["-v", "1.3", "-n", "-a", "-o"])
        .arg(&wbxml)
        .arg(&xml)
        .status()
        .expect("xml2wbxml (scripts/test installs libwbxml2-utils)");
    assert!(status.success());
    let server = env.serve(&["--upstream", &upstream.url()]);
    let body_arg = format!("@{}", wbxml.display());
    let (status, _) = curl(
        &env,
        &server,
        &query("Settings", "alice@corp.example", "PHONE1"),
        Some(&phone),
        &[
            "-H",
            "Content-Type: application/vnd.ms-sync.wbxml",
            "--data-binary",
            &body_arg,
        ],
    );
    assert_eq!(status, 200);
    let sent = std::fs::metadata(&wbxml).unwrap().len();
    assert_eq!(upstream.requests().last().unwrap()["body_len"], sent);
    assert!(eventually(4.0, || {
        let run = env.run(&["--json", "eas", "show", "PHONE1"]);
        run.code == 0
            && serde_json::from_str::<Value>(&run.stdout).unwrap()["partnerships"][0]["model"]
                == "SM-S911B"
    }));
    let show = env.json(&["eas", "show", "PHONE1"]);
    let p = &show["partnerships"][0];
    assert_eq!(p["os"], "Android 14");
    assert_eq!(p["friendly_name"], "Galaxy S23");
    assert_eq!(p["last_command"], "Settings");
    drop(server);

    // Upstream down: 502, logged with the upstream tag.
    drop(upstream);
    let server = env.serve(&[
        "--upstream",
        "http://127.0.0.1:9/Microsoft-Server-ActiveSync",
    ]);
    let (status, _) = curl(
        &env,
        &server,
        &query("Sync", "alice@corp.example", "PHONE1"),
        Some(&phone),
        &["-d", "x"],
    );
    assert_eq!(status, 502);
    assert!(eventually(2.0, || server
        .log_text()
        .contains("upstream failed")));
    drop(server);

    // No upstream at all: devices are still checked and recorded; allowed requests get 502.
    let server = env.serve(&[]);
    let (status, _) = curl(
        &env,
        &server,
        &query("Sync", "alice@corp.example", "PHONE1"),
        Some(&phone),
        &["-d", "x"],
    );
    assert_eq!(status, 502);
    let (status, _) = curl(
        &env,
        &server,
        &query("Sync", "alice@corp.example", "NOCERT"),
        None,
        &["-d", "x"],
    );
    assert_eq!(status, 403);
    // Malformed EAS requests: 400, and nothing is recorded for them.
    let (status, _) = curl(
        &env,
        &server,
        "Cmd=Sync&User=%ZZ&DeviceId=X",
        Some(&phone),
        &["-d", "x"],
    );
    assert_eq!(status, 400);
}

/// The gateway's own HTTP/1.1 client reads every framing an upstream may answer in, passes
/// each body on whole, sends request bodies of unknown length chunked, and answers 502 when
/// the upstream's answer is not HTTP.
#[test]
fn upstream_answers_in_every_http11_framing_reach_the_device() {
    let (env, phone) = alice_with_a_phone();
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url(), "--gateway-threads", "1"]);
    let q = query("FolderSync", "alice@corp.example", "PHONE1");
    let answer = |kind: &str| answered(&env, &server, &phone, "FolderSync", kind);
    let last_port = || {
        upstream.requests().last().unwrap()["peer_port"]
            .as_u64()
            .unwrap()
    };

    assert_eq!(answer("chunked"), (200, b"hello, chunked world".to_vec()));
    let chunked_port = last_port();
    assert_eq!(answer("interim"), (200, b"final".to_vec()));
    assert_eq!(answer("no-content"), (204, Vec::new()));
    assert_eq!(
        last_port(),
        chunked_port,
        "chunked, interim and empty answers leave the connection reusable"
    );
    let (status, body) = answer("big");
    assert_eq!(status, 200);
    assert_eq!(body.len(), 1 << 20);
    assert!(body.iter().all(|b| *b == b'b'));
    assert_eq!(
        answer("close"),
        (200, b"until the connection closes".to_vec())
    );
    let closed_port = last_port();
    assert_eq!(answer("chunked").0, 200);
    assert_ne!(
        last_port(),
        closed_port,
        "a connection the upstream closed is not reused"
    );

    // Cut short: the device gets an error (a short body at most), never a whole answer.
    let (status, body) = answer("truncated");
    assert!(
        matches!((status, body.as_slice()), (0, b"") | (200, b"short")),
        "{status} {body:?}"
    );
    // Not HTTP: 502, logged with the upstream tag.
    assert_eq!(answer("garbage").0, 502);
    assert!(eventually(2.0, || server
        .log_text()
        .contains("malformed response head")));
    // The next request still works (on a new connection).
    assert_eq!(answer("chunked").0, 200);

    // Request bodies: `upload` sends a file's bytes with more curl arguments and returns the
    // status and what the upstream recorded of the last request.
    let upload = |file: &Path, args: &[&str]| {
        let data = format!("@{}", file.display());
        let mut args = args.to_vec();
        args.extend(["--data-binary", &data]);
        let (status, body) = curl(&env, &server, &q, Some(&phone), &args);
        let last = upstream.requests().last().unwrap().clone();
        (status, body, last)
    };
    // Chunked from the device (no length) goes upstream chunked, whole.
    let big = env.path("big-request");
    std::fs::write(&big, vec![b'r'; 300_000]).unwrap();
    let (status, _, last) = upload(&big, &["--http1.1", "-H", "Transfer-Encoding: chunked"]);
    assert_eq!(status, 200);
    assert_eq!(last["body_len"], 300_000);
    assert_eq!(Upstream::header(&last, "transfer-encoding"), ["chunked"]);
    // With a length (here over HTTP/2) it goes with that Content-Length.
    let (status, _, last) = upload(&big, &["--http2"]);
    assert_eq!(status, 200);
    assert_eq!(last["body_len"], 300_000);
    assert_eq!(Upstream::header(&last, "content-length"), ["300000"]);
    assert!(Upstream::header(&last, "transfer-encoding").is_empty());

    // An upstream that refuses a large body at once, unread, and closes: the device gets that
    // answer (not a 502), over HTTP/1.1 and HTTP/2, with a length and chunked.
    let huge = env.path("huge-request");
    std::fs::write(&huge, vec![b'h'; 16 << 20]).unwrap();
    for extra in [
        &["--http1.1"][..],
        &["--http2"][..],
        &["--http1.1", "-H", "Transfer-Encoding: chunked"][..],
    ] {
        let requests_before = upstream.requests().len();
        let mut args = extra.to_vec();
        args.extend(["-H", "X-Test-Answer: reject-early"]);
        let (status, body, last) = upload(&huge, &args);
        assert_eq!(
            (status, body.as_slice()),
            (413, &b"too large"[..]),
            "{extra:?}"
        );
        assert_eq!(upstream.requests().len(), requests_before + 1);
        assert_eq!(last["body_len"], -1);
    }
    assert_eq!(answer("chunked").0, 200, "the next request still works");
    // An interim answer while the body goes out is not an early answer: curl asks for
    // 100 Continue above 1 MiB, the upstream sends it on, and the body still goes whole.
    let (status, _, last) = upload(&huge, &["--http1.1"]);
    assert_eq!(status, 200);
    assert_eq!(Upstream::header(&last, "expect"), ["100-continue"]);
    assert_eq!(last["body_len"], 16 << 20);
}

/// An HTTPS upstream (the gateway's own TLS client): its certificate is verified against
/// `--upstream-ca`; without that CA the handshake fails and nothing reaches it.
#[test]
fn an_https_upstream_is_verified_against_the_upstream_ca() {
    let (env, phone) = alice_with_a_phone();
    // A CA of the upstream's own and its server certificate for localhost.
    let p = |name: &str| env.path(name).to_str().unwrap().to_string();
    let (ca, cert, key) = (p("upstream-ca.pem"), p("upstream.pem"), p("upstream.key"));
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-subj", "/CN=upstream CA", "-days", "2"],
            &ec[..],
            &["-keyout", &p("upstream-ca.key"), "-out", &ca],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new"],
            &ec[..],
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                &key,
                "-out",
                &p("up.csr"),
            ],
        ]
        .concat(),
    );
    std::fs::write(env.path("up.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-days",
        "2",
        "-in",
        &p("up.csr"),
        "-CA",
        &ca,
        "-CAkey",
        &p("upstream-ca.key"),
        "-extfile",
        &p("up.ext"),
        "-out",
        &cert,
    ]);
    let (cert, key) = (Path::new(&cert), Path::new(&key));
    let upstream = Upstream::start_with(&env, None, Some((cert, key)));
    let ask = |server: &Server, kind: &str| answered(&env, server, &phone, "FolderSync", kind);

    let server = env.serve(&["--upstream", &upstream.https_url(), "--upstream-ca", &ca]);
    assert_eq!(
        ask(&server, "chunked"),
        (200, b"hello, chunked world".to_vec()),
        "{}",
        server.log_text()
    );
    assert_eq!(ask(&server, "interim"), (200, b"final".to_vec()));
    // A long poll waits for its answer without a read buffer, past the session tickets a
    // TLS 1.3 server sends after the handshake: three at once (so at least two on new
    // connections) all get their answer.
    let pings: Vec<_> = std::thread::scope(|scope| {
        let ping = || answered(&env, &server, &phone, "Ping", "slow");
        let threads: Vec<_> = (0..3).map(|_| scope.spawn(ping)).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(
        pings.iter().all(|p| *p == (200, b"late".to_vec())),
        "{pings:?}\n{}",
        server.log_text()
    );
    assert_eq!(upstream.requests().len(), 5);
    drop(server);

    // Without the upstream's CA the TLS handshake fails: 502, nothing reaches the upstream.
    let server = env.serve(&["--upstream", &upstream.https_url()]);
    assert_eq!(ask(&server, "chunked").0, 502);
    assert!(eventually(2.0, || {
        let log = server.log_text();
        log.contains("upstream failed") && log.contains("TLS")
    }));
    assert_eq!(upstream.requests().len(), 5);
}

/// An upstream that does not answer within `--upstream-timeout`: 504, logged with the upstream
/// tag and counted; a Ping is not cut by that timeout (it may wait up to an hour).
#[test]
fn an_upstream_that_does_not_answer_in_time_is_504() {
    let (env, phone) = alice_with_a_phone();
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url(), "--upstream-timeout", "1s"]);
    let ask = |cmd: &str| answered(&env, &server, &phone, cmd, "stall");
    let (status, body) = ask("FolderSync");
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
    assert!(eventually(2.0, || server
        .log_text()
        .contains("upstream did not answer in time")));
    let (code, _, metrics) = common::http(server.admin, "GET", "/metrics", b"");
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&metrics)
        .contains("easgate_gateway_upstream_errors_total{kind=\"timeout\"} 1"));
    // A Ping waits for the upstream's late answer (10 s, past --upstream-timeout).
    let (status, body) = ask("Ping");
    assert_eq!((status, body.as_slice()), (200, b"late".as_slice()));
}

/// A device whose chunked body is malformed gets 400 (its fault), not 502, and the upstream
/// error counter does not move. The request is written by Python's ssl module: curl cannot
/// send a malformed chunk.
#[test]
fn a_malformed_chunked_body_from_the_device_is_400_not_an_upstream_error() {
    let (env, phone) = alice_with_a_phone();
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url()]);
    let ca = env.export_ca("default");
    let script = r#"
import socket, ssl, sys
port, ca, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
with socket.create_connection(("127.0.0.1", port)) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(b"POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=alice@corp.example&DeviceId=PHONE1&DeviceType=iPhone HTTP/1.1\r\n"
                  b"Host: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\nZZ-not-a-size\r\nworld\r\n0\r\n\r\n")
        answer = b""
        while b"\r\n" not in answer:
            data = s.recv(4096)
            if not data:
                break
            answer += data
        print(answer.split(b"\r\n")[0].decode())
"#;
    let out = Command::new("python3")
        .args(["-c", script, &server.gateway.port().to_string()])
        .arg(&ca)
        .arg(&phone.0)
        .arg(&phone.1)
        .output()
        .unwrap();
    let status_line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        status_line,
        "HTTP/1.1 400 Bad Request",
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    let (_, _, metrics) = common::http(server.admin, "GET", "/metrics", b"");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("easgate_gateway_upstream_errors_total") && !l.ends_with(" 0")),
        "{metrics}"
    );
    // The gateway goes on serving the device.
    assert_eq!(sync_status(&env, &server, &phone, "PHONE1"), 200);
}
