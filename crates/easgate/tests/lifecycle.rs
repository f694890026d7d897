//! Device and user lifecycle: enrollment, default templates, retire/wipe/disable revoking with
//! the right reasons, serial notation, listings and the audit trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;

fn issue(env: &Env, device: &str) -> String {
    let dir = env.dir.path();
    let v = env.json(&[
        "cert",
        "issue",
        "--template",
        "phones",
        "--device",
        device,
        "--out-key",
        dir.join(format!("{device}.key")).to_str().unwrap(),
        "--out",
        dir.join(format!("{device}.pem")).to_str().unwrap(),
    ]);
    v["serial"].as_str().unwrap().to_string()
}

#[test]
fn enrollment_prints_a_one_time_challenge_and_urls() {
    let env = Env::new();
    env.standard_setup();
    let v = env.json(&[
        "device",
        "enroll",
        "--user",
        "alice@corp.example",
        "--platform",
        "android",
    ]);
    let uid = v["uid"].as_str().unwrap();
    assert!(!uid.is_empty());
    let challenge = v["challenge"].as_str().unwrap();
    assert!(challenge.len() >= 32, "challenge too short: {challenge}");
    assert_eq!(v["scep_url"], "http://pki.corp.example:8080/scep/default");
    assert!(v["profile_url"]
        .as_str()
        .unwrap()
        .starts_with("http://pki.corp.example:8080/enroll/"));
    let device = env.json(&["device", "show", uid]);
    assert_eq!(device["device"]["state"], "pending");
    assert_eq!(device["device"]["template"], "phones");
    assert_eq!(device["device"]["platform"], "android");
    // The challenge is stored hashed only: not in any listing, not in the database file.
    let db = std::fs::read(env.data_dir().join("easgate.db")).unwrap();
    let mut wal = std::fs::read(env.data_dir().join("easgate.db-wal")).unwrap_or_default();
    wal.extend_from_slice(&db);
    assert!(
        !wal.windows(challenge.len())
            .any(|w| w == challenge.as_bytes()),
        "challenge stored in clear"
    );
    assert!(!env.snapshot().contains(challenge));
}

#[test]
fn default_template_is_the_only_one_or_the_marked_one() {
    let env = Env::new();
    env.standard_setup(); // one template: used implicitly (dev1 got it)
    env.ok(&[
        "template",
        "create",
        "laptops",
        "--ca",
        "default",
        "--subject",
        "CN={DeviceUid},OU=laptops",
        "--san",
        "upn:{UserPrincipalName}",
    ]);
    let err = env.fails(&[
        "device",
        "enroll",
        "--user",
        "alice@corp.example",
        "--platform",
        "windows",
    ]);
    assert!(err.contains("none is the default"), "{err}");
    env.ok(&[
        "template",
        "create",
        "tablets",
        "--ca",
        "default",
        "--subject",
        "CN={DeviceUid}",
        "--san",
        "upn:{UserPrincipalName}",
        "--default",
    ]);
    let v = env.json(&[
        "device",
        "enroll",
        "--user",
        "alice@corp.example",
        "--platform",
        "windows",
    ]);
    assert_eq!(v["template"], "tablets");
    let listed = env.json(&["template", "list"]);
    let defaults: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1);
}

