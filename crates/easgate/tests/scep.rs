//! SCEP enrollment with a real client: micromdm's `scepclient` (Debian `scep`), which signs
//! with SHA-1 and encrypts with single DES. Enrollment with a device's one-time challenge,
//! refusal of a reused challenge, renewal signed by the issued certificate, and bad bodies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::crash::{kill_moments, scep_enrollments_survive_kills};
use common::{http, lint_clean, openssl_ok, peers_python, scepclient, Env};

fn enroll(env: &Env, uid: &str) -> String {
    env.enroll("alice@corp.example", "ios", uid, &["--template", "phones"])["challenge"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn scepclient_enrolls_renews_and_cannot_reuse_a_challenge() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    let challenge = enroll(&env, "phone1");
    let server = env.serve(&[]);
    let url = format!("http://{}/scep/mail", server.public);
    let dir = env.dir.path();
    let ca = env.export_ca("mail");

    // Enrollment: the certificate follows the device's template, whatever the CSR asked for.
    let first = dir.join("first");
    let (code, out) = scepclient(&first, &url, &challenge);
    assert_eq!(code, 0, "scepclient failed: {out}\n{}", server.log_text());
    let cert = first.join("cert.pem");
    assert!(openssl_ok(
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            cert.to_str().unwrap()
        ],
        dir
    )
    .contains(": OK"));
    let text = openssl_ok(
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-text"],
        dir,
    );
    assert!(text.contains("Subject: CN = phone1"), "{text}");
    assert!(
        text.contains("email:alice@mail.example") && text.contains("UPN::alice@corp.example"),
        "{text}"
    );
    assert!(!text.contains("ignored-by-the-template"), "{text}");
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&cert], dir);
    let serial = openssl_ok(
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"],
        dir,
    )
    .trim()
    .trim_start_matches("serial=")
    .to_string();
    assert_eq!(env.json(&["cert", "show", &serial])["device"], "phone1");
    assert_eq!(
        env.json(&["device", "show", "phone1"])["device"]["state"],
        "enrolled"
    );

    // The same challenge again: a signed failure CertRep with badRequest.
    let (code, out) = scepclient(&dir.join("again"), &url, &challenge);
    assert_ne!(code, 0);
    assert!(out.contains("badRequest"), "{out}");
    // A made-up challenge too.
    let (code, out) = scepclient(&dir.join("wrong"), &url, "not-a-challenge");
    assert!(code != 0 && out.contains("badRequest"), "{out}");

    // Renewal: scepclient sends a RenewalReq signed by the certificate it holds.
    let (code, out) = scepclient(&first, &url, "");
    assert_eq!(code, 0, "renewal failed: {out}\n{}", server.log_text());
    let renewed = openssl_ok(
        &["x509", "-in", cert.to_str().unwrap(), "-noout", "-serial"],
        dir,
    )
    .trim()
    .trim_start_matches("serial=")
    .to_string();
    assert_ne!(renewed, serial);
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&cert], dir);
    let old = env.json(&["cert", "show", &serial]);
    assert_eq!(old["status"], "revoked");
    assert_eq!(old["revocation_reason"], "superseded");
    assert_eq!(env.json(&["cert", "show", &renewed])["status"], "valid");
    assert_eq!(env.json(&["cert", "show", &renewed])["device"], "phone1");

    // A retired device's certificate cannot renew.
    env.ok(&["device", "retire", "phone1"]);
    let (code, out) = scepclient(&first, &url, "");
    assert!(code != 0 && out.contains("badRequest"), "{out}");

    // Bodies that are not SCEP messages: 400, never a 500.
    for body in [&b"garbage"[..], &[0x30, 0x03, 0x02, 0x01, 0x01], &[]] {
        let (status, _, _) = http(
            server.public,
            "POST",
            "/scep/mail?operation=PKIOperation",
            body,
        );
        assert_eq!(status, 400, "{body:?}");
    }
    let (status, _, _) = http(
        server.public,
        "GET",
        "/scep/mail?operation=PKIOperation&message=%%%",
        b"",
    );
    assert_eq!(status, 400);
    let (status, _, _) = http(
        server.public,
        "GET",
        "/scep/mail?operation=PKIOperation&message=Z2FyYmFnZQ%3D%3D",
        b"",
    );
    assert_eq!(status, 400);
}

