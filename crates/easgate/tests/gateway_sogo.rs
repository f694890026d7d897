//! The EAS gateway in front of a real ActiveSync server (SOGo, see tests/peers/SOGO.md), driven
//! by a real EAS client (pyactivesync, tests/peers/eas_client.py): a managed device syncs; every
//! refused request is refused with the documented status and never reaches SOGo (counted in
//! SOGo's own access log). EAS Provision at the gateway: its policies at EAS 14.1 and 16.1 (the
//! answers decoded by libwbxml2's `wbxml2xml`), the policy-key demands, and remote wipes, full
//! and account-only, from order to acknowledgement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{eventually, peers_python, Env, Server};
use serde_json::Value;

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// A private SOGo stack (sogo.sh), stopped on drop.
struct Sogo {
    dir: PathBuf,
    info: Value,
}

impl Sogo {
    fn start(dir: PathBuf, trust_proxy: bool) -> Self {
        let mut cmd = Command::new(peers_dir().join("sogo.sh"));
        cmd.arg("start").arg(&dir);
        if trust_proxy {
            cmd.arg("--trust-proxy");
        }
        let out = cmd
            .output()
            .expect("run sogo.sh (scripts/test installs SOGo)");
        assert!(
            out.status.success(),
            "sogo.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let info: Value = serde_json::from_slice(&out.stdout).expect("sogo.sh JSON");
        Sogo { dir, info }
    }

    fn eas_url(&self) -> String {
        self.info["eas_url"].as_str().unwrap().to_string()
    }

    /// Requests for `device` that reached SOGo (its access log, one line per request).
    fn requests(&self, device: &str) -> usize {
        let log = std::fs::read_to_string(self.info["log"].as_str().unwrap()).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains(" /SOGo/Microsoft-Server-ActiveSync?"))
            .filter(|l| {
                l.contains(&format!("DeviceId={device}&"))
                    || l.contains(&format!("DeviceId={device} "))
            })
            .count()
    }
}

impl Drop for Sogo {
    fn drop(&mut self) {
        let _ = Command::new(peers_dir().join("sogo.sh"))
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// A test user's password in the private SOGo stack (sogo.sh).
fn sogo_password(user: &str) -> &'static str {
    if user.starts_with("bob") {
        "bob-pw"
    } else {
        "alice-pw"
    }
}

/// One run of the EAS client through the gateway.
struct Client<'a> {
    env: &'a Env,
    gateway: std::net::SocketAddr,
    ca: PathBuf,
    user: &'a str,
    password: &'a str,
    device: &'a str,
    cert: Option<(PathBuf, PathBuf)>,
}

impl<'a> Client<'a> {
    /// `user`'s phone `device` (with the user's SOGo password) through `server`'s gateway,
    /// presenting the certificate `issue_device_cert` wrote for `uid`, or none.
    fn phone(
        env: &'a Env,
        server: &Server,
        user: &'a str,
        device: &'a str,
        uid: Option<&str>,
    ) -> Self {
        Client {
            env,
            gateway: server.gateway,
            ca: env.export_ca("default"),
            user,
            password: sogo_password(user),
            device,
            cert: uid.map(|u| (env.path(&format!("{u}.pem")), env.path(&format!("{u}.key")))),
        }
    }

    fn run(&self, steps: &[&str]) -> Value {
        self.run_with(&[], steps)
    }

    /// With driver options (`--protocol 14.1`, `--no-auto-provision`) before the steps.
    fn run_with(&self, options: &[&str], steps: &[&str]) -> Value {
        let mut cmd = Command::new(peers_python());
        cmd.arg(peers_dir().join("eas_client.py"))
            .args(options)
            .args(["--host", &format!("localhost:{}", self.gateway.port())])
            .args(["--user", self.user, "--password", self.password])
            .args(["--device-id", self.device, "--device-type", "iPhone"])
            .arg("--ca")
            .arg(&self.ca)
            .current_dir(self.env.data_dir().parent().unwrap());
        if let Some((cert, key)) = &self.cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let out = cmd.args(steps).output().expect("run eas_client.py");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "eas_client.py printed no JSON ({e}):\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }
}

fn step<'v>(result: &'v Value, name: &str) -> &'v Value {
    result["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"].as_str().unwrap().starts_with(name))
        .unwrap_or_else(|| panic!("no step {name} in {result}"))
}

/// The step was answered 403 by the gateway.
fn assert_refused(result: &Value, name: &str) {
    assert_eq!(step(result, name)["http_status"], 403, "{result:#}");
}

fn mail_setup(env: &Env) {
    env.ok(&["ca", "create", "default"]);
    env.phones_template("default", "CN={DeviceUid}");
    for user in ["alice@example.com", "bob@example.com"] {
        env.ok(&["user", "add", user, "--email", user]);
    }
}

