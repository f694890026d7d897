//! Several `easgate serve` processes on one PostgreSQL database, as several hosts behind a load
//! balancer run them: a revocation made through one instance is enforced by the others'
//! gateways and OCSP; exactly one instance signs CRLs and another takes over when it is killed
//! (`kill -9`) with the next number; issuance on every instance at once records each
//! certificate once; a certificate bound to a device through one gateway cannot be used with
//! another DeviceId through another; partnerships from every gateway merge; rules and user
//! changes made anywhere apply everywhere; a SCEP enrollment
//! cut off by killing its instance is retried against another and gets the same certificate;
//! a remote wipe handed out by one gateway is acknowledged through another.
//! And a database outage: decisions continue from memory, writes fail cleanly, the gateway
//! fails closed past `--max-staleness`, and everything recovers when the database is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Instant;

use common::crash::{kill, kill_moments, scep_enrollments_survive_kills};
use common::pg::{PrivateCluster, TestSchema};
use common::upstream::{curl, curl_trusting, Upstream};
use common::{api, eventually, http, openssl_ok, p256_csr, Env, Server};

type Cert = (PathBuf, PathBuf);

/// Flags for every instance: a delta CRL one second after a revocation, so a takeover shows
/// quickly.
const FAST_CRLS: [&str; 2] = ["--delta-crl-delay", "1s"];

fn admin_token(env: &Env) -> String {
    std::fs::read_to_string(env.data_dir().join("admin-token"))
        .unwrap()
        .trim()
        .to_string()
}

/// One EAS request through `server`'s gateway: its HTTP status.
fn ask(env: &Env, server: &Server, cert: &Cert, device: &str) -> u16 {
    let q = format!("Cmd=Sync&User=alice@corp.example&DeviceId={device}&DeviceType=iPhone");
    curl(env, server, &q, Some(cert), &["--data-binary", "x"]).0
}

/// As [`ask`], trusting the CA exported to `ca` (while the database is down).
fn ask_trusting(env: &Env, ca: &Path, server: &Server, cert: &Cert, device: &str) -> u16 {
    let q = format!("Cmd=Sync&User=alice@corp.example&DeviceId={device}&DeviceType=iPhone");
    curl_trusting(env, ca, server, &q, Some(cert), &["--data-binary", "x"]).0
}

/// What `server`'s OCSP responder says of `cert` (`good`, `revoked`, …).
fn ocsp_status(env: &Env, server: &Server, cert: &Path) -> String {
    let ca = env.export_ca("default");
    let url = format!("http://{}/ocsp/default", server.public);
    let out = openssl_ok(
        &[
            "ocsp",
            "-issuer",
            ca.to_str().unwrap(),
            "-CAfile",
            ca.to_str().unwrap(),
            "-cert",
            cert.to_str().unwrap(),
            "-url",
            &url,
        ],
        env.dir.path(),
    );
    let line = out
        .lines()
        .find(|l| l.contains(".pem:"))
        .unwrap_or_else(|| panic!("no status line in {out}"));
    line.rsplit(':').next().unwrap().trim().to_string()
}

/// The number of the CRL `server` serves at `path` (`/crl/default.crl` or `-delta.crl`).
fn served_crl_number(env: &Env, server: &Server, path: &str) -> Option<(u64, String)> {
    let (code, _, body) = http(server.public, "GET", path, b"");
    if code != 200 {
        return None;
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let file = format!(
        "served-{}.crl",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    std::fs::write(env.path(&file), body).unwrap();
    let text = openssl_ok(
        &["crl", "-inform", "DER", "-in", &file, "-noout", "-text"],
        env.dir.path(),
    );
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.contains("X509v3 CRL Number") {
            return Some((lines.next()?.trim().parse().ok()?, text));
        }
    }
    None
}

/// The highest CRL number (full or delta) `server` serves.
fn newest_crl_number(env: &Env, server: &Server) -> u64 {
    ["/crl/default.crl", "/crl/default-delta.crl"]
        .iter()
        .filter_map(|p| served_crl_number(env, server, p).map(|(n, _)| n))
        .max()
        .unwrap_or(0)
}

fn metric(server: &Server, name: &str) -> Option<i64> {
    let (_, _, body) = http(server.admin, "GET", "/metrics", b"");
    String::from_utf8_lossy(&body)
        .lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as i64)
}

