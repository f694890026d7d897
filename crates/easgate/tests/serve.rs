//! `easgate serve` as outside clients see it: first-start initialisation, CA certificates,
//! full and delta CRLs checked by OpenSSL and pkilint, OCSP checked by `openssl ocsp` and
//! pkilint, CLI changes applied to a running server, and bad requests answered cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{eventually, http, lint_clean, openssl, openssl_ok, Env};

fn issue(env: &Env, name: &str) -> (std::path::PathBuf, String) {
    let dir = env.dir.path();
    let cert = dir.join(format!("{name}.pem"));
    let v = env.json(&[
        "cert",
        "issue",
        "--template",
        "phones",
        "--device",
        "dev1",
        "--out-key",
        dir.join(format!("{name}.key")).to_str().unwrap(),
        "--out",
        cert.to_str().unwrap(),
    ]);
    (cert, v["serial"].as_str().unwrap().to_string())
}

/// Fetch a CRL over HTTP and write it as PEM; returns the path.
fn fetch_crl(server: &common::Server, path: &str, dir: &Path, name: &str) -> std::path::PathBuf {
    let (status, head, body) = http(server.public, "GET", path, b"");
    assert_eq!(status, 200, "{path}: {head}");
    assert!(
        head.to_ascii_lowercase().contains("application/pkix-crl"),
        "{head}"
    );
    let der = dir.join(format!("{name}.crl"));
    std::fs::write(&der, body).unwrap();
    let pem = dir.join(format!("{name}.crl.pem"));
    openssl_ok(
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            der.to_str().unwrap(),
            "-out",
            pem.to_str().unwrap(),
        ],
        dir,
    );
    pem
}

fn crl_text(pem: &Path, dir: &Path) -> String {
    openssl_ok(
        &["crl", "-in", pem.to_str().unwrap(), "-noout", "-text"],
        dir,
    )
}

fn crl_number(text: &str) -> u64 {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.contains("X509v3 CRL Number") {
            return lines.next().unwrap().trim().parse().unwrap();
        }
    }
    panic!("no CRL number in {text}");
}

fn ocsp(server: &common::Server, dir: &Path, ca: &Path, what: &[&str]) -> String {
    let url = format!("http://{}/ocsp/default", server.public);
    let mut args = vec![
        "ocsp",
        "-issuer",
        ca.to_str().unwrap(),
        "-CAfile",
        ca.to_str().unwrap(),
        "-url",
        &url,
    ];
    args.extend_from_slice(what);
    let (code, out) = openssl(&args, dir);
    assert_eq!(code, 0, "openssl ocsp failed: {out}");
    out
}

#[test]
fn first_start_initialises_and_later_starts_reuse() {
    let env = Env::bare();
    let mut server = env.serve(&[]);
    let log = server.log_text();
    for made in [
        "created master key",
        "created CA `default`",
        "admin token",
        "gateway TLS certificate",
    ] {
        assert!(log.contains(made), "`{made}` not reported:\n{log}");
    }
    let data = env.data_dir();
    let token = std::fs::read_to_string(data.join("admin-token")).unwrap();
    assert!(token.trim().len() > 40);
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(data.join(p)).unwrap().permissions(),
        ) & 0o777
    };
    assert_eq!(mode("admin-token"), 0o600);
    assert_eq!(mode("master.key"), 0o600);
    assert_eq!(mode("gateway.key"), 0o600);
    // The token is stored hashed only.
    let db = std::fs::read(data.join("easgate.db")).unwrap_or_default();
    let wal = std::fs::read(data.join("easgate.db-wal")).unwrap_or_default();
    let needle = token.trim().as_bytes();
    assert!(
        ![db, wal]
            .iter()
            .any(|f| f.windows(needle.len()).any(|w| w == needle)),
        "admin token stored in clear"
    );
    // The gateway certificate chains to the CA and is for TLS servers.
    let ca = env.export_ca("default");
    let out = openssl_ok(
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "sslserver",
            data.join("gateway.pem").to_str().unwrap(),
        ],
        env.dir.path(),
    );
    assert!(out.contains(": OK"), "{out}");

    let (status, _, body) = http(server.admin, "GET", "/healthz", b"");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok");
    let fingerprint = env.json(&["ca", "show", "default"])["sha256_fingerprint"].clone();

    assert_eq!(
        server.stop(),
        Some(0),
        "SIGTERM should stop the server cleanly:\n{}",
        server.log_text()
    );
    let server = env.serve(&[]);
    let log = server.log_text();
    assert!(
        !log.contains("created"),
        "second start re-created something:\n{log}"
    );
    assert_eq!(
        env.json(&["ca", "show", "default"])["sha256_fingerprint"],
        fingerprint
    );
    assert_eq!(
        std::fs::read_to_string(data.join("admin-token")).unwrap(),
        token
    );
}

