//! CA keys are sealed with the master key: the database file alone reveals no key, and without
//! the right master key nothing signs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Env;
use easgate_pki::sealed::MasterKey;

fn all_database_bytes(env: &Env) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(env.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // The -wal and -shm files may vanish as the last connection closes: skip those.
        if name.starts_with("easgate.db") {
            if let Ok(content) = std::fs::read(&path) {
                bytes.extend(content);
            }
        }
    }
    bytes
}

#[test]
fn database_file_reveals_no_ca_key() {
    let env = Env::new();
    env.ok(&["ca", "create", "default", "--key", "ec-p256"]);
    env.ok(&["ca", "create", "rsa", "--key", "rsa-2048"]);
    let key_file = env.data_dir().join("master.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let master = MasterKey::from_text(&std::fs::read_to_string(&key_file).unwrap()).unwrap();

    // Read the sealed keys through the store and open them with the master key: that yields the
    // real PKCS#8 keys, which must appear nowhere in the raw database files.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = format!("sqlite://{}", env.data_dir().join("easgate.db").display());
    let cas = rt.block_on(async {
        easgate_store::open(&url)
            .await
            .unwrap()
            .list_cas()
            .await
            .unwrap()
    });
    assert_eq!(cas.len(), 2);
    let raw = all_database_bytes(&env);
    assert!(!raw.is_empty());
    for ca in &cas {
        let pkcs8 = master
            .open(&format!("ca:{}", ca.name), &ca.key_sealed)
            .expect("sealed with the master key");
        assert!(pkcs8.len() > 100);
        // No 32-byte piece of the key (the EC scalar, the RSA primes and exponent) may be in the
        // file; pieces that are public anyway (the public key, in the CA certificate) are skipped.
        let secret_chunks: Vec<&[u8]> = pkcs8
            .chunks(32)
            .filter(|c| c.len() == 32 && !ca.cert_der.windows(32).any(|w| w == *c))
            .collect();
        assert!(!secret_chunks.is_empty());
        for window in secret_chunks {
            assert!(
                !raw.windows(32).any(|w| w == window),
                "CA `{}` key material found in the database file",
                ca.name
            );
        }
        // A different master key cannot open it.
        assert!(MasterKey::generate()
            .unwrap()
            .open(&format!("ca:{}", ca.name), &ca.key_sealed)
            .is_err());
        // Nor can the right key under another CA's name.
        assert!(master.open("ca:someone-else", &ca.key_sealed).is_err());
    }
    assert!(!String::from_utf8_lossy(&raw).contains("PRIVATE KEY"));
}

#[test]
fn a_missing_or_wrong_master_key_is_a_clear_error() {
    let env = Env::new();
    env.standard_setup();
    let key_file = env.data_dir().join("master.key");
    let saved = std::fs::read(&key_file).unwrap();

    // Missing key file with CA keys in the database: refuse to make a new key.
    std::fs::remove_file(&key_file).unwrap();
    let err = env.fails(&["ca", "list"]);
    assert!(err.contains("master.key is missing"), "{err}");
    assert!(
        !key_file.exists(),
        "a new master key was made while old CA keys exist"
    );

    // The environment variable works instead of the file.
    let text = String::from_utf8(saved.clone()).unwrap();
    let out = env
        .command()
        .env("EASGATE_MASTER_KEY", text.trim())
        .args([
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            "dev1",
            "--out-key",
            env.path("k.pem").to_str().unwrap(),
            "--out",
            env.path("c.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong key cannot sign.
    let wrong = MasterKey::generate().unwrap().to_text();
    let out = env
        .command()
        .env("EASGATE_MASTER_KEY", &wrong)
        .args([
            "cert",
            "issue",
            "--template",
            "phones",
            "--device",
            "dev1",
            "--out-key",
            env.path("k2.pem").to_str().unwrap(),
            "--out",
            env.path("c2.pem").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot decrypt the key of CA `default`"),
        "{err}"
    );
    assert!(!env.path("c2.pem").exists());

    // A key file readable by others is refused.
    std::fs::write(&key_file, &saved).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let err = env.fails(&["ca", "list"]);
    assert!(err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    env.ok(&["ca", "list"]);
}
