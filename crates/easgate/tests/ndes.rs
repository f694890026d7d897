//! Dynamic SCEP challenges for MDMs. An MDM configured for Microsoft NDES with a dynamic
//! challenge (a Python script reading the page as Fleet and Zentral do) fetches
//! `/certsrv/mscep_admin/` with HTTP Basic and an enroller token, and a real SCEP client
//! (micromdm's `scepclient`) enrolls a pre-enrolled device with it; and an MDM calling
//! `POST /api/v1/devices/{uid}/challenge` does the same with a device-bound challenge.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

use common::{openssl_ok, peer, peers_python, Env};

/// One HTTP/1.1 request with an optional `Authorization` value: (status, head, body).
fn get(addr: SocketAddr, method: &str, path: &str, auth: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, raw[split + 4..].to_vec())
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The MDM's side: the challenge scraped from the page, or the script's exit code and output.
fn mdm_fetch(url: &str, token: &str) -> Result<String, (i32, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/ndes_challenge.py");
    let (code, out) = peer(
        &peers_python(),
        &[script.to_str().unwrap(), url, "CORP\\svc-mdm", token],
        Path::new("/"),
    );
    if code == 0 {
        Ok(out.trim().to_string())
    } else {
        Err((code, out))
    }
}

/// micromdm's scepclient in `dir` asking for common name `cn`: (exit code, output).
fn scepclient(dir: &Path, url: &str, challenge: &str, cn: &str) -> (i32, String) {
    std::fs::create_dir_all(dir).unwrap();
    peer(
        Path::new("/usr/bin/scepclient"),
        &[
            "-server-url",
            url,
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
        dir,
    )
}

fn token(env: &Env, name: &str, role: &str) -> String {
    env.json(&["token", "create", name, "--role", role])["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

fn subject(dir: &Path) -> String {
    openssl_ok(
        &[
            "x509",
            "-in",
            dir.join("cert.pem").to_str().unwrap(),
            "-noout",
            "-subject",
        ],
        dir,
    )
}

/// RSA CA `mail` with template `phones` (CN = device uid), user alice, and `devices` enrolled.
fn setup(devices: &[&str]) -> Env {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    for uid in devices {
        env.enroll("alice@corp.example", "ios", uid, &["--template", "phones"]);
    }
    env
}

#[test]
fn an_mdm_scrapes_the_ndes_page_and_scepclient_enrolls_a_pre_enrolled_device() {
    let env = setup(&["mdm-dev-1", "mdm-dev-2", "mdm-dev-3"]);
    let enroller = token(&env, "intune", "enroller");
    let server = env.serve(&[]);
    let page = format!("http://{}/certsrv/mscep_admin/", server.public);
    let scep = format!("http://{}/scep/mail", server.public);
    let dir = env.dir.path();

    // The MDM's fetch: UTF-16 as real NDES, the challenge in NDES's sentence.
    let challenge = mdm_fetch(&page, &enroller).unwrap_or_else(|(code, out)| {
        panic!(
            "the MDM found no challenge ({code}): {out}\n{}",
            server.log_text()
        )
    });
    assert!(
        challenge.len() == 32
            && challenge
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()),
        "{challenge}"
    );

    // A real SCEP client enrolls the device its CN names.
    let first = dir.join("first");
    let (code, out) = scepclient(&first, &scep, &challenge, "mdm-dev-1");
    assert_eq!(code, 0, "scepclient failed: {out}\n{}", server.log_text());
    assert!(subject(&first).contains("CN = mdm-dev-1"));
    let certs = env.json(&["cert", "list", "--device", "mdm-dev-1"]);
    assert_eq!(certs.as_array().unwrap().len(), 1, "{certs}");
    assert_eq!(
        env.json(&["device", "show", "mdm-dev-1"])["device"]["state"],
        "enrolled"
    );

    // One-time: the same challenge again, for the same or another device, is refused.
    let (code, out) = scepclient(&dir.join("again"), &scep, &challenge, "mdm-dev-1");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    let (code, out) = scepclient(&dir.join("again2"), &scep, &challenge, "mdm-dev-2");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    assert_eq!(
        env.json(&["cert", "list", "--device", "mdm-dev-2"])
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // A CN that names no device is refused and does not spend the challenge.
    let second = mdm_fetch(&page, &enroller).unwrap();
    assert_ne!(second, challenge);
    let (code, out) = scepclient(&dir.join("nodev"), &scep, &second, "no-such-device");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    assert!(
        server.log_text().contains("names no device"),
        "{}",
        server.log_text()
    );
    let (code, out) = scepclient(&dir.join("second"), &scep, &second, "mdm-dev-2");
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    assert!(subject(&dir.join("second")).contains("CN = mdm-dev-2"));

    // A retired device gets nothing with it.
    env.ok(&["device", "retire", "mdm-dev-3"]);
    let third = mdm_fetch(&page, &enroller).unwrap();
    let (code, out) = scepclient(&dir.join("retired"), &scep, &third, "mdm-dev-3");
    assert!(code != 0 && out.contains("badRequest"), "{out}");

    // The audit trail names the MDM's token for each challenge, and the device for each use.
    let audit = env.json(&["audit", "--since", "1h"]);
    let events = audit.as_array().unwrap();
    let made: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "scep.challenge.create" && e["target"] == "challenge:unbound")
        .collect();
    assert_eq!(made.len(), 3, "{audit}");
    assert!(made.iter().all(|e| e["actor"] == "token:intune"), "{audit}");
    let used: Vec<_> = events
        .iter()
        .filter(|e| e["action"] == "scep.challenge.use")
        .map(|e| e["target"].as_str().unwrap())
        .collect();
    assert_eq!(used, ["device:mdm-dev-1", "device:mdm-dev-2"], "{audit}");
    // The challenge itself is never stored or logged.
    for secret in [&challenge, &second, &third] {
        assert!(!audit.to_string().contains(secret.as_str()));
        assert!(!server.log_text().contains(secret.as_str()));
    }
}

#[test]
fn the_ndes_page_wants_an_enroller_or_admin_token() {
    let env = setup(&[]);
    let enroller = token(&env, "mdm", "enroller");
    let helpdesk = token(&env, "desk", "helpdesk");
    let auditor = token(&env, "audit", "auditor");
    let revoked = token(&env, "old-mdm", "enroller");
    let server = env.serve(&[]);
    let admin = std::fs::read_to_string(env.data_dir().join("admin-token"));
    let page = format!("http://{}/certsrv/mscep_admin/", server.public);
    let path = "/certsrv/mscep_admin/";

    // No credentials, a made-up token, a revoked one: 401 asking for Basic.
    for auth in [
        None,
        Some(basic("mdm", "egt_0000")),
        Some("Basic !!!".to_string()),
    ] {
        let (status, head, _) = get(server.public, "GET", path, auth.as_deref());
        assert_eq!(status, 401, "{auth:?}: {head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: basic realm=\"easgate\""),
            "{head}"
        );
    }
    env.ok(&["token", "revoke", "old-mdm"]);
    assert_eq!(
        mdm_fetch(&page, &revoked).unwrap_err().1.trim(),
        "HTTP 401 Basic realm=\"easgate\""
    );

    // Other roles: 403, audited.
    for (name, secret) in [("desk", &helpdesk), ("audit", &auditor)] {
        let (status, _, body) = get(server.public, "GET", path, Some(&basic("x", secret)));
        assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
        let denied = env.json(&["audit", "--action", "api.denied"]);
        assert!(
            denied
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["target"] == format!("token:{name}")),
            "{denied}"
        );
    }

    // The enroller (Basic, any user name, or bearer) and the admin get the page.
    let (status, head, body) = get(server.public, "GET", path, Some(&basic("", &enroller)));
    assert_eq!(status, 200, "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: text/html; charset=utf-16")
            && lower.contains("cache-control: no-store"),
        "{head}"
    );
    assert_eq!(&body[..2], &[0xFF, 0xFE], "UTF-16LE with a byte-order mark");
    let units: Vec<u16> = body[2..]
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text = String::from_utf16(&units).unwrap();
    assert!(
        text.contains("The enrollment challenge password is: <B> ")
            && text
                .contains("This password can be used only once and will expire within 60 minutes."),
        "{text}"
    );
    let (status, _, _) = get(
        server.public,
        "GET",
        path,
        Some(&format!("Bearer {enroller}")),
    );
    assert_eq!(status, 200);
    if let Ok(admin) = admin {
        assert_eq!(
            get(
                server.public,
                "GET",
                path,
                Some(&basic("admin", admin.trim()))
            )
            .0,
            200
        );
    }

    // Other spellings MDM admins paste, and UTF-8 on request.
    for other in [
        "/certsrv/mscep_admin",
        "/CertSrv/mscep_admin/",
        "/certsrv/mscep_admin/default.aspx",
    ] {
        let (status, head, _) = get(server.public, "GET", other, Some(&basic("", &enroller)));
        assert_eq!(status, 200, "{other}: {head}");
    }
    let (status, head, body) = get(
        server.public,
        "GET",
        "/certsrv/mscep_admin/?encoding=utf-8",
        Some(&basic("", &enroller)),
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("charset=utf-8"),
        "{head}"
    );
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("The enrollment challenge password is: <B> "));
    // A HEAD makes no challenge.
    let (status, _, _) = get(server.public, "HEAD", path, Some(&basic("", &enroller)));
    assert_eq!(status, 405);
}