#[test]
fn crls_and_ocsp_satisfy_openssl_and_pkilint() {
    let env = Env::new();
    let mut server = env.serve(&["--delta-crl-delay", "1s"]);
    let dir = env.dir.path();
    env.phones_template("default", "CN={DeviceUid}");
    env.add_alice();
    env.enroll("alice@corp.example", "ios", "dev1", &[]);
    let ca = env.export_ca("default");
    let (in_base, in_base_serial) = issue(&env, "in-base");
    let (in_delta, in_delta_serial) = issue(&env, "in-delta");
    let (valid, valid_serial) = issue(&env, "valid");

    // CA certificate over HTTP, DER and PEM.
    let (status, head, der) = http(server.public, "GET", "/ca/default.cer", b"");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("application/pkix-cert"));
    let (_, _, pem) = http(server.public, "GET", "/ca/default.pem", b"");
    assert_eq!(
        String::from_utf8(pem).unwrap(),
        std::fs::read_to_string(&ca).unwrap()
    );
    std::fs::write(dir.join("ca.der"), der).unwrap();
    openssl_ok(&["x509", "-inform", "DER", "-in", "ca.der", "-noout"], dir);

    // OCSP: good (once the server has seen the new certificates), then unknown for a serial
    // never issued.
    assert!(
        eventually(2.0, || ocsp(
            &server,
            dir,
            &ca,
            &["-cert", valid.to_str().unwrap()]
        )
        .contains(": good")),
        "a certificate issued by the CLI was not known to OCSP within 2 s"
    );
    let out = ocsp(
        &server,
        dir,
        &ca,
        &[
            "-cert",
            valid.to_str().unwrap(),
            "-resp_text",
            "-respout",
            "good.der",
        ],
    );
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(": good"), "{out}");
    assert!(out.contains("OCSP Nonce"), "nonce not echoed: {out}");
    lint_clean(
        "lint_ocsp_response",
        &["-s", "WARNING"],
        &[&dir.join("good.der")],
        dir,
    );
    let out = ocsp(&server, dir, &ca, &["-serial", "0x0123456789ABCDEF"]);
    assert!(
        out.contains("Response verify OK") && out.contains(": unknown"),
        "{out}"
    );

    // Revoke one, publish a full CRL on demand: the running server serves it.
    env.ok(&[
        "cert",
        "revoke",
        &in_base_serial,
        "--reason",
        "keyCompromise",
    ]);
    let published = env.json(&["crl", "generate", "default"]);
    let base_number = published["number"].as_u64().unwrap();
    assert!(
        eventually(2.0, || {
            let (_, _, body) = http(server.public, "GET", "/crl/default.crl", b"");
            std::fs::write(dir.join("probe.crl"), body).unwrap();
            crl_number(&openssl_ok(
                &[
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    "probe.crl",
                    "-noout",
                    "-text",
                ],
                dir,
            )) == base_number
        }),
        "the CLI's CRL was not served within 2 s"
    );

    // Revoke another: OCSP says so within 2 s, the delta CRL lists it within the delay.
    env.ok(&["cert", "revoke", &in_delta_serial, "--reason", "superseded"]);
    assert!(
        eventually(2.0, || ocsp(
            &server,
            dir,
            &ca,
            &["-cert", in_delta.to_str().unwrap()]
        )
        .contains(": revoked")),
        "OCSP did not report the revocation within 2 s"
    );
    let out = ocsp(
        &server,
        dir,
        &ca,
        &[
            "-cert",
            in_delta.to_str().unwrap(),
            "-resp_text",
            "-respout",
            "revoked.der",
        ],
    );
    assert!(
        out.contains("Response verify OK") && out.contains("Reason: superseded"),
        "{out}"
    );
    lint_clean(
        "lint_ocsp_response",
        &["-s", "WARNING"],
        &[&dir.join("revoked.der")],
        dir,
    );
    assert!(
        eventually(10.0, || {
            let pem = fetch_crl(&server, "/crl/default-delta.crl", dir, "delta");
            crl_text(&pem, dir).contains(&in_delta_serial)
        }),
        "the delta CRL did not list the revocation:\n{}",
        server.log_text()
    );

    let full = fetch_crl(&server, "/crl/default.crl", dir, "full");
    let delta = fetch_crl(&server, "/crl/default-delta.crl", dir, "delta");
    let full_text = crl_text(&full, dir);
    let delta_text = crl_text(&delta, dir);
    assert!(
        full_text.contains(&in_base_serial) && !full_text.contains(&in_delta_serial),
        "{full_text}"
    );
    assert!(full_text.contains("Key Compromise"), "{full_text}");
    assert!(
        delta_text.contains("Delta CRL Indicator: critical"),
        "{delta_text}"
    );
    assert!(
        delta_text.contains(&format!("critical\n                {base_number}")),
        "delta must name base {base_number}:\n{delta_text}"
    );
    assert!(crl_number(&delta_text) > crl_number(&full_text));
    assert!(full_text.contains("Freshest CRL"), "{full_text}");
    lint_clean(
        "lint_crl",
        &["-t", "CRL", "-p", "PKIX", "-s", "WARNING"],
        &[&full],
        dir,
    );
    lint_clean(
        "lint_crl",
        &["-t", "CRL", "-p", "PKIX", "-s", "WARNING"],
        &[&delta],
        dir,
    );

    let verify = |cert: &Path| {
        openssl(
            &[
                "verify",
                "-crl_check",
                "-extended_crl",
                "-use_deltas",
                "-CAfile",
                ca.to_str().unwrap(),
                "-CRLfile",
                full.to_str().unwrap(),
                "-CRLfile",
                delta.to_str().unwrap(),
                cert.to_str().unwrap(),
            ],
            dir,
        )
    };
    let (code, out) = verify(&in_base);
    assert!(
        code != 0 && out.contains("certificate revoked"),
        "revoked before the base: {out}"
    );
    let (code, out) = verify(&in_delta);
    assert!(
        code != 0 && out.contains("certificate revoked"),
        "revoked only in the delta: {out}"
    );
    let (code, out) = verify(&valid);
    assert!(
        code == 0 && out.contains(": OK"),
        "valid certificate: {out}"
    );
    let _ = valid_serial;

    assert_eq!(server.stop(), Some(0));
}

