//! The admin REST API through the real binary: roles (a table of operation × role), token
//! expiry and revocation, problem+json for bad input with the store unchanged, paging, audit,
//! Exchange's partnership field names, and TLS off loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use common::upstream::curl;
use common::{api, api_raw, Env, Server};
use serde_json::Value;

/// `token create NAME --role ROLE`: the secret.
fn token(env: &Env, name: &str, role: &str, extra: &[&str]) -> String {
    let created = env.json(&[&["token", "create", name, "--role", role][..], extra].concat());
    assert_eq!(created["role"], role);
    assert!(created.get("hash").is_none(), "the hash is never shown");
    created["secret"].as_str().unwrap().to_string()
}

/// What each role may do, written out here independently of the code: the issue's table.
fn allowed(role: &str, class: &str) -> bool {
    match role {
        "admin" => true,
        "helpdesk" => matches!(class, "read" | "helpdesk" | "enroll"),
        "auditor" => matches!(class, "read" | "audit"),
        "enroller" => class == "enroll",
        _ => unreachable!(),
    }
}

/// CA `default`, template `phones`, users alice and bob, device dev1 with a certificate.
fn setup() -> (Env, Server, String) {
    let env = Env::new();
    env.standard_setup();
    env.ok(&[
        "user",
        "add",
        "bob@corp.example",
        "--email",
        "bob@corp.example",
    ]);
    let server = env.serve(&[]);
    let admin = std::fs::read_to_string(env.data_dir().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    (env, server, admin)
}

#[test]
fn each_role_may_do_exactly_its_operations() {
    let (env, server, _admin) = setup();
    let roles = ["admin", "helpdesk", "auditor", "enroller"];
    let mut tokens = HashMap::new();
    let mut serials = HashMap::new();
    for role in roles {
        tokens.insert(role, token(&env, &format!("t-{role}"), role, &[]));
        // Things of each role's own to change, so allowed calls succeed independently.
        env.enroll("alice@corp.example", "ios", &format!("end-{role}"), &[]);
        let (_, _, serial) = env.issue_device_cert("alice@corp.example", &format!("rev-{role}"));
        serials.insert(role, serial);
    }
    let ca_pem =
        serde_json::to_string(&std::fs::read_to_string(env.export_ca("default")).unwrap()).unwrap();
    for role in roles {
        let r = role;
        let serial = &serials[role];
        // (class, method, path, body, expected success status)
        let table: Vec<(&str, &str, String, Option<String>, u16)> = vec![
            ("read", "GET", "/api/v1/cas".into(), None, 200),
            ("read", "GET", "/api/v1/cas/default".into(), None, 200),
            (
                "read",
                "GET",
                "/api/v1/cas/default/certificate?format=der".into(),
                None,
                200,
            ),
            (
                "read",
                "GET",
                "/api/v1/cas/default/entra-script".into(),
                None,
                200,
            ),
            ("read", "GET", "/api/v1/trusted-cas".into(), None, 200),
            ("read", "GET", "/api/v1/users?text=alice".into(), None, 200),
            (
                "read",
                "GET",
                "/api/v1/users/alice@corp.example".into(),
                None,
                200,
            ),
            ("read", "GET", "/api/v1/groups".into(), None, 200),
            ("read", "GET", "/api/v1/templates".into(), None, 200),
            ("read", "GET", "/api/v1/templates/phones".into(), None, 200),
            (
                "read",
                "GET",
                "/api/v1/devices?user=alice@corp.example".into(),
                None,
                200,
            ),
            ("read", "GET", "/api/v1/devices/dev1".into(), None, 200),
            (
                "read",
                "GET",
                "/api/v1/certificates?status=valid".into(),
                None,
                200,
            ),
            (
                "read",
                "GET",
                format!("/api/v1/certificates/{serial}"),
                None,
                200,
            ),
            ("read", "GET", "/api/v1/profiles".into(), None, 200),
            ("read", "GET", "/api/v1/partnerships".into(), None, 200),
            ("read", "GET", "/api/v1/overrides".into(), None, 200),
            ("read", "GET", "/api/v1/rules".into(), None, 200),
            ("read", "GET", "/api/v1/default-action".into(), None, 200),
            (
                "read",
                "POST",
                "/api/v1/what-if".into(),
                Some(r#"{"user":"alice@corp.example","platform":"ios","cert":"valid"}"#.into()),
                200,
            ),
            (
                "read",
                "POST",
                "/api/v1/certificates/doctor".into(),
                Some(format!(r#"{{"certificate_pem":{ca_pem}}}"#)),
                200,
            ),
            ("audit", "GET", "/api/v1/audit?since=1h".into(), None, 200),
            (
                "enroll",
                "POST",
                "/api/v1/devices".into(),
                Some(format!(
                    r#"{{"user":"bob@corp.example","platform":"android","uid":"new-{r}","template":"phones"}}"#
                )),
                201,
            ),
            (
                "enroll",
                "POST",
                "/api/v1/devices/dev1/reenroll".into(),
                Some("{}".into()),
                200,
            ),
            (
                "enroll",
                "POST",
                "/api/v1/devices/dev1/challenge".into(),
                None,
                201,
            ),
            (
                "helpdesk",
                "PUT",
                format!("/api/v1/overrides/PHONE-{r}"),
                Some(r#"{"action":"block","reason":"lost"}"#.into()),
                200,
            ),
            (
                "helpdesk",
                "DELETE",
                format!("/api/v1/partnerships/PHONE-{r}"),
                None,
                200,
            ),
            // A wipe needs a DeviceId the gateway has seen: the permission passes, then 404.
            (
                "helpdesk",
                "POST",
                format!("/api/v1/partnerships/NEVER-{r}/wipe"),
                Some(r#"{"account_only":false}"#.into()),
                404,
            ),
            (
                "helpdesk",
                "DELETE",
                format!("/api/v1/partnerships/NEVER-{r}/wipe"),
                None,
                404,
            ),
            (
                "helpdesk",
                "POST",
                format!("/api/v1/certificates/{serial}/revoke"),
                Some(r#"{"reason":"keyCompromise"}"#.into()),
                200,
            ),
            (
                "helpdesk",
                "POST",
                format!("/api/v1/devices/end-{r}/retire"),
                None,
                200,
            ),
            (
                "admin",
                "POST",
                "/api/v1/groups".into(),
                Some(format!(r#"{{"name":"g-{r}"}}"#)),
                201,
            ),
            (
                "admin",
                "POST",
                "/api/v1/users".into(),
                Some(format!(
                    r#"{{"upn":"u-{r}@corp.example","email":"u-{r}@corp.example"}}"#
                )),
                201,
            ),
            (
                "admin",
                "PATCH",
                "/api/v1/users/bob@corp.example".into(),
                Some(format!(r#"{{"display_name":"Bob {r}"}}"#)),
                200,
            ),
            (
                "admin",
                "POST",
                "/api/v1/rules".into(),
                Some(format!(
                    r#"{{"name":"r-{r}","platforms":["windows"],"action":"block"}}"#
                )),
                201,
            ),
            ("admin", "DELETE", format!("/api/v1/rules/r-{r}"), None, 200),
            (
                "admin",
                "PUT",
                "/api/v1/default-action".into(),
                Some(r#"{"action":"block"}"#.into()),
                200,
            ),
            (
                "admin",
                "POST",
                "/api/v1/cas/default/crls".into(),
                Some(r#"{"delta":true}"#.into()),
                201,
            ),
            ("audit", "GET", "/api/v1/tokens".into(), None, 200),
            (
                "admin",
                "PATCH",
                "/api/v1/cas/default/scep".into(),
                Some(r#"{"no_des":false}"#.into()),
                200,
            ),
            (
                "admin",
                "POST",
                "/api/v1/tokens".into(),
                Some(format!(
                    r#"{{"name":"made-by-{r}","role":"auditor","expires":"1d"}}"#
                )),
                201,
            ),
            (
                "admin",
                "POST",
                "/api/v1/templates".into(),
                Some(format!(
                    r#"{{"name":"tpl-{r}","ca":"default","subject":"CN={{DeviceUid}}"}}"#
                )),
                201,
            ),
        ];
        for (class, method, path, body, success) in table {
            let (status, content_type, answer) = api(
                server.admin,
                method,
                &path,
                Some(&tokens[role]),
                body.as_deref(),
            );
            if allowed(role, class) {
                assert_eq!(
                    status, success,
                    "{role} {method} {path} ({class}) should succeed: {answer}"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{role} {method} {path} ({class}) must be refused: {answer}"
                );
                assert_eq!(content_type, "application/problem+json");
                assert!(answer["required_role"].is_string(), "{answer}");
                assert!(
                    answer["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("has role {role}")),
                    "{answer}"
                );
            }
        }
    }
    // Every change above is audited with the token's name as actor, refusals too.
    let by_helpdesk = env.json(&["audit", "--actor", "token:t-helpdesk"]);
    let actions: Vec<&str> = by_helpdesk
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"cert.revoke"), "{actions:?}");
    assert!(actions.contains(&"api.denied"), "{actions:?}");
    assert!(!actions.contains(&"group.add"), "{actions:?}");
    // Every call, reads included, is counted into the token's minute; a stopping server writes
    // the open minutes.
    let mut server = server;
    assert_eq!(server.stop(), Some(0));
    let calls = env.json(&[
        "audit",
        "--action",
        "api.calls",
        "--actor",
        "token:t-auditor",
    ]);
    let detail = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        detail.contains("GET /api/v1/devices/{uid} 200 ×1"),
        "{detail}"
    );
    assert!(detail.contains("POST /api/v1/groups 403 ×1"), "{detail}");
}

#[test]
fn token_expiry_and_revocation_take_effect_on_the_next_call() {
    let (env, server, admin) = setup();
    // No token, a wrong one: 401 with a challenge.
    let (status, content_type, answer) = api(server.admin, "GET", "/api/v1/cas", None, None);
    assert_eq!(
        (status, content_type.as_str()),
        (401, "application/problem+json"),
        "{answer}"
    );
    let (status, _, _) = api(server.admin, "GET", "/api/v1/cas", Some("egt_nope"), None);
    assert_eq!(status, 401);

    let short = token(&env, "short", "auditor", &["--expires", "2s"]);
    assert_eq!(
        api(server.admin, "GET", "/api/v1/cas", Some(&short), None).0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (status, _, answer) = api(server.admin, "GET", "/api/v1/cas", Some(&short), None);
    assert_eq!(status, 401);
    assert!(
        answer["detail"].as_str().unwrap().contains("expired"),
        "{answer}"
    );

    let helpdesk = token(&env, "desk", "helpdesk", &[]);
    assert_eq!(
        api(
            server.admin,
            "GET",
            "/api/v1/devices",
            Some(&helpdesk),
            None
        )
        .0,
        200
    );
    // Revoked through the API by the first-start admin token, which is an admin token.
    let (status, _, answer) = api(
        server.admin,
        "DELETE",
        "/api/v1/tokens/desk",
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{answer}");
    let (status, _, answer) = api(
        server.admin,
        "GET",
        "/api/v1/devices",
        Some(&helpdesk),
        None,
    );
    assert_eq!(status, 401);
    assert!(
        answer["detail"].as_str().unwrap().contains("revoked"),
        "{answer}"
    );
    // And with the CLI; the name is free again for a new token.
    env.ok(&["token", "revoke", "short"]);
    env.fails(&["token", "revoke", "short"]);
    let again = token(&env, "desk", "enroller", &[]);
    assert_eq!(
        api(server.admin, "GET", "/api/v1/devices", Some(&again), None).0,
        403
    );
    let listed = env.json(&["token", "list"]);
    let desks = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "desk")
        .count();
    assert_eq!(desks, 2, "the revoked token keeps its row: {listed}");
    // The secret is stored hashed only.
    let db = std::fs::read(env.data_dir().join("easgate.db")).unwrap();
    assert!(!db.windows(again.len()).any(|w| w == again.as_bytes()));
    // The audit trail names who did what; --action takes a family.
    let revokes = env.json(&["audit", "--action", "token.revoke", "--since", "1h"]);
    let actors: Vec<&str> = revokes
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors.len(), 2, "{revokes}");
    assert_eq!(actors[0], "token:admin");
    assert!(actors[1].starts_with("cli:"), "{actors:?}");
    let family = env.json(&["audit", "--action", "token", "--subject", "desk"]);
    assert_eq!(family.as_array().unwrap().len(), 3, "{family}");
    let (status, _, page) = api(
        server.admin,
        "GET",
        "/api/v1/audit?action=token.revoke&actor=token:admin",
        Some(&admin),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["target"], "token:desk");
    assert!(page["items"][0]["at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn bad_input_is_a_problem_and_changes_nothing() {
    let (env, server, admin) = setup();
    let before = env.snapshot();
    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(2 << 20));
    // (method, path, content type, body, status, field at fault)
    type Case<'a> = (&'a str, &'a str, &'a str, Vec<u8>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("POST", "/api/v1/groups", "application/json", b"{\"name\":".to_vec(), 400, Some("body")),
        ("POST", "/api/v1/groups", "application/json", b"{\"name\":5}".to_vec(), 400, Some("name")),
        ("POST", "/api/v1/groups", "application/json", b"{\"name\":\"g\",\"admin\":true}".to_vec(), 400, Some("admin")),
        ("POST", "/api/v1/groups", "application/json", b"[]".to_vec(), 400, Some("body")),
        ("POST", "/api/v1/groups", "text/plain", b"{\"name\":\"g\"}".to_vec(), 415, None),
        ("POST", "/api/v1/groups", "application/json", huge.into_bytes(), 413, None),
        ("POST", "/api/v1/users", "application/json",
            b"{\"upn\":\"carol@corp.example\",\"email\":\"not an address\"}".to_vec(), 400, None),
        ("POST", "/api/v1/devices", "application/json",
            b"{\"user\":\"alice@corp.example\",\"platform\":\"nokia\"}".to_vec(), 400, None),
        ("POST", "/api/v1/devices", "application/json",
            b"{\"user\":\"nobody@corp.example\",\"platform\":\"ios\"}".to_vec(), 404, None),
        ("POST", "/api/v1/devices", "application/json",
            b"{\"user\":\"alice@corp.example\",\"platform\":\"ios\",\"uid\":\"dev1\"}".to_vec(), 409, None),
        ("POST", "/api/v1/devices", "application/json",
            b"{\"user\":\"alice@corp.example\",\"platform\":\"ios\",\"challenge_days\":-1}".to_vec(), 400, Some("challenge_days")),
        ("POST", "/api/v1/certificates", "application/json",
            b"{\"template\":\"phones\",\"device\":\"dev1\",\"csr_pem\":\"-----BEGIN CERTIFICATE REQUEST-----\\nAAAA\\n-----END CERTIFICATE REQUEST-----\\n\"}".to_vec(), 400, None),
        ("POST", "/api/v1/certificates/ZZZZ/revoke", "application/json", b"{\"reason\":\"because\"}".to_vec(), 400, Some("reason")),
        ("POST", "/api/v1/rules", "application/json",
            b"{\"name\":\"r\",\"networks\":[\"10.0.0.0/99\"],\"action\":\"allow\"}".to_vec(), 400, None),
        ("PUT", "/api/v1/overrides/X", "application/json", b"{\"action\":\"maybe\"}".to_vec(), 400, Some("action")),
        ("GET", "/api/v1/devices?limit=0", "application/json", vec![], 400, Some("limit")),
        ("GET", "/api/v1/devices?limit=abc", "application/json", vec![], 400, Some("limit")),
        ("GET", "/api/v1/devices?cursor=%%%", "application/json", vec![], 400, None),
        ("GET", "/api/v1/devices?cursor=bm9wZQ", "application/json", vec![], 400, Some("cursor")),
        ("GET", "/api/v1/devices?colour=red", "application/json", vec![], 400, Some("colour")),
        ("GET", "/api/v1/audit?since=yesterday", "application/json", vec![], 400, Some("since")),
        ("GET", "/api/v1/users/..%2F..%2Fadmin-token", "application/json", vec![], 404, None),
        ("GET", "/api/v1/cas/..%2Fdefault", "application/json", vec![], 404, None),
        ("GET", "/api/v1/../admin-token", "application/json", vec![], 404, None),
        ("GET", "/api/v1/no/such/path", "application/json", vec![], 404, None),
        ("PUT", "/api/v1/cas", "application/json", b"{}".to_vec(), 405, None),
        ("DELETE", "/api/v1/cas/nosuch", "application/json", vec![], 404, None),
        ("POST", "/api/v1/users", "application/json",
            b"{\"upn\":\"alice@corp.example\",\"email\":\"alice@mail.example\"}".to_vec(), 409, None),
    ];
    for (method, path, content_type, body, expected, field) in cases {
        let (status, answer_type, answer) = api_raw(
            server.admin,
            method,
            path,
            Some(&admin),
            content_type,
            &body,
        );
        assert_eq!(status, expected, "{method} {path}: {answer}");
        assert_eq!(answer_type, "application/problem+json", "{method} {path}");
        assert_eq!(answer["status"], expected, "{answer}");
        assert!(!answer["detail"].as_str().unwrap().is_empty());
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{method} {path}: {answer}");
        }
    }
    assert_eq!(env.snapshot(), before, "bad input changed the store");
    // The server is still fine.
    assert_eq!(
        api(server.admin, "GET", "/api/v1/cas", Some(&admin), None).0,
        200
    );
}

#[test]
fn lists_page_by_cursor_and_every_record_comes_once() {
    let (_env, server, admin) = setup();
    for i in 0..23 {
        let body =
            format!(r#"{{"user":"alice@corp.example","platform":"android","uid":"pg-{i:02}"}}"#);
        let (status, _, answer) = api(
            server.admin,
            "POST",
            "/api/v1/devices",
            Some(&admin),
            Some(&body),
        );
        assert_eq!(status, 201, "{answer}");
        assert!(
            answer["challenge"].is_string()
                && answer["challenge_expires_at"]
                    .as_str()
                    .unwrap()
                    .ends_with('Z')
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/devices?platform=android&limit=5&cursor={c}"),
            None => "/api/v1/devices?platform=android&limit=5".into(),
        };
        let (status, _, page) = api(server.admin, "GET", &path, Some(&admin), None);
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|d| d["uid"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..23).map(|i| format!("pg-{i:02}")).collect();
    assert_eq!(seen, expected);
    // The text filter and a device's certificates.
    let (_, _, page) = api(
        server.admin,
        "GET",
        "/api/v1/devices?text=PG-1",
        Some(&admin),
        None,
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 10, "{page}");
    let (_, _, dev) = api(
        server.admin,
        "GET",
        "/api/v1/devices/dev1",
        Some(&admin),
        None,
    );
    assert_eq!(dev["device"]["uid"], "dev1");
    assert!(dev["certificates"].is_array());
}

#[test]
fn partnerships_carry_exchange_field_names() {
    let (env, server, admin) = setup();
    let (cert, key, serial) = env.issue_device_cert("alice@corp.example", "phone1");
    env.ok(&[
        "policy",
        "add",
        "managed-ok",
        "--device-state",
        "managed",
        "--action",
        "allow",
    ]);
    // Let the running server pick the rule up, then sync once from the phone.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let (status, _) = curl(
        &env,
        &server,
        "Cmd=FolderSync&User=alice@corp.example&DeviceId=APPL123&DeviceType=iPhone",
        Some(&(cert, key)),
        &["--data-binary", "x", "-A", "Apple-iPhone13C2/2008.100"],
    );
    assert_ne!(status, 403);
    let mut page = Value::Null;
    assert!(
        common::eventually(10.0, || {
            page = api(
                server.admin,
                "GET",
                "/api/v1/partnerships?user=alice@corp.example",
                Some(&admin),
                None,
            )
            .2;
            page["items"].as_array().is_some_and(|a| !a.is_empty())
        }),
        "no partnership: {page}"
    );
    let p = &page["items"][0];
    assert_eq!(p["DeviceId"], "APPL123", "{p}");
    assert_eq!(p["DeviceType"], "iPhone");
    assert_eq!(p["DeviceUserAgent"], "Apple-iPhone13C2/2008.100");
    assert_eq!(p["ClientType"], "EAS");
    assert_eq!(p["DeviceAccessState"], "Allowed");
    assert_eq!(p["DeviceAccessStateReason"], "DeviceRule");
    assert_eq!(p["DeviceAccessControlRule"], "allow-managed");
    assert!(p["FirstSyncTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(p["cert_serial"], serial.as_str());
    // Filters by state and text; one DeviceId shows its override.
    let (_, _, none) = api(
        server.admin,
        "GET",
        "/api/v1/partnerships?state=block",
        Some(&admin),
        None,
    );
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    let (_, _, found) = api(
        server.admin,
        "GET",
        "/api/v1/partnerships?text=appl1",
        Some(&admin),
        None,
    );
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (status, _, _) = api(
        server.admin,
        "PUT",
        "/api/v1/overrides/APPL123",
        Some(&admin),
        Some(r#"{"action":"quarantine"}"#),
    );
    assert_eq!(status, 200);
    let (_, _, one) = api(
        server.admin,
        "GET",
        "/api/v1/partnerships/APPL123",
        Some(&admin),
        None,
    );
    assert_eq!(one["override"]["action"], "quarantine", "{one}");
    assert_eq!(one["bound_certificates"][0], serial.as_str());
}

#[test]
fn the_admin_listener_off_loopback_needs_tls() {
    let env = Env::new();
    env.ok(&["ca", "create", "default"]);
    let run = env.run(&[
        "serve",
        "--public-listen",
        "127.0.0.1:0",
        "--gateway-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("--admin-tls"), "{}", run.stderr);

    // `init --no-ca` made no gateway certificate: serve makes it with CA default.
    let server = env.serve(&["--admin-tls"]);
    let log = server.log_text();
    assert!(log.contains("admin listening on https://"), "{log}");
    let port = server.admin.port();
    let admin = std::fs::read_to_string(env.data_dir().join("admin-token")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(env.export_ca("default"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(["-H", &format!("Authorization: Bearer {}", admin.trim())])
        .arg(format!("https://localhost:{port}/api/v1/cas"))
        .output()
        .unwrap();
    let body: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(body["items"][0]["name"], "default");
    // Plain HTTP on the TLS port gets nothing.
    let plain = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain.stdout).trim(), "200");
}

#[test]
fn the_openapi_document_lists_every_operation() {
    let (_env, server, _admin) = setup();
    let (status, _, doc) = api(server.admin, "GET", "/api/openapi.json", None, None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/cas",
        "/api/v1/devices/{uid}/challenge",
        "/api/v1/partnerships",
        "/api/v1/audit",
        "/api/v1/tokens",
        "/api/v1/doctor",
        "/api/v1/what-if",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    // Every operation documents its problems and needs the bearer token.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("401") && responses.contains_key("403"),
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
