//! The gateway's decision order (docs/security.md) through the real binary, curl and the
//! recording upstream: no override, rule, default or upstream mode lets a cut-off device or a
//! forged identity through, and every refusal shows where an admin looks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::upstream::{curl, Upstream};
use common::{eventually, Env, Server};

type Cert = (PathBuf, PathBuf);

/// The devices of the table: certificates of every kind, all of user alice unless said.
struct Fleet {
    alice: Cert,
    expired: Cert,
    revoked: Cert,
    retired: Cert,
    carol: Cert,
    foreign: Cert,
    /// bob's valid certificate, for the probe that tells when a change has reached the server.
    probe: Cert,
}

/// CA, template, users alice, bob and carol (disabled), and the certificates of [`Fleet`].
fn fleet(env: &Env) -> Fleet {
    env.standard_setup();
    env.ok(&[
        "user",
        "add",
        "bob@corp.example",
        "--email",
        "bob@corp.example",
    ]);
    env.ok(&[
        "user",
        "add",
        "carol@corp.example",
        "--email",
        "carol@corp.example",
    ]);
    let cert = |user: &str, uid: &str| {
        let (c, k, serial) = env.issue_device_cert(user, uid);
        ((c, k), serial)
    };
    let (alice, _) = cert("alice@corp.example", "alice1");
    let (revoked, serial) = cert("alice@corp.example", "rev1");
    env.ok(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
    let (retired, _) = cert("alice@corp.example", "ret1");
    env.ok(&["device", "retire", "ret1"]);
    let (carol, _) = cert("carol@corp.example", "carol1");
    env.ok(&["user", "disable", "carol@corp.example"]);
    let (probe, _) = cert("bob@corp.example", "probe1");
    // Expired: issued from a one-day template three days ago (libfaketime).
    env.ok(&[
        "template",
        "create",
        "one-day",
        "--ca",
        "default",
        "--subject",
        "CN={DeviceUid}",
        "--san",
        "email:{EmailAddress}",
        "--san",
        "upn:{UserPrincipalName}",
        "--validity-days",
        "1",
    ]);
    env.enroll(
        "alice@corp.example",
        "ios",
        "exp1",
        &["--template", "one-day"],
    );
    let expired = (env.path("exp1.pem"), env.path("exp1.key"));
    let out = env
        .command_under(&["faketime", "-f", "-3d"])
        .args(["cert", "issue", "--template", "one-day", "--device", "exp1"])
        .arg("--out-key")
        .arg(&expired.1)
        .arg("--out")
        .arg(&expired.0)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Foreign: alice's certificate from another easgate's CA, with the same names.
    let other = Env::new();
    other.standard_setup();
    let (c, k, _) = other.issue_device_cert("alice@corp.example", "alice1");
    let foreign = (env.path("foreign.pem"), env.path("foreign.key"));
    std::fs::copy(c, &foreign.0).unwrap();
    std::fs::copy(k, &foreign.1).unwrap();
    Fleet {
        alice,
        expired,
        revoked,
        retired,
        carol,
        foreign,
        probe,
    }
}

/// One row of the table: who asks, with which certificate, as which user, from which DeviceId.
struct Case<'a> {
    name: &'static str,
    cert: Option<&'a Cert>,
    user: &'static str,
    device: &'static str,
}

