//! The web console: its sessions, cookies and CSRF protection over plain HTTP, and the whole
//! admin's round in Debian's Chromium driven by Playwright (tests/peers/console_browser.py):
//! a device a rule quarantined shows up in the live queue, is approved there and reaches the
//! upstream; its certificate is revoked in the console and its next request is refused; a rule
//! is added and tested with the what-if form; a device enrolled in the console gets a working
//! one-time link with its QR code; a helpdesk token is not offered the rule editor;
//! a change without the CSRF token is refused; every page passes axe-core at desktop and phone
//! width, with screenshots under target/console-screenshots/.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::upstream::{curl, Upstream};
use common::{api, eventually, http_with, Env, Server};
use serde_json::Value;

fn token(env: &Env, name: &str, role: &str) -> String {
    env.json(&["token", "create", name, "--role", role])["secret"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `POST /console/session` with `body` (JSON unless `content_type` says otherwise).
fn sign_in(server: &Server, body: &str, content_type: &str) -> (u16, String, Value) {
    let (status, head, body) = http_with(
        server.admin,
        "POST",
        "/console/session",
        &[format!("Content-Type: {content_type}")],
        body.as_bytes(),
    );
    (
        status,
        head,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn set_cookie(head: &str) -> Option<String> {
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .map(|l| l["set-cookie:".len()..].trim().to_string())
}

/// A request with the session cookie (and the CSRF token when given).
fn with_session(
    server: &Server,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut headers = vec![
        format!("Cookie: {cookie}"),
        "Content-Type: application/json".to_string(),
    ];
    if let Some(csrf) = csrf {
        headers.push(format!("X-CSRF-Token: {csrf}"));
    }
    let (status, _, body) = http_with(server.admin, method, path, &headers, body.as_bytes());
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
    )
}

fn audit_actions(env: &Env) -> Vec<(String, String)> {
    env.json(&["audit"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn sessions_are_http_only_cookies_and_changes_need_the_csrf_token() {
    let env = Env::new();
    env.standard_setup();
    let helpdesk = token(&env, "desk", "helpdesk");
    let mut server = env.serve(&[]);

    // The page: served with a policy that runs no inline script and loads nothing foreign.
    let (status, head, page) = http_with(server.admin, "GET", "/", &[], b"");
    assert_eq!(status, 200);
    let head_lower = head.to_ascii_lowercase();
    assert!(head_lower.contains("content-type: text/html"), "{head}");
    assert!(
        head_lower.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{head}"
    );
    assert!(!head_lower.contains("unsafe-inline"), "{head}");
    assert!(String::from_utf8_lossy(&page).contains("/console/app.js"));
    for asset in ["/console/app.js", "/console/app.css"] {
        let (status, _, body) = http_with(server.admin, "GET", asset, &[], b"");
        assert_eq!(status, 200, "{asset}");
        assert!(body.len() > 1000, "{asset} is embedded");
    }

    // A wrong token opens nothing and sets no cookie; neither does a cross-site form post.
    let (status, head, problem) = sign_in(&server, r#"{"token":"egt_nope"}"#, "application/json");
    assert_eq!(status, 401);
    assert_eq!(problem["status"], 401);
    assert!(set_cookie(&head).is_none(), "{head}");
    let body = format!("token={helpdesk}");
    let (status, head, _) = sign_in(&server, &body, "application/x-www-form-urlencoded");
    assert_eq!(status, 415, "a form cannot sign anyone in");
    assert!(set_cookie(&head).is_none());

    // Signed in: an HttpOnly, SameSite=Strict cookie (not Secure over plain HTTP), the role's
    // permissions, and the session's CSRF token.
    let (status, head, session) = sign_in(
        &server,
        &format!(r#"{{"token":"{helpdesk}"}}"#),
        "application/json",
    );
    assert_eq!(status, 200, "{session}");
    let cookie_line = set_cookie(&head).expect("Set-Cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie_line.contains(attribute), "{cookie_line}");
    }
    assert!(!cookie_line.contains("Secure"), "{cookie_line}");
    let cookie = cookie_line.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("easgate_session="));
    assert!(
        !cookie_line.contains(&helpdesk),
        "the cookie is not the token"
    );
    assert_eq!(session["name"], "desk");
    assert_eq!(session["role"], "helpdesk");
    assert_eq!(
        session["permissions"],
        serde_json::json!(["read", "helpdesk", "enroll"])
    );
    let csrf = session["csrf"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 64);

    // Reads need only the cookie.
    let (status, dash) = with_session(&server, "GET", "/api/v1/dashboard", &cookie, None, "");
    assert_eq!(status, 200, "{dash}");
    assert_eq!(dash["devices"]["Quarantined"], 0);
    assert_eq!(dash["crls"][0]["ca"], "default");
    assert_eq!(dash["crls"][0]["fresh"], true);
    let (status, again) = with_session(&server, "GET", "/console/session", &cookie, None, "");
    assert_eq!((status, again["csrf"].as_str()), (200, Some(csrf.as_str())));

    // A change without the CSRF token, or with another one, is refused, audited, and changes
    // nothing; with it, it is made (and audited as the token).
    let change = r#"{"action":"block","reason":"lost"}"#;
    for bad in [None, Some("0".repeat(64).as_str())] {
        let (status, problem) = with_session(
            &server,
            "PUT",
            "/api/v1/overrides/PHONE9",
            &cookie,
            bad,
            change,
        );
        assert_eq!(status, 403, "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("CSRF"));
    }
    let admin = std::fs::read_to_string(env.data_dir().join("admin-token")).unwrap();
    let overrides = || {
        api(
            server.admin,
            "GET",
            "/api/v1/overrides",
            Some(admin.trim()),
            None,
        )
        .2
    };
    assert_eq!(
        overrides()["items"].as_array().map(Vec::len),
        Some(0),
        "a refused change left nothing"
    );
    let (status, made) = with_session(
        &server,
        "PUT",
        "/api/v1/overrides/PHONE9",
        &cookie,
        Some(&csrf),
        change,
    );
    assert_eq!(status, 200, "{made}");
    assert_eq!(overrides()["items"][0]["eas_device_id"], "PHONE9");
    // The role still rules: helpdesk may not add a rule, CSRF token or not.
    let (status, problem) = with_session(
        &server,
        "POST",
        "/api/v1/rules",
        &cookie,
        Some(&csrf),
        r#"{"name":"x","action":"allow"}"#,
    );
    assert_eq!(status, 403);
    assert_eq!(problem["required_role"], "admin");

    // QR codes of enrollment links, for sessions only, with the CSRF token.
    let qr = r#"{"text":"http://localhost:8080/enroll/abc"}"#;
    let (status, _) = with_session(&server, "POST", "/console/qr", &cookie, None, qr);
    assert_eq!(status, 403);
    let (status, svg) = with_session(&server, "POST", "/console/qr", &cookie, Some(&csrf), qr);
    assert_eq!(status, 200);
    assert!(svg.as_str().unwrap().contains("<svg"), "{svg}");
    let (status, _, _) = http_with(
        server.admin,
        "POST",
        "/console/qr",
        &["Content-Type: application/json".into()],
        qr.as_bytes(),
    );
    assert_eq!(status, 401);

    // A made-up cookie is no session.
    let (status, _) = with_session(
        &server,
        "GET",
        "/api/v1/dashboard",
        "easgate_session=00ff",
        None,
        "",
    );
    assert_eq!(status, 401);

    // Sign-out needs the CSRF token too, then the cookie opens nothing.
    let (status, _) = with_session(&server, "DELETE", "/console/session", &cookie, None, "");
    assert_eq!(status, 403);
    let (status, _, _) = http_with(
        server.admin,
        "DELETE",
        "/console/session",
        &[format!("Cookie: {cookie}"), format!("X-CSRF-Token: {csrf}")],
        b"",
    );
    assert_eq!(status, 204);
    let (status, _) = with_session(&server, "GET", "/api/v1/dashboard", &cookie, None, "");
    assert_eq!(status, 401);

    // Revoking the token ends its sessions on their next request.
    let (_, head, _) = sign_in(
        &server,
        &format!(r#"{{"token":"{helpdesk}"}}"#),
        "application/json",
    );
    let cookie = set_cookie(&head).unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let (status, _) = with_session(&server, "GET", "/api/v1/partnerships", &cookie, None, "");
    assert_eq!(status, 200);
    env.ok(&["token", "revoke", "desk"]);
    let (status, problem) = with_session(&server, "GET", "/api/v1/partnerships", &cookie, None, "");
    assert_eq!(status, 401, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));

    let actions = audit_actions(&env);
    let has = |action: &str| {
        actions
            .iter()
            .any(|(a, actor)| a == action && actor == "token:desk")
    };
    for action in [
        "console.sign-in",
        "console.csrf-refused",
        "console.sign-out",
        "eas.block",
    ] {
        assert!(has(action), "{action} by token:desk in {actions:?}");
    }

    // The audit trail newest first (the console's device page), with the cursor paging back.
    let admin_token = admin.trim();
    let (_, _, newest) = api(
        server.admin,
        "GET",
        "/api/v1/audit?order=desc&limit=2",
        Some(admin_token),
        None,
    );
    let ids: Vec<i64> = newest["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.len() == 2 && ids[0] > ids[1], "{newest}");
    let cursor = newest["next_cursor"].as_str().unwrap();
    let (_, _, older) = api(
        server.admin,
        "GET",
        &format!("/api/v1/audit?order=desc&limit=2&cursor={cursor}"),
        Some(admin_token),
        None,
    );
    assert!(
        older["items"][0]["id"].as_i64().unwrap() < ids[1],
        "{older}"
    );
    server.stop();

    // Over TLS the cookie is Secure.
    let server = env.serve(&["--admin-tls"]);
    let out = Command::new("curl")
        .args([
            "-sk",
            "-i",
            "-H",
            "Content-Type: application/json",
            "--data",
        ])
        .arg(format!(r#"{{"token":"{}"}}"#, admin.trim()))
        .arg(format!("https://{}/console/session", server.admin))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("; Secure"), "{line}");
}

fn browser_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/peers/ui-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/install-peers (Playwright for the console test)",
        venv.display()
    );
    venv
}

fn axe_script() -> PathBuf {
    let axe = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/peers/ui-node/node_modules/axe-core/axe.min.js");
    assert!(
        axe.exists(),
        "{} is missing: run scripts/install-peers",
        axe.display()
    );
    axe
}

fn screenshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
}

/// One step of tests/peers/console_browser.py: what it printed, or a panic with its output.
fn browser(server: &Server, step: &str, token: &str, device: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/console_browser.py");
    let out = Command::new(browser_python())
        .arg(script)
        .arg(step)
        .args(["--base", &format!("http://{}", server.admin)])
        .args(["--token", token, "--device", device])
        .arg("--shots")
        .arg(screenshots())
        .arg("--axe")
        .arg(axe_script())
        .output()
        .expect("run the browser");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser step {step} failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log_text()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or(Value::Null)
}

/// Wait until the running server has applied every store change made so far
/// (`easgate_change_feed_revision` has caught up with the store's revision).
fn wait_until_applied(server: &Server) {
    let (_, _, health) = http_with(server.admin, "GET", "/healthz", &[], b"");
    let health: Value = serde_json::from_slice(&health).unwrap();
    let target = health["revision"].as_i64().unwrap();
    assert!(
        eventually(10.0, || {
            let (_, _, metrics) = http_with(server.admin, "GET", "/metrics", &[], b"");
            String::from_utf8_lossy(&metrics)
                .lines()
                .find_map(|l| l.strip_prefix("easgate_change_feed_revision "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|applied| applied as i64 >= target)
        }),
        "the server applies revision {target}"
    );
}

fn sync(env: &Env, server: &Server, cert: &(PathBuf, PathBuf), device: &str) -> u16 {
    let q = format!("Cmd=Sync&User=alice@corp.example&DeviceId={device}&DeviceType=iPhone");
    curl(env, server, &q, Some(cert), &["--data-binary", "x"]).0
}

#[test]
fn an_admin_works_the_quarantine_queue_and_revokes_in_chromium() {
    let env = Env::new();
    env.standard_setup();
    let (cert, key, serial) = env.issue_device_cert("alice@corp.example", "phone1");
    let cert = (cert, key);
    env.ok(&["group", "add", "staff"]);
    env.ok(&[
        "policy",
        "add",
        "new-iphones-wait",
        "--priority",
        "1",
        "--platform",
        "ios",
        "--action",
        "quarantine",
    ]);
    env.ok(&[
        "profile",
        "create",
        "iphones",
        "--platform",
        "ios",
        "--template",
        "phones",
        "--eas-host",
        "localhost",
        "--account-name",
        "Mail",
    ]);
    let helpdesk = token(&env, "desk", "helpdesk");
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url()]);
    let admin = std::fs::read_to_string(env.data_dir().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let device = "ApplPHONE1";

    // The rule quarantines the phone: the gateway answers it itself, nothing goes upstream.
    let status = sync(&env, &server, &cert, device);
    assert_eq!(status, 200, "a quarantined device gets the notice");
    assert!(upstream.requests().is_empty());

    let queue = || {
        api(server.admin, "GET", "/api/v1/dashboard", Some(&admin), None).2["quarantine_queue"]
            .as_u64()
    };
    assert!(
        eventually(5.0, || queue() == Some(1)),
        "the dashboard counts the queue"
    );

    // The admin approves it in the queue (which picks it up by itself).
    let out = browser(&server, "approve", &admin, device);
    assert_eq!(out["approved"], device);
    assert_eq!(queue(), Some(0), "approved: out of the queue at once");
    // The gateway lets it through on its next request.
    assert!(
        eventually(10.0, || {
            sync(&env, &server, &cert, device) == 200 && !upstream.requests().is_empty()
        }),
        "the approved device reaches the upstream"
    );

    // The certificate is revoked in the console: the next request is refused.
    let out = browser(&server, "revoke", &admin, device);
    assert_eq!(
        out["revoked"].as_str().map(str::to_ascii_uppercase),
        Some(serial.to_ascii_uppercase())
    );
    // Once the server has applied the change (the change feed, within a second), the very
    // next request is refused and nothing more reaches the upstream.
    wait_until_applied(&server);
    let reached = upstream.requests().len();
    assert_eq!(sync(&env, &server, &cert, device), 403);
    assert_eq!(upstream.requests().len(), reached);
    let shown = env.json(&["cert", "show", &serial]);
    assert_eq!(shown["status"], "revoked");
    assert_eq!(shown["revocation_reason"], "keyCompromise");
    // The dashboard counts the refusal by cause.
    let (_, _, dash) = api(server.admin, "GET", "/api/v1/dashboard", Some(&admin), None);
    let causes = dash["refusals_last_hour"].as_array().unwrap();
    assert!(
        causes.iter().any(|c| c["count"].as_u64() >= Some(1)),
        "{dash}"
    );

    // A new device enrolled in the console: its one-time link (shown with its QR code) downloads
    // the profile once.
    let devices_before = env.json(&["device", "list"]).as_array().unwrap().len();
    let out = browser(&server, "enroll", &admin, device);
    assert_eq!(
        env.json(&["device", "list"]).as_array().unwrap().len(),
        devices_before + 1
    );
    let link = out["profile_url"].as_str().unwrap();
    let path = &link[link.find("/enroll/").unwrap()..];
    let (status, _, profile) = http_with(server.public, "GET", path, &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&profile).contains("com.apple.eas.account"));
    let (status, _, _) = http_with(server.public, "GET", path, &[], b"");
    assert_ne!(status, 200, "the link works once");

    // Rules: add one, test it with what-if; CSRF and sign-out.
    let out = browser(&server, "rules", &admin, device);
    assert_eq!(out["without_csrf"], 403);
    let rules = env.json(&["policy", "list"]);
    assert!(rules.to_string().contains("block-windows"), "{rules}");

    // Helpdesk is not offered the editor, and the API refuses it anyway.
    let out = browser(&server, "helpdesk", &helpdesk, device);
    assert_eq!(out["add_rule"], 403);
    assert!(!env.json(&["policy", "list"]).to_string().contains("sneaky"));

    // Every page, desktop and phone width: screenshots and axe-core.
    browser(&server, "tour", &admin, device);
    for shot in [
        "dashboard.png",
        "quarantine-phone.png",
        "device.png",
        "rules.png",
    ] {
        assert!(screenshots().join(shot).exists(), "{shot}");
    }
}
