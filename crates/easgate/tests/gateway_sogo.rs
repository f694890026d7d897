//! The EAS gateway in front of a real ActiveSync server (SOGo, see tests/peers/SOGO.md), driven
//! by a real EAS client (pyactivesync, tests/peers/eas_client.py): a managed device syncs; every
//! refused request is refused with the documented status and never reaches SOGo (counted in
//! SOGo's own access log).

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

impl Client<'_> {
    fn run(&self, steps: &[&str]) -> Value {
        let mut cmd = Command::new(peers_python());
        cmd.arg(peers_dir().join("eas_client.py"))
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
            password: if user.starts_with("bob") {
                "bob-pw"
            } else {
                "alice-pw"
            },
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