fn cases(f: &Fleet) -> Vec<Case<'_>> {
    let case = |name, cert, user, device| Case {
        name,
        cert,
        user,
        device,
    };
    vec![
        // The attacker who knows alice's DeviceId and has no certificate.
        case("no cert", None, "alice@corp.example", "ALICE1"),
        case(
            "foreign-CA cert",
            Some(&f.foreign),
            "alice@corp.example",
            "FOREIGN1",
        ),
        case(
            "expired cert",
            Some(&f.expired),
            "alice@corp.example",
            "EXP1",
        ),
        case(
            "revoked cert",
            Some(&f.revoked),
            "alice@corp.example",
            "REV1",
        ),
        case(
            "retired device's cert",
            Some(&f.retired),
            "alice@corp.example",
            "RET1",
        ),
        case(
            "disabled user",
            Some(&f.carol),
            "carol@corp.example",
            "CAROL1",
        ),
        case(
            "disabled user, no cert",
            None,
            "carol@corp.example",
            "CAROL2",
        ),
        case(
            "other user's User=",
            Some(&f.alice),
            "bob@corp.example",
            "ALICE1",
        ),
        case(
            "cert bound elsewhere",
            Some(&f.alice),
            "alice@corp.example",
            "STOLEN1",
        ),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Allowance {
    None,
    EasAllow,
    AllowAllRule,
    DefaultAllow,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Passthrough,
    TrustedHeader,
}

/// Status of one request through the gateway.
fn ask(
    env: &Env,
    server: &Server,
    cert: Option<&Cert>,
    user: &str,
    device: &str,
    http: &str,
) -> u16 {
    let q = format!("Cmd=Sync&User={user}&DeviceId={device}&DeviceType=iPhone");
    curl(env, server, &q, cert, &[http, "--data-binary", "x"]).0
}

/// Wait until every change made so far is in the running server's policy: a rule that blocks
/// bob is added after them (the change feed applies changes in order), seen to take effect on
/// bob's probe device, and removed again.
fn settle(env: &Env, server: &Server, f: &Fleet, n: usize) {
    let probe = |status| {
        eventually(10.0, || {
            ask(
                env,
                server,
                Some(&f.probe),
                "bob@corp.example",
                "PROBE1",
                "--http1.1",
            ) == status
        })
    };
    let name = format!("probe-{n}");
    env.ok(&[
        "policy",
        "add",
        &name,
        "--priority",
        "-1000",
        "--user",
        "bob@corp.example",
        "--action",
        "block",
    ]);
    assert!(probe(403), "the probe rule never took effect");
    env.ok(&["policy", "remove", &name]);
    assert!(probe(200), "the probe rule was never removed");
}

/// SQL run on the store's SQLite file directly, with a change-feed row: what a second admin
/// tool or a race with `serve` could leave behind, which the CLI itself refuses.
fn sql(env: &Env, statements: &str, entity: &str, key: &str) {
    let db = env.data_dir().join("easgate.db");
    let script = "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\n\
         c.execute('INSERT INTO changes (at, entity, key) VALUES (?, ?, ?)', (int(time.time()), sys.argv[3], sys.argv[4]))\nc.commit()\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&db)
        .args([statements, entity, key])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// The DeviceIds of `cases`, each once.
fn devices<'a>(cases: &'a [Case<'_>]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = cases.iter().map(|c| c.device).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Put `allowance` in place for every DeviceId of `cases` (or take it away with `on` false).
fn apply(env: &Env, mode: Mode, allowance: Allowance, cases: &[Case<'_>], on: bool) {
    match (allowance, on) {
        (Allowance::None, _) => {}
        (Allowance::EasAllow, true) => {
            for device in devices(cases) {
                env.ok(&["eas", "allow", device, "--reason", "table test"]);
            }
        }
        (Allowance::EasAllow, false) => {
            for device in devices(cases) {
                env.ok(&["eas", "clear", device]);
            }
        }
        (Allowance::AllowAllRule, true) => {
            let args = [
                "policy",
                "add",
                "allow-all",
                "--priority",
                "1",
                "--action",
                "allow",
            ];
            if mode == Mode::TrustedHeader {
                let err = env.fails(&args);
                assert!(
                    err.contains("trusted-header") && err.contains("allow-all"),
                    "{err}"
                );
                sql(
                    env,
                    "INSERT INTO access_rules (name, priority, action, created_at) VALUES ('allow-all', 1, 'allow', 0)",
                    "rule",
                    "allow-all",
                );
            } else {
                env.ok(&args);
            }
        }
        (Allowance::AllowAllRule, false) => {
            env.ok(&["policy", "remove", "allow-all"]);
        }
        (Allowance::DefaultAllow, true) => {
            if mode == Mode::TrustedHeader {
                let err = env.fails(&["policy", "default", "allow"]);
                assert!(err.contains("trusted-header"), "{err}");
                sql(
                    env,
                    "INSERT OR REPLACE INTO settings (key, value) VALUES ('policy.default', 'allow')",
                    "setting",
                    "policy.default",
                );
            } else {
                env.ok(&["policy", "default", "allow"]);
            }
        }
        (Allowance::DefaultAllow, false) => {
            env.ok(&["policy", "default", "block"]);
        }
    }
}

/// Whether the table means `case` to pass: only a request without a certificate, in
/// passthrough mode (the mail server still asks for the user's password), for a user who is
/// not disabled, when a rule or the default allows devices without a certificate.
fn intended_to_pass(case: &Case<'_>, mode: Mode, allowance: Allowance) -> bool {
    case.name == "no cert"
        && mode == Mode::Passthrough
        && matches!(allowance, Allowance::AllowAllRule | Allowance::DefaultAllow)
}

#[test]
fn no_override_rule_default_or_mode_lets_a_cut_off_request_through() {
    let env = Env::new();
    let f = fleet(&env);
    let upstream = Upstream::start(&env);
    let cases = cases(&f);
    let mut probes = 0;
    for mode in [Mode::Passthrough, Mode::TrustedHeader] {
        let auth = match mode {
            Mode::Passthrough => "passthrough",
            Mode::TrustedHeader => "trusted-header",
        };
        let mut server = env.serve(&["--upstream", &upstream.url(), "--upstream-auth", auth]);
        // alice's phone binds its certificate to ALICE1 with a first good request.
        for http in ["--http1.1", "--http2"] {
            assert_eq!(
                ask(
                    &env,
                    &server,
                    Some(&f.alice),
                    "alice@corp.example",
                    "ALICE1",
                    http
                ),
                200,
                "{}",
                server.log_text()
            );
        }
        for allowance in [
            Allowance::None,
            Allowance::EasAllow,
            Allowance::AllowAllRule,
            Allowance::DefaultAllow,
        ] {
            apply(&env, mode, allowance, &cases, true);
            probes += 1;
            settle(&env, &server, &f, probes);
            for case in &cases {
                for http in ["--http1.1", "--http2"] {
                    let before = upstream.requests().len();
                    let status = ask(&env, &server, case.cert, case.user, case.device, http);
                    let reached = upstream.requests().len() - before;
                    let label = format!("{} / {allowance:?} / {mode:?} / {http}", case.name);
                    if intended_to_pass(case, mode, allowance) {
                        assert_eq!((status, reached), (200, 1), "{label}");
                        let last = upstream.requests().last().unwrap().clone();
                        assert!(
                            Upstream::header(&last, "x-remote-user").is_empty(),
                            "{label}"
                        );
                    } else {
                        assert_eq!(status, 403, "{label}\n{}", server.log_text());
                        assert_eq!(reached, 0, "{label}: reached the upstream");
                    }
                }
            }
            // The device's own certificate still works under every allowance.
            let status = ask(
                &env,
                &server,
                Some(&f.alice),
                "alice@corp.example",
                "ALICE1",
                "--http2",
            );
            assert_eq!(status, 200, "alice's own phone / {allowance:?} / {mode:?}");
            if mode == Mode::TrustedHeader {
                let last = upstream.requests().last().unwrap().clone();
                assert_eq!(
                    Upstream::header(&last, "x-remote-user"),
                    ["alice@corp.example"]
                );
            }
            apply(&env, mode, allowance, &cases, false);
        }
        server.stop();
    }
}

/// A Sync of alice's through the gateway with the given certificate and DeviceId, HTTP/1.1.
fn sync(env: &Env, server: &Server, cert: Option<&Cert>, device: &str, agent: &str) -> u16 {
    let q = format!("Cmd=Sync&User=alice@corp.example&DeviceId={device}&DeviceType=iPhone");
    curl(
        env,
        server,
        &q,
        cert,
        &["--http1.1", "-A", agent, "--data-binary", "x"],
    )
    .0
}

fn partnerships(env: &Env, device: &str) -> serde_json::Value {
    env.json(&["eas", "show", device])["partnerships"].clone()
}

#[test]
fn a_spoofed_device_id_gets_a_flagged_record_of_its_own_and_no_override() {
    let env = Env::new();
    env.standard_setup();
    let (cert, key, serial) = env.issue_device_cert("alice@corp.example", "phone1");
    let phone = (cert, key);
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url()]);
    assert_eq!(
        sync(
            &env,
            &server,
            Some(&phone),
            "ApplF17XK2Q3",
            "Apple-iPhone/1"
        ),
        200
    );
    // The documented way to approve a device; then the attacker, who knows the DeviceId.
    env.ok(&["eas", "allow", "ApplF17XK2Q3"]);
    assert!(eventually(5.0, || env.json(&[
        "eas",
        "show",
        "ApplF17XK2Q3"
    ])["override"]["action"]
        == "allow"));
    let before = upstream.requests().len();
    assert_eq!(
        sync(&env, &server, None, "ApplF17XK2Q3", "curl/7.88.1"),
        403
    );
    assert_eq!(upstream.requests().len(), before);
    // Once flushed (each second): the bound device's record is as it was; the spoof is its own.
    assert!(eventually(5.0, || partnerships(&env, "ApplF17XK2Q3")
        .as_array()
        .unwrap()
        .len()
        == 2));
    let all = partnerships(&env, "ApplF17XK2Q3");
    let own = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["suspect"] == false)
        .unwrap();
    assert_eq!(own["device_state"], "managed");
    assert_eq!(own["user_agent"], "Apple-iPhone/1");
    assert_eq!(
        own["cert_serial"].as_str().unwrap().to_ascii_lowercase(),
        serial.to_ascii_lowercase()
    );
    assert_eq!(own["access_state"], "allow");
    let spoof = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["suspect"] == true)
        .unwrap();
    assert_eq!(spoof["device_state"], "unmanaged");
    assert_eq!(spoof["user_agent"], "curl/7.88.1");
    assert_eq!(spoof["access_state"], "block");
    assert!(
        spoof["last_refusal"]
            .as_str()
            .unwrap()
            .contains("possible spoof"),
        "{spoof}"
    );
    let text = env.ok(&["eas", "show", "ApplF17XK2Q3"]);
    assert!(text.contains("POSSIBLE SPOOF"), "{text}");
    let list = env.ok(&["eas", "list"]);
    assert!(list.contains("ApplF17XK2Q3 (possible spoof)"), "{list}");
    // And in the audit trail, as a possible spoof and as a refusal.
    assert!(eventually(5.0, || {
        let audit = env.ok(&["audit"]);
        audit.contains("gateway.possible-spoof") && audit.contains("gateway.refuse")
    }));
    // The real phone is not disturbed.
    assert_eq!(
        sync(
            &env,
            &server,
            Some(&phone),
            "ApplF17XK2Q3",
            "Apple-iPhone/1"
        ),
        200
    );
}

