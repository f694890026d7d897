//! The binary on a PostgreSQL database: `--database-url postgres://…?schema=…` through init, CA,
//! user, device, issuance, revocation, listing, doctor and `serve` (health and a published
//! CRL). Runs when `EASGATE_TEST_POSTGRES_URL` names a server (`scripts/test` sets it), in a
//! fresh schema dropped at the end; otherwise says it was skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{eventually, http, openssl_ok, Env};

const VAR: &str = "EASGATE_TEST_POSTGRES_URL";

/// Drops the test's schema when the test ends, passed or not (best effort, through psql's
/// absence-tolerant route: the binary's own store has no "drop" call).
struct Schema {
    base: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(&self.base)
            .args([
                "-qc",
                &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
            ])
            .output();
    }
}

#[test]
fn the_whole_lifecycle_runs_on_postgresql() {
    let Ok(base) = std::env::var(VAR) else {
        println!("skipped the_whole_lifecycle_runs_on_postgresql: {VAR} is not set");
        return;
    };
    let name = format!(
        "easgate_e2e_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let _schema = Schema {
        base: base.clone(),
        name: name.clone(),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let env = Env::bare_with_database(&format!("{base}{sep}schema={name}"));

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