fn serve_in_front_of(env: &Env, sogo: &Sogo, extra: &[&str]) -> Server {
    let upstream = sogo.eas_url();
    let mut args = vec!["--upstream", upstream.as_str()];
    args.extend_from_slice(extra);
    env.serve(&args)
}

#[test]
fn managed_device_syncs_through_the_gateway_and_refused_requests_never_reach_sogo() {
    let env = Env::new();
    mail_setup(&env);
    let (cert1, key1, serial1) = env.issue_device_cert("alice@example.com", "phone1");
    let (cert2, key2, _) = env.issue_device_cert("alice@example.com", "phone2");
    let (cert3, key3, _) = env.issue_device_cert("alice@example.com", "phone3");
    // A certificate for the same user from a CA the gateway does not trust.
    let foreign = Env::new();
    mail_setup(&foreign);
    let (foreign_cert, foreign_key, _) = foreign.issue_device_cert("alice@example.com", "phoneX");

    let sogo = Sogo::start(env.path("sogo"), false);
    let server = serve_in_front_of(&env, &sogo, &[]);
    let ca = env.export_ca("default");
    let client =
        |device: &'static str, cert: Option<(&PathBuf, &PathBuf)>, user: &'static str| Client {
            env: &env,
            gateway: server.gateway,
            ca: ca.clone(),
            user,
            password: sogo_password(user),
            device,
            cert: cert.map(|(c, k)| (c.clone(), k.clone())),
        };

    // The managed device: every command reaches SOGo and works.
    let phone1 = client("PHONE1", Some((&cert1, &key1)), "alice@example.com");
    let result = phone1.run(&["provision", "foldersync", "contacts-sync", "ping:5"]);
    assert_eq!(result["ok"], true, "managed device: {result:#}");
    assert!(
        step(&result, "foldersync")["detail"]
            .as_str()
            .unwrap()
            .starts_with("9 folders"),
        "{result:#}"
    );
    assert_eq!(step(&result, "ping")["eas_status"], 1, "{result:#}");
    assert!(sogo.requests("PHONE1") >= 4, "{}", server.log_text());

    // No certificate, a foreign CA's certificate: unmanaged → 403, nothing reaches SOGo.
    let refused = client("NOCERT1", None, "alice@example.com").run(&["foldersync"]);
    assert_refused(&refused, "foldersync");
    let refused = client(
        "FOREIGN1",
        Some((&foreign_cert, &foreign_key)),
        "alice@example.com",
    )
    .run(&["foldersync"]);
    assert_refused(&refused, "foldersync");
    assert_eq!(sogo.requests("NOCERT1"), 0);
    assert_eq!(sogo.requests("FOREIGN1"), 0);

    // Alice's certificate with bob's User=: 403, and SOGo sees nothing more for the device.
    let before = sogo.requests("PHONE1");
    let refused = client("PHONE1", Some((&cert1, &key1)), "bob@example.com").run(&["foldersync"]);
    assert_refused(&refused, "foldersync");
    // The same certificate from another DeviceId: 403 (stolen-certificate signal).
    let refused = client("THIEF1", Some((&cert1, &key1)), "alice@example.com").run(&["foldersync"]);
    assert_refused(&refused, "foldersync");
    assert_eq!(sogo.requests("PHONE1"), before);
    assert_eq!(sogo.requests("THIEF1"), 0);

    // A blocked DeviceId: 403, nothing reaches SOGo. (The override applies within the change
    // feed's poll interval; the device's first request is made after that.)
    env.ok(&["eas", "block", "PHONE2", "--reason", "lost"]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let phone2 = client("PHONE2", Some((&cert2, &key2)), "alice@example.com");
    let refused = phone2.run(&["folders", "contacts-sync"]);
    assert_refused(&refused, "folders");
    assert_refused(&refused, "contacts-sync");
    assert_eq!(sogo.requests("PHONE2"), 0);

    // Quarantine: the gateway answers FolderSync with an Inbox and Sync with the notice.
    env.ok(&["eas", "quarantine", "PHONE3"]);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let phone3 = client("PHONE3", Some((&cert3, &key3)), "alice@example.com");
    let quarantined = phone3.run(&["folders", "inbox-sync"]);
    assert_eq!(quarantined["ok"], true, "{quarantined:#}");
    assert_eq!(
        step(&quarantined, "folders")["detail"],
        "1 folders: Inbox",
        "{quarantined:#}"
    );
    assert!(
        step(&quarantined, "inbox-sync")["detail"]
            .as_str()
            .unwrap()
            .contains("waiting for approval"),
        "{quarantined:#}"
    );
    assert_eq!(sogo.requests("PHONE3"), 0);
    // Allowed by the admin: the next request goes through to SOGo's nine folders.
    env.ok(&["eas", "allow", "PHONE3"]);
    let mut allowed = Value::Null;
    assert!(
        eventually(4.0, || {
            allowed = phone3.run(&["folders"]);
            step(&allowed, "folders")["detail"]
                .as_str()
                .unwrap()
                .starts_with("9 folders")
        }),
        "{allowed:#}"
    );
    assert!(sogo.requests("PHONE3") > 0);

    // Revoked while the gateway runs: refused at the next request after the change feed has
    // it (the poll interval is 1 s), without a restart.
    env.ok(&["cert", "revoke", &serial1, "--reason", "keyCompromise"]);
    let revoked_at = Instant::now();
    let mut refused = Value::Null;
    assert!(
        eventually(6.0, || {
            refused = phone1.run(&["folders"]);
            step(&refused, "folders")["http_status"] == 403
        }),
        "{refused:#}"
    );
    eprintln!("revocation refused after {:?}", revoked_at.elapsed());
    let after_revocation = sogo.requests("PHONE1");
    let again = phone1.run(&["folders"]);
    assert_eq!(step(&again, "folders")["http_status"], 403);
    assert_eq!(sogo.requests("PHONE1"), after_revocation);

    // What the admin sees: partnerships with their state, unmanaged attempts included, and
    // the stolen-certificate signal in the audit trail.
    assert!(eventually(3.0, || {
        let list = env.json(&["eas", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["eas_device_id"] == "NOCERT1")
    }));
    let list = env.json(&["eas", "list", "--user", "alice@example.com"]);
    let find = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["eas_device_id"] == id)
            .unwrap_or_else(|| panic!("no partnership {id} in {list:#}"))
            .clone()
    };
    let nocert = find("NOCERT1");
    assert_eq!(nocert["device_state"], "unmanaged");
    assert_eq!(nocert["access_state"], "block");
    assert!(nocert["access_reason"]
        .as_str()
        .unwrap()
        .contains("no client certificate"));
    let phone1 = find("PHONE1");
    assert_eq!(phone1["cert_serial"], serial1.as_str());
    assert_eq!(phone1["device_type"], "iPhone");
    assert!(phone1["last_sync"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z') && t.contains('T')));
    assert_eq!(find("PHONE2")["access_state"], "block");
    assert_eq!(find("PHONE3")["access_state"], "allow");
    assert!(find("THIEF1")["access_reason"]
        .as_str()
        .unwrap()
        .contains("belongs to device PHONE1"));
    let show = env.json(&["eas", "show", "PHONE2"]);
    assert_eq!(show["override"]["action"], "block");
    assert_eq!(show["override"]["reason"], "lost");
    let audit = env.ok(&["audit"]);
    assert!(audit.contains("gateway.certificate.reuse"), "{audit}");
    let log = server.log_text();
    assert!(log.contains("matched=identity-mismatch"), "{log}");
}

#[test]
fn trusted_header_mode_logs_the_certificate_user_into_sogo_without_a_password() {
    let env = Env::new();
    mail_setup(&env);
    let (cert, key, _) = env.issue_device_cert("alice@example.com", "phone1");
    let sogo = Sogo::start(env.path("sogo"), true);
    let server = serve_in_front_of(
        &env,
        &sogo,
        &[
            "--upstream-auth",
            "trusted-header",
            "--upstream-user-header",
            "x-webobjects-remote-user",
        ],
    );
    let client = Client {
        env: &env,
        gateway: server.gateway,
        ca: env.export_ca("default"),
        user: "alice@example.com",
        // Wrong on purpose: in trusted-header mode the device's password never reaches SOGo.
        password: "not-the-password",
        device: "TRUSTED1",
        cert: Some((cert, key)),
    };
    let result = client.run(&["foldersync", "contacts-sync"]);
    assert_eq!(result["ok"], true, "{result:#}\n{}", server.log_text());
    assert!(
        step(&result, "foldersync")["detail"]
            .as_str()
            .unwrap()
            .starts_with("9 folders"),
        "{result:#}"
    );
    assert!(sogo.requests("TRUSTED1") >= 2);
}

// --- EAS Provision at the gateway: policies and remote wipes --------------------------------

/// libwbxml2's rendering (XML) of a body the driver reported in base64.
fn wbxml2xml(env: &Env, b64: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 body");
    let file = env.path(&format!("answer-{}.wbxml", std::process::id()));
    std::fs::write(&file, bytes).unwrap();
    let out = Command::new("wbxml2xml")
        .args(["-l", "ACTIVESYNC", "-m", "0", "-o", "-"])
        .arg(&file)
        .output()
        .expect("wbxml2xml (scripts/test installs libwbxml2-utils)");
    assert!(
        out.status.success(),
        "wbxml2xml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// libwbxml2's encoding of an XML request body, in base64 (for the driver's provision-body).
fn xml2wbxml(env: &Env, name: &str, xml: &str) -> String {
    use base64::Engine;
    let (src, out) = (
        env.path(&format!("{name}.xml")),
        env.path(&format!("{name}.wbxml")),
    );
    std::fs::write(
        &src,
        format!("<?xml version=\"1.0\"?>\n<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \"http://www.microsoft.com/\">\n{xml}"),
    )
    .unwrap();
    let made = Command::new("xml2wbxml")
        .args(["-v", "1.3", "-n", "-a", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("xml2wbxml");
    assert!(made.status.success(), "{made:?}");
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(out).unwrap())
}

/// The JSON a driver step put in its detail.
fn detail(result: &Value, name: &str) -> Value {
    let text = step(result, name)["detail"].as_str().unwrap().to_string();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{name}: not JSON: {text}"))
}

/// An element's text in libwbxml2's XML (`<Name>text</Name>`).
fn xml_text<'x>(xml: &'x str, name: &str) -> Option<&'x str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')? + start;
    Some(&xml[start..end])
}

/// `eas show DEVICE --json`, or null while the gateway has not written the device yet.
fn eas_show(env: &Env, device: &str) -> Value {
    let run = env.run(&["--json", "eas", "show", device]);
    serde_json::from_str(&run.stdout).unwrap_or(Value::Null)
}

#[test]
fn gateway_mode_hands_out_the_users_policy_and_demands_its_key_at_14_1_and_16_1() {
    let env = Env::new();
    mail_setup(&env);
    env.ok(&["group", "add", "sales"]);
    env.ok(&["user", "set", "alice@example.com", "--add-group", "sales"]);
    env.ok(&[
        "eas-policy",
        "create",
        "strict",
        "--require-passcode",
        "--min-passcode-length",
        "6",
        "--alphanumeric",
        "--max-inactivity-minutes",
        "5",
        "--require-encryption",
        "--max-failed-attempts",
        "8",
        "--allow-simple-passcode",
        "false",
        "--group",
        "sales",
    ]);
    env.ok(&["eas-policy", "create", "basic", "--default"]);
    // Passcode settings without a passcode: refused, nothing stored.
    let refused = env.fails(&["eas-policy", "create", "odd", "--min-passcode-length", "4"]);
    assert!(refused.contains("--require-passcode"), "{refused}");
    assert_eq!(
        env.json(&["eas-policy", "list"]).as_array().unwrap().len(),
        2
    );

    // Certificates are issued before the server starts (a new one is known to its gateway
    // once the change feed brings it).
    for (user, uid) in [
        ("alice@example.com", "policy141"),
        ("alice@example.com", "policy161"),
        ("alice@example.com", "policy121"),
        ("bob@example.com", "bobphone"),
    ] {
        env.issue_device_cert(user, uid);
    }
    let sogo = Sogo::start(env.path("sogo"), false);
    let server = serve_in_front_of(&env, &sogo, &["--provision", "gateway"]);
    let alice = |device: &'static str| {
        let uid = device.to_ascii_lowercase();
        Client::phone(&env, &server, "alice@example.com", device, Some(&uid))
    };

    for (version, device) in [("14.1", "POLICY141"), ("16.1", "POLICY161")] {
        let phone = alice(device);
        let proto = ["--protocol", version, "--no-auto-provision"];

        // Without a policy key: the demand (Status 142 in the command's answer), nothing upstream.
        let demanded = phone.run_with(&proto, &["folders"]);
        assert_eq!(
            step(&demanded, "folders")["http_status"],
            200,
            "{demanded:#}"
        );
        assert_eq!(
            step(&demanded, "folders")["eas_status"],
            142,
            "{demanded:#}"
        );
        assert_eq!(sogo.requests(device), 0);

        // Provision: our policy, decoded by libwbxml2 field by field; then the key passes.
        let provisioned = phone.run_with(&proto, &["policy", "folders"]);
        assert_eq!(provisioned["ok"], true, "{version}: {provisioned:#}");
        let policy = detail(&provisioned, "policy");
        let xml = wbxml2xml(&env, policy["download"].as_str().unwrap());
        for (field, value) in [
            ("PolicyType", "MS-EAS-Provisioning-WBXML"),
            ("DevicePasswordEnabled", "1"),
            ("AlphanumericDevicePasswordRequired", "1"),
            ("MinDevicePasswordLength", "6"),
            ("MaxInactivityTimeDeviceLock", "300"),
            ("MaxDevicePasswordFailedAttempts", "8"),
            ("AllowSimpleDevicePassword", "0"),
            ("RequireDeviceEncryption", "1"),
        ] {
            assert_eq!(xml_text(&xml, field), Some(value), "{field} in {xml}");
        }
        assert_eq!(
            xml_text(&xml, "PolicyKey"),
            policy["temporary_key"].as_str(),
            "{xml}"
        );
        let final_key = policy["key"].as_str().unwrap().to_string();
        assert_ne!(Some(final_key.as_str()), policy["temporary_key"].as_str());
        assert!(
            step(&provisioned, "folders")["detail"]
                .as_str()
                .unwrap()
                .starts_with("9 folders"),
            "{provisioned:#}"
        );
        assert!(sogo.requests(device) > 0);
        // Provision itself never reached SOGo.
        assert!(!std::fs::read_to_string(sogo.info["log"].as_str().unwrap())
            .unwrap()
            .lines()
            .any(|l| l.contains("Cmd=Provision") && l.contains(device)));

        // Recorded on the partnership like Exchange's DevicePolicyApplied.
        assert!(eventually(5.0, || {
            let p = &eas_show(&env, device)["partnerships"][0];
            p["policy_applied"] == "strict" && p["policy_status"] == "AppliedInFull"
        }));
        assert_eq!(
            eas_show(&env, device)["partnerships"][0]["policy_key"].to_string(),
            final_key
        );

        // A key the gateway never gave: Status 144.
        let stale = phone.run_with(&proto, &["set-key:12345", "folders"]);
        assert_eq!(step(&stale, "folders")["eas_status"], 144, "{stale:#}");
        // The right key passes again.
        let again = phone.run_with(&proto, &[&format!("set-key:{final_key}"), "folders"]);
        assert_eq!(again["ok"], true, "{again:#}");
    }

    // EAS 12.1 is told with HTTP 449.
    let old = alice("POLICY121");
    let demanded = old.run_with(&["--protocol", "12.1", "--no-auto-provision"], &["folders"]);
    assert_eq!(
        step(&demanded, "folders")["http_status"],
        449,
        "{demanded:#}"
    );

    // Bob is in no group: the default policy (no passcode).
    let bob = Client::phone(
        &env,
        &server,
        "bob@example.com",
        "BOBPHONE",
        Some("bobphone"),
    );
    let provisioned = bob.run_with(&["--no-auto-provision"], &["policy"]);
    let xml = wbxml2xml(
        &env,
        detail(&provisioned, "policy")["download"].as_str().unwrap(),
    );
    assert_eq!(xml_text(&xml, "DevicePasswordEnabled"), Some("0"), "{xml}");
    assert!(xml_text(&xml, "MinDevicePasswordLength").is_none(), "{xml}");

    // A policy change: the old key now gets Status 143 (provision again), and a new
    // provisioning gives a new key.
    let before = eas_show(&env, "POLICY161")["partnerships"][0]["policy_key"].to_string();
    env.ok(&[
        "eas-policy",
        "create",
        "strict",
        "--replace",
        "--require-passcode",
        "--min-passcode-length",
        "8",
        "--group",
        "sales",
    ]);
    let phone = alice("POLICY161");
    let mut refreshed = Value::Null;
    assert!(
        eventually(5.0, || {
            refreshed = phone.run_with(
                &["--no-auto-provision"],
                &[&format!("set-key:{before}"), "folders"],
            );
            step(&refreshed, "folders")["eas_status"] == 143
        }),
        "{refreshed:#}"
    );
    let provisioned = phone.run_with(&["--no-auto-provision"], &["policy", "folders"]);
    assert_eq!(provisioned["ok"], true, "{provisioned:#}");
    assert_ne!(detail(&provisioned, "policy")["key"].to_string(), before);
    let xml = wbxml2xml(
        &env,
        detail(&provisioned, "policy")["download"].as_str().unwrap(),
    );
    assert_eq!(
        xml_text(&xml, "MinDevicePasswordLength"),
        Some("8"),
        "{xml}"
    );

    // Bad Provision bodies: a clear EAS error, and the partnership's policy is untouched.
    let recorded = eas_show(&env, "POLICY141")["partnerships"][0].clone();
    let phone = alice("POLICY141");
    use base64::Engine;
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"\x03\x01\x6a\x00\xff\xff\xff");
    let wrong_type = xml2wbxml(
        &env,
        "wrong-type",
        "<Provision xmlns=\"Provision:\"><Policies><Policy><PolicyType>MS-WAP-Provisioning-XML</PolicyType></Policy></Policies></Provision>",
    );
    let stale_ack = xml2wbxml(
        &env,
        "stale-ack",
        "<Provision xmlns=\"Provision:\"><Policies><Policy><PolicyType>MS-EAS-Provisioning-WBXML</PolicyType><PolicyKey>999</PolicyKey><Status>1</Status></Policy></Policies></Provision>",
    );
    let bad = phone.run_with(
        &["--protocol", "14.1", "--no-auto-provision"],
        &[
            &format!("provision-body:{garbage}"),
            &format!("provision-body:{wrong_type}"),
            &format!("provision-body:{stale_ack}"),
        ],
    );
    let answers: Vec<String> = bad["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["http_status"], 200, "{bad:#}");
            wbxml2xml(&env, s["detail"].as_str().unwrap())
        })
        .collect();
    // Garbage: Provision Status 2 (protocol error).
    assert!(
        answers[0].contains("<Provision xmlns=\"Provision:\"><Status>2</Status></Provision>"),
        "{}",
        answers[0]
    );
    // Unknown policy type: Policy Status 3; a key the gateway did not give: Policy Status 5.
    assert!(
        answers[1].contains("<PolicyType>MS-WAP-Provisioning-XML</PolicyType><Status>3</Status>"),
        "{}",
        answers[1]
    );
    assert!(answers[2].contains("<Status>5</Status>"), "{}", answers[2]);
    assert!(!answers[2].contains("<PolicyKey>"), "{}", answers[2]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let after = &eas_show(&env, "POLICY141")["partnerships"][0];
    for field in [
        "policy_applied",
        "policy_key",
        "policy_status",
        "policy_updated_at",
    ] {
        assert_eq!(after[field], recorded[field], "{field}");
    }

    // A wipe in gateway mode: even with the current policy key, the device is told to
    // provision (Status 140) and gets the wipe instead of the policy.
    let key = recorded["policy_key"].to_string();
    env.ok(&["eas", "wipe", "POLICY141"]);
    let options = ["--protocol", "14.1", "--no-auto-provision"];
    let mut told = Value::Null;
    assert!(
        eventually(5.0, || {
            told = phone.run_with(&options, &[&format!("set-key:{key}"), "folders"]);
            step(&told, "folders")["eas_status"] == 140
        }),
        "{told:#}"
    );
    let wiped = phone.run_with(&options, &["wipe:ack"]);
    assert_eq!(detail(&wiped, "wipe")["order"], "RemoteWipe", "{wiped:#}");
    assert_eq!(eas_show(&env, "POLICY141")["wipe"]["state"], "succeeded");
}

#[test]
fn remote_wipes_full_and_account_only_are_delivered_acknowledged_and_end_in_a_revoked_blocked_device(
) {
    let env = Env::new();
    mail_setup(&env);
    let serials: Vec<String> = ["wipefull", "wipeacct", "wipe141"]
        .iter()
        .map(|uid| env.issue_device_cert("alice@example.com", uid).2)
        .collect();
    let sogo = Sogo::start(env.path("sogo"), false);
    // The default --provision upstream: SOGo answers Provision, except for a wipe.
    let server = serve_in_front_of(&env, &sogo, &[]);
    let phone = |device: &'static str, serial: &String| {
        let uid = device.to_ascii_lowercase();
        let client = Client::phone(&env, &server, "alice@example.com", device, Some(&uid));
        (client, serial.clone())
    };
    let (full, full_serial) = phone("WIPEFULL", &serials[0]);
    let (account, account_serial) = phone("WIPEACCT", &serials[1]);
    let (old, _) = phone("WIPE141", &serials[2]);
    for (client, version) in [(&full, "16.1"), (&account, "16.1"), (&old, "14.1")] {
        let synced = client.run_with(&["--protocol", version], &["provision", "folders"]);
        assert_eq!(synced["ok"], true, "{synced:#}");
    }
    assert!(eventually(5.0, || {
        eas_show(&env, "WIPE141")["partnerships"][0]["protocol"] == "14.1"
    }));

    // Account-only needs 16.1: refused for the 14.1 device, nothing ordered.
    let refused = env.fails(&["eas", "wipe", "WIPE141", "--account-only"]);
    assert!(refused.contains("16.1"), "{refused}");
    assert!(eas_show(&env, "WIPE141")["wipe"].is_null());
    // A device never seen: refused.
    env.fails(&["eas", "wipe", "NEVERSEEN"]);

    // Ordered, cancelled while pending, ordered again.
    env.ok(&["eas", "wipe", "WIPEFULL"]);
    assert_eq!(eas_show(&env, "WIPEFULL")["wipe"]["state"], "pending");
    env.ok(&["eas", "wipe", "WIPEFULL", "--cancel"]);
    assert!(eas_show(&env, "WIPEFULL")["wipe"].is_null());
    env.ok(&["eas", "wipe", "WIPEFULL"]);
    env.ok(&["eas", "wipe", "WIPEACCT", "--account-only"]);
    let text = env.ok(&["eas", "show", "WIPEACCT"]);
    assert!(text.contains("AccountOnlyPending"), "{text}");

    // The device's next command is told to provision (Status 140 at 16.1) and nothing more
    // reaches SOGo; its Provision carries the order; the acknowledgement completes it.
    // (Once the change feed has brought the order: the poll interval is 1 s.)
    let mut told = Value::Null;
    assert!(
        eventually(5.0, || {
            told = full.run_with(&["--no-auto-provision"], &["folders"]);
            step(&told, "folders")["eas_status"] == 140
        }),
        "{told:#}"
    );
    // Now that the gateway knows the order: a request that only names the DeviceId (no
    // certificate) is refused as before and never receives it.
    let spoof = Client::phone(&env, &server, "alice@example.com", "WIPEFULL", None);
    let spoofed = spoof.run_with(&["--no-auto-provision"], &["folders", "wipe"]);
    assert_refused(&spoofed, "folders");
    assert_refused(&spoofed, "wipe");
    assert_eq!(eas_show(&env, "WIPEFULL")["wipe"]["state"], "pending");
    let before = sogo.requests("WIPEFULL");
    let told = full.run_with(&["--no-auto-provision"], &["folders", "contacts-sync"]);
    assert_eq!(step(&told, "folders")["eas_status"], 140, "{told:#}");
    let wiped = full.run_with(&["--no-auto-provision"], &["wipe:ack"]);
    assert_eq!(wiped["ok"], true, "{wiped:#}");
    let order = detail(&wiped, "wipe");
    assert_eq!(order["order"], "RemoteWipe");
    let xml = wbxml2xml(&env, order["answer"].as_str().unwrap());
    assert!(xml.contains("<RemoteWipe/>"), "{xml}");
    assert!(!xml.contains("AccountOnly"), "{xml}");
    assert_eq!(order["ack_status"], "1");
    assert_eq!(sogo.requests("WIPEFULL"), before);
    let wipe = &eas_show(&env, "WIPEFULL")["wipe"];
    assert_eq!(wipe["state"], "succeeded", "{wipe}");
    assert!(
        wipe["sent_at"].is_string() && wipe["ack_at"].is_string(),
        "{wipe}"
    );
    // Too late to cancel; the device is refused from now on; its certificate is revoked.
    let late = env.fails(&["eas", "wipe", "WIPEFULL", "--cancel"]);
    assert!(late.contains("cannot be cancelled"), "{late}");
    let after = full.run_with(&["--no-auto-provision"], &["folders"]);
    assert_refused(&after, "folders");
    let cert = env.json(&["cert", "show", &full_serial]);
    assert_eq!(cert["status"], "revoked", "{cert}");
    assert_eq!(cert["revocation_reason"], "cessationOfOperation", "{cert}");
    // The what-if agrees: no rule or override lets the wiped DeviceId in.
    env.ok(&["eas", "allow", "WIPEFULL"]);
    let what_if = env.json(&[
        "policy",
        "test",
        "--user",
        "alice@example.com",
        "--device-id",
        "WIPEFULL",
    ]);
    assert_eq!(what_if["action"], "refuse", "{what_if}");
    assert_eq!(what_if["refusal"], "device-wiped", "{what_if}");
    let after = full.run_with(&["--no-auto-provision"], &["folders"]);
    assert_refused(&after, "folders");
    let audit = env.ok(&["audit"]);
    for action in [
        "eas.wipe.request",
        "eas.wipe.cancel",
        "eas.wipe.sent",
        "eas.wipe.ack",
    ] {
        assert!(audit.contains(action), "{action} in\n{audit}");
    }

    // A garbage Provision body while a wipe waits: Provision Status 2, the wipe unchanged.
    use base64::Engine;
    let garbage = base64::engine::general_purpose::STANDARD.encode(b"\x03\x01\x6a\x00\x45\x99");
    let bad = account.run_with(
        &["--no-auto-provision"],
        &[&format!("provision-body:{garbage}")],
    );
    let xml = wbxml2xml(
        &env,
        step(&bad, "provision-body")["detail"].as_str().unwrap(),
    );
    assert!(xml.contains("<Status>2</Status>"), "{xml}");
    assert_eq!(eas_show(&env, "WIPEACCT")["wipe"]["state"], "pending");

    // The same device speaking 14.1 is never sent the account-only order (nor a full wipe
    // instead): its Provision goes on to SOGo and the wipe stays pending.
    let older = account.run_with(&["--protocol", "14.1", "--no-auto-provision"], &["wipe"]);
    let said = step(&older, "wipe")["detail"].as_str().unwrap();
    assert!(said.contains("no wipe order"), "{older:#}");
    assert_eq!(eas_show(&env, "WIPEACCT")["wipe"]["state"], "pending");

    // Account-only at 16.1: AccountOnlyRemoteWipe, never RemoteWipe.
    let wiped = account.run_with(&["--no-auto-provision"], &["wipe:ack"]);
    assert_eq!(wiped["ok"], true, "{wiped:#}");
    let order = detail(&wiped, "wipe");
    assert_eq!(order["order"], "AccountOnlyRemoteWipe");
    let answer = base64::engine::general_purpose::STANDARD
        .decode(order["answer"].as_str().unwrap())
        .unwrap();
    let decoded = easgate_activesync::decode(&answer).unwrap();
    let provision = easgate_activesync::device::provision(decoded.root()).unwrap();
    assert!(provision.account_only_remote_wipe && !provision.remote_wipe);
    assert_eq!(eas_show(&env, "WIPEACCT")["wipe"]["state"], "succeeded");
    let text = env.ok(&["eas", "show", "WIPEACCT"]);
    assert!(text.contains("AccountOnlySucceeded"), "{text}");
    assert_eq!(
        env.json(&["cert", "show", &account_serial])["status"],
        "revoked"
    );
    assert_refused(&account.run(&["folders"]), "folders");

    // Through the API (helpdesk): account-only for the 14.1 device is a 400 that names the
    // version; a full wipe is ordered and shown with Exchange's names.
    let token = env.json(&["token", "create", "desk", "--role", "helpdesk"])["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let path = "/api/v1/partnerships/WIPE141/wipe";
    let (status, _, answer) = common::api(
        server.admin,
        "POST",
        path,
        Some(&token),
        Some(r#"{"account_only":true}"#),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("16.1"),
        "{answer}"
    );
    let (status, _, answer) = common::api(server.admin, "POST", path, Some(&token), Some("{}"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["state"], "pending");
    let (status, _, shown) = common::api(
        server.admin,
        "GET",
        "/api/v1/partnerships/WIPE141",
        Some(&token),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(shown["DeviceWipeStatus"], "Pending", "{shown}");
    assert!(shown["DeviceWipeRequestTime"].is_string(), "{shown}");
    // A full wipe of a 14.1 device: told with Status 140 too, in its own answer.
    let mut told = Value::Null;
    assert!(
        eventually(5.0, || {
            told = old.run_with(&["--protocol", "14.1", "--no-auto-provision"], &["folders"]);
            step(&told, "folders")["eas_status"] == 140
        }),
        "{told:#}"
    );
    // At 12.1 the same demand is HTTP 449.
    let told = old.run_with(&["--protocol", "12.1", "--no-auto-provision"], &["folders"]);
    assert_eq!(step(&told, "folders")["http_status"], 449, "{told:#}");
    // `eas clear` forgets the wipe with the partnership.
    env.ok(&["eas", "clear", "WIPE141"]);
}

#[test]
fn device_wipe_orders_a_wipe_for_every_partnership_of_the_devices_certificates() {
    let env = Env::new();
    mail_setup(&env);
    // One enrolled phone with two mail apps: two certificates of the device, two DeviceIds.
    let (_, _, serial1) = env.issue_device_cert("alice@example.com", "phone9");
    let (cert2, key2) = (env.path("phone9-b.pem"), env.path("phone9-b.key"));
    let second = env.json(&[
        "cert",
        "issue",
        "--template",
        "phones",
        "--device",
        "phone9",
        "--out-key",
        key2.to_str().unwrap(),
        "--out",
        cert2.to_str().unwrap(),
    ]);
    let serial2 = second["serial"].as_str().unwrap().to_string();
    let sogo = Sogo::start(env.path("sogo"), false);
    let server = serve_in_front_of(&env, &sogo, &[]);
    let app = |device: &'static str, uid: &str| {
        Client::phone(&env, &server, "alice@example.com", device, Some(uid))
    };
    let (mail, outlook) = (app("APPMAIL", "phone9"), app("APPOUTLOOK", "phone9-b"));
    for client in [&mail, &outlook] {
        assert_eq!(client.run(&["provision", "folders"])["ok"], true);
    }
    assert!(eventually(5.0, || {
        eas_show(&env, "APPOUTLOOK")["bound_certificates"]
            .as_array()
            .is_some_and(|b| !b.is_empty())
    }));

    let said = env.ok(&["device", "wipe", "phone9"]);
    assert!(said.contains("2 partnership(s)"), "{said}");
    for device in ["APPMAIL", "APPOUTLOOK"] {
        assert_eq!(eas_show(&env, device)["wipe"]["state"], "pending");
    }
    // Certificates stay valid until a wipe is acknowledged (the phone must be reached).
    assert_eq!(env.json(&["cert", "show", &serial1])["status"], "valid");
    let mut wiped = Value::Null;
    assert!(
        eventually(5.0, || {
            wiped = mail.run_with(&["--no-auto-provision"], &["wipe:ack"]);
            wiped["ok"] == true
        }),
        "{wiped:#}"
    );
    // Acknowledged: the device record is wiped and both certificates are revoked.
    let device = env.json(&["device", "show", "phone9"]);
    assert_eq!(device["device"]["state"], "wiped", "{device}");
    for serial in [&serial1, &serial2] {
        let cert = env.json(&["cert", "show", serial]);
        assert_eq!(cert["status"], "revoked", "{cert}");
        assert_eq!(cert["revocation_reason"], "cessationOfOperation", "{cert}");
    }
    // A device never seen at the gateway is wiped at once.
    let (_, _, serial3) = env.issue_device_cert("alice@example.com", "phone10");
    let said = env.ok(&["device", "wipe", "phone10"]);
    assert!(said.contains("never reached the gateway"), "{said}");
    assert_eq!(env.json(&["cert", "show", &serial3])["status"], "revoked");
}
