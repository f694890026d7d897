//! The binary on a PostgreSQL database: `--database-url postgres://…?schema=…` through init, CA,
//! user, device, issuance, revocation, listing, doctor and `serve` (health and a published
//! CRL). Runs when `EASGATE_TEST_POSTGRES_URL` names a server (`scripts/test` sets it), in a
//! fresh schema dropped at the end; otherwise says it was skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pg::TestSchema;
use common::{eventually, http, openssl_ok, Env};

#[test]
fn the_whole_lifecycle_runs_on_postgresql() {
    let Some(schema) = TestSchema::fresh("the_whole_lifecycle_runs_on_postgresql") else {
        return;
    };
    let env = Env::bare_with_database(&schema.url);

    env.ok(&["init", "--no-ca"]);
    assert!(
        !env.data_dir().join("easgate.db").exists(),
        "a SQLite file was made although the database is PostgreSQL"
    );
    env.ok(&["ca", "create", "default"]);
    env.phones_template("default", "CN={DeviceUid}");
    env.add_alice();
    let (_, _, kept) = env.issue_device_cert("alice@corp.example", "dev1");
    let (_, _, revoked) = env.issue_device_cert("alice@corp.example", "dev2");
    assert_ne!(kept, revoked);
    env.ok(&["cert", "revoke", &revoked, "--reason", "keyCompromise"]);
    let certs = env.json(&["cert", "list"]);
    let certs = certs.as_array().unwrap();
    assert_eq!(certs.len(), 2, "{certs:?}");
    let status = |serial: &str| {
        certs
            .iter()
            .find(|c| c["serial"] == serial)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status(&kept), Some("valid".into()));
    assert_eq!(status(&revoked), Some("revoked".into()));
    // Case-insensitive UPNs, as on SQLite.
    assert_eq!(
        env.json(&["user", "show", "ALICE@corp.example"])["upn"],
        "alice@corp.example"
    );
    // doctor looks at no SQLite file for a PostgreSQL database.
    let doctor = env.run(&["doctor"]);
    assert!(
        !doctor.stdout.contains("easgate.db"),
        "{}\n{}",
        doctor.stdout,
        doctor.stderr
    );

    let server = env.serve(&[]);
    let (code, _, body) = http(server.admin, "GET", "/healthz", b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok");
    let dir = env.dir.path();
    let published = env.json(&["crl", "generate", "default"]);
    let number = published["number"].as_u64().unwrap();
    assert!(
        eventually(5.0, || {
            let (code, _, body) = http(server.public, "GET", "/crl/default.crl", b"");
            if code != 200 {
                return false;
            }
            std::fs::write(dir.join("pg.crl"), body).unwrap();
            let text = openssl_ok(
                &["crl", "-inform", "DER", "-in", "pg.crl", "-noout", "-text"],
                dir,
            );
            number > 0 && text.contains(&revoked)
        }),
        "the CRL with the revoked certificate was not served:\n{}",
        server.log_text()
    );
}
