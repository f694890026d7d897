//! Crash tests shared by the SQLite and PostgreSQL suites: a server killed (SIGKILL) at
//! spread-out moments of its work, and what the clients hold afterwards.

use std::path::Path;
use std::time::Duration;

use super::{openssl_ok, scepclient, Env, Server};

/// A fixed pseudo-random sequence (xorshift from `seed`) of moments from 0 to `max_ms`, so a
/// failing run can be repeated exactly.
pub fn kill_moments(mut seed: u64, max_ms: u64) -> impl FnMut() -> Duration {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        Duration::from_millis(seed % max_ms.max(1))
    }
}

/// SIGKILL `server` and reap it.
pub fn kill(server: &mut Server) {
    if let Some(mut child) = server.child.take() {
        child.kill().expect("kill serve");
        child.wait().expect("reap serve");
    }
}

/// `kills` SCEP enrollments at CA `ca` (template `phones`, user alice), each cut off by killing
/// the server it went to at a moment of `moments`, then retried by the client (same
/// transaction, same key) against `retry_on`, or a freshly started server when `None`. Each
/// device must end with exactly one certificate, the one its client holds. Returns how many
/// first attempts were interrupted.
pub fn scep_enrollments_survive_kills(
    env: &Env,
    ca: &str,
    kills: usize,
    mut moments: impl FnMut() -> Duration,
    retry_on: Option<&Server>,
) -> usize {
    let dir = env.dir.path().to_path_buf();
    let mut interrupted = 0;
    for i in 0..kills {
        let uid = format!("k{i}");
        let challenge = env.enroll("alice@corp.example", "ios", &uid, &["--template", "phones"])
            ["challenge"]
            .as_str()
            .expect("challenge")
            .to_string();
        let client_dir = dir.join(&uid);
        let mut first = env.serve(&[]);
        let url = format!("http://{}/scep/{ca}", first.public);
        let (d, u, c) = (client_dir.clone(), url, challenge.clone());
        let attempt = std::thread::spawn(move || scepclient(&d, &u, &c));
        std::thread::sleep(moments());
        kill(&mut first);
        if attempt.join().expect("client thread").0 != 0 {
            interrupted += 1;
        }
        // A certificate the client already received is put aside, so that it asks again
        // (same transaction) rather than renew.
        let _ = std::fs::remove_file(client_dir.join("cert.pem"));
        let fresh;
        let retry_server = match retry_on {
            Some(server) => server,
            None => {
                fresh = env.serve(&[]);
                &fresh
            }
        };
        let url = format!("http://{}/scep/{ca}", retry_server.public);
        let (code, out) = scepclient(&client_dir, &url, &challenge);
        assert_eq!(
            code,
            0,
            "retry of {uid} failed: {out}\n{}",
            retry_server.log_text()
        );
        assert_holds_the_recorded_certificate(env, &uid, &client_dir.join("cert.pem"));
    }
    interrupted
}

/// Device `uid` has exactly one certificate, and it is the one in `cert` (PEM).
pub fn assert_holds_the_recorded_certificate(env: &Env, uid: &str, cert: &Path) {
    let certs = env.json(&["cert", "list", "--device", uid]);
    let certs = certs.as_array().expect("a list");
    assert_eq!(
        certs.len(),
        1,
        "{uid} has {} certificates: {certs:#?}",
        certs.len()
    );
    let held = openssl_ok(
        &[
            "x509",
            "-in",
            cert.to_str().expect("utf8"),
            "-noout",
            "-serial",
        ],
        env.dir.path(),
    );
    assert_eq!(
        held.trim()
            .trim_start_matches("serial=")
            .to_ascii_uppercase(),
        certs[0]["serial"]
            .as_str()
            .expect("serial")
            .to_ascii_uppercase(),
        "{uid}: the client holds another certificate than the one recorded"
    );
}