#[test]
fn a_challenge_for_one_ca_does_not_enroll_at_another() {
    let env = setup(&["mail-dev"]);
    env.ok(&["ca", "create", "other", "--key", "rsa-2048"]);
    let enroller = token(&env, "mdm", "enroller");
    let server = env.serve(&[]);
    let page = format!("http://{}/certsrv/mscep_admin/", server.public);
    let dir = env.dir.path();

    // Fetched for CA `other`: refused at mail's SCEP URL, and not spent there.
    let for_other = mdm_fetch(&format!("{page}?ca=other"), &enroller).unwrap();
    let mail = format!("http://{}/scep/mail", server.public);
    let (code, out) = scepclient(&dir.join("a"), &mail, &for_other, "mail-dev");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    // At `other`'s SCEP URL the device's template (on `mail`) refuses it.
    let other = format!("http://{}/scep/other", server.public);
    let (code, out) = scepclient(&dir.join("b"), &other, &for_other, "mail-dev");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    assert!(
        server
            .log_text()
            .contains("gets its certificates from CA `mail`"),
        "{}",
        server.log_text()
    );

    // A challenge bound to the device is refused at another CA's SCEP URL too, and not spent:
    // it still enrolls at its own CA.
    let bound = env.json(&["device", "reenroll", "mail-dev"])["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out) = scepclient(&dir.join("d"), &other, &bound, "mail-dev");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    let (code, out) = scepclient(&dir.join("e"), &mail, &bound, "mail-dev");
    assert_eq!(code, 0, "{out}\n{}", server.log_text());

    // Fetched for `mail`: enrolls there.
    let for_mail = mdm_fetch(&format!("{page}?ca=mail"), &enroller).unwrap();
    let (code, out) = scepclient(&dir.join("c"), &mail, &for_mail, "mail-dev");
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    let audit = env.json(&["audit", "--action", "scep.challenge.create"]);
    assert!(audit.to_string().contains("for CA other"), "{audit}");

    // An unknown CA: 404, no challenge.
    let (status, _, _) = get(
        server.public,
        "GET",
        "/certsrv/mscep_admin/?ca=nope",
        Some(&basic("", &enroller)),
    );
    assert_eq!(status, 404);
}

#[test]
fn an_enroller_token_fetches_a_device_challenge_over_the_api_and_scepclient_enrolls() {
    let env = setup(&["api-dev-a", "api-dev-b"]);
    let enroller = token(&env, "mdm", "enroller");
    let server = env.serve(&[]);
    let scep = format!("http://{}/scep/mail", server.public);
    let dir = env.dir.path();

    let (status, _, body) = get(
        server.admin,
        "POST",
        "/api/v1/devices/api-dev-a/challenge",
        Some(&format!("Bearer {enroller}")),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["uid"], "api-dev-a");
    assert!(answer["scep_url"].as_str().unwrap().ends_with("/scep/mail"));
    let challenge = answer["challenge"].as_str().unwrap();

    // Bound to api-dev-a: a request naming api-dev-b still gets api-dev-a's certificate, and
    // api-dev-b none.
    let (code, out) = scepclient(&dir.join("a"), &scep, challenge, "api-dev-b");
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    assert!(subject(&dir.join("a")).contains("CN = api-dev-a"));
    assert_eq!(
        env.json(&["cert", "list", "--device", "api-dev-a"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        env.json(&["cert", "list", "--device", "api-dev-b"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Used once; again it enrolls nothing.
    let (code, out) = scepclient(&dir.join("b"), &scep, challenge, "api-dev-b");
    assert!(code != 0 && out.contains("badRequest"), "{out}");
    assert_eq!(
        env.json(&["cert", "list", "--device", "api-dev-b"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The device challenge is no NDES page login: an auditor token cannot fetch one either.
    let auditor = token(&env, "audit", "auditor");
    let (status, _, _) = get(
        server.admin,
        "POST",
        "/api/v1/devices/api-dev-b/challenge",
        Some(&format!("Bearer {auditor}")),
    );
    assert_eq!(status, 403);
}