#[test]
fn refusals_show_in_eas_list_show_and_audit_aggregated_per_minute() {
    let env = Env::new();
    env.standard_setup();
    let (cert, key, serial) = env.issue_device_cert("alice@corp.example", "phone1");
    let phone = (cert, key);
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url()]);
    assert_eq!(
        sync(&env, &server, Some(&phone), "PHONE1", "Apple-iPhone/1"),
        200
    );
    env.ok(&["cert", "revoke", &serial, "--reason", "keyCompromise"]);
    assert!(eventually(5.0, || sync(
        &env,
        &server,
        Some(&phone),
        "PHONE1",
        "Apple-iPhone/1"
    ) == 403));
    // The phone keeps retrying.
    for _ in 0..20 {
        assert_eq!(
            sync(&env, &server, Some(&phone), "PHONE1", "Apple-iPhone/1"),
            403
        );
    }
    assert!(eventually(5.0, || {
        let p = &partnerships(&env, "PHONE1")[0];
        p["access_state"] == "refuse"
            && p["last_refusal"]
                .as_str()
                .is_some_and(|r| r.contains("revoked"))
    }));
    let all = partnerships(&env, "PHONE1");
    assert_eq!(
        all.as_array().unwrap().len(),
        1,
        "the device's own certificate: its own record"
    );
    let list = env.ok(&["eas", "list"]);
    let row = list.lines().find(|l| l.contains("PHONE1")).unwrap();
    assert!(
        row.contains("refuse") && row.contains("client certificate is revoked"),
        "{list}"
    );
    let show = env.ok(&["eas", "show", "PHONE1"]);
    assert!(show.contains("last refusal"), "{show}");
    assert!(eventually(5.0, || env
        .ok(&["audit"])
        .contains("certificate-revoked")));
    // Twenty-odd refusals in (at most two) minutes: at most two events a minute.
    let audit = env.json(&["audit"]);
    let refusals = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "gateway.refuse")
        .count();
    assert!(
        (1..=4).contains(&refusals),
        "{refusals} refusal events:\n{audit:#}"
    );
}

