//! Day-two administration through the real binary: no store made by accident, `init`, output
//! cut short by the reader, and the database readable by its owner only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::Env;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn commands_other_than_serve_and_init_never_make_a_data_directory() {
    let env = Env::bare();
    let data = env.data_dir();
    for args in [
        &["user", "list"][..],
        &["ca", "create", "corp"],
        &["eas", "list", "--json"],
        &["policy", "list"],
    ] {
        let err = env.fails(args);
        assert!(
            err.contains(&format!(
                "error: no easgate data directory at {} (pass --data-dir or EASGATE_DATA_DIR, or run easgate serve/init first)",
                data.display()
            )),
            "{args:?}: {err}"
        );
        assert!(!data.exists(), "{args:?} made {}", data.display());
    }
    // `init --no-ca`: the directory, master key and database, nothing more.
    let r = env.run(&["init", "--no-ca"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("created master key"), "{}", r.stderr);
    assert_eq!(env.json(&["ca", "list"]), serde_json::json!([]));
    let again = env.ok(&["init", "--no-ca"]);
    assert!(again.contains("already initialised"), "{again}");
    // A full `init` makes what `serve` makes on its first start.
    let r = env.run(&["init"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for made in [
        "created CA `default`",
        "admin token",
        "gateway TLS certificate",
    ] {
        assert!(
            r.stderr.contains(made),
            "`{made}` not reported: {}",
            r.stderr
        );
    }
    assert!(data.join("admin-token").exists() && data.join("gateway.pem").exists());
    assert!(env.ok(&["init"]).contains("already initialised"));
}

#[test]
fn the_database_is_readable_by_its_owner_only() {
    let env = Env::bare();
    env.ok(&["init"]);
    let data = env.data_dir();
    assert_eq!(mode(&data.join("easgate.db")), 0o600);
    let mut server = env.serve(&[]);
    env.ok(&[
        "user",
        "add",
        "alice@corp.example",
        "--email",
        "alice@corp.example",
    ]);
    for name in ["easgate.db", "easgate.db-wal", "easgate.db-shm"] {
        let path = data.join(name);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    assert!(
        data.join("easgate.db-wal").exists(),
        "WAL mode makes a -wal file"
    );
    server.stop();
    // A database made before (mode 0644) is put right on the next open.
    std::fs::set_permissions(
        data.join("easgate.db"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    env.ok(&["user", "list"]);
    assert_eq!(mode(&data.join("easgate.db")), 0o600);
}

#[test]
fn output_cut_short_by_the_reader_ends_quietly() {
    let env = Env::new();
    for i in 0..50 {
        env.ok(&[
            "user",
            "add",
            &format!("user{i}@corp.example"),
            "--email",
            &format!("user{i}@corp.example"),
        ]);
    }
    for args in [
        &["user", "list"][..],
        &["user", "list", "--json"],
        &["audit"],
    ] {
        // The reader is gone before easgate writes a line (as `| head -0` would be).
        let mut child = env
            .command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn the_audit_trail_names_who_acted_and_through_which_channel() {
    let env = Env::new();
    // Without $USER (a service, a container): the name of the process's uid.
    let out = env
        .command()
        .args(["group", "add", "sales"])
        .env_remove("USER")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let name = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
        })
        .unwrap();
    let events = || env.json(&["audit"]);
    let added = events()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target"] == "group:sales")
        .cloned()
        .unwrap();
    assert_eq!(added["actor"], format!("cli:{name}"));
    // The server's own jobs name themselves, not the admin who started it.
    env.ok(&["ca", "create", "default"]);
    let _server = env.serve(&[]);
    assert!(common::eventually(10.0, || events()
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"]
            .as_str()
            .is_some_and(|a| a.starts_with("crl.")))));
    for e in events().as_array().unwrap() {
        let actor = e["actor"].as_str().unwrap();
        assert!(!actor.ends_with(":unknown"), "{e}");
        if e["action"].as_str().unwrap().starts_with("crl.") {
            assert_eq!(actor, "job:crl", "{e}");
        }
    }
}

/// Whether the server has closed `stream` (a read gives end of file or a reset within `wait`).
fn closed_by_server(stream: &std::net::TcpStream, wait: std::time::Duration) -> bool {
    use std::io::Read;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        let mut reader = stream;
        match reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_and_idle_clients_cannot_hold_the_public_listener() {
    use std::io::Write;
    use std::time::Duration;
    let env = Env::new();
    env.ok(&["ca", "create", "default"]);
    let server = env.serve(&[
        "--http-header-timeout",
        "2s",
        "--http-max-connections",
        "50",
    ]);
    let legit = || common::http(server.public, "GET", "/ca/default.pem", b"").0;
    // Slowloris: 40 connections that send half a request head and then trickle.
    let mut slow: Vec<std::net::TcpStream> = (0..40)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(server.public).unwrap();
            s.write_all(b"GET /ca/default.pem HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect();
    // Under the cap, legitimate requests are served meanwhile.
    assert_eq!(legit(), 200);
    // Over the cap: the extra connections are closed as they come.
    let extra: Vec<std::net::TcpStream> = (0..30)
        .map(|_| std::net::TcpStream::connect(server.public).unwrap())
        .collect();
    let closed_at_once = extra
        .iter()
        .filter(|s| closed_by_server(s, Duration::from_millis(300)))
        .count();
    assert!(
        closed_at_once >= 19,
        "only {closed_at_once} of 30 over the cap of 50 were closed"
    );
    // Trickling does not keep a connection: the head must be whole within the timeout.
    for s in &mut slow {
        let _ = s.write_all(b"X-Slow: 1\r\n");
    }
    let all_closed = slow
        .iter()
        .all(|s| closed_by_server(s, Duration::from_secs(5)));
    assert!(all_closed, "a slow connection outlived the header timeout");
    // An idle keep-alive connection is closed after the same timeout.
    let mut idle = std::net::TcpStream::connect(server.public).unwrap();
    idle.write_all(b"GET /ca/default.pem HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        closed_by_server(&idle, Duration::from_secs(5)),
        "idle connection kept"
    );
    // And the listener serves again.
    drop(extra);
    assert!(common::eventually(5.0, || legit() == 200));
}

#[test]
fn the_gateway_certificate_names_the_public_host_and_the_listen_address() {
    let env = Env::bare();
    let _server = env.serve(&[]);
    let text = common::openssl_ok(
        &[
            "x509",
            "-in",
            "data/gateway.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        env.dir.path(),
    );
    // The test's public URL is http://pki.corp.example:8080; serve listens on 127.0.0.1.
    assert!(text.contains("DNS:pki.corp.example"), "{text}");
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
}

#[test]
fn a_public_url_that_is_not_a_fully_qualified_name_is_warned_about() {
    let mut env = Env::new();
    env.public_url = "http://mailgw:8080".into();
    let r = env.run(&["ca", "create", "corp"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: the public URL http://mailgw:8080 names `mailgw`, not a fully qualified host name"),
        "{}",
        r.stderr
    );
    let server = env.serve(&[]);
    assert!(common::eventually(5.0, || server
        .log_text()
        .contains("not a fully qualified host name")));
    // A fully qualified name or an address: no warning.
    for url in [
        "http://pki.corp.example:8080",
        "http://192.0.2.10:8080",
        "http://[2001:db8::1]:8080",
    ] {
        env.public_url = url.into();
        let r = env.run(&["ca", "create", &format!("ca{}", url.len())]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stderr.contains("warning"), "{url}: {}", r.stderr);
    }
}

/// Seconds since the start of the month of an OpenSSL time (`Dec  6 02:45:01 2026 GMT`).
fn openssl_seconds(text: &str) -> i64 {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let day: i64 = parts[1].parse().unwrap();
    let hms: Vec<i64> = parts[2].split(':').map(|p| p.parse().unwrap()).collect();
    day * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

#[test]
fn a_revocation_is_in_the_published_delta_crl_within_the_delay() {
    let env = Env::new();
    env.standard_setup();
    let (_, _, serial) = env.issue_device_cert("alice@corp.example", "dev2");
    let server = env.serve(&["--delta-crl-delay", "3s"]);
    env.ok(&["cert", "revoke", &serial]);
    let dir = env.dir.path();
    let mut text = String::new();
    assert!(
        common::eventually(15.0, || {
            let (_, _, der) = common::http(server.public, "GET", "/crl/default-delta.crl", b"");
            std::fs::write(dir.join("delta.crl"), der).unwrap();
            text = common::openssl_ok(
                &[
                    "crl",
                    "-inform",
                    "DER",
                    "-in",
                    "delta.crl",
                    "-noout",
                    "-text",
                ],
                dir,
            );
            text.contains(&serial)
        }),
        "the delta CRL never listed {serial}"
    );
    // The CRL's own clock: issued at most the delay after the revocation it lists.
    let value = |label: &str| {
        let line = text.lines().find(|l| l.trim().starts_with(label)).unwrap();
        openssl_seconds(line.split_once(": ").unwrap().1)
    };
    let this_update = value("Last Update");
    let revoked = value("Revocation Date");
    assert!(
        this_update - revoked <= 3,
        "delta issued {} s after the revocation (delay 3 s):\n{text}",
        this_update - revoked
    );
}

#[test]
fn user_set_changes_only_what_is_given_and_bad_input_changes_nothing() {
    let env = Env::new();
    env.ok(&["group", "add", "sales"]);
    env.ok(&["group", "add", "field"]);
    env.ok(&[
        "user",
        "add",
        "alice@corp.example",
        "--email",
        "alice@corp.example",
        "--group",
        "sales",
    ]);
    let u = env.json(&[
        "user",
        "set",
        "alice@corp.example",
        "--email",
        "alice.smith@corp.example",
        "--name",
        "Alice Smith",
        "--add-group",
        "field",
        "--remove-group",
        "sales",
    ]);
    assert_eq!(u["email"], "alice.smith@corp.example");
    assert_eq!(u["display_name"], "Alice Smith");
    assert_eq!(u["groups"], serde_json::json!(["field"]));
    let before = env.ok(&["user", "show", "alice@corp.example", "--json"]);
    for (args, expected) in [
        (
            &["user", "set", "alice@corp.example", "--add-group", "nosuch"][..],
            "group `nosuch` does not exist",
        ),
        (
            &[
                "user",
                "set",
                "alice@corp.example",
                "--email",
                "not-an-address",
            ],
            "invalid email address",
        ),
        (&["user", "set", "alice@corp.example"], "nothing to change"),
        (
            &["user", "set", "bob@corp.example", "--name", "Bob"],
            "user `bob@corp.example` does not exist",
        ),
    ] {
        let err = env.fails(args);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    assert_eq!(
        env.ok(&["user", "show", "alice@corp.example", "--json"]),
        before
    );
    let audit = env.ok(&["audit"]);
    assert!(audit.contains("user.set"), "{audit}");
}

#[test]
fn reenroll_gives_a_device_a_new_challenge_and_link_and_the_old_ones_stop_working() {
    let env = Env::new();
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
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
        "Mail",
    ]);
    let first = env.enroll("alice@corp.example", "ios", "phone1", &[]);
    let server = env.serve(&[]);
    let path_of = |url: &serde_json::Value| {
        let url = url.as_str().unwrap();
        format!(
            "/{}",
            url.split_once("://").unwrap().1.split_once('/').unwrap().1
        )
    };
    // A mail scanner opened the link before the user did.
    assert_eq!(
        common::http(server.public, "GET", &path_of(&first["profile_url"]), b"").0,
        200
    );
    assert_eq!(
        common::http(server.public, "GET", &path_of(&first["profile_url"]), b"").0,
        410
    );
    let again = env.json(&["device", "reenroll", "phone1"]);
    assert_eq!(again["uid"], "phone1");
    assert_ne!(again["challenge"], first["challenge"]);
    // The same device record, no second one.
    assert_eq!(env.json(&["device", "list"]).as_array().unwrap().len(), 1);
    // The new link works once; the old challenge no longer enrolls, the new one does.
    assert_eq!(
        common::http(server.public, "GET", &path_of(&again["profile_url"]), b"").0,
        200
    );
    let url = format!("http://{}/scep/mail", server.public);
    let dir = env.dir.path();
    let (code, out) =
        common::scepclient(&dir.join("old"), &url, first["challenge"].as_str().unwrap());
    assert_ne!(code, 0, "the old challenge still enrolled: {out}");
    let (code, out) =
        common::scepclient(&dir.join("new"), &url, again["challenge"].as_str().unwrap());
    assert_eq!(code, 0, "{out}\n{}", server.log_text());
    // What the server did for the SCEP client is audited under its channel, not the admin's.
    let audit = env.json(&["audit"]);
    let scep_events: Vec<&serde_json::Value> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e["action"].as_str().unwrap(),
                "scep.enroll" | "scep.challenge.use"
            )
        })
        .collect();
    assert!(!scep_events.is_empty(), "{audit:#}");
    for e in scep_events {
        assert!(e["actor"].as_str().unwrap().starts_with("scep:"), "{e}");
    }
    // A retired device is not re-enrolled.
    env.ok(&["device", "retire", "phone1"]);
    let err = env.fails(&["device", "reenroll", "phone1"]);
    assert!(err.contains("retired"), "{err}");
}

#[test]
fn groups_users_and_templates_can_be_changed_and_removed_but_not_from_under_what_uses_them() {
    let env = Env::new();
    env.standard_setup();
    // Groups: a group a rule names stays until the rule goes.
    env.ok(&["group", "add", "sales"]);
    env.ok(&["user", "set", "alice@corp.example", "--add-group", "sales"]);
    env.ok(&[
        "policy",
        "add",
        "sales-block",
        "--group",
        "sales",
        "--action",
        "block",
    ]);
    let err = env.fails(&["group", "remove", "sales"]);
    assert!(err.contains("sales-block"), "{err}");
    env.ok(&["policy", "remove", "sales-block"]);
    env.ok(&["group", "remove", "sales"]);
    assert_eq!(
        env.json(&["user", "show", "alice@corp.example"])["groups"],
        serde_json::json!([])
    );
    assert!(env
        .fails(&["group", "remove", "sales"])
        .contains("does not exist"));
    // Users: one with devices is disabled, not removed; one without goes.
    let err = env.fails(&["user", "remove", "alice@corp.example"]);
    assert!(err.contains("user disable"), "{err}");
    env.ok(&[
        "user",
        "add",
        "typo@corp.example",
        "--email",
        "typo@corp.example",
    ]);
    env.ok(&["user", "remove", "typo@corp.example"]);
    assert!(env
        .fails(&["user", "show", "typo@corp.example"])
        .contains("does not exist"));
    // Templates: set, default, remove.
    let t = env.json(&[
        "template",
        "set",
        "phones",
        "--validity-days",
        "200",
        "--san",
        "upn:{UserPrincipalName}",
    ]);
    assert_eq!(t["validity_days"], 200);
    assert_eq!(t["sans"], serde_json::json!(["upn:{UserPrincipalName}"]));
    assert_eq!(t["subject"], "CN={DeviceUid}", "unchanged");
    let err = env.fails(&["template", "set", "phones", "--subject", "CN={NoSuchValue}"]);
    assert!(err.contains("NoSuchValue"), "{err}");
    let err = env.fails(&["template", "set", "phones", "--renew-before-days", "300"]);
    assert!(err.contains("less than"), "{err}");
    assert_eq!(
        env.json(&["template", "show", "phones"])["validity_days"],
        200
    );
    // A new device's certificate follows the changed template.
    let (cert, _, _) = env.issue_device_cert("alice@corp.example", "dev9");
    let text = common::openssl_ok(
        &[
            "x509",
            "-in",
            cert.to_str().unwrap(),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
        env.dir.path(),
    );
    assert!(!text.contains("email:"), "{text}");
    env.ok(&[
        "template",
        "create",
        "laptops",
        "--ca",
        "default",
        "--subject",
        "CN={DeviceUid}",
        "--san",
        "upn:{UserPrincipalName}",
    ]);
    env.ok(&["template", "default", "laptops"]);
    let list = env.json(&["template", "list"]);
    let defaults: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["is_default"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["laptops"]);
    let err = env.fails(&["template", "remove", "phones"]);
    assert!(err.contains("in use"), "{err}");
    env.ok(&["template", "default", "phones"]);
    env.ok(&["template", "remove", "laptops"]);
    assert!(env
        .fails(&["template", "show", "laptops"])
        .contains("does not exist"));
    let audit = env.ok(&["audit"]);
    for action in [
        "group.remove",
        "user.remove",
        "template.set",
        "template.default",
        "template.remove",
    ] {
        assert!(audit.contains(action), "{action}: {audit}");
    }
}

/// Whether `v` is an RFC 3339 time string in UTC, as easgate prints every time.
fn is_rfc3339(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|t| {
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T' && t.starts_with("20")
    })
}

#[test]
fn mutating_commands_print_their_result_as_json_with_rfc3339_times() {
    let env = Env::new();
    env.standard_setup();
    let (_, _, serial) = env.issue_device_cert("alice@corp.example", "dev2");
    let certs = env.json(&["cert", "list"]);
    let c = &certs.as_array().unwrap()[0];
    for field in ["not_before", "not_after", "issued_at"] {
        if !c[field].is_null() {
            assert!(is_rfc3339(&c[field]), "{field}: {c}");
        }
    }
    let revoked = env.json(&["cert", "revoke", &serial, "--reason", "superseded"]);
    assert_eq!(revoked["status"], "revoked");
    assert!(is_rfc3339(&revoked["revoked_at"]), "{revoked}");
    let o = env.json(&["eas", "allow", "PHONE7", "--reason", "approved"]);
    assert_eq!(
        (o["action"].as_str(), o["unmanaged"].as_bool()),
        (Some("allow"), Some(false))
    );
    assert!(is_rfc3339(&o["created_at"]), "{o}");
    assert_eq!(env.json(&["eas", "block", "PHONE7"])["action"], "block");
    assert_eq!(
        env.json(&["eas", "clear", "PHONE7"])["partnerships_removed"],
        0
    );
    assert_eq!(
        env.json(&["policy", "default", "quarantine"])["default"],
        "quarantine"
    );
    let retired = env.json(&["device", "retire", "dev1"]);
    assert_eq!(retired["device"]["state"], "retired");
    assert!(is_rfc3339(&retired["device"]["updated_at"]), "{retired}");
    let disabled = env.json(&["user", "disable", "alice@corp.example"]);
    assert_eq!(disabled["user"]["disabled"], true);
    assert_eq!(
        disabled["revoked"].as_array().unwrap().len(),
        0,
        "already revoked or retired"
    );
    assert_eq!(
        env.json(&["user", "enable", "alice@corp.example"])["disabled"],
        false
    );
    env.ok(&["group", "add", "temp"]);
    assert_eq!(
        env.json(&["group", "remove", "temp"]),
        serde_json::json!({"removed": "group", "name": "temp"})
    );
    let ca = env.json(&["ca", "set-scep-des", "default", "--refuse"]);
    assert_eq!(ca["scep_no_des"], true, "{ca}");
    assert!(is_rfc3339(&ca["not_after"]), "{ca}");
    assert_eq!(
        env.json(&["ca", "set-scep-cacert", "default", "--ra-only"])["scep_ra_only"],
        true
    );
    let ca = env.json(&["ca", "set-scep-challenge", "default", "--none"]);
    assert_eq!(ca["name"], "default", "{ca}");
    let audit = env.json(&["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|e| is_rfc3339(&e["at"])),
        "{audit}"
    );
}

#[test]
fn a_removed_ca_is_no_longer_listed_served_or_trusted_and_its_name_is_free() {
    use common::upstream::{curl, Upstream};
    let env = Env::new();
    env.standard_setup();
    env.ok(&["ca", "create", "old"]);
    env.ok(&[
        "template",
        "create",
        "old-phones",
        "--ca",
        "old",
        "--subject",
        "CN={DeviceUid}",
        "--san",
        "email:{EmailAddress}",
        "--san",
        "upn:{UserPrincipalName}",
    ]);
    env.enroll(
        "alice@corp.example",
        "ios",
        "oldphone",
        &["--template", "old-phones"],
    );
    let (cert, key) = (env.path("oldphone.pem"), env.path("oldphone.key"));
    env.ok(&[
        "cert",
        "issue",
        "--template",
        "old-phones",
        "--device",
        "oldphone",
        "--out-key",
        key.to_str().unwrap(),
        "--out",
        cert.to_str().unwrap(),
    ]);
    let phone = (cert, key);
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url()]);
    let sync = || {
        let q = "Cmd=Sync&User=alice@corp.example&DeviceId=OLD1&DeviceType=iPhone";
        curl(&env, &server, q, Some(&phone), &["--data-binary", "x"]).0
    };
    assert_eq!(sync(), 200, "{}", server.log_text());
    let old_pem = common::http(server.public, "GET", "/ca/old.pem", b"");
    assert_eq!(old_pem.0, 200);

    let err = env.fails(&["ca", "remove", "old"]);
    assert!(
        err.contains("1 valid device certificate") && err.contains("--revoke-all"),
        "{err}"
    );
    assert_eq!(sync(), 200, "a refused removal changes nothing");
    let removed = env.json(&["ca", "remove", "old", "--revoke-all"]);
    assert_eq!(removed["revoked"].as_array().unwrap().len(), 1, "{removed}");
    assert!(!env.ok(&["ca", "list"]).contains("old"));
    assert!(
        common::eventually(5.0, || sync() == 403),
        "{}",
        server.log_text()
    );
    assert!(common::eventually(5.0, || common::http(
        server.public,
        "GET",
        "/ca/old.pem",
        b""
    )
    .0 == 404));
    assert_eq!(
        common::http(server.public, "GET", "/scep/old?operation=GetCACaps", b"").0,
        404
    );
    // The certificate it issued stays on record, revoked.
    let certs = env.json(&["cert", "list", "--device", "oldphone"]);
    assert_eq!(certs[0]["status"], "revoked");
    // The name is free again, and the running server serves the new CA under it.
    env.ok(&["ca", "create", "old"]);
    assert!(common::eventually(5.0, || {
        let now = common::http(server.public, "GET", "/ca/old.pem", b"");
        now.0 == 200 && now.2 != old_pem.2
    }));
    assert!(env.ok(&["audit"]).contains("ca.remove"));
}
