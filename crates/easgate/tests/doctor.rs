//! `cert doctor` against certificates OpenSSL made: each broken property fails its own line.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{openssl_ok, Env};

/// A foreign CA made by OpenSSL, with an `openssl ca` setup able to set any validity window.
fn foreign_ca(dir: &Path) {
    openssl_ok(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "foreign.key",
            "-out",
            "foreign.pem",
            "-days",
            "365",
            "-subj",
            "/CN=Foreign Corp CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
    std::fs::create_dir_all(dir.join("newcerts")).unwrap();
    std::fs::write(dir.join("index.txt"), "").unwrap();
    std::fs::write(dir.join("serial"), "1000\n").unwrap();
    std::fs::write(
        dir.join("ca.cnf"),
        "[ca]\ndefault_ca = foreign\n[foreign]\ndir = .\ndatabase = index.txt\nnew_certs_dir = newcerts\n\
         serial = serial\ncertificate = foreign.pem\nprivate_key = foreign.key\ndefault_md = sha256\n\
         policy = any\nunique_subject = no\ncopy_extensions = none\n[any]\ncommonName = supplied\n\
         [good]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage = clientAuth\nsubjectAltName = email:carol@corp.example,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:carol@corp.example\n\
         [no_upn]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n\
         subjectAltName = email:carol@corp.example\n\
         [no_client_auth]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n\
         subjectAltName = email:carol@corp.example,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:carol@corp.example\n",
    )
    .unwrap();
}

/// Issue `name` from the foreign CA with extension section `ext` and the given window.
fn foreign_cert(dir: &Path, name: &str, ext: &str, start: &str, end: &str) {
    openssl_ok(
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
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
    openssl_ok(
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-extensions",
            ext,
            "-startdate",
            start,
            "-enddate",
            end,
            "-in",
            &format!("{name}.csr"),
            "-out",
            &format!("{name}.pem"),
            "-notext",
        ],
        dir,
    );
}

fn line<'a>(output: &'a str, check: &str) -> &'a str {
    output
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check))
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{output}"))
}

fn doctor(env: &Env, file: &Path) -> (i32, String, String) {
    let r = env.run(&["cert", "doctor", file.to_str().unwrap()]);
    (r.code, r.stdout, r.stderr)
}

