//! Bad input gets exit 1 with an `error:` line (or 2 for usage errors) and changes nothing:
//! every listing, the audit trail included, is the same before and after; on SQLite and on
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pg::TestSchema;
use common::{openssl_ok, Env};

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    refused_and_unchanged(Env::new());
}

/// The same on PostgreSQL: every refusal happens before anything is written there too.
#[test]
fn bad_input_is_refused_and_changes_nothing_on_postgresql() {
    let Some(schema) = TestSchema::fresh("bad_input_is_refused_and_changes_nothing_on_postgresql")
    else {
        return;
    };
    let env = Env::bare_with_database(&schema.url);
    env.ok(&["init", "--no-ca"]);
    refused_and_unchanged(env);
}

fn refused_and_unchanged(env: Env) {
    env.standard_setup();
    env.ok(&["group", "add", "sales"]);
    let dir = env.dir.path();
    let p = |name: &str| dir.join(name).display().to_string();

    // Files of every kind of wrongness.
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    std::fs::write(dir.join("garbage.pem"), "-----BEGIN CERTIFICATE REQUEST-----\n%%%not base64%%%\n-----END CERTIFICATE REQUEST-----\n").unwrap();
    std::fs::write(
        dir.join("garbage.der"),
        [0x30, 0x82, 0xff, 0xff, 0x01, 0x02],
    )
    .unwrap();
    std::fs::write(
        dir.join("wrong-label.pem"),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    openssl_ok(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "k.pem",
        ],
        dir,
    );
    openssl_ok(
        &[
            "req", "-new", "-key", "k.pem", "-subj", "/CN=x", "-outform", "DER", "-out", "good.der",
        ],
        dir,
    );
    let mut tampered = std::fs::read(dir.join("good.der")).unwrap();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x55; // inside the signature
    std::fs::write(dir.join("bad-signature.der"), tampered).unwrap();
    openssl_ok(
        &[
            "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "weak.key", "-subj",
            "/CN=x", "-out", "weak.csr",
        ],
        dir,
    );
    openssl_ok(
        &[
            "req",
            "-x509",
            "-key",
            "k.pem",
            "-subj",
            "/CN=leaf",
            "-days",
            "1",
            "-addext",
            "basicConstraints=CA:FALSE",
            "-out",
            "leaf.pem",
        ],
        dir,
    );

    let before = env.snapshot();
    let out = p("out.pem");
    let issue_with = |csr: &str| {
        s(&[
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            "dev1",
            "--csr",
            &p(csr),
            "--out",
            &out,
        ])
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            issue_with("empty.pem"),
            "empty",
        ),
        (
            issue_with("garbage.pem"),
            "PEM",
        ),
        (
            issue_with("garbage.der"),
            "PKCS#10",
        ),
        (
            issue_with("wrong-label.pem"),
            "CERTIFICATE REQUEST",
        ),
        (
            issue_with("bad-signature.der"),
            "signature",
        ),
        (
            issue_with("weak.csr"),
            "RSA-1024",
        ),
        (
            issue_with("missing.csr"),
            "missing.csr",
        ),
        (
            s(&[
                "cert",
                "issue",
                "--template",
                "nope",
                "--device",
                "dev1",
                "--csr",
                &p("good.der"),
                "--out",
                &out,
            ]),
            "template `nope`",
        ),
        (
            s(&[
                "cert",
                "issue",
                "--template",
                "phones",
                "--device",
                "nope",
                "--csr",
                &p("good.der"),
                "--out",
                &out,
            ]),
            "device `nope`",
        ),
        (
            s(&[
                "cert",
                "issue",
                "--template",
                "phones",
                "--device",
                "dev1",
                "--csr",
                &p("good.der"),
                "--out",
                &p("no/such/dir/out.pem"),
            ]),
            "directory",
        ),
        (w("ca create default"), "already exists"),
        (s(&["ca", "create", "bad name"]), "invalid CA name"),
        (
            w("ca create x --subject XX=1"),
            "unknown attribute type",
        ),
        (
            w("ca create x --validity-days 0"),
            "validity",
        ),
        (w("ca show nope"), "CA `nope` does not exist"),
        (
            w("template create t2 --ca nope --subject CN={DeviceUid}"),
            "CA `nope`",
        ),
        (
            w("template create t2 --ca default --subject CN={DeviceId}"),
            "unknown lookup value `{DeviceId}`",
        ),
        (
            w("template create t2 --ca default --subject CN={DeviceUid} --san fax:123"),
            "unknown type",
        ),
        (
            w("template create t2 --ca default --subject CN={DeviceUid} --san email:{Mail}"),
            "unknown lookup value",
        ),
        (
            w("template create t2 --ca default --subject CN={DeviceUid} --validity-days 10 --renew-before-days 10"),
            "renew-before-days",
        ),
        (
            w("template create phones --ca default --subject CN={DeviceUid}"),
            "already exists",
        ),
        (
            w("user add not-a-upn --email a@corp.example"),
            "invalid UPN",
        ),
        (
            s(&["user", "add", "bob@corp.example", "--email", "bob at corp"]),
            "invalid email",
        ),
        (
            w("user add alice@corp.example --email alice@corp.example"),
            "already exists",
        ),
        (
            w("user add ALICE@corp.example --email alice@corp.example"),
            "already exists",
        ),
        (
            w("user add bob@corp.example --email bob@corp.example --group nope"),
            "group `nope`",
        ),
        (
            w("user disable nobody@corp.example"),
            "does not exist",
        ),
        (w("group add sales"), "already exists"),
        (
            w("device enroll --user nobody@corp.example --platform ios"),
            "user `nobody@corp.example`",
        ),
        (
            w("device enroll --user alice@corp.example --platform ios --template nope"),
            "template `nope`",
        ),
        (
            w("device enroll --user alice@corp.example --platform ios --uid dev1"),
            "already exists",
        ),
        (
            w("device enroll --user alice@corp.example --platform ios --uid a/b"),
            "invalid device uid",
        ),
        (w("device retire nope"), "does not exist"),
        (
            s(&["trust", "add", "ext", "--cert", &p("garbage.der")]),
            "certificate",
        ),
        (
            s(&["trust", "add", "ext", "--cert", &p("leaf.pem")]),
            "not a CA certificate",
        ),
        (
            s(&[
                "trust",
                "add",
                "ext",
                "--cert",
                &p("leaf.pem"),
                "--crl-url",
                "ftp://x/y.crl",
            ]),
            "--crl-url",
        ),
        (w("trust remove nope"), "does not exist"),
        (w("cert revoke XYZ"), "invalid serial"),
        (w("cert revoke 0123456789ABCDEF"), "does not exist"),
        (w("cert show 0123456789abcdef"), "does not exist"),
        (w("cert list --device nope"), "device `nope`"),
        (w("audit --since forever"), "invalid --since `forever`"),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = env.fails(&args);
        assert!(
            err.contains(expected),
            "easgate {args:?}: expected `{expected}` in:\n{err}"
        );
    }
    assert!(
        !dir.join("out.pem").exists(),
        "a failed issuance wrote its output file"
    );
    assert_eq!(
        before,
        env.snapshot(),
        "a refused command changed the store"
    );

    // Usage errors exit 2.
    for args in [
        &[
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            "dev1",
            "--out",
            "x.pem",
        ][..],
        &["ca", "create", "x", "--key", "rsa-1024"],
        &[
            "device",
            "enroll",
            "--user",
            "alice@corp.example",
            "--platform",
            "symbian",
        ],
        &["cert", "revoke", "01", "--reason", "becauseISaySo"],
        &[
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            "dev1",
            "--csr",
            "x",
            "--out",
            "y",
            "--p12",
            "z.p12",
            "--p12-password",
            "p",
        ],
        &["no-such-command"],
    ] {
        let r = env.run(args);
        assert_eq!(
            r.code, 2,
            "easgate {args:?} should be a usage error:\n{}",
            r.stderr
        );
    }
    assert_eq!(before, env.snapshot(), "a usage error changed the store");
}

fn s(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A command line of words without spaces, as `s` takes it.
fn w(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}
