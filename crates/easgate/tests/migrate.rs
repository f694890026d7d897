//! `easgate migrate --to postgres://…` with the real binary: a realistic SQLite install (CA
//! with its SCEP RA, template, users and groups, devices, issued and revoked certificates,
//! full and delta CRLs, rules, overrides, a profile, tokens, a trusted CA, partnerships,
//! bindings, unbound challenges, renewals, a SCEP transaction, the audit trail: every table has
//! rows) is copied into a fresh PostgreSQL schema; the
//! verification output is checked, then the same data directory is used on PostgreSQL and
//! everything shows and continues as on SQLite. A second migrate into the now non-empty target
//! is refused and changes nothing. Runs when `EASGATE_TEST_POSTGRES_URL` names a server
//! (`scripts/test` sets it), each test in schemas of its own dropped at the end; the usage
//! errors are checked without one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::pg::TestSchema;
use common::Env;

fn sqlite(env: &Env, sql: &str) {
    let out = std::process::Command::new("sqlite3")
        .arg(env.data_dir().join("easgate.db"))
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The install to migrate: everything the CLI makes, plus the rows only a running gateway or
/// the NDES page would write (inserted with sqlite3, mixed case where SQLite compares NOCASE).
fn realistic_install() -> (Env, String) {
    let env = Env::new();
    env.ok(&["ca", "create", "default"]);
    // The EC CA's SCEP RA (a service key, sealed) is made on first `ca show`.
    env.ok(&["ca", "show", "default"]);
    env.ok(&["ca", "set-scep-des", "default", "--refuse"]);
    env.phones_template("default", "CN={DeviceUid}");
    env.ok(&["group", "add", "Sales"]);
    env.ok(&["group", "add", "staff"]);
    env.add_alice();
    env.ok(&["user", "set", "alice@corp.example", "--add-group", "Sales"]);
    env.ok(&[
        "user",
        "add",
        "Bob@corp.example",
        "--email",
        "bob@mail.example",
        "--group",
        "staff",
    ]);
    env.ok(&[
        "user",
        "add",
        "carol@corp.example",
        "--email",
        "carol@mail.example",
    ]);
    env.issue_device_cert("alice@corp.example", "dev1");
    let (_, _, revoked) = env.issue_device_cert("alice@corp.example", "dev2");
    env.ok(&["cert", "revoke", &revoked, "--reason", "keyCompromise"]);
    env.issue_device_cert("Bob@corp.example", "dev3");
    env.ok(&["device", "retire", "dev3"]);
    env.enroll("carol@corp.example", "android", "dev4", &[]);
    env.ok(&["user", "disable", "carol@corp.example"]);
    env.ok(&["crl", "generate", "default"]);
    env.ok(&["crl", "generate", "default", "--delta"]);
    env.ok(&[
        "policy",
        "add",
        "sales-android",
        "--priority",
        "50",
        "--group",
        "Sales",
        "--platform",
        "android",
        "--action",
        "quarantine",
    ]);
    env.ok(&["policy", "default", "block"]);
    env.ok(&["eas", "block", "LostPhone01", "--reason", "lost on a train"]);
    env.ok(&["eas", "allow", "kiosk7", "--unmanaged"]);
    env.ok(&[
        "profile",
        "create",
        "ios-mail",
        "--platform",
        "ios",
        "--template",
        "phones",
        "--eas-host",
        "mail.corp.example",
        "--account-name",
        "Corp mail",
        "--group",
        "Sales",
    ]);
    // A CA of another install, trusted.
    let other = Env::new();
    other.ok(&["ca", "create", "partner"]);
    let partner = other.export_ca("partner");
    env.ok(&[
        "trust",
        "add",
        "partner-mdm",
        "--cert",
        partner.to_str().unwrap(),
        "--crl-url",
        "http://pki.partner.example/partner.crl",
    ]);
    env.ok(&["token", "create", "helpdesk-bob", "--role", "helpdesk"]);
    env.ok(&["token", "create", "intune", "--role", "enroller"]);
    env.ok(&["token", "revoke", "intune"]);
    let dev1: i64 = 1;
    sqlite(
        &env,
        &format!(
            "INSERT INTO eas_partnerships (user, eas_device_id, suspect, device_type, client, \
             platform, first_seen, last_seen, cert_serial, device_state, access_state, access_reason, \
             policy_applied, policy_key, policy_status, policy_updated_at) \
             VALUES ('alice@corp.example', 'ABCdef1', 0, 'iPhone', 'native', 'ios', 1, 2, NULL, \
             'managed', 'allow', 'rule allow-managed', 'strict', 2147483647, 'AppliedInFull', 2), \
             ('Bob@corp.example', 'abcDEF2', 1, NULL, 'outlook', 'other', 3, 4, NULL, 'unmanaged', \
             'refuse', 'certificate required', NULL, NULL, NULL, NULL); \
             INSERT INTO certificate_bindings VALUES ('0A1B', 'ABCdef1', 'alice@corp.example', 5); \
             INSERT INTO unbound_challenges (hash, ca_id, created_at, expires_at, used_at, device_id) \
             VALUES ('{}', 1, 10, 3610, 20, {dev1}), ('{}', NULL, 11, 3611, NULL, NULL); \
             INSERT INTO renewals (device_id, serial, created_at, cleared_at) VALUES ({dev1}, 'FF01', 30, NULL); \
             INSERT INTO scep_transactions VALUES (1, 'TxN-1', '{}', 'FF01', 40);",
            "ab".repeat(32),
            "cd".repeat(32),
            "ef".repeat(32)
        ),
    );
    // EAS Provision: a policy, and a wipe of a DeviceId the gateway has seen.
    env.ok(&[
        "eas-policy",
        "create",
        "strict",
        "--require-passcode",
        "--min-passcode-length",
        "6",
        "--group",
        "Sales",
        "--default",
    ]);
    env.ok(&["eas", "wipe", "abcdef1"]);
    (env, revoked)
}

/// The answer of one query on the SQLite database.
fn sqlite_text(env: &Env, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(env.data_dir().join("easgate.db"))
        .arg(sql)
        .output()
        .expect("run sqlite3");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Rows per table in the SQLite database, for comparing with the report.
fn sqlite_count(env: &Env, table: &str) -> u64 {
    sqlite_text(env, &format!("SELECT count(*) FROM \"{table}\""))
        .parse()
        .unwrap()
}

#[test]
fn migrate_copies_a_sqlite_install_to_postgresql_and_it_works_there() {
    let Some(schema) =
        TestSchema::fresh("migrate_copies_a_sqlite_install_to_postgresql_and_it_works_there")
    else {
        return;
    };
    let (mut env, revoked) = realistic_install();
    let certs_before = env.json(&["cert", "list"]);
    let last_crl = env.json(&["crl", "generate", "default"])["number"]
        .as_i64()
        .unwrap();
    let before_crl = env.snapshot();

    let target = schema.url.clone();
    let run = env.run(&["migrate", "--to", &target, "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let tables = report["tables"].as_array().unwrap();
    let names: Vec<&str> = tables
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    for expected in [
        "settings",
        "cas",
        "users",
        "groups",
        "user_groups",
        "devices",
        "certificates",
        "crls",
        "crl_numbers",
        "audit_events",
        "changes",
        "access_rules",
        "eas_overrides",
        "eas_partnerships",
        "certificate_bindings",
        "service_keys",
        "api_tokens",
        "unbound_challenges",
        "renewals",
        "eas_policies",
        "eas_wipes",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for t in tables {
        let name = t["table"].as_str().unwrap();
        let rows = sqlite_count(&env, name);
        assert_eq!(t["source_rows"], rows, "{name}: {t}");
        assert_eq!(t["target_rows"], rows, "{name}: {t}");
        assert_eq!(t["source_checksum"], t["target_checksum"], "{name}");
        assert_eq!(t["source_checksum"].as_str().unwrap().len(), 64);
        assert_eq!(t["ok"], true, "{name}");
        // Every table has rows, so every column's mapping is exercised.
        assert!(rows > 0, "{name} should not be empty in this install");
    }
    // Progress per table on stderr.
    assert!(
        run.stderr.contains("certificates: ") && run.stderr.contains("rows copied"),
        "{}",
        run.stderr
    );
    // Ids are kept (the audit trail's and the change feed's numbering with them).
    for (table, key) in [
        ("audit_events", "id"),
        ("changes", "revision"),
        ("devices", "id"),
    ] {
        let sql =
            format!("SELECT group_concat({key}) FROM (SELECT {key} FROM {table} ORDER BY {key})");
        let pg = format!("SELECT string_agg({key}::text, ',' ORDER BY {key}) FROM {table}");
        assert_eq!(sqlite_text(&env, &sql), schema.psql(&pg), "{table}");
    }

    // The same data directory on PostgreSQL shows the same state.
    env.database_url = Some(target.clone());
    assert_eq!(
        env.snapshot(),
        before_crl,
        "PostgreSQL shows other data than SQLite"
    );
    let certs_after = env.json(&["cert", "list"]);
    assert_eq!(
        certs_after.as_array().unwrap().len(),
        certs_before.as_array().unwrap().len()
    );
    // The CA key (sealed as stored) opens with the same master key: issuance works.
    let (_, _, new_serial) = env.issue_device_cert("alice@corp.example", "dev5");
    assert!(certs_after
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["serial"] != new_serial.as_str()));
    env.ok(&["ca", "show", "default"]);
    // CRL numbering continues.
    let next = env.json(&["crl", "generate", "default"])["number"]
        .as_i64()
        .unwrap();
    assert_eq!(next, last_crl + 1);
    // The old audit trail is there.
    let audit = env.ok(&["audit", "--since", "1d", "--action", "cert.revoke"]);
    assert!(audit.contains(&revoked), "{audit}");
    // Booleans and NOCASE columns behave as on SQLite.
    assert_eq!(
        env.json(&["user", "show", "bob@CORP.example"])["upn"],
        "Bob@corp.example"
    );
    assert_eq!(
        env.json(&["user", "show", "carol@corp.example"])["disabled"],
        true
    );
    env.ok(&["eas", "show", "abcdef1"]);
    // EAS Provision records read back through the PostgreSQL backend.
    let shown = env.json(&["eas", "show", "abcDEF1"]);
    assert_eq!(shown["wipe"]["state"], "pending", "{shown}");
    assert_eq!(
        shown["partnerships"][0]["policy_applied"], "strict",
        "{shown}"
    );
    assert_eq!(
        shown["partnerships"][0]["policy_key"], 2147483647_i64,
        "{shown}"
    );
    let policy = env.json(&["eas-policy", "show", "strict"]);
    assert_eq!(
        policy["settings"]["MinDevicePasswordLength"], "6",
        "{policy}"
    );
    assert_eq!(policy["is_default"], true, "{policy}");
    env.ok(&["group", "add", "new-group"]);
    env.ok(&[
        "policy",
        "add",
        "after-migrate",
        "--action",
        "block",
        "--platform",
        "windows",
    ]);

    // A second migrate into the now non-empty target is refused and changes nothing.
    let after = env.snapshot();
    let audit_rows = schema.psql("SELECT count(*) FROM audit_events");
    env.database_url = None;
    let err = env.fails(&["migrate", "--to", &target]);
    assert!(err.contains("already holds easgate data"), "{err}");
    env.database_url = Some(target.clone());
    assert_eq!(env.snapshot(), after);
    assert_eq!(schema.psql("SELECT count(*) FROM audit_events"), audit_rows);
}

#[test]
fn migrate_text_output_is_a_verification_table_with_stable_checksums() {
    let Some(first) =
        TestSchema::fresh("migrate_text_output_is_a_verification_table_with_stable_checksums")
    else {
        return;
    };
    let Some(second) =
        TestSchema::fresh("migrate_text_output_is_a_verification_table_with_stable_checksums")
    else {
        return;
    };
    let env = Env::new();
    env.standard_setup();
    // A target whose schema was already made by easgate (but never used) counts as empty.
    let fresh = env.run(&["--database-url", &second.url, "user", "list"]);
    assert_eq!(fresh.code, 0, "{}", fresh.stderr);
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["migrate", "--to", &first.url, "--json"])).unwrap();
    let text = env.ok(&["migrate", "--to", &second.url]);
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["table", "rows", "checksum", "ok"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), json["tables"].as_array().unwrap().len());
    for (row, t) in rows.iter().zip(json["tables"].as_array().unwrap()) {
        assert_eq!(row[0], t["table"]);
        assert_eq!(row[1], t["source_rows"].to_string());
        // The same data gives the same checksum in another target.
        assert_eq!(row[2], t["source_checksum"]);
        assert_eq!(row[3], "ok");
    }
}

#[test]
fn migrate_refuses_targets_it_cannot_use() {
    let env = Env::new();
    env.standard_setup();
    // Not PostgreSQL: a usage error (exit 2), nothing opened; a password is not echoed.
    let run = env.run(&["migrate", "--to", "mysql://u:secret@db/easgate"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--to must be a PostgreSQL URL"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("secret"), "{}", run.stderr);
    // The source must be SQLite.
    let run = env.run(&[
        "--database-url",
        "postgres://u@127.0.0.1:1/x",
        "migrate",
        "--to",
        "postgres://u@127.0.0.1:1/y",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("migrate copies from SQLite"),
        "{}",
        run.stderr
    );
    // A bad schema name and an unreachable server: runtime errors (exit 1), clear messages.
    let err = env.fails(&[
        "migrate",
        "--to",
        "postgres://u:pw@127.0.0.1:1/x?schema=a-b",
    ]);
    assert!(err.contains("schema `a-b`"), "{err}");
    assert!(!err.contains(":pw@"), "{err}");
    let err = env.fails(&["migrate", "--to", "postgres://u@127.0.0.1:1/x"]);
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1:1"),
        "{err}"
    );
    // No data directory: refused like every command, nothing made.
    let bare = Env::bare();
    let err = bare.fails(&["migrate", "--to", "postgres://u@127.0.0.1:1/x"]);
    assert!(err.contains("no easgate data directory"), "{err}");
    assert!(!bare.data_dir().exists());
}

#[test]
fn migrate_that_fails_midway_leaves_the_target_empty() {
    let Some(schema) = TestSchema::fresh("migrate_that_fails_midway_leaves_the_target_empty")
    else {
        return;
    };
    let env = Env::new();
    env.standard_setup();
    env.issue_device_cert("alice@corp.example", "dev2");
    // A value PostgreSQL's BOOLEAN cannot take exactly (SQLite keeps whatever it is given),
    // in a table copied after CAs, users and devices: those rows are already inserted when the
    // copy stops.
    sqlite(&env, "INSERT INTO eas_overrides \
                  (eas_device_id, action, reason, created_at, unmanaged) VALUES ('odd', 'allow', NULL, 1, 2)");
    let err = env.fails(&["migrate", "--to", &schema.url]);
    assert!(err.contains("eas_overrides"), "{err}");
    assert!(err.contains("unmanaged"), "{err}");
    assert!(err.contains("not a boolean"), "{err}");
    for table in [
        "cas",
        "users",
        "devices",
        "certificates",
        "audit_events",
        "eas_overrides",
    ] {
        assert_eq!(
            schema.psql(&format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }
    // Fixed, the same target takes the copy: it is still empty.
    sqlite(
        &env,
        "DELETE FROM eas_overrides WHERE eas_device_id = 'odd'",
    );
    let report: serde_json::Value =
        serde_json::from_str(&env.ok(&["migrate", "--to", &schema.url, "--json"])).unwrap();
    assert_eq!(report["ok"], true);
}

#[test]
fn migrate_whose_verification_finds_a_difference_rolls_back() {
    let Some(schema) =
        TestSchema::fresh("migrate_whose_verification_finds_a_difference_rolls_back")
    else {
        return;
    };
    let env = Env::new();
    env.standard_setup();
    // The target's schema made by easgate (still empty), with a trigger that alters what the
    // copy writes into `audit_events`: the verification must see it.
    let made = env.run(&["--database-url", &schema.url, "user", "list"]);
    assert_eq!(made.code, 0, "{}", made.stderr);
    schema.psql(
        "CREATE FUNCTION easgate_test_alter() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN NEW.detail := NEW.detail || ' (altered)'; RETURN NEW; END $$; \
         CREATE TRIGGER easgate_test_alter BEFORE INSERT ON audit_events \
         FOR EACH ROW EXECUTE FUNCTION easgate_test_alter();",
    );
    let run = env.run(&["migrate", "--to", &schema.url]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("audit_events "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(line.ends_with("MISMATCH"), "{line}");
    assert!(
        run.stdout
            .lines()
            .filter(|l| l.starts_with("cas "))
            .all(|l| l.ends_with(" ok")),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error: verification failed for audit_events"),
        "{}",
        run.stderr
    );
    for table in ["settings", "cas", "certificates", "audit_events"] {
        assert_eq!(
            schema.psql(&format!("SELECT count(*) FROM {table}")),
            "0",
            "{table}"
        );
    }
    assert_eq!(
        schema.psql("SELECT count(*) FROM access_rules"),
        "1",
        "the seed rule is back"
    );
}