#[test]
fn pyscep_enrolls_with_aes_and_sha256() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "rsa-3072"]);
    env.phones_template("mail", "CN={DeviceUid},O=Corp");
    env.add_alice();
    let challenge = enroll(&env, "tablet1");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyscep_enroll.py");
    let url = format!("http://{}/scep/mail", server.public);
    let out_cert = dir.join("pyscep.pem");
    let (code, out) = common::peer(
        &peers_python(),
        &[
            script.to_str().unwrap(),
            &url,
            &challenge,
            out_cert.to_str().unwrap(),
        ],
        dir,
    );
    assert_eq!(code, 0, "PyScep failed: {out}\n{}", server.log_text());
    let text = openssl_ok(
        &["x509", "-in", out_cert.to_str().unwrap(), "-noout", "-text"],
        dir,
    );
    assert!(text.contains("Subject: CN = tablet1, O = Corp"), "{text}");
    assert!(text.contains("UPN::alice@corp.example"), "{text}");
    let ca = env.export_ca("mail");
    assert!(openssl_ok(
        &[
            "verify",
            "-CAfile",
            ca.to_str().unwrap(),
            out_cert.to_str().unwrap()
        ],
        dir
    )
    .contains(": OK"));
    lint_clean("lint_pkix_cert", &["-s", "WARNING"], &[&out_cert], dir);
    // The challenge is spent: refused. (PyScep 0.0.14 then fails inside its own failure
    // handling — it digests the content a failure CertRep does not carry — so the refusal is
    // read from the server's log.)
    let (code, _) = common::peer(
        &peers_python(),
        &[
            script.to_str().unwrap(),
            &url,
            &challenge,
            out_cert.to_str().unwrap(),
        ],
        dir,
    );
    assert_ne!(code, 0);
    assert!(
        common::eventually(2.0, || server
            .log_text()
            .contains("challenge is wrong, used or expired")),
        "{}",
        server.log_text()
    );
}

#[test]
fn a_static_challenge_names_the_device_by_the_csr_cn() {
    let env = Env::new();
    env.ok(&[
        "ca",
        "create",
        "mail",
        "--key",
        "rsa-2048",
        "--scep-static-challenge",
        "Same-Secret-For-All",
    ]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    enroll(&env, "kiosk7");
    let server = env.serve(&[]);
    let url = format!("http://{}/scep/mail", server.public);
    let dir = env.dir.path();
    let run = |sub: &str, cn: &str, challenge: &str| {
        let d = dir.join(sub);
        std::fs::create_dir_all(&d).unwrap();
        common::peer(
            Path::new("/usr/bin/scepclient"),
            &[
                "-server-url",
                &url,
                "-challenge",
                challenge,
                "-cn",
                cn,
                "-keySize",
                "2048",
                "-private-key",
                "key.pem",
                "-certificate",
                "cert.pem",
            ],
            &d,
        )
    };
    let (code, out) = run("a", "kiosk7", "Same-Secret-For-All");
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    let text = openssl_ok(
        &[
            "x509",
            "-in",
            dir.join("a/cert.pem").to_str().unwrap(),
            "-noout",
            "-subject",
        ],
        dir,
    );
    assert!(text.contains("CN = kiosk7"), "{text}");
    // The static secret is not one-time, but the device must exist.
    let (code, out) = run("b", "kiosk7", "Same-Secret-For-All");
    assert_eq!(code, 0, "{out}");
    let (code, out) = run("c", "no-such-device", "Same-Secret-For-All");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    let (code, out) = run("d", "kiosk7", "wrong-secret-entirely");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    // Every enrollment is in the audit trail with the client's address.
    let audit = env.json(&["audit", "--since", "1h"]);
    let enrollments: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "scep.enroll")
        .collect();
    assert_eq!(enrollments.len(), 2, "{audit}");
    assert!(
        enrollments[0]["detail"]
            .as_str()
            .unwrap()
            .contains("device kiosk7")
            && enrollments[0]["actor"] == "scep:127.0.0.1",
        "{audit}"
    );
    // Removing the static challenge ends it.
    env.ok(&["ca", "set-scep-challenge", "mail", "--none"]);
    let (code, _) = run("e", "kiosk7", "Same-Secret-For-All");
    assert_ne!(code, 0);
    let err = env.fails(&["ca", "set-scep-challenge", "mail", "--challenge", "short"]);
    assert!(err.contains("at least 8"), "{err}");
}