#[test]
fn several_instances_on_one_database_keep_one_truth() {
    let Some(schema) = TestSchema::fresh("several_instances_on_one_database_keep_one_truth") else {
        return;
    };
    let env = Env::bare_with_database(&schema.url);
    env.ok(&["init", "--no-ca"]);
    env.standard_setup();
    let issue = |uid: &str| {
        let (c, k, serial) = env.issue_device_cert("alice@corp.example", uid);
        ((c, k), serial)
    };
    let (first, first_serial) = issue("phone1");
    let (_, second_serial) = issue("phone2");
    let (third, _) = issue("phone3");
    let upstream = Upstream::start(&env);
    let upstream_url = upstream.url();
    let flags = [&["--upstream", upstream_url.as_str()][..], &FAST_CRLS[..]].concat();
    let mut servers: Vec<Server> = (0..3).map(|_| env.serve(&flags)).collect();
    // The first start wrote the admin token.
    let token = admin_token(&env);

    // Every instance lets the managed device in.
    for (i, server) in servers.iter().enumerate() {
        assert_eq!(
            ask(&env, server, &first, "PHONE1"),
            200,
            "instance {i}:\n{}",
            server.log_text()
        );
        assert_eq!(ocsp_status(&env, server, &first.0), "good");
    }

    // Exactly one instance is the CRL leader.
    assert!(
        eventually(10.0, || servers
            .iter()
            .map(|s| metric(s, "easgate_crl_leader").unwrap_or(0))
            .sum::<i64>()
            == 1),
        "not exactly one CRL leader"
    );

    // Revoked through instance 0's API: instances 1 and 2 refuse it and their OCSP says
    // revoked (the test allows 10 s; scripts/bench-store measures the real delay).
    let revoked_at = Instant::now();
    let (code, _, body) = api(
        servers[0].admin,
        "POST",
        &format!("/api/v1/certificates/{first_serial}/revoke"),
        Some(&token),
        Some(r#"{"reason":"keyCompromise"}"#),
    );
    assert_eq!(code, 200, "{body}");
    for i in [1, 2] {
        assert!(
            eventually(10.0, || ask(&env, &servers[i], &first, "PHONE1") == 403),
            "instance {i} still lets the revoked certificate in:\n{}",
            servers[i].log_text()
        );
        assert!(
            eventually(10.0, || ocsp_status(&env, &servers[i], &first.0)
                == "revoked"),
            "instance {i}'s OCSP does not say revoked"
        );
    }
    println!(
        "revocation on instance 0 enforced by instances 1 and 2 after {:?}",
        revoked_at.elapsed()
    );

    // kill -9 the CRL leader: another instance takes the lease and publishes a CRL with the
    // next revocation, numbered above the newest the cluster had (the numbers come from the
    // database: never repeated; the new leader may first make a delta for a revocation the old
    // one might not have published).
    assert!(
        eventually(10.0, || servers
            .iter()
            .all(|s| newest_crl_number(&env, s) >= 1)),
        "no CRL served everywhere"
    );
    let leader = servers
        .iter()
        .position(|s| metric(s, "easgate_crl_leader") == Some(1))
        .expect("a leader");
    // Let the leader's delta for the first revocation land everywhere first.
    let settled = |servers: &[Server]| {
        let numbers: Vec<u64> = servers.iter().map(|s| newest_crl_number(&env, s)).collect();
        numbers.windows(2).all(|w| w[0] == w[1]).then(|| numbers[0])
    };
    let mut before = 0;
    assert!(
        eventually(15.0, || match settled(&servers) {
            Some(n) => {
                // The delta listing the first revocation is out.
                let delta = served_crl_number(&env, &servers[0], "/crl/default-delta.crl");
                before = n;
                delta.is_some_and(|(_, text)| text.contains(&first_serial))
            }
            None => false,
        }),
        "the instances never agreed on the newest CRL"
    );
    kill(&mut servers.remove(leader));
    let (code, _, body) = api(
        servers[0].admin,
        "POST",
        &format!("/api/v1/certificates/{second_serial}/revoke"),
        Some(&token),
        Some(r#"{"reason":"keyCompromise"}"#),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        eventually(30.0, || servers.iter().all(|s| {
            served_crl_number(&env, s, "/crl/default-delta.crl")
                .is_some_and(|(n, text)| n > before && text.contains(&second_serial))
        })),
        "no instance published a CRL above number {before} with the second revocation after \
         the leader died:\n{}",
        servers
            .iter()
            .map(Server::log_text)
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
    assert_eq!(
        servers
            .iter()
            .map(|s| metric(s, "easgate_crl_leader").unwrap_or(0))
            .sum::<i64>(),
        1
    );

    // A certificate bound to PHONE3 through one gateway cannot be used as another device
    // through the other, not even once: the first gateway recorded the binding before it
    // answered, and the second finds it in the store on the certificate's first use there.
    assert_eq!(ask(&env, &servers[0], &third, "PHONE3"), 200);
    assert_eq!(
        ask(&env, &servers[1], &third, "STOLEN3"),
        403,
        "the other gateway let the certificate bound to PHONE3 in as STOLEN3:\n{}",
        servers[1].log_text()
    );
    assert_eq!(ask(&env, &servers[1], &third, "PHONE3"), 200);

    // Partnerships written by both gateways merge: both devices are listed.
    let (fourth, _) = issue("phone4");
    assert_eq!(ask(&env, &servers[1], &fourth, "PHONE4"), 200);
    assert!(
        eventually(10.0, || {
            let listed = env.json(&["eas", "list"]).to_string();
            listed.contains("PHONE3") && listed.contains("PHONE4") && listed.contains("PHONE1")
        }),
        "a device's partnership is missing: {}",
        env.json(&["eas", "list"])
    );

    // A rule added through one instance's API blocks on the other; a user disabled with the
    // CLI (no instance involved) is refused by every instance.
    let (code, _, body) = api(
        servers[0].admin,
        "POST",
        "/api/v1/rules",
        Some(&token),
        Some(
            r#"{"name":"block-alice","priority":-10,"users":["alice@corp.example"],"action":"block"}"#,
        ),
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        eventually(10.0, || ask(&env, &servers[1], &fourth, "PHONE4") == 403),
        "the rule added through instance 0 is not applied by instance 1"
    );
    let (code, _, body) = api(
        servers[1].admin,
        "DELETE",
        "/api/v1/rules/block-alice",
        Some(&token),
        None,
    );
    assert_eq!(code, 200, "{body}");
    assert!(eventually(10.0, || ask(
        &env,
        &servers[0],
        &fourth,
        "PHONE4"
    ) == 200));

    // Issuance on every instance at once: distinct serials, each recorded once.
    let before_count = env.json(&["cert", "list"]).as_array().unwrap().len();
    let per_instance = 6;
    let mut csrs = Vec::new();
    for i in 0..servers.len() * per_instance {
        let uid = format!("bulk{i}");
        env.enroll("alice@corp.example", "ios", &uid, &[]);
        let csr = p256_csr(env.dir.path(), &uid);
        csrs.push((uid, csr));
    }
    let serials: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = csrs
            .iter()
            .enumerate()
            .map(|(i, (uid, csr))| {
                let admin = servers[i % servers.len()].admin;
                let token = &token;
                scope.spawn(move || {
                    let body = serde_json::json!({
                        "template": "phones", "device": uid, "csr_pem": csr
                    })
                    .to_string();
                    let (code, _, out) = api(
                        admin,
                        "POST",
                        "/api/v1/certificates",
                        Some(token),
                        Some(&body),
                    );
                    assert_eq!(code, 201, "{out}");
                    out["certificate"]["serial"].as_str().unwrap().to_string()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: std::collections::HashSet<&String> = serials.iter().collect();
    assert_eq!(distinct.len(), serials.len(), "a serial was issued twice");
    let listed = env.json(&["cert", "list"]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), before_count + serials.len());
    for serial in &serials {
        assert_eq!(
            listed.iter().filter(|c| c["serial"] == *serial).count(),
            1,
            "{serial} is not recorded exactly once"
        );
    }

    env.ok(&["user", "disable", "alice@corp.example"]);
    for (i, server) in servers.iter().enumerate() {
        assert!(
            eventually(10.0, || ask(&env, server, &fourth, "PHONE4") == 403),
            "instance {i} still lets a disabled user in"
        );
    }
}

/// A SCEP enrollment whose instance is killed (SIGKILL) at spread-out moments is retried by the
/// client against another instance: it always ends with exactly one certificate, the one the
/// client holds (the same one when the first instance had already recorded it).
#[test]
fn a_scep_enrollment_cut_off_on_one_instance_completes_on_another() {
    let Some(schema) = TestSchema::fresh("a_scep_enrollment_cut_off_on_one_instance") else {
        return;
    };
    let env = Env::bare_with_database(&schema.url);
    env.ok(&["init", "--no-ca"]);
    env.ok(&["ca", "create", "mail", "--key", "rsa-2048"]);
    env.phones_template("mail", "CN={DeviceUid}");
    env.add_alice();
    let other = env.serve(&[]);
    // Kill moments 0 to ~300 ms into the enrollment; each retry goes to the other instance.
    let kills = 10;
    let interrupted = scep_enrollments_survive_kills(
        &env,
        "mail",
        kills,
        kill_moments(0x9e37_79b9_7f4a_7c15, 300),
        Some(&other),
    );
    assert!(
        interrupted >= 2,
        "only {interrupted} of {kills} enrollments were interrupted"
    );
}

/// The database goes away under a running instance: the gateway keeps deciding from memory,
/// admin writes fail with a clear error and write nothing, and past `--max-staleness` managed
/// devices of our CA are refused; once the database is back, all recovers by itself.
#[test]
fn a_database_outage_keeps_decisions_then_fails_closed_and_recovers() {
    let Some(cluster) = PrivateCluster::start("a_database_outage") else {
        return;
    };
    let env = Env::bare_with_database(&cluster.url());
    env.ok(&["init", "--no-ca"]);
    env.standard_setup();
    let (c, k, _) = env.issue_device_cert("alice@corp.example", "phone1");
    let phone: Cert = (c, k);
    let upstream = Upstream::start(&env);
    let server = env.serve(&[
        "--upstream",
        &upstream.url(),
        "--max-staleness",
        "8s",
        "--change-poll-interval",
        "500ms",
    ]);
    let token = admin_token(&env);
    let ca = env.export_ca("default");
    let ask = |server: &Server| ask_trusting(&env, &ca, server, &phone, "PHONE1");
    assert_eq!(ask(&server), 200);

    cluster.stop_server();
    let stopped = Instant::now();
    // Within --max-staleness: still decided from memory.
    assert_eq!(ask(&server), 200);
    assert!(
        stopped.elapsed() < std::time::Duration::from_secs(8),
        "the request took longer than --max-staleness; it proves nothing"
    );
    // Admin writes fail cleanly: the API says the database is unreachable, the CLI too.
    let (code, _, body) = api(
        server.admin,
        "POST",
        "/api/v1/users",
        Some(&token),
        Some(r#"{"upn":"dave@corp.example","email":"dave@corp.example"}"#),
    );
    assert_eq!(code, 503, "{body}");
    assert!(body.to_string().contains("unreachable"), "{body}");
    let cli = env.run(&[
        "user",
        "add",
        "erin@corp.example",
        "--email",
        "erin@corp.example",
    ]);
    assert_ne!(cli.code, 0);
    assert!(cli.stderr.contains("PostgreSQL"), "{}", cli.stderr);
    // Past it: fail closed, loudly.
    assert!(
        eventually(30.0, || ask(&server) == 403),
        "the gateway still lets the device in after --max-staleness:\n{}",
        server.log_text()
    );
    assert!(
        eventually(5.0, || server.log_text().contains("beyond --max-staleness")),
        "{}",
        server.log_text()
    );
    assert!(metric(&server, "easgate_store_snapshot_age_seconds").unwrap() >= 8);

    cluster.start_server();
    assert!(
        eventually(30.0, || ask(&server) == 200),
        "the gateway did not recover after the database came back:\n{}",
        server.log_text()
    );
    assert!(
        eventually(5.0, || server.log_text().contains("answers again")),
        "{}",
        server.log_text()
    );
    // Nothing of the failed writes was recorded; writes work again.
    let users = env.json(&["user", "list"]).to_string();
    assert!(
        !users.contains("dave@") && !users.contains("erin@"),
        "{users}"
    );
    let (code, _, body) = api(
        server.admin,
        "POST",
        "/api/v1/users",
        Some(&token),
        Some(r#"{"upn":"dave@corp.example","email":"dave@corp.example"}"#),
    );
    assert_eq!(code, 201, "{body}");
}

/// `kill -9` while revocations and issuances are in flight through the API on PostgreSQL:
/// whatever was acknowledged is there after the kill, and nothing is recorded twice.
#[test]
fn acknowledged_revocations_and_issuances_survive_kill_9() {
    let Some(schema) = TestSchema::fresh("acknowledged_revocations_and_issuances_survive") else {
        return;
    };
    let env = Env::bare_with_database(&schema.url);
    env.ok(&["init", "--no-ca"]);
    env.standard_setup();
    let rounds = 8;
    let mut victims = Vec::new();
    let mut csrs = Vec::new();
    for i in 0..rounds {
        victims.push(
            env.issue_device_cert("alice@corp.example", &format!("victim{i}"))
                .2,
        );
        let uid = format!("fresh{i}");
        env.enroll("alice@corp.example", "ios", &uid, &[]);
        let csr = p256_csr(env.dir.path(), &uid);
        csrs.push((uid, csr));
    }
    let mut moments = kill_moments(0x51_7cc1_b727_220a, 400);
    let mut acknowledged = (0, 0);
    for i in 0..rounds {
        let mut server = env.serve(&[]);
        let token = admin_token(&env);
        let admin = server.admin;
        let serial = victims[i].clone();
        let (uid, csr) = csrs[i].clone();
        let calls = std::thread::spawn(move || {
            // A connection cut by the kill makes the test client panic: no answer (0).
            let call = |method: &str, path: &str, body: Option<&str>| {
                std::panic::catch_unwind(|| api(admin, method, path, Some(&token), body))
                    .unwrap_or((0, String::new(), serde_json::Value::Null))
            };
            let (revoked, _, why) = call(
                "POST",
                &format!("/api/v1/certificates/{serial}/revoke"),
                Some(r#"{"reason":"keyCompromise"}"#),
            );
            assert!(revoked == 200 || revoked == 0, "{revoked}: {why}");
            let body = serde_json::json!({"template": "phones", "device": uid, "csr_pem": csr});
            let (issued, _, out) = call("POST", "/api/v1/certificates", Some(&body.to_string()));
            (revoked, issued, out)
        });
        std::thread::sleep(moments());
        kill(&mut server);
        let (revoked, issued, out) = calls.join().unwrap();
        let shown = env.json(&["cert", "show", &victims[i]]);
        if revoked == 200 {
            acknowledged.0 += 1;
            assert_eq!(shown["status"], "revoked", "acknowledged revocation lost");
        }
        let fresh = env.json(&["cert", "list", "--device", &csrs[i].0]);
        let fresh = fresh.as_array().unwrap();
        if issued == 201 {
            acknowledged.1 += 1;
            assert_eq!(fresh.len(), 1, "acknowledged issuance lost: {fresh:?}");
            assert_eq!(fresh[0]["serial"], out["certificate"]["serial"]);
        } else {
            assert!(fresh.len() <= 1, "{fresh:?}");
        }
    }
    println!("acknowledged before the kill: {acknowledged:?} of {rounds} revocations/issuances");
    // Some calls were answered (otherwise the test proved little).
    assert!(acknowledged.0 + acknowledged.1 >= 2, "{acknowledged:?}");
}

/// A Provision body (WBXML, made with the project's codec): `child` under `Provision`.
fn provision_body(env: &Env, name: &str, child: easgate_activesync::Element) -> PathBuf {
    let root = easgate_activesync::Element::new("Provision", "Provision")
        .unwrap()
        .with(child);
    let file = env.path(&format!("{name}.wbxml"));
    std::fs::write(&file, easgate_activesync::encode(&root).unwrap()).unwrap();
    file
}

#[test]
fn a_remote_wipe_is_sent_by_one_gateway_and_acknowledged_through_another() {
    use easgate_activesync::Element;
    let Some(schema) = TestSchema::fresh("a_remote_wipe_is_sent_by_one_gateway") else {
        return;
    };
    let env = Env::bare_with_database(&schema.url);
    env.ok(&["init", "--no-ca"]);
    env.standard_setup();
    let (c, k, serial) = env.issue_device_cert("alice@corp.example", "phone1");
    let phone = (c, k);
    let upstream = Upstream::start(&env);
    let servers: Vec<Server> = (0..2)
        .map(|_| env.serve(&["--upstream", &upstream.url()]))
        .collect();
    let q = "Cmd=Sync&User=alice@corp.example&DeviceId=PHONE1&DeviceType=iPhone";
    let v14 = ["-H", "MS-ASProtocolVersion: 14.1"];
    let sync = |server: &Server| {
        let extra = [&v14[..], &["--data-binary", "x"][..]].concat();
        curl(&env, server, q, Some(&phone), &extra)
    };
    assert_eq!(sync(&servers[0]).0, 200);
    assert!(eventually(10.0, || env
        .run(&["eas", "show", "PHONE1"])
        .code
        == 0));
    env.ok(&["eas", "wipe", "PHONE1"]);

    // Instance 1 tells the device to provision (Status 140 in the Sync answer).
    assert!(
        eventually(10.0, || {
            let (status, body) = sync(&servers[1]);
            status == 200
                && easgate_activesync::decode(&body).is_ok_and(|d| {
                    d.root().child("Status").and_then(|s| s.text()).as_deref() == Some("140")
                })
        }),
        "{}",
        servers[1].log_text()
    );
    // Instance 0 hands out the wipe; instance 1 records the acknowledgement.
    let policy = Element::new("Provision", "Policies").unwrap().with(
        Element::new("Provision", "Policy").unwrap().with(
            Element::new("Provision", "PolicyType")
                .unwrap()
                .with_text("MS-EAS-Provisioning-WBXML"),
        ),
    );
    let download = provision_body(&env, "download", policy);
    let provision = |server: &Server, body: &Path| {
        let data = format!("@{}", body.display());
        let extra = [
            &v14[..],
            &[
                "-H",
                "Content-Type: application/vnd.ms-sync.wbxml",
                "--data-binary",
                &data,
            ][..],
        ]
        .concat();
        let q = "Cmd=Provision&User=alice@corp.example&DeviceId=PHONE1&DeviceType=iPhone";
        let (status, answer) = curl(&env, server, q, Some(&phone), &extra);
        assert_eq!(status, 200, "{}", server.log_text());
        easgate_activesync::decode(&answer)
            .unwrap()
            .root()
            .to_element()
    };
    let order = provision(&servers[0], &download);
    assert!(order.child("RemoteWipe").is_some(), "{order:?}");
    let ack = provision_body(
        &env,
        "ack",
        Element::new("Provision", "RemoteWipe")
            .unwrap()
            .with(Element::new("Provision", "Status").unwrap().with_text("1")),
    );
    let acknowledged = provision(&servers[1], &ack);
    assert_eq!(
        acknowledged
            .child("Status")
            .and_then(|s| s.text())
            .as_deref(),
        Some("1")
    );
    let shown = env.json(&["eas", "show", "PHONE1"]);
    assert_eq!(shown["wipe"]["state"], "succeeded", "{shown}");
    assert_eq!(env.json(&["cert", "show", &serial])["status"], "revoked");
    // Both gateways refuse the device now; no Provision ever reached the mail server.
    for server in &servers {
        assert!(
            eventually(10.0, || sync(server).0 == 403),
            "{}",
            server.log_text()
        );
    }
    assert!(upstream
        .requests()
        .iter()
        .all(|r| !r["path"].as_str().unwrap_or("").contains("Cmd=Provision")));
}