#[test]
fn doctor_fails_each_openssl_made_defect_on_its_own_line() {
    let env = Env::new();
    env.standard_setup();
    let dir = env.dir.path();
    foreign_ca(dir);
    foreign_cert(dir, "good", "good", "20250101000000Z", "20991231000000Z");
    foreign_cert(
        dir,
        "no_upn",
        "no_upn",
        "20250101000000Z",
        "20991231000000Z",
    );
    foreign_cert(
        dir,
        "no_client_auth",
        "no_client_auth",
        "20250101000000Z",
        "20991231000000Z",
    );
    foreign_cert(dir, "expired", "good", "20200101000000Z", "20210101000000Z");

    // From a foreign CA: everything else is right, the chain line says why it fails.
    let (code, out, err) = doctor(&env, &dir.join("good.pem"));
    assert_eq!(code, 1, "{out}");
    assert!(err.starts_with("error: "), "{err}");
    // One failed check (the chain); the skipped revocation check is not counted as a failure.
    assert!(err.contains(": 1 check(s) failed"), "{err}");
    assert!(line(&out, "chain").starts_with("FAIL"), "{out}");
    assert!(line(&out, "chain").contains("Foreign Corp CA"), "{out}");
    assert!(line(&out, "revocation").starts_with("SKIP"), "{out}");
    for ok in [
        "parse",
        "validity",
        "eku-client-auth",
        "key-usage",
        "san-email",
        "san-upn",
        "key-strength",
        "signature-algorithm",
    ] {
        assert!(line(&out, ok).starts_with("PASS"), "{ok}: {out}");
    }

    let (code, out, _) = doctor(&env, &dir.join("no_upn.pem"));
    assert_eq!(code, 1);
    assert!(line(&out, "san-upn").starts_with("FAIL"), "{out}");
    assert!(
        line(&out, "san-upn").contains("1.3.6.1.4.1.311.20.2.3"),
        "{out}"
    );
    assert!(line(&out, "san-email").starts_with("PASS"), "{out}");
    // Another CA's certificate: no advice about easgate's templates.
    assert!(!out.contains("template"), "{out}");
    assert!(
        line(&out, "san-upn").contains("the CA that issued it"),
        "{out}"
    );

    let (code, out, _) = doctor(&env, &dir.join("no_client_auth.pem"));
    assert_eq!(code, 1);
    assert!(line(&out, "eku-client-auth").starts_with("FAIL"), "{out}");
    assert!(
        line(&out, "eku-client-auth").contains("serverAuth"),
        "{out}"
    );
    assert!(line(&out, "san-upn").starts_with("PASS"), "{out}");

    let (code, out, _) = doctor(&env, &dir.join("expired.pem"));
    assert_eq!(code, 1);
    assert!(line(&out, "validity").starts_with("FAIL"), "{out}");
    assert!(
        line(&out, "validity").contains("expired on 2021-01-01"),
        "{out}"
    );

    // Garbage is one clear error, not a crash and not a report of ten lines.
    std::fs::write(
        dir.join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(dir.join("garbage.txt"), "hello, I am not a certificate\n").unwrap();
    for garbage in ["garbage.pem", "garbage.txt"] {
        let (code, out, err) = doctor(&env, &dir.join(garbage));
        assert_eq!(code, 1);
        assert!(out.is_empty(), "{out}");
        assert!(
            err.starts_with("error: not a certificate (PEM or DER)"),
            "{err}"
        );
    }
}

#[test]
fn doctor_on_our_own_ca_certificate_says_what_it_is_without_alarms() {
    let env = Env::new();
    env.standard_setup();
    let ca = env.export_ca("default");
    let (code, out, err) = doctor(&env, &ca);
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("in use elsewhere"), "{out}");
    assert!(line(&out, "chain").contains("CA `default` itself"), "{out}");
    assert!(line(&out, "revocation").starts_with("SKIP"), "{out}");
    assert!(
        line(&out, "key-usage").contains("not a device certificate"),
        "{out}"
    );
    assert!(!out.contains("template"), "{out}");
    assert!(err.contains(": 1 check(s) failed"), "{err}");
}

#[test]
fn doctor_passes_our_certificate_until_it_is_revoked() {
    let env = Env::new();
    env.standard_setup();
    let dir = env.dir.path();
    let cert = dir.join("dev1.pem");
    let issued = env.json(&[
        "cert",
        "issue",
        "--template",
        "phones",
        "--device",
        "dev1",
        "--out-key",
        dir.join("k.pem").to_str().unwrap(),
        "--out",
        cert.to_str().unwrap(),
    ]);
    let (code, out, _) = doctor(&env, &cert);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.lines().filter(|l| l.starts_with("PASS")).count() == 10,
        "{out}"
    );

    // Checking against another CA fails the chain line.
    env.ok(&["ca", "create", "other"]);
    let r = env.run(&["cert", "doctor", cert.to_str().unwrap(), "--ca", "other"]);
    assert_eq!(r.code, 1);
    assert!(
        line(&r.stdout, "chain").contains("is not CA `other`"),
        "{}",
        r.stdout
    );

    let serial = issued["serial"].as_str().unwrap();
    env.ok(&["cert", "revoke", serial, "--reason", "keyCompromise"]);
    let (code, out, _) = doctor(&env, &cert);
    assert_eq!(code, 1);
    assert!(line(&out, "revocation").starts_with("FAIL"), "{out}");
    assert!(line(&out, "revocation").contains("keyCompromise"), "{out}");

    let json = env.run(&["cert", "doctor", cert.to_str().unwrap(), "--json"]);
    assert_eq!(json.code, 1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["fit"], false);
    assert_eq!(v["checks"].as_array().unwrap().len(), 10);
}