#[test]
fn pki_operation_by_get_with_a_url_encoded_message() {
    use base64::Engine;
    let env = Env::new();
    rsa_mail_ca(&env);
    let challenge = enroll(&env, "watch1");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyscep_message.py");
    let url = format!("http://{}/scep/mail", server.public);
    let message = dir.join("message.der");
    let (code, out) = common::peer(
        &peers_python(),
        &[
            script.to_str().unwrap(),
            &url,
            &challenge,
            "watch1",
            message.to_str().unwrap(),
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&message).unwrap());
    let encoded = b64
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    let (status, head, body) = http(
        server.public,
        "GET",
        &format!("/scep/mail?operation=PKIOperation&message={encoded}"),
        b"",
    );
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("application/x-pki-message"), "{head}");
    assert!(
        body.len() > 500,
        "a CertRep with a certificate is larger than {} bytes",
        body.len()
    );
    let issued = env.json(&["cert", "list", "--device", "watch1"]);
    assert_eq!(issued.as_array().unwrap().len(), 1, "{issued}");
    assert!(
        server.log_text().contains("SCEP certificate issued"),
        "{}",
        server.log_text()
    );

    // The same transaction again (a client retrying): success again, and no second certificate.
    let (status, _, again) = http(
        server.public,
        "POST",
        "/scep/mail?operation=PKIOperation",
        &std::fs::read(&message).unwrap(),
    );
    assert_eq!(status, 200);
    std::fs::write(dir.join("again.der"), &again).unwrap();
    assert_eq!(
        signed_attribute(dir, "again.der", "2.16.840.1.113733.1.9.3"),
        "0",
        "pkiStatus SUCCESS"
    );
    assert_eq!(
        env.json(&["cert", "list", "--device", "watch1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A message whose signature was altered: a signed failure CertRep with badMessageCheck.
    let mut tampered = std::fs::read(&message).unwrap();
    let at = tampered.len() - 10;
    tampered[at] ^= 0xFF;
    let (status, _, refused) = http(
        server.public,
        "POST",
        "/scep/mail?operation=PKIOperation",
        &tampered,
    );
    assert_eq!(status, 200);
    std::fs::write(dir.join("refused.der"), &refused).unwrap();
    assert_eq!(
        signed_attribute(dir, "refused.der", "2.16.840.1.113733.1.9.3"),
        "2",
        "pkiStatus FAILURE"
    );
    assert_eq!(
        signed_attribute(dir, "refused.der", "2.16.840.1.113733.1.9.4"),
        "1",
        "failInfo badMessageCheck"
    );

    // A message signed two days ago (signingTime): badTime.
    let stale = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2 * 86_400;
    let challenge2 = enroll(&env, "watch2");
    // Make a PKCSReq for watch2 signed at `at` (Unix seconds) and post it.
    let post_signed_at = |file: &str, at: u64| {
        let (code, out) = common::peer(
            &peers_python(),
            &[
                script.to_str().unwrap(),
                &url,
                &challenge2,
                "watch2",
                file,
                &at.to_string(),
            ],
            dir,
        );
        assert_eq!(code, 0, "{out}");
        let body = std::fs::read(dir.join(file)).unwrap();
        http(
            server.public,
            "POST",
            "/scep/mail?operation=PKIOperation",
            &body,
        )
    };
    let (status, _, refused) = post_signed_at("stale.der", stale);
    assert_eq!(status, 200);
    std::fs::write(dir.join("stale-rep.der"), &refused).unwrap();
    assert_eq!(
        signed_attribute(dir, "stale-rep.der", "2.16.840.1.113733.1.9.4"),
        "3",
        "failInfo badTime"
    );
    assert_eq!(
        env.json(&["cert", "list", "--device", "watch2"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The same request signed now goes through (the challenge was not spent by the refusal).
    let (status, _, _) = post_signed_at("fresh.der", stale + 2 * 86_400);
    assert_eq!(status, 200);
    assert_eq!(
        env.json(&["cert", "list", "--device", "watch2"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// The PrintableString value of a SCEP signed attribute of a CertRep, read by OpenSSL.
fn signed_attribute(dir: &Path, file: &str, oid: &str) -> String {
    let printed = openssl_ok(
        &["cms", "-cmsout", "-print", "-inform", "DER", "-in", file],
        dir,
    );
    let mut lines = printed
        .lines()
        .skip_while(|l| !l.contains(&format!("({oid})")));
    lines
        .find_map(|l| {
            l.trim()
                .strip_prefix("PRINTABLESTRING:")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {oid} in:\n{printed}"))
}

#[test]
fn strongswan_enrolls_through_the_rsa_ra_of_an_ec_ca() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "ec-p256"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    let challenge = enroll(&env, "laptop3");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    // GetCACert: the EC CA and its RSA RA; strongSwan is told which is which.
    let (status, _, p7) = http(server.public, "GET", "/scep/mail?operation=GetCACert", b"");
    assert_eq!(status, 200);
    let both = print_certs(dir, &p7);
    let mut ca_pem = String::new();
    let mut ra_pem = String::new();
    for block in both.split("subject=").skip(1) {
        let pem = first_pem(block, "CERTIFICATE");
        if block.starts_with("CN = easgate mail SCEP RA") {
            ra_pem = pem;
        } else {
            ca_pem = pem;
        }
    }
    std::fs::write(dir.join("ra.pem"), &ra_pem).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca_pem).unwrap();
    let pki = Path::new("/usr/bin/pki");
    let (code, out) = common::peer(
        pki,
        &[
            "--gen",
            "--type",
            "rsa",
            "--size",
            "2048",
            "--outform",
            "pem",
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}");
    std::fs::write(dir.join("key.pem"), first_pem(&out, "RSA PRIVATE KEY")).unwrap();
    let url = format!("http://{}/scep/mail", server.public);
    let (code, out) = common::peer(
        pki,
        &[
            "--scep",
            "--url",
            &url,
            "--in",
            "key.pem",
            "--dn",
            "CN=laptop3",
            "--password",
            &challenge,
            "--cacert-enc",
            "ra.pem",
            "--cacert-sig",
            "ra.pem",
            "--cacert",
            "ca.pem",
            "--cipher",
            "des3",
            "--outform",
            "pem",
        ],
        dir,
    );
    assert_eq!(code, 0, "strongSwan failed: {out}\n{}", server.log_text());
    assert!(out.contains("Issued certificate is trusted"), "{out}");
    std::fs::write(dir.join("laptop3.pem"), first_pem(&out, "CERTIFICATE")).unwrap();
    let text = openssl_ok(&["x509", "-in", "laptop3.pem", "-noout", "-text"], dir);
    assert!(
        text.contains("Subject: CN = laptop3") && text.contains("ecdsa-with-SHA256"),
        "issued by the EC CA: {text}"
    );
    assert!(openssl_ok(&["verify", "-CAfile", "ca.pem", "laptop3.pem"], dir).contains(": OK"));
    lint_clean(
        "lint_pkix_cert",
        &["-s", "WARNING"],
        &[&dir.join("laptop3.pem")],
        dir,
    );
}

/// The first PEM block labelled `label` in `text` (tools mix them with log lines).
fn first_pem(text: &str, label: &str) -> String {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out: Vec<&str> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim() == begin {
            inside = true;
        }
        if inside {
            out.push(line.trim());
            if line.trim() == end {
                break;
            }
        }
    }
    assert!(!out.is_empty(), "no {label} PEM in:\n{text}");
    out.join("\n") + "\n"
}

#[test]
fn certmonger_sends_pki_operation_by_get() {
    let env = Env::new();
    rsa_mail_ca(&env);
    let challenge = enroll(&env, "desk9");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    // certmonger's helper sends a pkiMessage it is given (certmonger's daemon makes them); PyScep
    // makes this one. scep-submit sends PKIOperation as GET with message=.
    let url = format!("http://{}/scep/mail", server.public);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyscep_message.py");
    let (code, out) = common::peer(
        &peers_python(),
        &[script.to_str().unwrap(), &url, &challenge, "desk9", "m.der"],
        dir,
    );
    assert_eq!(code, 0, "{out}");
    use base64::Engine;
    std::fs::write(
        dir.join("m.b64"),
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(dir.join("m.der")).unwrap()),
    )
    .unwrap();
    let ca = env.export_ca("mail");
    let (_, out) = common::peer(
        Path::new("/usr/lib/certmonger/scep-submit"),
        &[
            "-u",
            &url,
            "-r",
            ca.to_str().unwrap(),
            "-R",
            ca.to_str().unwrap(),
            "-g",
            "m.b64",
        ],
        dir,
    );
    // scep-submit hands the (still encrypted) CertRep back to certmonger as PKCS#7.
    std::fs::write(dir.join("rep.pem"), first_pem(&out, "PKCS7")).unwrap();
    let printed = openssl_ok(
        &[
            "cms", "-cmsout", "-print", "-inform", "PEM", "-in", "rep.pem",
        ],
        dir,
    );
    assert!(printed.contains("(2.16.840.1.113733.1.9.3)"), "{printed}");
    assert!(
        server.log_text().lines().any(|l| l.contains("method=GET")
            && l.contains("path=/scep/mail")
            && l.contains("status=200"))
            && server.log_text().contains("SCEP certificate issued"),
        "{}",
        server.log_text()
    );
    assert_eq!(
        env.json(&["cert", "list", "--device", "desk9"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// CA `mail` (RSA-2048), template `phones` (CN={DeviceUid}, UPN and email SANs), user alice.
fn rsa_mail_ca(env: &Env) {
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
}

/// strongSwan's `pki` with `args`, strongswan.conf `conf` when given (written to `dir`).
fn strongswan(dir: &Path, args: &[&str], conf: Option<&str>) -> (i32, String) {
    let mut cmd = std::process::Command::new("/usr/bin/pki");
    cmd.args(args).current_dir(dir);
    if let Some(conf) = conf {
        let path = dir.join("strongswan.conf");
        std::fs::write(&path, conf).unwrap();
        cmd.env("STRONGSWAN_CONF", &path);
    }
    let out = cmd
        .output()
        .expect("run strongSwan pki (scripts/install-peers)");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A new RSA-2048 key from strongSwan, written to `dir/name`.
fn strongswan_key(dir: &Path, name: &str) {
    let (code, out) = strongswan(
        dir,
        &[
            "--gen",
            "--type",
            "rsa",
            "--size",
            "2048",
            "--outform",
            "pem",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}");
    std::fs::write(dir.join(name), first_pem(&out, "RSA PRIVATE KEY")).unwrap();
}

/// `pki --scep` against `url` with `key`, the CA certificate `ca.pem` (an RSA CA: it encrypts
/// and signs) and 3DES — strongSwan 5.9.8 reads GetCACaps' bits off by one and refuses AES
/// whenever SHA-384 is not advertised. `extra` adds flags. (exit code, output)
fn strongswan_scep(dir: &Path, url: &str, key: &str, dn: &str, extra: &[&str]) -> (i32, String) {
    strongswan_scep_with(dir, url, key, dn, extra, None)
}

fn strongswan_scep_with(
    dir: &Path,
    url: &str,
    key: &str,
    dn: &str,
    extra: &[&str],
    conf: Option<&str>,
) -> (i32, String) {
    let mut args = vec![
        "--scep",
        "--url",
        url,
        "--in",
        key,
        "--dn",
        dn,
        "--cacert-enc",
        "ca.pem",
        "--cacert-sig",
        "ca.pem",
        "--cipher",
        "des3",
        "--outform",
        "pem",
    ];
    args.extend_from_slice(extra);
    strongswan(dir, &args, conf)
}

/// The upper-case hex serial of a PEM certificate file in `dir`.
fn serial_of(dir: &Path, file: &str) -> String {
    openssl_ok(&["x509", "-in", file, "-noout", "-serial"], dir)
        .trim()
        .trim_start_matches("serial=")
        .to_string()
}

#[test]
fn strongswan_signs_with_rsassa_pss() {
    let env = Env::new();
    rsa_mail_ca(&env);
    let server = env.serve(&[]);
    let dir = env.dir.path();
    std::fs::copy(env.export_ca("mail"), dir.join("ca.pem")).unwrap();
    let url = format!("http://{}/scep/mail", server.public);
    let (status, _, caps) = http(server.public, "GET", "/scep/mail?operation=GetCACaps", b"");
    assert_eq!(status, 200);
    let caps = String::from_utf8(caps).unwrap();
    assert!(caps.lines().any(|l| l == "SHA-512"), "{caps}");
    // RSASSA-PSS over SHA-256 and over SHA-512 (advertised now) SignerInfos.
    for (uid, digest) in [("pss256", "sha256"), ("pss512", "sha512")] {
        let challenge = enroll(&env, uid);
        let key = format!("{uid}.key");
        strongswan_key(dir, &key);
        let (code, out) = strongswan_scep(
            dir,
            &url,
            &key,
            &format!("CN={uid}"),
            &[
                "--password",
                &challenge,
                "--rsa-padding",
                "pss",
                "--digest",
                digest,
            ],
        );
        assert_eq!(
            code,
            0,
            "strongSwan ({digest}, PSS) failed: {out}\n{}",
            server.log_text()
        );
        assert!(out.contains("Issued certificate is trusted"), "{out}");
        let issued = env.json(&["cert", "list", "--device", uid]);
        assert_eq!(issued.as_array().unwrap().len(), 1, "{issued}");
    }
}

#[test]
fn strongswan_renews_with_a_pkcsreq_signed_by_its_certificate() {
    let env = Env::new();
    rsa_mail_ca(&env);
    let challenge = enroll(&env, "laptop8");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    std::fs::copy(env.export_ca("mail"), dir.join("ca.pem")).unwrap();
    let url = format!("http://{}/scep/mail", server.public);
    strongswan_key(dir, "old.key");
    let (code, out) = strongswan_scep(
        dir,
        &url,
        "old.key",
        "CN=laptop8",
        &["--password", &challenge],
    );
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    std::fs::write(dir.join("old.pem"), first_pem(&out, "CERTIFICATE")).unwrap();
    let old = serial_of(dir, "old.pem");

    // Without a challenge and signed by a self-signed certificate: still refused.
    strongswan_key(dir, "new.key");
    let (code, out) = strongswan_scep(dir, &url, "new.key", "CN=laptop8", &[]);
    assert!(code != 0 && out.contains("badRequest"), "{out}");

    // strongSwan's renewal_via_pkcs_req: a PKCSReq (not a RenewalReq) without a challenge,
    // signed by the current certificate and its key.
    let pkcs_req_renewal = "pki {\n  scep {\n    renewal_via_pkcs_req = yes\n  }\n}\n";
    let renew = |new_key: &str, cert: &str, key: &str| {
        strongswan_scep_with(
            dir,
            &url,
            new_key,
            "CN=laptop8",
            &["--cert", cert, "--key", key],
            Some(pkcs_req_renewal),
        )
    };
    let (code, out) = renew("new.key", "old.pem", "old.key");
    assert_eq!(code, 0, "renewal failed: {out}\n{}", server.log_text());
    std::fs::write(dir.join("new.pem"), first_pem(&out, "CERTIFICATE")).unwrap();
    let new = serial_of(dir, "new.pem");
    assert_ne!(new, old);
    let renewed = env.json(&["cert", "show", &new]);
    assert_eq!(renewed["device"], "laptop8");
    assert_eq!(renewed["status"], "valid");
    let superseded = env.json(&["cert", "show", &old]);
    assert_eq!(superseded["status"], "revoked");
    assert_eq!(superseded["revocation_reason"], "superseded");
    let audit = env.json(&["audit", "--since", "1h"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "scep.enroll"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("PkcsReq (renewal) device laptop8")),
        "{audit}"
    );
    // The superseded certificate cannot renew again (a new key: the same one would be a retry
    // of the transaction, answered with the certificate it got).
    strongswan_key(dir, "newer.key");
    let (code, out) = renew("newer.key", "old.pem", "old.key");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    // Nor can the current one once its user is disabled (which revokes it).
    env.ok(&["user", "disable", "alice@corp.example"]);
    let (code, out) = renew("newer.key", "new.pem", "new.key");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    assert_eq!(
        env.json(&["cert", "list", "--device", "laptop8"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_signer_certificate_with_a_32_octet_serial_enrolls() {
    let env = Env::new();
    rsa_mail_ca(&env);
    let challenge = enroll(&env, "sscep1");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    // As sscep 0.10 makes it: a self-signed certificate with a 32-octet serial.
    let serial = format!("0x{}", "9F".repeat(32));
    openssl_ok(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "self.key",
            "-out",
            "self.pem",
            "-subj",
            "/CN=sscep1",
            "-days",
            "1",
            "-set_serial",
            &serial,
        ],
        dir,
    );
    assert_eq!(serial_of(dir, "self.pem"), "9F".repeat(32));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/pyscep_message.py");
    let url = format!("http://{}/scep/mail", server.public);
    let (code, out) = common::peer(
        &peers_python(),
        &[
            script.to_str().unwrap(),
            "--signer",
            "self.pem",
            "self.key",
            &url,
            &challenge,
            "sscep1",
            "long.der",
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}");
    let (status, _, rep) = http(
        server.public,
        "POST",
        "/scep/mail?operation=PKIOperation",
        &std::fs::read(dir.join("long.der")).unwrap(),
    );
    assert_eq!(status, 200, "{}", server.log_text());
    std::fs::write(dir.join("long-rep.der"), &rep).unwrap();
    assert_eq!(
        signed_attribute(dir, "long-rep.der", "2.16.840.1.113733.1.9.3"),
        "0",
        "pkiStatus SUCCESS: {}",
        server.log_text()
    );
    // The certificate is encrypted to the requester by issuer and (long) serial: OpenSSL finds
    // its recipient info and decrypts it.
    openssl_ok(
        &[
            "cms",
            "-verify",
            "-noverify",
            "-inform",
            "DER",
            "-in",
            "long-rep.der",
            "-binary",
            "-out",
            "long-env.der",
        ],
        dir,
    );
    openssl_ok(
        &[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            "long-env.der",
            "-recip",
            "self.pem",
            "-inkey",
            "self.key",
            "-binary",
            "-out",
            "long-certs.p7",
        ],
        dir,
    );
    let certs = openssl_ok(
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "long-certs.p7",
            "-print_certs",
            "-noout",
        ],
        dir,
    );
    assert!(certs.contains("subject=CN = sscep1"), "{certs}");
    assert_eq!(
        env.json(&["cert", "list", "--device", "sscep1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn scepclient_enrolls_against_an_ec_ca_with_the_ra_fingerprint_from_ca_show() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    let challenge = enroll(&env, "ecphone");
    // `ca show` prints the RA with its fingerprints, text and JSON.
    let shown = env.json(&["ca", "show", "mail"]);
    let ra = &shown["scep_ra"];
    let sha256 = ra["sha256_fingerprint"].as_str().unwrap().to_string();
    let sha1 = ra["sha1_fingerprint"].as_str().unwrap().to_string();
    assert_eq!(sha256.len(), 32 * 3 - 1, "{shown}");
    assert_eq!(sha1.len(), 20 * 3 - 1, "{shown}");
    assert_eq!(ra["subject"], "CN=easgate mail SCEP RA", "{shown}");
    let text = env.ok(&["ca", "show", "mail"]);
    assert!(
        text.contains(&sha256) && text.contains(&sha1) && text.contains("SCEP RA"),
        "{text}"
    );
    let dir = env.dir.path();
    std::fs::write(dir.join("ra-shown.pem"), ra["pem"].as_str().unwrap()).unwrap();
    assert!(text.contains(ra["pem"].as_str().unwrap().trim()), "{text}");
    for (file, algorithm, expected) in [
        ("ra-shown.pem", "-sha256", &sha256),
        ("ra-shown.pem", "-sha1", &sha1),
    ] {
        let printed = openssl_ok(
            &["x509", "-in", file, "-noout", "-fingerprint", algorithm],
            dir,
        );
        assert!(printed.trim().ends_with(expected.as_str()), "{printed}");
    }
    // An RSA CA has none: its own key decrypts.
    env.ok(&["ca", "create", "rsa", "--key", "rsa-2048"]);
    assert!(env.json(&["ca", "show", "rsa"])["scep_ra"].is_null());
    assert!(env.ok(&["ca", "show", "rsa"]).contains("SCEP RA:"));

    let server = env.serve(&[]);
    // The RA shown is the one GetCACert hands out.
    let (_, _, p7) = http(server.public, "GET", "/scep/mail?operation=GetCACert", b"");
    let both = print_certs(dir, &p7);
    let ra_pem = ra["pem"].as_str().unwrap();
    assert!(both.contains(ra_pem.trim()), "{both}");
    // micromdm's scepclient encrypts to every certificate of GetCACert (and panics on the EC
    // CA's) unless told which one is the RA: with the fingerprint `ca show` printed, it enrolls.
    let url = format!("http://{}/scep/mail", server.public);
    let client = dir.join("ec-client");
    std::fs::create_dir_all(&client).unwrap();
    let (code, out) = common::peer(
        Path::new("/usr/bin/scepclient"),
        &[
            "-server-url",
            &url,
            "-challenge",
            &challenge,
            "-cn",
            "ignored-by-the-template",
            "-keySize",
            "2048",
            "-private-key",
            "key.pem",
            "-certificate",
            "cert.pem",
            "-ca-fingerprint",
            &sha256.replace(':', ""),
        ],
        &client,
    );
    assert_eq!(code, 0, "scepclient failed: {out}\n{}", server.log_text());
    let text = openssl_ok(&["x509", "-in", "cert.pem", "-noout", "-text"], &client);
    assert!(
        text.contains("Subject: CN = ecphone") && text.contains("ecdsa-with-SHA256"),
        "{text}"
    );
}

#[test]
fn a_ca_can_refuse_single_des() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048", "--scep-no-des"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    assert_eq!(env.json(&["ca", "show", "mail"])["scep_no_des"], true);
    assert!(env.ok(&["ca", "show", "mail"]).contains("refused"));
    let challenge = enroll(&env, "old-client");
    let server = env.serve(&[]);
    let dir = env.dir.path();
    let url = format!("http://{}/scep/mail", server.public);
    // GetCACaps names no single DES either way (it is the fallback of clients when nothing
    // better is advertised): 3DES and AES stay.
    let (_, _, caps) = http(server.public, "GET", "/scep/mail?operation=GetCACaps", b"");
    let caps = String::from_utf8(caps).unwrap();
    assert!(
        caps.lines().any(|l| l == "DES3") && caps.lines().any(|l| l == "AES"),
        "{caps}"
    );
    assert!(!caps.lines().any(|l| l == "DES"), "{caps}");
    // micromdm's scepclient encrypts with single DES: badAlg, and the challenge is not spent.
    let (code, out) = scepclient(&dir.join("des"), &url, &challenge);
    assert!(code != 0 && out.contains("badAlg"), "{out}");
    assert!(
        server.log_text().contains("single DES"),
        "{}",
        server.log_text()
    );
    // The same challenge with 3DES (strongSwan) enrolls.
    std::fs::copy(env.export_ca("mail"), dir.join("ca.pem")).unwrap();
    strongswan_key(dir, "des3.key");
    let (code, out) = strongswan_scep(
        dir,
        &url,
        "des3.key",
        "CN=old-client",
        &["--password", &challenge],
    );
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    // Accepting DES again applies to the running server's next request.
    env.ok(&["ca", "set-scep-des", "mail", "--accept"]);
    assert_eq!(env.json(&["ca", "show", "mail"])["scep_no_des"], false);
    let again = enroll(&env, "old-client-2");
    let (code, out) = scepclient(&dir.join("des-ok"), &url, &again);
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    env.ok(&["ca", "set-scep-des", "mail", "--refuse"]);
    let third = enroll(&env, "old-client-3");
    let (code, out) = scepclient(&dir.join("des-refused"), &url, &third);
    assert!(code != 0 && out.contains("badAlg"), "{out}");
    let err = env.fails(&["ca", "set-scep-des", "nope", "--refuse"]);
    assert!(err.contains("nope"), "{err}");
    let usage = env.run(&["ca", "set-scep-des", "mail"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}

/// A SCEP enrollment is one transaction: the server killed (SIGKILL) at any moment of an
/// enrollment leaves either nothing (the challenge still works for the retry) or everything
/// (the retry gets the same certificate back). 24 kills at spread-out moments; each device
/// ends with exactly one certificate, the one its client holds.
#[test]
fn a_server_killed_during_enrollments_loses_no_challenge_and_issues_no_second_certificate() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    // Kill moments 0 to ~240 ms into the enrollment; each retry goes to a restarted server.
    let kills = 24;
    let interrupted = scep_enrollments_survive_kills(
        &env,
        "mail",
        kills,
        kill_moments(0x2545_f491_4f6c_dd1d, 240),
        None,
    );
    // Some kills landed before the answer (otherwise the test proved little).
    assert!(
        interrupted >= 5,
        "only {interrupted} of {kills} enrollments were interrupted"
    );
}

/// The certificates of a GetCACert PKCS#7, as `openssl pkcs7 -print_certs` shows them.
fn print_certs(dir: &Path, p7: &[u8]) -> String {
    std::fs::write(dir.join("cacert.p7"), p7).unwrap();
    openssl_ok(
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-in",
            "cacert.p7",
            "-print_certs",
        ],
        dir,
    )
}

/// micromdm's scepclient against an EC CA (the default kind) without -ca-fingerprint: it fails
/// on the standard GetCACert (the EC CA certificate in it), and enrolls once the CA answers
/// GetCACert with its RSA RA alone (`ca set-scep-cacert --ra-only`); back to the standard
/// answer, strongSwan's view of the CA and RA is as before.
#[test]
fn scepclient_enrolls_against_an_ec_ca_set_to_answer_getcacert_with_the_ra_alone() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    let first = enroll(&env, "ecphone1");
    let second = enroll(&env, "ecphone2");
    let server = env.serve(&[]);
    let url = format!("http://{}/scep/mail", server.public);
    let dir = env.dir.path();
    let (code, _) = scepclient(&dir.join("standard"), &url, &first);
    assert_ne!(code, 0, "scepclient enrolled against the standard answer");
    env.ok(&["ca", "set-scep-cacert", "mail", "--ra-only"]);
    assert!(env.ok(&["ca", "show", "mail"]).contains("the RA alone"));
    let (_, _, p7) = http(server.public, "GET", "/scep/mail?operation=GetCACert", b"");
    let certs = print_certs(dir, &p7);
    assert_eq!(certs.matches("BEGIN CERTIFICATE").count(), 1, "{certs}");
    assert!(certs.contains("SCEP RA"), "{certs}");
    let (code, out) = scepclient(&dir.join("ra-only"), &url, &second);
    assert_eq!(code, 0, "scepclient failed: {out}\n{}", server.log_text());
    // Back to the standard answer: the CA and the RA.
    env.ok(&["ca", "set-scep-cacert", "mail", "--standard"]);
    let (_, _, p7) = http(server.public, "GET", "/scep/mail?operation=GetCACert", b"");
    assert_eq!(
        print_certs(dir, &p7).matches("BEGIN CERTIFICATE").count(),
        2
    );
    // An RSA CA has no RA to answer with.
    env.ok(&["ca", "create", "rsa", "--key", "rsa-2048"]);
    let err = env.fails(&["ca", "set-scep-cacert", "rsa", "--ra-only"]);
    assert!(err.contains("no RA"), "{err}");
}
