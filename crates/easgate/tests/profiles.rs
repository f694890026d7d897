//! Device profiles with real readers: Python's `plistlib` loads every rendered `.mobileconfig`,
//! `openssl cms -verify` checks signed ones, micromdm's `scepclient` enrolls with the SCEP
//! payload's URL and challenge, `openssl pkcs12` opens both PKCS#12 variants, and the one-time
//! download link answers 410 the second time. Renewal: a certificate issued (under libfaketime)
//! 25 days ago enters its window, the running server starts a renewal and POSTs the webhook,
//! and a SCEP RenewalReq clears it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{eventually, http, openssl, openssl_ok, peers_python, scepclient, Env};
use serde_json::Value;

/// A plist file as JSON (data values become `{"hex": …}`), read by Python's plistlib.
fn plist_json(file: &Path) -> Value {
    let script = r#"
import json, plistlib, sys
def conv(v):
    if isinstance(v, bytes): return {"hex": v.hex()}
    if isinstance(v, dict): return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
with open(sys.argv[1], "rb") as f:
    print(json.dumps(conv(plistlib.load(f))))
"#;
    let out = std::process::Command::new(peers_python())
        .args(["-c", script])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plistlib cannot load {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The payload of `kind` in a profile (exactly one).
fn payload<'a>(profile: &'a Value, kind: &str) -> &'a Value {
    let found: Vec<&Value> = profile["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["PayloadType"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "payloads of type {kind}: {profile}");
    found[0]
}

fn payload_types(profile: &Value) -> Vec<String> {
    let mut kinds: Vec<String> = profile["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PayloadType"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

/// RSA CA `default` (scepclient encrypts to it directly), template `phones`, user alice.
fn setup(env: &Env) {
    env.ok(&["ca", "create", "default", "--key", "rsa-2048"]);
    env.phones_template("default", "CN={DeviceUid}");
    env.add_alice();
}

fn enroll(env: &Env, uid: &str, platform: &str) -> Value {
    env.enroll("alice@corp.example", platform, uid, &[])
}

/// `profile create NAME --platform P --template T --eas-host HOST --account-name 'Corp Mail'`
/// and `extra`.
fn profile_create<'a>(
    name: &'a str,
    platform: &'a str,
    template: &'a str,
    host: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "profile",
        "create",
        name,
        "--platform",
        platform,
        "--template",
        template,
        "--eas-host",
        host,
        "--account-name",
        "Corp Mail",
    ];
    args.extend_from_slice(extra);
    args
}

/// The path part of a profile URL (`/enroll/TOKEN`).
fn enroll_path(profile_url: &str) -> String {
    let at = profile_url.find("/enroll/").expect("an /enroll/ URL");
    profile_url[at..].to_string()
}

fn render(env: &Env, profile: &str, device: &str, extra: &[&str], file: &str) -> PathBuf {
    let out = env.path(file);
    let mut args = vec![
        "profile",
        "render",
        profile,
        "--device",
        device,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    env.ok(&args);
    out
}

fn der_hex(env: &Env, pem: &Path) -> String {
    let der = env.path("ca.der");
    openssl_ok(
        &[
            "x509",
            "-in",
            pem.to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            der.to_str().unwrap(),
        ],
        env.dir.path(),
    );
    hex(&std::fs::read(der).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha1_fingerprint(env: &Env, pem: &Path) -> String {
    openssl_ok(
        &[
            "x509",
            "-in",
            pem.to_str().unwrap(),
            "-noout",
            "-fingerprint",
            "-sha1",
        ],
        env.dir.path(),
    )
    .trim()
    .rsplit('=')
    .next()
    .unwrap()
    .replace(':', "")
    .to_ascii_lowercase()
}

/// Verify a signed profile against `ca` with OpenSSL; returns the path of its content.
fn cms_verify(env: &Env, signed: &Path, ca: &Path, out: &str) -> PathBuf {
    let content = env.path(out);
    let (code, text) = openssl_cms_verify(env, signed, ca, &content);
    assert_eq!(code, 0, "openssl cms -verify failed: {text}");
    assert!(text.contains("Verification successful"), "{text}");
    content
}

/// `openssl cms -verify` of a DER profile against `ca`, content to `out`: (exit code, output).
fn openssl_cms_verify(env: &Env, signed: &Path, ca: &Path, out: &Path) -> (i32, String) {
    openssl(
        &[
            "cms",
            "-verify",
            "-inform",
            "DER",
            "-in",
            signed.to_str().unwrap(),
            "-CAfile",
            ca.to_str().unwrap(),
            "-out",
            out.to_str().unwrap(),
        ],
        env.dir.path(),
    )
}

/// A profile without its one-time challenge (the only value that differs between renders).
fn without_challenge(mut profile: Value) -> Value {
    for p in profile["PayloadContent"].as_array_mut().unwrap() {
        if p["PayloadType"] == "com.apple.security.scep" {
            p["PayloadContent"]
                .as_object_mut()
                .unwrap()
                .remove("Challenge");
        }
    }
    profile
}

#[test]
fn ios_scep_profile_loads_signs_enrolls_with_scepclient_and_downloads_once() {
    let env = Env::new();
    setup(&env);
    env.ok(&profile_create(
        "ios-mail",
        "ios",
        "phones",
        "mail.corp.example",
        &[],
    ));
    let shown = env.json(&["profile", "show", "ios-mail"]);
    assert_eq!(shown["delivery"], "scep");
    assert_eq!(shown["email"], "{EmailAddress}");
    let enrollment = enroll(&env, "dev1", "ios");
    // `serve` makes the gateway's TLS certificate from CA `default` and records that, so
    // profiles carry that CA as a root payload.
    let server = env.serve(&[]);
    assert!(
        server
            .log_text()
            .contains("iOS profiles carry it as a root payload"),
        "{}",
        server.log_text()
    );
    let ca = env.export_ca("default");

    // Unsigned render: plistlib reads it; payloads, links and values as the contract says.
    let plain = plist_json(&render(&env, "ios-mail", "dev1", &[], "plain.mobileconfig"));
    assert_eq!(plain["PayloadType"], "Configuration");
    assert_eq!(plain["PayloadVersion"], 1);
    assert_eq!(
        payload_types(&plain),
        [
            "com.apple.eas.account",
            "com.apple.security.root",
            "com.apple.security.scep"
        ]
    );
    let eas = payload(&plain, "com.apple.eas.account");
    let scep = payload(&plain, "com.apple.security.scep");
    let root = payload(&plain, "com.apple.security.root");
    assert_eq!(eas["PayloadCertificateUUID"], scep["PayloadUUID"]);
    assert_eq!(eas["Host"], "mail.corp.example");
    assert_eq!(eas["SSL"], true);
    assert_eq!(eas["SMIMESigningEnabled"], false);
    assert_eq!(eas["EmailAddress"], "alice@mail.example");
    assert_eq!(eas["UserName"], "alice@corp.example");
    assert_eq!(eas["PayloadDisplayName"], "Corp Mail");
    let uuids: std::collections::HashSet<&str> = plain["PayloadContent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PayloadUUID"].as_str().unwrap())
        .chain([plain["PayloadUUID"].as_str().unwrap()])
        .collect();
    assert_eq!(uuids.len(), 4, "every payload has its own UUID");
    let content = &scep["PayloadContent"];
    assert_eq!(content["URL"], "http://pki.corp.example:8080/scep/default");
    assert_eq!(content["Name"], "default");
    assert_eq!(content["Subject"], serde_json::json!([[["CN", "dev1"]]]));
    assert_eq!(content["Keysize"], 2048);
    assert_eq!(content["Key Type"], "RSA");
    assert_eq!(
        content["SubjectAltName"]["rfc822Name"],
        "alice@mail.example"
    );
    assert_eq!(
        content["SubjectAltName"]["ntPrincipalName"],
        "alice@corp.example"
    );
    assert_eq!(
        content["CAFingerprint"]["hex"],
        sha1_fingerprint(&env, &ca).as_str()
    );
    assert_eq!(root["PayloadContent"]["hex"], der_hex(&env, &ca).as_str());
    let challenge = content["Challenge"].as_str().unwrap().to_string();
    assert_eq!(challenge.len(), 40);
    assert_ne!(challenge, enrollment["challenge"].as_str().unwrap());

    // Signed render: OpenSSL verifies it against our CA, and the signed content is the
    // unsigned profile (same identifiers and UUIDs; only the fresh challenge differs).
    let signed = render(
        &env,
        "ios-mail",
        "dev1",
        &["--signed"],
        "signed.mobileconfig",
    );
    let inner = plist_json(&cms_verify(&env, &signed, &ca, "signed-content.plist"));
    assert_eq!(without_challenge(inner), without_challenge(plain.clone()));
    // Tampering breaks the signature.
    let mut bytes = std::fs::read(&signed).unwrap();
    let at = bytes.windows(9).position(|w| w == b"Corp Mail").unwrap();
    bytes[at] = b'X';
    let tampered = env.path("tampered.mobileconfig");
    std::fs::write(&tampered, bytes).unwrap();
    let (code, _) = openssl_cms_verify(&env, &tampered, &ca, &env.path("tampered.plist"));
    assert_ne!(code, 0, "a tampered profile must not verify");

    // The SCEP payload's URL and challenge enroll with a real client; the certificate's SANs
    // are the payload's (the URL's host is the public URL; the test reaches it on loopback).
    let url = content["URL"]
        .as_str()
        .unwrap()
        .replace("pki.corp.example:8080", &server.public.to_string());
    let phone = env.path("phone");
    let (code, out) = scepclient(&phone, &url, &challenge);
    assert_eq!(code, 0, "scepclient failed: {out}\n{}", server.log_text());
    let text = openssl_ok(
        &[
            "x509",
            "-in",
            phone.join("cert.pem").to_str().unwrap(),
            "-noout",
            "-text",
        ],
        env.dir.path(),
    );
    assert!(text.contains("Subject: CN = dev1"), "{text}");
    assert!(text.contains("email:alice@mail.example"), "{text}");
    assert!(text.contains("UPN::alice@corp.example"), "{text}");
    // The payload's challenge is one-time too.
    let (code, out) = scepclient(&env.path("again"), &url, &challenge);
    assert!(code != 0 && out.contains("badRequest"), "{out}");

    // The enrollment link: a signed profile with the Apple content type, once.
    let path = enroll_path(enrollment["profile_url"].as_str().unwrap());
    let (status, head, body) = http(server.public, "GET", &path, b"");
    assert_eq!(status, 200, "{head}");
    let head_lower = head.to_ascii_lowercase();
    assert!(
        head_lower.contains("content-type: application/x-apple-aspen-config"),
        "{head}"
    );
    assert!(head_lower.contains("cache-control: no-store"), "{head}");
    assert!(
        head_lower.contains("filename=\"ios-mail-dev1.mobileconfig\""),
        "{head}"
    );
    let downloaded = env.path("downloaded.mobileconfig");
    std::fs::write(&downloaded, &body).unwrap();
    let got = plist_json(&cms_verify(&env, &downloaded, &ca, "downloaded.plist"));
    assert_eq!(without_challenge(got), without_challenge(plain));
    let (status, _, body) = http(server.public, "GET", &path, b"");
    assert_eq!(status, 410);
    assert!(
        String::from_utf8_lossy(&body).contains("already used"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Unknown and malformed links: 404, no panic.
    for bad in [
        "/enroll/00112233445566778899aabbccddeeff00112233",
        "/enroll/not-hex",
        "/enroll/%00",
    ] {
        let (status, _, _) = http(server.public, "GET", bad, b"");
        assert_eq!(status, 404, "{bad}");
    }
    // The link is a secret: the request log does not show it.
    let token = path.trim_start_matches("/enroll/");
    assert!(!server.log_text().contains(token), "the token was logged");
    assert!(server.log_text().contains("profile downloaded"));
    let audit = env.ok(&["audit", "--since", "1h"]);
    assert!(audit.contains("profile.download"), "{audit}");

    // An expired link: 410 with the reason (the token's expiry moved into the past in the
    // real SQLite file, as days passing would).
    let second = enroll(&env, "dev2", "ios");
    let db = env.data_dir().join("easgate.db");
    let out = std::process::Command::new(peers_python())
        .args([
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE profile_tokens SET expires_at = 1 WHERE device_id = \
             (SELECT id FROM devices WHERE uid = 'dev2')\"); c.commit()",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let path = enroll_path(second["profile_url"].as_str().unwrap());
    let (status, _, body) = http(server.public, "GET", &path, b"");
    assert_eq!(status, 410);
    assert!(String::from_utf8_lossy(&body).contains("expired"));
}

#[test]
fn pkcs12_profiles_open_with_openssl_in_both_variants() {
    let env = Env::new();
    setup(&env);
    enroll(&env, "dev1", "ios");
    let ca = env.export_ca("default");
    for (name, delivery, cipher, mac) in [
        ("ios-p12", "pkcs12", "AES-256-CBC", "sha256"),
        (
            "ios-p12-legacy",
            "pkcs12-legacy",
            "pbeWithSHA1And3-KeyTripleDES-CBC",
            "sha1",
        ),
    ] {
        env.ok(&profile_create(
            name,
            "ios",
            "phones",
            "mail.corp.example:8443",
            &[
                "--delivery",
                delivery,
                "--username",
                "{UserName}",
                "--domain",
                "CORP",
            ],
        ));
        let file = render(&env, name, "dev1", &[], &format!("{name}.mobileconfig"));
        let profile = plist_json(&file);
        // No gateway has run: no root payload yet.
        assert_eq!(
            payload_types(&profile),
            ["com.apple.eas.account", "com.apple.security.pkcs12"]
        );
        let eas = payload(&profile, "com.apple.eas.account");
        let p12 = payload(&profile, "com.apple.security.pkcs12");
        assert_eq!(eas["PayloadCertificateUUID"], p12["PayloadUUID"]);
        assert_eq!(eas["Host"], "mail.corp.example:8443");
        assert_eq!(eas["UserName"], "CORP\\alice");
        let password = p12["Password"].as_str().unwrap();
        assert!(password.len() >= 16);
        let hex_bytes = p12["PayloadContent"]["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex_bytes.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex_bytes[i..i + 2], 16).unwrap())
            .collect();
        let bundle = env.path(&format!("{name}.p12"));
        std::fs::write(&bundle, bytes).unwrap();
        let info = openssl_ok(
            &[
                "pkcs12",
                "-in",
                bundle.to_str().unwrap(),
                "-passin",
                &format!("pass:{password}"),
                "-info",
                "-nodes",
            ],
            env.dir.path(),
        );
        assert!(info.contains(cipher), "{name}: {info}");
        assert!(
            info.to_ascii_lowercase().contains(&format!("mac: {mac}")),
            "{name}: {info}"
        );
        assert!(info.contains("PRIVATE KEY"), "{name}: {info}");
        let leaf = env.path(&format!("{name}-leaf.pem"));
        openssl_ok(
            &[
                "pkcs12",
                "-in",
                bundle.to_str().unwrap(),
                "-passin",
                &format!("pass:{password}"),
                "-clcerts",
                "-nokeys",
                "-out",
                leaf.to_str().unwrap(),
            ],
            env.dir.path(),
        );
        let verified = openssl_ok(
            &[
                "verify",
                "-CAfile",
                ca.to_str().unwrap(),
                leaf.to_str().unwrap(),
            ],
            env.dir.path(),
        );
        assert!(verified.contains(": OK"), "{verified}");
        // A wrong password does not open it.
        let (code, _) = openssl(
            &[
                "pkcs12",
                "-in",
                bundle.to_str().unwrap(),
                "-passin",
                "pass:wrong",
                "-nokeys",
            ],
            env.dir.path(),
        );
        assert_ne!(code, 0);
    }
    // Each PKCS#12 render issued a certificate for the device.
    assert_eq!(
        env.json(&["cert", "list", "--device", "dev1"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn android_profile_is_gmail_managed_configuration() {
    let env = Env::new();
    setup(&env);
    env.ok(&["group", "add", "sales"]);
    env.ok(&profile_create(
        "android-mail",
        "android",
        "phones",
        "mail.corp.example",
        &[],
    ));
    // A profile for a group alice is not in does not apply to her.
    env.ok(&profile_create(
        "android-sales",
        "android",
        "phones",
        "sales-mail.corp.example",
        &["--group", "sales"],
    ));
    let enrollment = enroll(&env, "droid1", "android");
    let file = render(&env, "android-mail", "droid1", &[], "android.json");
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(doc["package"], "com.google.android.gm");
    let config = &doc["managed_configuration"];
    assert_eq!(config["exchange_host"], "mail.corp.example");
    assert_eq!(config["email_address"], "alice@mail.example");
    assert_eq!(config["exchange_username"], "alice@corp.example");
    assert_eq!(config["exchange_ssl_required"], true);
    assert_eq!(config["exchange_trust_all_certificates"], false);
    assert_eq!(config["allow_unmanaged_accounts"], false);
    assert_eq!(config["exchange_device_id"], "droid1");
    let cert = &doc["certificate"];
    assert_eq!(config["exchange_login_certificate_alias"], cert["alias"]);
    assert_eq!(cert["method"], "scep");
    assert_eq!(cert["url"], "http://pki.corp.example:8080/scep/default");
    assert_eq!(cert["challenge"].as_str().unwrap().len(), 40);
    assert_eq!(
        cert["subject_alt_names"]["ntPrincipalName"],
        serde_json::json!(["alice@corp.example"])
    );
    let err = env.fails(&[
        "profile",
        "render",
        "android-mail",
        "--device",
        "droid1",
        "--signed",
    ]);
    assert!(err.contains("--signed applies to Apple profiles"), "{err}");

    // The download link picks the profile that fits alice (no group) and serves JSON.
    let server = env.serve(&[]);
    let path = enroll_path(enrollment["profile_url"].as_str().unwrap());
    let (status, head, body) = http(server.public, "GET", &path, b"");
    assert_eq!(status, 200, "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: application/json"));
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        doc["managed_configuration"]["exchange_host"],
        "mail.corp.example"
    );
}

#[test]
fn bad_profiles_and_renders_are_refused_and_change_nothing() {
    let env = Env::new();
    setup(&env);
    env.ok(&["group", "add", "sales"]);
    enroll(&env, "dev1", "ios");
    let before = env.snapshot();
    let create = |extra: &[&str]| {
        let mut args = vec![
            "profile",
            "create",
            "p",
            "--platform",
            "ios",
            "--template",
            "phones",
            "--account-name",
            "Mail",
        ];
        args.extend_from_slice(extra);
        env.fails(&args)
    };
    for (host, why) in [
        ("https://mail.corp.example", "without a scheme"),
        ("http://mail.corp.example", "without a scheme"),
        (
            "mail.corp.example/Microsoft-Server-ActiveSync",
            "add /Microsoft-Server-ActiveSync",
        ),
        ("mail.corp.example/owa", "without a path"),
        ("mail.corp.example:70000", "port"),
        ("mail corp", "not a host name"),
    ] {
        let err = create(&["--eas-host", host]);
        assert!(err.contains(why), "{host}: {err}");
    }
    let ok_host = ["--eas-host", "mail.corp.example"];
    let err = create(&[&ok_host[..], &["--email", "{Nope}"]].concat());
    assert!(err.contains("unknown lookup value `{Nope}`"), "{err}");
    let err = create(&[&ok_host[..], &["--username", "{UserName"]].concat());
    assert!(err.contains("without its `}`"), "{err}");
    let err = create(&[&ok_host[..], &["--group", "nobody"]].concat());
    assert!(err.contains("group `nobody` does not exist"), "{err}");
    let err = env.fails(&profile_create(
        "p",
        "ios",
        "nope",
        "mail.corp.example",
        &[],
    ));
    assert!(err.contains("template `nope` does not exist"), "{err}");
    let usage = env.run(&profile_create(
        "p",
        "windows",
        "phones",
        "mail.corp.example",
        &[],
    ));
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.json(&["profile", "list"]), serde_json::json!([]));

    // Renders that cannot work: unknown profile or device, wrong platform, retired device.
    env.ok(&profile_create(
        "android-mail",
        "android",
        "phones",
        "mail.corp.example",
        &[],
    ));
    let before = env.snapshot();
    let err = env.fails(&["profile", "render", "nope", "--device", "dev1"]);
    assert!(err.contains("profile `nope` does not exist"), "{err}");
    let err = env.fails(&["profile", "remove", "nope"]);
    assert!(err.contains("profile `nope` does not exist"), "{err}");
    let err = env.fails(&["profile", "render", "android-mail", "--device", "nope"]);
    assert!(err.contains("device `nope` does not exist"), "{err}");
    let err = env.fails(&["profile", "render", "android-mail", "--device", "dev1"]);
    assert!(err.contains("is for android devices"), "{err}");
    assert_eq!(env.snapshot(), before);
    // A profile of another template than the device's: its certificate would not match.
    env.ok(&[
        "template",
        "create",
        "tablets",
        "--ca",
        "default",
        "--subject",
        "CN=tablet-{DeviceUid}",
    ]);
    env.ok(&profile_create(
        "ios-tablets",
        "ios",
        "tablets",
        "mail.corp.example",
        &[],
    ));
    let before = env.snapshot();
    let err = env.fails(&["profile", "render", "ios-tablets", "--device", "dev1"]);
    assert!(err.contains("was enrolled with template `phones`"), "{err}");
    assert_eq!(env.snapshot(), before);
    env.ok(&["device", "retire", "dev1"]);
    env.ok(&profile_create(
        "ios-mail",
        "ios",
        "phones",
        "mail.corp.example",
        &[],
    ));
    let err = env.fails(&["profile", "render", "ios-mail", "--device", "dev1"]);
    assert!(err.contains("is retired"), "{err}");
    // A lookup value the user has none of ({DisplayName}) is named before anything is made.
    env.ok(&[
        "user",
        "add",
        "bob@corp.example",
        "--email",
        "bob@mail.example",
    ]);
    env.enroll("bob@corp.example", "ios", "bob1", &["--template", "phones"]);
    env.ok(&profile_create(
        "ios-named",
        "ios",
        "phones",
        "mail.corp.example",
        &["--username", "{DisplayName}"],
    ));
    let before = env.snapshot();
    let err = env.fails(&["profile", "render", "ios-named", "--device", "bob1"]);
    assert!(
        err.contains("cannot be filled in") && err.contains("DisplayName"),
        "{err}"
    );
    assert_eq!(env.snapshot(), before);
    // Removing a profile: gone from the list, audited, no longer renders.
    env.ok(&["profile", "remove", "ios-named"]);
    let names: Vec<String> = env
        .json(&["profile", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.contains(&"ios-named".to_string()), "{names:?}");
    assert!(env
        .ok(&["audit", "--since", "1h"])
        .contains("profile.remove"));
    let err = env.fails(&["profile", "render", "ios-named", "--device", "bob1"]);
    assert!(err.contains("profile `ios-named` does not exist"), "{err}");
}

/// A one-shot HTTP server in the peers' Python that appends each POST body to `file`.
fn webhook_receiver(file: &Path) -> (std::process::Child, u16) {
    let script = r#"
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with open(sys.argv[1], "ab") as f:
            f.write(body + b"\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;
    let mut child = std::process::Command::new(peers_python())
        .args(["-c", script])
        .arg(file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    (child, line.trim().parse().unwrap())
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn events(file: &Path) -> Vec<Value> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn renewal_window_starts_a_renewal_posts_the_webhook_and_scep_renewal_clears_it() {
    let env = Env::new();
    env.ok(&["ca", "create", "default", "--key", "rsa-2048"]);
    env.ok(&[
        "template",
        "create",
        "phones",
        "--ca",
        "default",
        "--subject",
        "CN={DeviceUid}",
        "--san",
        "email:{EmailAddress}",
        "--san",
        "upn:{UserPrincipalName}",
        "--validity-days",
        "30",
        "--renew-before-days",
        "7",
    ]);
    env.add_alice();
    env.ok(&profile_create(
        "ios-mail",
        "ios",
        "phones",
        "mail.corp.example",
        &[],
    ));
    // dev1's certificate was issued 25 days ago (libfaketime): 5 days left, inside the
    // 7-day window. dev2's is new.
    enroll(&env, "dev1", "ios");
    let phone = env.path("phone");
    std::fs::create_dir_all(&phone).unwrap();
    let issued = env
        .command_under(&["faketime", "-f", "-25d"])
        .args([
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            "dev1",
            "--out-key",
            phone.join("key.pem").to_str().unwrap(),
            "--out",
            phone.join("cert.pem").to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(issued.status.success(), "{issued:?}");
    let serial = serde_json::from_slice::<Value>(&issued.stdout).unwrap()["serial"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, fresh_serial) = env.issue_device_cert("alice@corp.example", "dev2");

    let expiring = env.json(&["cert", "list", "--expiring"]);
    let listed: Vec<&str> = expiring
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["serial"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [serial.as_str()], "{expiring}");
    assert_eq!(expiring[0]["renewal_started"], false);
    assert!(!listed.contains(&fresh_serial.as_str()));

    let hook_file = env.path("hook.jsonl");
    let (child, port) = webhook_receiver(&hook_file);
    let _receiver = KillOnDrop(child);
    let server = env.serve(&[
        "--renewal-interval",
        "1s",
        "--renewal-webhook",
        &format!("http://127.0.0.1:{port}/renewals"),
    ]);
    assert!(
        eventually(20.0, || !events(&hook_file).is_empty()),
        "no webhook event:\n{}",
        server.log_text()
    );
    let event = &events(&hook_file)[0];
    assert_eq!(event["event"], "certificate.renewal");
    assert_eq!(event["device"], "dev1");
    assert_eq!(event["user"], "alice@corp.example");
    assert_eq!(event["serial"], serial.as_str());
    assert_eq!(event["challenge"].as_str().unwrap().len(), 40);
    assert_eq!(
        event["scep_url"],
        "http://pki.corp.example:8080/scep/default"
    );
    // The challenge is never logged.
    assert!(!server
        .log_text()
        .contains(event["challenge"].as_str().unwrap()));
    assert!(eventually(10.0, || env
        .ok(&["audit", "--since", "1h"])
        .contains("renewal.notify")));
    let audit = env.ok(&["audit", "--since", "1h"]);
    assert!(audit.contains("renewal.start"), "{audit}");
    assert_eq!(
        env.json(&["cert", "list", "--expiring"])[0]["renewal_started"],
        true
    );
    // The renewal's profile link works once.
    let path = enroll_path(event["profile_url"].as_str().unwrap());
    let (status, _, _) = http(server.public, "GET", &path, b"");
    assert_eq!(status, 200);
    let (status, _, _) = http(server.public, "GET", &path, b"");
    assert_eq!(status, 410);

    // Started once: later rounds do not start or announce it again.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(events(&hook_file).len(), 1);

    // The device renews over SCEP with a RenewalReq signed by its current certificate: the
    // renewal is cleared and nothing is left inside a window.
    let url = format!("http://{}/scep/default", server.public);
    // scepclient reads PKCS#1 ("RSA PRIVATE KEY"); the CLI wrote PKCS#8.
    let key = phone.join("key.pem");
    openssl_ok(
        &[
            "rsa",
            "-in",
            key.to_str().unwrap(),
            "-traditional",
            "-out",
            key.to_str().unwrap(),
        ],
        env.dir.path(),
    );
    let (code, out) = scepclient(&phone, &url, "");
    assert_eq!(code, 0, "renewal failed: {out}\n{}", server.log_text());
    let audit = env.ok(&["audit", "--since", "1h"]);
    assert!(audit.contains("renewal.clear"), "{audit}");
    assert_eq!(
        env.json(&["cert", "list", "--expiring"]),
        serde_json::json!([])
    );
    assert_eq!(env.json(&["cert", "show", &serial])["status"], "revoked");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(events(&hook_file).len(), 1);
}