/// Writes `text` to `path` and returns the path as a string.
fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn trusted_header_mode_refuses_to_start_and_refuses_changes_that_admit_devices_without_a_certificate(
) {
    let env = Env::new();
    env.standard_setup();
    env.ok(&[
        "policy",
        "add",
        "lan",
        "--network",
        "127.0.0.0/8",
        "--action",
        "allow",
    ]);
    env.ok(&["eas", "allow", "MANUAL1", "--unmanaged"]);
    let run = env.run(&[
        "serve",
        "--gateway-listen",
        "127.0.0.1:0",
        "--public-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--upstream-auth",
        "trusted-header",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("rule `lan`") && run.stderr.to_lowercase().contains("manual1"),
        "{}",
        run.stderr
    );
    // In a config file too.
    let config = write(
        &env.path("easgate.toml"),
        "upstream_auth = \"trusted-header\"\n",
    );
    let run = env.run(&[
        "serve",
        "--config",
        &config,
        "--gateway-listen",
        "127.0.0.1:0",
        "--public-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("rule `lan`"), "{}", run.stderr);

    env.ok(&["policy", "remove", "lan"]);
    env.ok(&["eas", "clear", "MANUAL1"]);
    let mut server = env.serve(&["--upstream-auth", "trusted-header"]);
    // The recorded mode makes the CLI refuse what would admit devices without a certificate.
    for args in [
        &[
            "policy",
            "add",
            "lan",
            "--network",
            "127.0.0.0/8",
            "--action",
            "allow",
        ][..],
        &["policy", "default", "allow"],
        &["eas", "allow", "MANUAL1", "--unmanaged"],
    ] {
        let err = env.fails(args);
        assert!(err.contains("trusted-header"), "{args:?}: {err}");
    }
    // What cannot admit them is still fine.
    env.ok(&[
        "policy",
        "add",
        "lan-managed",
        "--network",
        "127.0.0.0/8",
        "--device-state",
        "managed",
        "--action",
        "allow",
    ]);
    env.ok(&[
        "policy",
        "add",
        "lan-block",
        "--network",
        "127.0.0.0/8",
        "--action",
        "block",
    ]);
    env.ok(&["eas", "allow", "PHONE1"]);
    let test = env.json(&[
        "policy",
        "test",
        "--user",
        "alice@corp.example",
        "--cert",
        "none",
    ]);
    assert_eq!(test["action"], "refuse");
    assert_eq!(test["refusal"], "certificate-required");
    server.stop();
    // Back in passthrough mode (recorded at start), an unmanaged allow is possible again.
    let _server = env.serve(&[]);
    env.ok(&["eas", "allow", "MANUAL1", "--unmanaged"]);
    let list = env.run(&["eas", "list"]);
    assert!(
        list.stderr.contains("MANUAL1") && list.stderr.contains("WITHOUT a certificate"),
        "{}",
        list.stderr
    );
}

#[test]
fn a_refused_device_learns_the_cause_but_not_the_bound_device_id() {
    let env = Env::new();
    env.standard_setup();
    let (cert, key, _) = env.issue_device_cert("alice@corp.example", "phone1");
    let phone = (cert, key);
    let upstream = Upstream::start(&env);
    let server = env.serve(&["--upstream", &upstream.url()]);
    assert_eq!(
        sync(
            &env,
            &server,
            Some(&phone),
            "ApplSECRET42",
            "Apple-iPhone/1"
        ),
        200
    );
    // The thief uses the stolen certificate from a phone of their own.
    let q = "Cmd=Sync&User=alice@corp.example&DeviceId=THIEF1&DeviceType=iPhone";
    let (status, body) = curl(&env, &server, q, Some(&phone), &["--data-binary", "x"]);
    let body = String::from_utf8_lossy(&body).to_ascii_lowercase();
    assert_eq!(status, 403);
    assert!(body.contains("belongs to another device"), "{body}");
    assert!(
        !body.contains("applsecret42"),
        "the refusal names the bound DeviceId: {body}"
    );
    // The admin sees the details (once the partnership is flushed, each second).
    assert!(eventually(5.0, || {
        let r = env.run(&["eas", "show", "THIEF1", "--json"]);
        r.code == 0 && r.stdout.contains("ApplSECRET42")
    }));
}