#[test]
fn bad_requests_get_clean_answers() {
    let env = Env::new();
    let server = env.serve(&[]);
    // Garbage OCSP, by POST and GET: a malformedRequest OCSPResponse (30 03 0A 01 01).
    let malformed = [0x30, 0x03, 0x0a, 0x01, 0x01];
    let (status, head, body) = http(server.public, "POST", "/ocsp/default", b"this is not DER");
    assert_eq!(status, 200, "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("application/ocsp-response"));
    assert_eq!(body, malformed);
    let (status, _, body) = http(server.public, "GET", "/ocsp/default/AAAA%2F%2B%3D", b"");
    assert_eq!((status, body.as_slice()), (200, &malformed[..]));
    let (status, _, body) = http(server.public, "GET", "/ocsp/default/!!notbase64!!", b"");
    assert_eq!((status, body.as_slice()), (200, &malformed[..]));
    // Oversized body: refused before it is read.
    let (status, _, _) = http(
        server.public,
        "POST",
        "/ocsp/default",
        &vec![0x30; 70 * 1024],
    );
    assert_eq!(status, 413);
    // Unknown CA: 404 everywhere.
    for path in [
        "/ca/nope.cer",
        "/ca/nope.pem",
        "/crl/nope.crl",
        "/crl/nope-delta.crl",
        "/ca/default.txt",
        "/nothing",
    ] {
        assert_eq!(http(server.public, "GET", path, b"").0, 404, "{path}");
    }
    assert_eq!(http(server.public, "POST", "/ocsp/nope", b"x").0, 404);
    // Metrics count what happened.
    let (status, _, body) = http(server.admin, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("easgate_ocsp_answers_total{status=\"malformed\"} 3"),
        "{text}"
    );
    assert!(text.contains("easgate_public_requests_total"), "{text}");
    assert!(text.contains("easgate_crls_published_total"), "{text}");
    // One log line per request.
    assert!(
        eventually(2.0, || server.log_text().matches(" request ").count() >= 10),
        "{}",
        server.log_text()
    );
}

#[test]
fn a_new_ca_made_by_the_cli_is_served_without_restart() {
    let env = Env::new();
    let server = env.serve(&[]);
    assert_eq!(http(server.public, "GET", "/ca/mail.cer", b"").0, 404);
    env.ok(&["ca", "create", "mail"]);
    assert!(
        eventually(2.0, || http(server.public, "GET", "/ca/mail.cer", b"").0
            == 200),
        "new CA not served within 2 s"
    );
    assert!(eventually(5.0, || http(
        server.public,
        "GET",
        "/crl/mail.crl",
        b""
    )
    .0 == 200));
}

#[test]
fn config_file_is_read_and_unknown_keys_are_refused() {
    let env = Env::new();
    let bad = env.path("bad.toml");
    std::fs::write(
        &bad,
        "public_listen = \"127.0.0.1:0\"\npublic_lisen = \"oops\"\n",
    )
    .unwrap();
    let err = env.fails(&["serve", "--config", bad.to_str().unwrap()]);
    assert!(
        err.contains("unknown field") && err.contains("public_lisen"),
        "{err}"
    );
    let invalid = env.path("invalid.toml");
    std::fs::write(&invalid, "crl_interval = \"48h\"\n").unwrap();
    let err = env.fails(&[
        "serve",
        "--config",
        invalid.to_str().unwrap(),
        "--public-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("--crl-validity"), "{err}");
    let threads = env.path("threads.toml");
    std::fs::write(&threads, "gateway_threads = 0\n").unwrap();
    let err = env.fails(&[
        "serve",
        "--config",
        threads.to_str().unwrap(),
        "--public-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("--gateway-threads 0 is out of range"), "{err}");
    let provision = env.path("provision.toml");
    std::fs::write(&provision, "provision = \"both\"\n").unwrap();
    let err = env.fails(&[
        "serve",
        "--config",
        provision.to_str().unwrap(),
        "--public-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("--provision `both` is unknown"), "{err}");
    let usage = env.run(&["serve", "--gateway-threads", "0"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert!(
        usage.stderr.contains("--gateway-threads"),
        "{}",
        usage.stderr
    );
    let good = env.path("good.toml");
    std::fs::write(
        &good,
        "ocsp_validity = \"30m\"\nchange_poll_interval = \"500ms\"\ngateway_threads = 1\n",
    )
    .unwrap();
    let server = env.serve(&["--config", good.to_str().unwrap()]);
    assert_eq!(http(server.admin, "GET", "/healthz", b"").0, 200);
    // A port in use is a clear error.
    let taken = server.public.to_string();
    let err = env.fails(&[
        "serve",
        "--public-listen",
        &taken,
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("cannot listen on"), "{err}");
}

fn scep_submit(args: &[&str], cwd: &Path) -> (i32, String) {
    common::peer(Path::new("/usr/lib/certmonger/scep-submit"), args, cwd)
}

#[test]
fn scep_get_ca_caps_and_get_ca_cert_serve_certmonger() {
    let env = Env::new();
    env.ok(&["ca", "create", "default", "--key", "ec-p256"]);
    env.ok(&["ca", "create", "rsa", "--key", "rsa-2048"]);
    let server = env.serve(&[]);
    let dir = env.dir.path();

    // EC CA `default`: capabilities, then CA + RSA RA as a certs-only PKCS#7.
    let url = format!("http://{}/scep/default", server.public);
    let (code, caps) = scep_submit(&["-u", &url, "-c"], dir);
    assert_eq!(code, 0, "{caps}");
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-1",
        "AES",
        "DES3",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(
            caps.lines().any(|l| l.trim() == cap),
            "{cap} missing: {caps}"
        );
    }
    let (code, certs) = scep_submit(&["-u", &url, "-C"], dir);
    assert_eq!(code, 0, "{certs}");
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 2, "{certs}");
    let (status, head, body) = http(
        server.public,
        "GET",
        "/scep/default/pkiclient.exe?operation=GetCACert",
        b"",
    );
    assert_eq!(status, 200);
    assert!(head.contains("application/x-x509-ca-ra-cert"), "{head}");
    std::fs::write(dir.join("ra.p7"), body).unwrap();
    let printed = openssl_ok(
        &["pkcs7", "-inform", "DER", "-in", "ra.p7", "-print_certs"],
        dir,
    );
    assert!(
        printed.contains("subject=CN = easgate default SCEP RA"),
        "{printed}"
    );
    assert!(
        printed.contains("subject=CN = easgate default CA"),
        "{printed}"
    );
    // The RA is an RSA key the CA vouches for, fit to decrypt.
    let ra_pem: String = printed
        .split("subject=CN = easgate default SCEP RA")
        .nth(1)
        .unwrap()
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .take_while(|l| !l.starts_with("-----END"))
        .chain(["-----END CERTIFICATE-----"])
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("ra.pem"), format!("{ra_pem}\n")).unwrap();
    let ca = env.export_ca("default");
    assert!(
        openssl_ok(&["verify", "-CAfile", ca.to_str().unwrap(), "ra.pem"], dir).contains(": OK")
    );
    let text = openssl_ok(&["x509", "-in", "ra.pem", "-noout", "-text"], dir);
    assert!(
        text.contains("rsaEncryption") && text.contains("Key Encipherment"),
        "{text}"
    );
    lint_clean(
        "lint_pkix_cert",
        &["-s", "WARNING"],
        &[&dir.join("ra.pem")],
        dir,
    );

    // RSA CA: its own certificate, no RA.
    let url = format!("http://{}/scep/rsa", server.public);
    let (code, certs) = scep_submit(&["-u", &url, "-C"], dir);
    assert_eq!(code, 0, "{certs}");
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 1, "{certs}");
    let (_, head, _) = http(server.public, "GET", "/scep/rsa?operation=GetCACert", b"");
    assert!(head.contains("application/x-x509-ca-cert"), "{head}");

    // The rest of the surface answers clearly.
    assert_eq!(
        http(server.public, "GET", "/scep/nope?operation=GetCACaps", b"").0,
        404
    );
    assert_eq!(
        http(
            server.public,
            "GET",
            "/scep/default?operation=Frobnicate",
            b""
        )
        .0,
        400
    );
    assert_eq!(http(server.public, "GET", "/scep/default", b"").0, 400);
    assert_eq!(
        http(
            server.public,
            "POST",
            "/scep/default?operation=PKIOperation",
            b"x"
        )
        .0,
        400
    );
    assert_eq!(
        http(
            server.public,
            "POST",
            "/scep/default?operation=PKIOperation",
            &vec![0; 3 * 1024 * 1024]
        )
        .0,
        413
    );
}