#[test]
fn retire_wipe_and_disable_revoke_with_their_reasons() {
    let env = Env::new();
    env.standard_setup();
    env.ok(&[
        "device",
        "enroll",
        "--user",
        "alice@corp.example",
        "--platform",
        "android",
        "--uid",
        "dev2",
    ]);
    env.ok(&[
        "user",
        "add",
        "bob@corp.example",
        "--email",
        "bob@corp.example",
    ]);
    env.ok(&[
        "device",
        "enroll",
        "--user",
        "bob@corp.example",
        "--platform",
        "ios",
        "--uid",
        "bob1",
    ]);
    let a1 = issue(&env, "dev1");
    let a2 = issue(&env, "dev1");
    let a3 = issue(&env, "dev2");
    let b1 = issue(&env, "bob1");
    assert_eq!(
        env.json(&["device", "show", "dev1"])["device"]["state"],
        "enrolled"
    );

    // Retire dev1: both its certificates, nobody else's.
    let out = env.ok(&["device", "retire", "dev1"]);
    assert!(out.contains("revoked 2 certificate(s)"), "{out}");
    for serial in [&a1, &a2] {
        let c = env.json(&["cert", "show", serial]);
        assert_eq!(c["status"], "revoked");
        assert_eq!(c["revocation_reason"], "cessationOfOperation");
    }
    assert_eq!(env.json(&["cert", "show", &a3])["status"], "valid");
    let err = env.fails(&[
        "cert",
        "issue",
        "--template",
        "phones",
        "--device",
        "dev1",
        "--out-key",
        env.path("x.key").to_str().unwrap(),
        "--out",
        env.path("x.pem").to_str().unwrap(),
    ]);
    assert!(err.contains("retired"), "{err}");

    // Disable bob: affiliationChanged.
    env.ok(&["user", "disable", "bob@corp.example"]);
    let c = env.json(&["cert", "show", &b1]);
    assert_eq!(c["status"], "revoked");
    assert_eq!(c["revocation_reason"], "affiliationChanged");
    assert_eq!(
        env.json(&["user", "show", "bob@corp.example"])["disabled"],
        true
    );
    let err = env.fails(&[
        "device",
        "enroll",
        "--user",
        "bob@corp.example",
        "--platform",
        "ios",
    ]);
    assert!(err.contains("disabled"), "{err}");
    env.ok(&["user", "enable", "bob@corp.example"]);
    assert_eq!(
        env.json(&["cert", "show", &b1])["status"],
        "revoked",
        "enabling must not un-revoke"
    );

    // Wipe dev2.
    env.ok(&["device", "wipe", "dev2"]);
    assert_eq!(
        env.json(&["cert", "show", &a3])["revocation_reason"],
        "cessationOfOperation"
    );
    assert_eq!(
        env.json(&["device", "show", "dev2"])["device"]["state"],
        "wiped"
    );

    // Filters.
    let revoked = env.json(&["cert", "list", "--status", "revoked"]);
    assert_eq!(revoked.as_array().unwrap().len(), 4);
    assert_eq!(
        env.json(&["cert", "list", "--status", "valid"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        env.json(&["cert", "list", "--device", "dev1"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Audit trail names the revocations.
    let audit = env.json(&["audit", "--since", "1h"]);
    let revokes = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "cert.revoke")
        .count();
    assert_eq!(revokes, 4, "{audit}");
    assert!(env.ok(&["audit"]).contains("device.retired"));
}

#[test]
fn revoke_accepts_any_serial_notation_once() {
    let env = Env::new();
    env.standard_setup();
    let serial = issue(&env, "dev1");
    let colons: String = serial
        .to_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let out = env.ok(&["cert", "revoke", &colons, "--reason", "superseded"]);
    assert!(out.contains(&serial), "{out}");
    let c = env.json(&["cert", "show", &serial]);
    assert_eq!(c["revocation_reason"], "superseded");
    // Times are RFC 3339 strings in JSON, as in text.
    let revoked_at = c["revoked_at"].as_str().unwrap();
    assert!(
        revoked_at.starts_with("20") && revoked_at.ends_with('Z'),
        "{revoked_at}"
    );
    let err = env.fails(&["cert", "revoke", &serial]);
    assert!(err.contains("already revoked"), "{err}");
    let text = env.ok(&["cert", "list"]);
    assert!(text.contains(&serial) && text.contains("revoked"), "{text}");
}

#[test]
fn entra_script_has_both_forms_and_the_crl_urls() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail"]);
    let script = env.ok(&["ca", "entra-script", "mail"]);
    for needle in [
        "New-MgOrganizationCertificateBasedAuthConfiguration",
        "New-AzureADTrustedCertificateAuthority",
        "http://pki.corp.example:8080/crl/mail.crl",
        "http://pki.corp.example:8080/crl/mail-delta.crl",
        "DeltaCrlDistributionPoint",
        "deltaCertificateRevocationListUrl",
    ] {
        assert!(script.contains(needle), "`{needle}` missing:\n{script}");
    }
    // The embedded certificate is the CA's.
    let pem = env.ok(&["ca", "export", "mail"]);
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(script.contains(&body));
}

#[test]
fn trusted_cas_can_be_added_listed_and_removed() {
    let env = Env::new();
    let dir = env.dir.path();
    common::openssl_ok(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ext.key",
            "-out",
            "ext.pem",
            "-days",
            "30",
            "-subj",
            "/CN=External MDM CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        dir,
    );
    env.ok(&[
        "trust",
        "add",
        "mdm",
        "--cert",
        dir.join("ext.pem").to_str().unwrap(),
        "--crl-url",
        "http://crl.mdm.example/ca.crl",
        "--delta-crl-url",
        "http://crl.mdm.example/delta.crl",
    ]);
    let list = env.json(&["trust", "list"]);
    assert_eq!(list[0]["name"], "mdm");
    assert_eq!(list[0]["subject"], "CN=External MDM CA");
    assert_eq!(list[0]["crl_url"], "http://crl.mdm.example/ca.crl");
    assert!(env
        .fails(&[
            "trust",
            "add",
            "mdm",
            "--cert",
            dir.join("ext.pem").to_str().unwrap()
        ])
        .contains("already exists"));
    env.ok(&["trust", "remove", "mdm"]);
    assert_eq!(env.json(&["trust", "list"]).as_array().unwrap().len(), 0);
}

#[test]
fn entra_script_never_leaves_the_tenant_without_a_ca_and_warns_about_unreachable_crls() {
    let mut env = Env::new();
    env.ok(&["ca", "create", "mail"]);
    let script = env.ok(&["ca", "entra-script", "mail"]);
    // The old list is saved before anything is removed, and put back if adding fails.
    let at = |needle: &str| {
        script
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing:\n{script}"))
    };
    assert!(
        at("Set-Content -Path $backup")
            < at("Remove-MgOrganizationCertificateBasedAuthConfiguration")
    );
    assert!(at("New-MgOrganizationCertificateBasedAuthConfiguration -OrganizationId $orgId `\n        -BodyParameter @{ certificateAuthorities = $all }")
        < at("Remove-MgOrganizationCertificateBasedAuthConfiguration"));
    assert!(
        script.contains("certificateAuthorities = $oldCas"),
        "no restore step:\n{script}"
    );
    assert!(
        script.contains("already trusted"),
        "not idempotent:\n{script}"
    );
    assert!(!script.contains("WARNING"), "{script}");
    // CRL URLs Entra cannot reach are warned about, on stderr and in the script.
    for (url, why) in [
        ("http://127.0.0.1:8080", "loopback"),
        ("http://10.1.2.3:8080", "private"),
        ("http://pki:8080", "single-label"),
    ] {
        env.public_url = url.to_string();
        let r = env.run(&["ca", "entra-script", "mail"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr.contains("warning:") && r.stderr.contains(why),
            "{url}: {}",
            r.stderr
        );
        assert!(r.stdout.contains("# WARNING:"), "{url}");
    }
}
