//! The store contract, written once against `dyn Store` so every backend runs the same suite:
//! SQLite always, PostgreSQL when `EASGATE_TEST_POSTGRES_URL` names a server (`scripts/test`
//! sets it), each test in a fresh schema of its own that is dropped afterwards (best effort).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use easgate_store::*;

fn ctx(now: i64) -> Ctx {
    Ctx {
        actor: "test".into(),
        now,
    }
}

/// What a test's store leaves behind: a temporary directory, or a PostgreSQL schema.
enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Schema(String),
}

impl Guard {
    /// Remove what the test made (a failed test leaves its schema, named for the process).
    async fn finish(self) {
        if let Guard::Schema(schema) = self {
            use sqlx::Connection;
            let Ok(base) = std::env::var(PG_VAR) else {
                return;
            };
            if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
                let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

const PG_VAR: &str = "EASGATE_TEST_POSTGRES_URL";

async fn sqlite(_test: &str) -> Option<(Guard, Arc<dyn Store>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = open(&url).await.unwrap();
    Some((Guard::Dir(dir), store))
}

/// A store in a fresh schema of the PostgreSQL server `EASGATE_TEST_POSTGRES_URL` names; `None`
/// (after one line saying so) when the variable is unset.
async fn postgres(test: &str) -> Option<(Guard, Arc<dyn Store>)> {
    use std::sync::atomic::{AtomicU32, Ordering};
    let Ok(base) = std::env::var(PG_VAR) else {
        println!("skipped {test} on PostgreSQL: {PG_VAR} is not set");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "easgate_suite_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = open(&format!("{base}{sep}schema={schema}")).await.unwrap();
    Some((Guard::Schema(schema), store))
}

async fn seed(store: &dyn Store) {
    store
        .insert_ca(
            &ctx(100),
            NewCa {
                name: "default".into(),
                key_type: "ec-p256".into(),
                subject: "CN=Test".into(),
                cert_der: vec![1, 2, 3],
                key_sealed: vec![9, 9, 9],
                not_before: 0,
                not_after: 10_000,
                scep_no_des: false,
            },
        )
        .await
        .unwrap();
    store
        .insert_template(
            &ctx(101),
            NewTemplate {
                name: "phones".into(),
                ca: "default".into(),
                subject: "CN={DeviceUid}".into(),
                sans: vec!["upn:{UserPrincipalName}".into()],
                key_type: "rsa-2048".into(),
                validity_days: 365,
                renew_before_days: 30,
                is_default: false,
            },
        )
        .await
        .unwrap();
    store.insert_group(&ctx(102), "sales").await.unwrap();
    store
        .insert_user(
            &ctx(103),
            NewUser {
                upn: "alice@corp.example".into(),
                email: "alice@corp.example".into(),
                display_name: None,
                groups: vec!["sales".into()],
            },
        )
        .await
        .unwrap();
    store
        .enroll_device(
            &ctx(104),
            NewDevice {
                uid: "dev1".into(),
                user: "alice@corp.example".into(),
                platform: "ios".into(),
                template: Some("phones".into()),
                device_serial: None,
            },
            NewChallenge {
                hash_hex: "aa".into(),
                profile_token_hash_hex: "bb".into(),
                expires_at: 1000,
            },
        )
        .await
        .unwrap();
}

fn cert(serial: &str, not_after: i64) -> NewCertificate {
    NewCertificate {
        serial: serial.into(),
        ca: "default".into(),
        device: Some("dev1".into()),
        template: Some("phones".into()),
        subject: "CN=dev1".into(),
        sans: vec!["upn:alice@corp.example".into()],
        key_type: "EC P-256".into(),
        not_before: 0,
        not_after,
        der: vec![0x30, 0x00],
    }
}

async fn change_feed_grows_by_one_per_change(store: Arc<dyn Store>) {
    assert_eq!(store.revision().await.unwrap(), 0);
    seed(store.as_ref()).await;
    let rev = store.revision().await.unwrap();
    assert_eq!(rev, 5);
    let changes = store.changes_since(0, 100).await.unwrap();
    let entities: Vec<_> = changes.iter().map(|c| c.entity.as_str()).collect();
    assert_eq!(entities, ["ca", "template", "group", "user", "device"]);
    assert!(changes
        .windows(2)
        .all(|w| w[1].revision == w[0].revision + 1));
    assert_eq!(store.changes_since(3, 100).await.unwrap().len(), 2);
    assert_eq!(store.changes_since(0, 2).await.unwrap().len(), 2);
    store
        .insert_certificate(&ctx(200), cert("AA01", 5000))
        .await
        .unwrap();
    assert_eq!(store.revision().await.unwrap(), rev + 1);
    // A failed change leaves no row in the feed.
    assert!(store
        .insert_certificate(&ctx(201), cert("AA01", 5000))
        .await
        .is_err());
    assert_eq!(store.revision().await.unwrap(), rev + 1);
}

async fn failed_changes_are_atomic(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    let rev = store.revision().await.unwrap();
    let audit = store.list_audit(0).await.unwrap().len();
    // Unknown group: the user is not added either.
    let err = store
        .insert_user(
            &ctx(300),
            NewUser {
                upn: "bob@corp.example".into(),
                email: "bob@corp.example".into(),
                display_name: None,
                groups: vec!["sales".into(), "nope".into()],
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { kind: "group", .. }),
        "{err}"
    );
    assert!(store.get_user("bob@corp.example").await.unwrap().is_none());
    // Duplicate device uid: no second challenge, no change.
    let err = store
        .enroll_device(
            &ctx(301),
            NewDevice {
                uid: "dev1".into(),
                user: "alice@corp.example".into(),
                platform: "ios".into(),
                template: None,
                device_serial: None,
            },
            NewChallenge {
                hash_hex: "cc".into(),
                profile_token_hash_hex: "dd".into(),
                expires_at: 1000,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    assert_eq!(store.revision().await.unwrap(), rev);
    assert_eq!(store.list_audit(0).await.unwrap().len(), audit);
}

async fn status_and_revocation(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .insert_certificate(&ctx(200), cert("0A", 5000))
        .await
        .unwrap();
    store
        .insert_certificate(&ctx(201), cert("0B", 150))
        .await
        .unwrap();
    assert_eq!(
        store.get_device("dev1").await.unwrap().unwrap().state,
        "enrolled"
    );
    let now = 1000;
    let f = |status| CertFilter {
        device: None,
        status: Some(status),
        now,
    };
    assert_eq!(
        store
            .list_certificates(&f(CertStatus::Valid))
            .await
            .unwrap()
            .len(),
        1
    );
    let expired = store
        .list_certificates(&f(CertStatus::Expired))
        .await
        .unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].serial, "0B");
    let revoked = store
        .revoke_certificate(
            &ctx(400),
            "0A",
            Revocation {
                reason: "keyCompromise".into(),
                at: 400,
            },
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, CertStatus::Revoked);
    assert_eq!(revoked.revoked_at, Some(400));
    assert!(matches!(
        store
            .revoke_certificate(
                &ctx(401),
                "0A",
                Revocation {
                    reason: "unspecified".into(),
                    at: 401
                }
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .revoke_certificate(
                &ctx(401),
                "FF",
                Revocation {
                    reason: "unspecified".into(),
                    at: 401
                }
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // Retiring the device revokes the rest (the expired one too: it is still `valid` as stored).
    let (device, serials) = store
        .set_device_state(
            &ctx(500),
            "dev1",
            "retired",
            Revocation {
                reason: "cessationOfOperation".into(),
                at: 500,
            },
        )
        .await
        .unwrap();
    assert_eq!(device.state, "retired");
    assert_eq!(serials, vec!["0B".to_string()]);
    let all = store
        .list_certificates(&CertFilter {
            device: Some("dev1".into()),
            status: None,
            now,
        })
        .await
        .unwrap();
    assert!(all.iter().all(|c| c.status == CertStatus::Revoked));
    assert_eq!(
        all.iter()
            .find(|c| c.serial == "0A")
            .unwrap()
            .revocation_reason
            .as_deref(),
        Some("keyCompromise")
    );
}

async fn settings_and_groups(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    assert_eq!(store.get_setting("public_url").await.unwrap(), None);
    store
        .set_setting(&ctx(1), "public_url", "http://a.example")
        .await
        .unwrap();
    store
        .set_setting(&ctx(2), "public_url", "http://b.example")
        .await
        .unwrap();
    assert_eq!(
        store.get_setting("public_url").await.unwrap().as_deref(),
        Some("http://b.example")
    );
    let groups = store.list_groups().await.unwrap();
    assert_eq!(groups[0].members, 1);
    assert_eq!(
        store
            .get_user("ALICE@corp.example")
            .await
            .unwrap()
            .unwrap()
            .groups,
        vec!["sales"]
    );
    assert!(matches!(
        store.insert_group(&ctx(3), "SALES").await,
        Err(StoreError::AlreadyExists { .. })
    ));
}

async fn concurrent_issuance_fails_only_the_bad_certificate(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .insert_certificate(&ctx(200), cert("DUP", 5000))
        .await
        .unwrap();
    let rev = store.revision().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let serial = if i == 17 {
                "DUP".to_string()
            } else {
                format!("C{i:04}")
            };
            let mut c = cert(&serial, 5000);
            if i == 33 {
                c.device = Some("no-such-device".into());
            }
            (i, store.insert_certificate(&ctx(300), c).await)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.unwrap();
        match i {
            17 => assert!(
                matches!(result, Err(StoreError::AlreadyExists { .. })),
                "{result:?}"
            ),
            33 => assert!(
                matches!(result, Err(StoreError::NotFound { kind: "device", .. })),
                "{result:?}"
            ),
            _ => assert!(result.is_ok(), "{i}: {result:?}"),
        }
    }
    let all = store
        .list_certificates(&CertFilter {
            device: None,
            status: None,
            now: 0,
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1 + 62);
    assert_eq!(store.revision().await.unwrap(), rev + 62);
}

async fn crl_inputs_drop_expired_and_numbers_increase(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    store
        .insert_certificate(&ctx(200), cert("01", 5000))
        .await
        .unwrap();
    store
        .insert_certificate(&ctx(200), cert("02", 900))
        .await
        .unwrap();
    store
        .insert_certificate(&ctx(200), cert("03", 5000))
        .await
        .unwrap();
    for (serial, at) in [("01", 300), ("02", 300), ("03", 700)] {
        store
            .revoke_certificate(
                &ctx(at),
                serial,
                Revocation {
                    reason: "keyCompromise".into(),
                    at,
                },
            )
            .await
            .unwrap();
    }
    let mut all: Vec<String> = store
        .revoked_certificates("default", None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    all.sort();
    assert_eq!(all, ["01", "03"], "expired 02 must be dropped");
    let since: Vec<String> = store
        .revoked_certificates("default", Some(500), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(since, ["03"]);
    let a = store.next_crl_number(&ctx(1), "default").await.unwrap();
    let b = store.next_crl_number(&ctx(1), "default").await.unwrap();
    assert_eq!((a, b), (1, 2));
    for (number, scope) in [(a, CrlScope::Full), (b, CrlScope::Delta)] {
        store
            .insert_crl(
                &ctx(2),
                NewCrl {
                    ca: "default".into(),
                    number,
                    scope,
                    base_number: None,
                    this_update: 2,
                    next_update: 3,
                    entries: 0,
                    der: vec![number as u8],
                },
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .latest_crl("default", CrlScope::Full)
            .await
            .unwrap()
            .unwrap()
            .der,
        vec![1]
    );
    assert_eq!(
        store
            .latest_crl("default", CrlScope::Delta)
            .await
            .unwrap()
            .unwrap()
            .number,
        2
    );
    assert!(store.next_crl_number(&ctx(1), "nope").await.is_err());
}

async fn scep_challenges_are_one_time_and_expire(store: Arc<dyn Store>) {
    seed(store.as_ref()).await; // dev1's challenge: hash "aa", expires at 1000
    assert_eq!(
        store
            .consume_scep_challenge(&ctx(2000), "aa")
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.consume_scep_challenge(&ctx(500), "zz").await.unwrap(),
        None,
        "unknown"
    );
    let rev = store.revision().await.unwrap();
    assert_eq!(
        store
            .consume_scep_challenge(&ctx(500), "aa")
            .await
            .unwrap()
            .as_deref(),
        Some("dev1")
    );
    assert_eq!(store.revision().await.unwrap(), rev + 1);
    assert_eq!(
        store.consume_scep_challenge(&ctx(501), "aa").await.unwrap(),
        None,
        "second use"
    );
    // Retiring a device expires its unused challenges.
    store
        .enroll_device(
            &ctx(600),
            NewDevice {
                uid: "dev2".into(),
                user: "alice@corp.example".into(),
                platform: "ios".into(),
                template: None,
                device_serial: None,
            },
            NewChallenge {
                hash_hex: "cc".into(),
                profile_token_hash_hex: "dd".into(),
                expires_at: 5000,
            },
        )
        .await
        .unwrap();
    store
        .set_device_state(
            &ctx(700),
            "dev2",
            "retired",
            Revocation {
                reason: "cessationOfOperation".into(),
                at: 700,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store.consume_scep_challenge(&ctx(800), "cc").await.unwrap(),
        None
    );
    let key = |sealed: u8| ServiceKey {
        ca: "default".into(),
        role: "scep-ra".into(),
        cert_der: vec![1],
        key_sealed: vec![sealed],
    };
    assert!(store
        .get_service_key("default", "scep-ra")
        .await
        .unwrap()
        .is_none());
    store.insert_service_key(&ctx(1), key(2)).await.unwrap();
    assert_eq!(
        store
            .get_service_key("default", "scep-ra")
            .await
            .unwrap()
            .unwrap()
            .key_sealed,
        vec![2]
    );
    assert!(matches!(
        store.insert_service_key(&ctx(1), key(3)).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    // Another role of the same CA is another key.
    assert!(store
        .get_service_key("default", "profile-signer")
        .await
        .unwrap()
        .is_none());
}

async fn profile_tokens_are_one_time_and_renewals_clear(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    // Token "bb" of dev1 expires at 1000.
    assert_eq!(store.profile_token("nope", 500).await.unwrap(), None);
    let token = store.profile_token("bb", 500).await.unwrap().unwrap();
    assert_eq!(token.device, "dev1");
    assert_eq!(token.state, TokenState::Usable);
    assert_eq!(
        store
            .profile_token("bb", 1000)
            .await
            .unwrap()
            .unwrap()
            .state,
        TokenState::Expired(1000)
    );
    assert_eq!(
        store
            .consume_profile_token(&ctx(500), "bb")
            .await
            .unwrap()
            .as_deref(),
        Some("dev1")
    );
    assert_eq!(
        store.consume_profile_token(&ctx(501), "bb").await.unwrap(),
        None
    );
    assert_eq!(
        store.profile_token("bb", 502).await.unwrap().unwrap().state,
        TokenState::Used(500)
    );

    // A renewal is started once per serial, with its own challenge and token.
    store
        .insert_certificate(&ctx(600), cert("0C", 5000))
        .await
        .unwrap();
    let renewal = |token: &str| NewRenewal {
        device: "dev1".into(),
        serial: "0C".into(),
        secrets: NewChallenge {
            hash_hex: format!("challenge-{token}"),
            profile_token_hash_hex: token.into(),
            expires_at: 2000,
        },
    };
    assert!(store.start_renewal(&ctx(700), renewal("t1")).await.unwrap());
    let rev = store.revision().await.unwrap();
    assert!(!store.start_renewal(&ctx(701), renewal("t2")).await.unwrap());
    assert_eq!(
        store.revision().await.unwrap(),
        rev,
        "a refused start changes nothing"
    );
    assert_eq!(store.profile_token("t2", 702).await.unwrap(), None);
    assert_eq!(
        store
            .consume_scep_challenge(&ctx(703), "challenge-t1")
            .await
            .unwrap()
            .as_deref(),
        Some("dev1")
    );
    let pending = store.list_renewals().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].cleared_at, None);
    // The device's next certificate clears it.
    let before = store.revision().await.unwrap();
    store
        .insert_certificate(&ctx(800), cert("0D", 9000))
        .await
        .unwrap();
    assert_eq!(
        store.list_renewals().await.unwrap()[0].cleared_at,
        Some(800)
    );
    // Recorded as two changes, the clearing first, each with its audit event.
    let changes = store.changes_since(before, 10).await.unwrap();
    let changed: Vec<(&str, &str)> = changes
        .iter()
        .map(|c| (c.entity.as_str(), c.key.as_str()))
        .collect();
    assert_eq!(changed, [("device", "dev1"), ("certificate", "0D")]);
    let audit = store.list_audit(800).await.unwrap();
    let events: Vec<(&str, &str, &str)> = audit
        .iter()
        .map(|e| (e.action.as_str(), e.target.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            (
                "renewal.clear",
                "device:dev1",
                "renewed with certificate 0D"
            ),
            ("cert.issue", "certificate:0D", "CN=dev1"),
        ]
    );
}

async fn expiring_certificates_follow_the_window(store: Arc<dyn Store>) {
    seed(store.as_ref()).await; // template `phones` renews 30 days before notAfter
    store
        .enroll_device(
            &ctx(105),
            NewDevice {
                uid: "dev2".into(),
                user: "alice@corp.example".into(),
                platform: "ios".into(),
                template: Some("phones".into()),
                device_serial: None,
            },
            NewChallenge {
                hash_hex: "a2".into(),
                profile_token_hash_hex: "b2".into(),
                expires_at: 1000,
            },
        )
        .await
        .unwrap();
    let day = 86_400;
    let now = 1000 * day;
    let issue = |serial: &str, device: &str, not_before: i64, not_after: i64| NewCertificate {
        serial: serial.into(),
        device: Some(device.into()),
        not_before,
        not_after,
        ..cert(serial, not_after)
    };
    for c in [
        // dev1: 10 days left (inside), and a newer one that has already expired.
        issue("A1", "dev1", now - 355 * day, now + 10 * day),
        issue("A2", "dev1", now - 300 * day, now - day),
        // dev2: 10 days left, but renewed by a newer valid certificate (outside its window).
        issue("B1", "dev2", now - 355 * day, now + 10 * day),
        issue("B2", "dev2", now - day, now + 364 * day),
    ] {
        store.insert_certificate(&ctx(200), c).await.unwrap();
    }
    let expiring = store.expiring_certificates(now).await.unwrap();
    let serials: Vec<&str> = expiring
        .iter()
        .map(|e| e.certificate.serial.as_str())
        .collect();
    assert_eq!(serials, ["A1"]);
    assert_eq!(expiring[0].renew_from, now - 20 * day);
    assert!(!expiring[0].renewal_started);
    // 40 days earlier no window was open yet (A2 then had 39 days left).
    assert!(store
        .expiring_certificates(now - 40 * day)
        .await
        .unwrap()
        .is_empty());
    store
        .start_renewal(
            &ctx(300),
            NewRenewal {
                device: "dev1".into(),
                serial: "A1".into(),
                secrets: NewChallenge {
                    hash_hex: "c1".into(),
                    profile_token_hash_hex: "t1".into(),
                    expires_at: now,
                },
            },
        )
        .await
        .unwrap();
    assert!(store.expiring_certificates(now).await.unwrap()[0].renewal_started);
}

async fn a_ca_can_refuse_single_des(store: Arc<dyn Store>) {
    seed(store.as_ref()).await;
    assert!(!store.get_ca("default").await.unwrap().unwrap().scep_no_des);
    let rev = store.revision().await.unwrap();
    store
        .set_ca_scep_no_des(&ctx(300), "default", true)
        .await
        .unwrap();
    assert!(store.get_ca("default").await.unwrap().unwrap().scep_no_des);
    assert!(store.list_cas().await.unwrap()[0].scep_no_des);
    assert_eq!(store.revision().await.unwrap(), rev + 1);
    store
        .set_ca_scep_no_des(&ctx(301), "default", false)
        .await
        .unwrap();
    assert!(!store.get_ca("default").await.unwrap().unwrap().scep_no_des);
    assert!(matches!(
        store.set_ca_scep_no_des(&ctx(302), "nope", true).await,
        Err(easgate_store::StoreError::NotFound { .. })
    ));
}

/// Paged lists walked by cursor give every record once, in key order, with every field (the
/// cursor condition is in the SQL only from page 2 on; partnerships are read by column position).
async fn pages_follow_the_cursor_to_the_end(store: Arc<dyn Store>) {
    let partnership = |i: usize| Partnership {
        user: format!("user{}@corp.example", i % 4),
        eas_device_id: format!("DEV{:03}", i / 2),
        suspect: i % 2 == 1,
        device_type: Some("iPhone".into()),
        model: Some(format!("model {i}")),
        os: Some("iOS 17".into()),
        friendly_name: None,
        user_agent: Some(format!("agent {i}")),
        client: "native".into(),
        platform: "ios".into(),
        protocol: Some("16.1".into()),
        first_seen: 1000 + i as i64,
        last_seen: 2000 + i as i64,
        last_sync: Some(3000 + i as i64),
        last_command: Some("Sync".into()),
        cert_serial: i.is_multiple_of(3).then(|| format!("{i:04X}")),
        device_state: "managed".into(),
        access_state: "allow".into(),
        access_reason: format!("reason {i}"),
        last_refusal_at: i.is_multiple_of(5).then_some(4000),
        last_refusal: i.is_multiple_of(5).then(|| "refused".into()),
        policy_applied: i.is_multiple_of(4).then(|| format!("policy {i}")),
        policy_key: i.is_multiple_of(4).then_some(3_000_000_000 + i as i64),
        policy_status: i.is_multiple_of(4).then(|| "AppliedInFull".into()),
        policy_updated_at: i.is_multiple_of(4).then_some(5000 + i as i64),
    };
    let all: Vec<Partnership> = (0..23).map(partnership).collect();
    store.save_partnerships(&all).await.unwrap();
    let listed = store.list_partnerships(None).await.unwrap();
    let mut expected = all.clone();
    expected.sort_by(|a, b| {
        (&a.user, &a.eas_device_id, a.suspect).cmp(&(&b.user, &b.eas_device_id, b.suspect))
    });
    assert_eq!(
        listed, expected,
        "every field reads back where it was saved"
    );
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .page_partnerships(
                &PartnershipFilter::default(),
                &PageQuery { after, limit: 5 },
            )
            .await
            .unwrap();
        let full = page.len() == 5;
        after = page
            .last()
            .map(|p| (p.user.clone(), p.eas_device_id.clone(), p.suspect));
        paged.extend(page);
        if !full {
            break;
        }
    }
    assert_eq!(paged, listed);

    for i in 0..13 {
        store
            .record_event(&ctx(500 + i), "test.event", "thing", &format!("t{i}"), "")
            .await
            .unwrap();
    }
    let whole = store
        .page_audit(
            &AuditFilter::default(),
            &PageQuery {
                after: None,
                limit: 1000,
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .page_audit(&AuditFilter::default(), &PageQuery { after, limit: 4 })
            .await
            .unwrap();
        after = page.last().map(|e| e.id);
        let full = page.len() == 4;
        ids.extend(page.into_iter().map(|e| e.id));
        if !full {
            break;
        }
    }
    assert_eq!(ids, whole.into_iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

/// UPNs, group names, token names and EAS DeviceIds compare case-insensitively (ASCII) and keep
/// the case they were written with; lists sort the same way.
async fn names_compare_case_insensitively(store: Arc<dyn Store>) {
    let c = ctx(10);
    store.insert_group(&c, "Sales").await.unwrap();
    store.insert_group(&c, "admins").await.unwrap();
    assert!(matches!(
        store.insert_group(&c, "SALES").await,
        Err(StoreError::AlreadyExists { kind: "group", .. })
    ));
    let groups: Vec<String> = store
        .list_groups()
        .await
        .unwrap()
        .into_iter()
        .map(|g| g.name)
        .collect();
    assert_eq!(groups, ["admins", "Sales"]);
    let user = NewUser {
        upn: "Alice@Corp.example".into(),
        email: "alice@corp.example".into(),
        display_name: None,
        groups: vec!["sales".into(), "ADMINS".into()],
    };
    let alice = store.insert_user(&c, user.clone()).await.unwrap();
    assert_eq!(alice.upn, "Alice@Corp.example");
    assert_eq!(alice.groups, ["admins", "Sales"]);
    assert!(matches!(
        store
            .insert_user(
                &c,
                NewUser {
                    upn: "alice@corp.EXAMPLE".into(),
                    ..user.clone()
                }
            )
            .await,
        Err(StoreError::AlreadyExists { kind: "user", .. })
    ));
    let found = store.get_user("ALICE@corp.example").await.unwrap().unwrap();
    assert_eq!(found.upn, "Alice@Corp.example");
    store
        .insert_user(
            &c,
            NewUser {
                upn: "bob@corp.example".into(),
                groups: vec![],
                ..user
            },
        )
        .await
        .unwrap();
    let upns: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.upn)
        .collect();
    assert_eq!(upns, ["Alice@Corp.example", "bob@corp.example"]);
    let changed = store
        .update_user(
            &c,
            "alice@corp.example",
            UserChange {
                remove_groups: vec!["sales".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(changed.groups, ["admins"]);
    assert!(matches!(
        store.remove_group(&c, "nope").await,
        Err(StoreError::NotFound { kind: "group", .. })
    ));
    store.remove_group(&c, "SALES").await.unwrap();

    // Token names: unique among live tokens, case-insensitively; revoked by any case.
    let token = |name: &str, hash: &str| NewApiToken {
        name: name.into(),
        role: "admin".into(),
        hash: hash.into(),
        expires_at: None,
    };
    store
        .insert_api_token(&c, token("Ops", "h1"))
        .await
        .unwrap();
    assert!(matches!(
        store.insert_api_token(&c, token("OPS", "h2")).await,
        Err(StoreError::AlreadyExists { kind: "token", .. })
    ));
    store.revoke_api_token(&c, "ops").await.unwrap();
    store
        .insert_api_token(&c, token("OPS", "h2"))
        .await
        .unwrap();
    assert!(matches!(
        store.revoke_api_token(&c, "ghost").await,
        Err(StoreError::NotFound { .. })
    ));
    let tokens = store.list_api_tokens().await.unwrap();
    assert_eq!(tokens.len(), 2);
    assert_eq!(
        store.api_token_by_hash("h2").await.unwrap().unwrap().name,
        "OPS"
    );
}

fn partnership(user: &str, id: &str, seen: i64) -> Partnership {
    Partnership {
        user: user.into(),
        eas_device_id: id.into(),
        suspect: false,
        device_type: Some("iPhone".into()),
        model: Some("iPhone 100%_new".into()),
        os: None,
        friendly_name: None,
        user_agent: None,
        client: "ios-mail".into(),
        platform: "ios".into(),
        protocol: Some("16.1".into()),
        first_seen: seen,
        last_seen: seen,
        last_sync: None,
        last_command: None,
        cert_serial: None,
        device_state: "unmanaged".into(),
        access_state: "block".into(),
        access_reason: "default".into(),
        last_refusal_at: None,
        last_refusal: None,
        policy_applied: None,
        policy_key: None,
        policy_status: None,
        policy_updated_at: None,
    }
}

/// Partnerships upsert by (user, DeviceId, suspect) case-insensitively, keep their first
/// sighting, let the latest sighting win, filter with LIKE's wildcards taken literally; overrides and clearing follow.
async fn gateway_records_upsert_and_filter(store: Arc<dyn Store>) {
    let c = ctx(20);
    store
        .save_partnerships(&[
            partnership("alice@corp.example", "DEV1", 100),
            partnership("bob@corp.example", "dev2", 110),
        ])
        .await
        .unwrap();
    let mut again = partnership("ALICE@corp.example", "dev1", 200);
    again.first_seen = 150;
    again.access_state = "allow".into();
    store.save_partnerships(&[again]).await.unwrap();
    let all = store.list_partnerships(None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].user.as_str(), all[0].eas_device_id.as_str()),
        ("alice@corp.example", "DEV1")
    );
    assert_eq!(
        (
            all[0].first_seen,
            all[0].last_seen,
            all[0].access_state.as_str()
        ),
        (100, 200, "allow")
    );
    // Another gateway flushing an older sighting of the same device later loses: the latest
    // sighting wins, whatever order the gateways write in.
    let mut stale = partnership("alice@corp.example", "DEV1", 180);
    stale.access_state = "quarantine".into();
    store.save_partnerships(&[stale]).await.unwrap();
    let kept = &store.get_partnerships("dev1").await.unwrap()[0];
    assert_eq!(
        (kept.first_seen, kept.last_seen, kept.access_state.as_str()),
        (100, 200, "allow")
    );
    assert_eq!(
        store
            .list_partnerships(Some("BOB@corp.example"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(store.get_partnerships("Dev2").await.unwrap().len(), 1);

    let page = |text: &str| PartnershipFilter {
        text: Some(text.into()),
        ..Default::default()
    };
    let q = PageQuery {
        after: None,
        limit: 10,
    };
    assert_eq!(
        store
            .page_partnerships(&page("100%_"), &q)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        store
            .page_partnerships(&page("100x"), &q)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        store
            .page_partnerships(&page("IPHONE"), &q)
            .await
            .unwrap()
            .len(),
        2
    );
    let first = store
        .page_partnerships(
            &PartnershipFilter::default(),
            &PageQuery {
                after: None,
                limit: 1,
            },
        )
        .await
        .unwrap();
    let rest = store
        .page_partnerships(
            &PartnershipFilter::default(),
            &PageQuery {
                after: Some(("ALICE@CORP.EXAMPLE".into(), "dev1".into(), false)),
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(first[0].eas_device_id, "DEV1");
    assert_eq!(
        rest.iter()
            .map(|p| p.eas_device_id.as_str())
            .collect::<Vec<_>>(),
        ["dev2"]
    );

    store
        .set_override(&c, "DEV1", "allow", Some("ok"), true)
        .await
        .unwrap();
    store
        .set_override(&c, "dev1", "block", None, false)
        .await
        .unwrap();
    let overrides = store.list_overrides().await.unwrap();
    assert_eq!(overrides.len(), 1);
    assert_eq!(
        (
            overrides[0].eas_device_id.as_str(),
            overrides[0].action.as_str()
        ),
        ("DEV1", "block")
    );
    assert_eq!(store.clear_partnerships(&c, "dEv1").await.unwrap(), 1);
    assert!(store.list_overrides().await.unwrap().is_empty());
    assert!(matches!(
        store.clear_partnerships(&c, "dev1").await,
        Err(StoreError::NotFound { .. })
    ));

    let binding = |serial: &str, id: &str| CertificateBinding {
        serial: serial.into(),
        eas_device_id: id.into(),
        user: "alice@corp.example".into(),
        bound_at: 5,
    };
    let revision = store.revision().await.unwrap();
    let saved = store
        .save_bindings(&[binding("0B", "x"), binding("0A", "y")])
        .await
        .unwrap();
    assert_eq!(saved.len(), 2);
    // A second gateway binding 0A elsewhere learns the first binding, which stays.
    let in_effect = store.save_bindings(&[binding("0A", "z")]).await.unwrap();
    assert_eq!(
        in_effect
            .iter()
            .map(|b| (b.serial.as_str(), b.eas_device_id.as_str()))
            .collect::<Vec<_>>(),
        [("0A", "y")]
    );
    assert_eq!(
        store
            .get_binding("0A")
            .await
            .unwrap()
            .unwrap()
            .eas_device_id,
        "y"
    );
    assert!(store.get_binding("0C").await.unwrap().is_none());
    // Each new binding is one change that other instances follow; the refused one is none.
    let changes = store.changes_since(revision, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|ch| (ch.entity.as_str(), ch.key.as_str()))
            .collect::<Vec<_>>(),
        [("binding", "0B"), ("binding", "0A")]
    );
    // By DeviceId, case-insensitively.
    store.save_bindings(&[binding("0D", "Y")]).await.unwrap();
    let of_y: Vec<String> = store
        .device_bindings("y")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.serial)
        .collect();
    assert_eq!(of_y, ["0A", "0D"]);
    assert!(store.device_bindings("nobody").await.unwrap().is_empty());
    let bindings = store.list_bindings().await.unwrap();
    assert_eq!(
        bindings
            .iter()
            .map(|b| (b.serial.as_str(), b.eas_device_id.as_str()))
            .collect::<Vec<_>>(),
        [("0A", "y"), ("0B", "x"), ("0D", "Y")]
    );

    let rule = AccessRule {
        name: "block-bob".into(),
        priority: 5,
        users: vec!["Bob@corp.example".into()],
        groups: vec![],
        platforms: vec![],
        clients: vec![],
        device_states: vec![],
        networks: vec![],
        action: "block".into(),
    };
    store.insert_rule(&c, rule.clone()).await.unwrap();
    assert!(matches!(
        store.insert_rule(&c, rule).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    let rules: Vec<String> = store
        .list_rules()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(rules, ["block-bob", "allow-managed"]);
    store
        .insert_user(
            &c,
            NewUser {
                upn: "bob@CORP.example".into(),
                email: "b@x".into(),
                display_name: None,
                groups: vec![],
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        store.remove_user(&c, "bob@corp.example").await,
        Err(StoreError::Conflict(_))
    ));
    store.remove_rule(&c, "block-bob").await.unwrap();
    store.remove_user(&c, "BOB@corp.example").await.unwrap();
    assert!(store.get_user("bob@corp.example").await.unwrap().is_none());
}

/// The four policy columns a partnership keeps (what its device last acknowledged) read back
/// as saved and, like the rest of the row, follow the latest sighting.
async fn partnership_policy_columns_follow_the_latest_sighting(store: Arc<dyn Store>) {
    let mut first = partnership("alice@corp.example", "DEV1", 100);
    first.policy_applied = Some("strict".into());
    first.policy_key = Some(3_000_000_000);
    first.policy_status = Some("AppliedInFull".into());
    first.policy_updated_at = Some(100);
    store.save_partnerships(&[first.clone()]).await.unwrap();
    assert_eq!(
        store.get_partnerships("dev1").await.unwrap(),
        [first.clone()]
    );

    let mut later = first.clone();
    later.last_seen = 200;
    later.policy_applied = Some("lax".into());
    later.policy_key = Some(7);
    later.policy_status = Some("PartiallyApplied".into());
    later.policy_updated_at = Some(190);
    store.save_partnerships(&[later.clone()]).await.unwrap();
    // Another gateway's older sighting, flushed afterwards, does not undo the acknowledgement.
    let mut stale = first.clone();
    stale.last_seen = 150;
    stale.policy_applied = Some("old".into());
    stale.policy_key = None;
    stale.policy_status = None;
    stale.policy_updated_at = None;
    store.save_partnerships(&[stale]).await.unwrap();
    assert_eq!(
        store.list_partnerships(None).await.unwrap(),
        [later.clone()]
    );
    let page = store
        .page_partnerships(
            &PartnershipFilter::default(),
            &PageQuery {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page, [later]);
}

fn eas_policy(name: &str, is_default: bool) -> EasPolicy {
    EasPolicy {
        name: name.into(),
        settings: [
            ("DevicePasswordEnabled", "1"),
            ("MinDevicePasswordLength", "6"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        groups: vec!["sales".into()],
        is_default,
        created_at: 0,
        updated_at: 0,
    }
}

/// The audit events (action, target, detail) whose target is of `entity`, oldest first.
async fn audit_of(store: &dyn Store, entity: &str) -> Vec<(String, String, String)> {
    store
        .list_audit(0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.target.starts_with(&format!("{entity}:")))
        .map(|e| (e.action, e.target, e.detail))
        .collect()
}

/// The change-feed rows after `revision`, as (entity, key).
async fn changes_after(store: &dyn Store, revision: i64) -> Vec<(String, String)> {
    store
        .changes_since(revision, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.entity, c.key))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn triples(list: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    list.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

/// EAS policies: names unique, at most one default (a new default takes the mark), updates
/// keep `created_at`, each change audited with one change row; failed calls change nothing.
async fn eas_policies_keep_one_default_and_are_audited(store: Arc<dyn Store>) {
    let revision = store.revision().await.unwrap();
    store
        .insert_eas_policy(&ctx(10), &eas_policy("strict", true))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_eas_policy(&ctx(11), &eas_policy("strict", false))
            .await,
        Err(StoreError::AlreadyExists {
            kind: "EAS policy",
            ..
        })
    ));
    store
        .insert_eas_policy(&ctx(12), &eas_policy("basic", false))
        .await
        .unwrap();
    let listed = store.list_eas_policies().await.unwrap();
    let mut strict = eas_policy("strict", true);
    (strict.created_at, strict.updated_at) = (10, 10);
    let mut basic = eas_policy("basic", false);
    (basic.created_at, basic.updated_at) = (12, 12);
    assert_eq!(listed, [basic.clone(), strict.clone()]);

    let defaults = |list: Vec<EasPolicy>| -> Vec<String> {
        list.into_iter()
            .filter(|p| p.is_default)
            .map(|p| p.name)
            .collect()
    };
    store
        .insert_eas_policy(&ctx(13), &eas_policy("lax", true))
        .await
        .unwrap();
    assert_eq!(defaults(store.list_eas_policies().await.unwrap()), ["lax"]);

    let mut changed = eas_policy("strict", true);
    changed.settings = [("AllowCamera".to_string(), "0".to_string())].into();
    changed.groups = vec![];
    store.update_eas_policy(&ctx(20), &changed).await.unwrap();
    let stored = store.list_eas_policies().await.unwrap();
    let now_strict = stored.iter().find(|p| p.name == "strict").unwrap();
    assert_eq!(
        (
            &now_strict.settings,
            &now_strict.groups,
            now_strict.created_at,
            now_strict.updated_at
        ),
        (&changed.settings, &changed.groups, 10, 20)
    );
    assert_eq!(defaults(stored), ["strict"]);
    // A failed update taking the default leaves the default where it was.
    assert!(matches!(
        store
            .update_eas_policy(&ctx(21), &eas_policy("ghost", true))
            .await,
        Err(StoreError::NotFound {
            kind: "EAS policy",
            ..
        })
    ));
    assert_eq!(
        defaults(store.list_eas_policies().await.unwrap()),
        ["strict"]
    );
    // Giving up the default leaves none.
    store
        .update_eas_policy(&ctx(22), &eas_policy("strict", false))
        .await
        .unwrap();
    assert!(defaults(store.list_eas_policies().await.unwrap()).is_empty());

    store.remove_eas_policy(&ctx(30), "lax").await.unwrap();
    assert!(matches!(
        store.remove_eas_policy(&ctx(31), "lax").await,
        Err(StoreError::NotFound {
            kind: "EAS policy",
            ..
        })
    ));
    let names: Vec<String> = store
        .list_eas_policies()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["basic", "strict"]);

    assert_eq!(
        changes_after(store.as_ref(), revision).await,
        pairs(&[
            ("eas_policy", "strict"),
            ("eas_policy", "basic"),
            ("eas_policy", "lax"),
            ("eas_policy", "strict"),
            ("eas_policy", "strict"),
            ("eas_policy", "lax"),
        ])
    );
    let full = "settings DevicePasswordEnabled=1, MinDevicePasswordLength=6; groups sales";
    assert_eq!(
        audit_of(store.as_ref(), "eas_policy").await,
        triples(&[
            (
                "eas-policy.create",
                "eas_policy:strict",
                &format!("{full}; default")
            ),
            ("eas-policy.create", "eas_policy:basic", full),
            (
                "eas-policy.create",
                "eas_policy:lax",
                &format!("{full}; default")
            ),
            (
                "eas-policy.update",
                "eas_policy:strict",
                "settings AllowCamera=0; no groups; default"
            ),
            ("eas-policy.update", "eas_policy:strict", full),
            ("eas-policy.remove", "eas_policy:lax", ""),
        ])
    );
}

/// A wipe goes pending → sent → succeeded/failed; one per DeviceId (any case) while on record;
/// only a pending one can be cancelled; `sent` and the acknowledgement happen once each, and
/// clearing the DeviceId forgets it. Every change is audited with one change row.
async fn wipes_move_from_pending_to_acknowledged(store: Arc<dyn Store>) {
    let revision = store.revision().await.unwrap();
    let wipe = store
        .request_wipe(&ctx(30), "DEV1", false, Some("dev1"))
        .await
        .unwrap();
    assert_eq!(
        wipe,
        EasWipe {
            eas_device_id: "DEV1".into(),
            account_only: false,
            state: "pending".into(),
            requested_by: "test".into(),
            requested_at: 30,
            sent_at: None,
            ack_at: None,
            device_uid: Some("dev1".into()),
        }
    );
    assert_eq!(store.list_wipes().await.unwrap(), [wipe]);
    match store.request_wipe(&ctx(31), "dev1", true, None).await {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("already has a pending wipe"), "{message}")
        }
        other => panic!("a second wipe: {other:?}"),
    }
    store.cancel_wipe(&ctx(32), "Dev1").await.unwrap();
    assert!(store.list_wipes().await.unwrap().is_empty());
    assert!(matches!(
        store.cancel_wipe(&ctx(33), "dev1").await,
        Err(StoreError::NotFound { kind: "wipe", .. })
    ));

    store
        .request_wipe(&ctx(40), "DEV1", true, None)
        .await
        .unwrap();
    store
        .request_wipe(&ctx(40), "abc", false, None)
        .await
        .unwrap();
    assert!(store.mark_wipe_sent(&ctx(41), "dev1").await.unwrap());
    assert!(!store.mark_wipe_sent(&ctx(42), "DEV1").await.unwrap());
    assert!(!store.mark_wipe_sent(&ctx(42), "ghost").await.unwrap());
    match store.cancel_wipe(&ctx(43), "DEV1").await {
        Err(StoreError::Conflict(message)) => assert!(
            message.contains("already sent at 1970-01-01T00:00:41Z"),
            "{message}"
        ),
        other => panic!("cancelling a sent wipe: {other:?}"),
    }
    let acknowledged = store
        .mark_wipe_acknowledged(&ctx(50), "dev1", true)
        .await
        .unwrap();
    assert_eq!(
        acknowledged,
        Some(EasWipe {
            eas_device_id: "DEV1".into(),
            account_only: true,
            state: "succeeded".into(),
            requested_by: "test".into(),
            requested_at: 40,
            sent_at: Some(41),
            ack_at: Some(50),
            device_uid: None,
        })
    );
    assert_eq!(
        store
            .mark_wipe_acknowledged(&ctx(51), "DEV1", false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .mark_wipe_acknowledged(&ctx(51), "ghost", true)
            .await
            .unwrap(),
        None
    );
    assert!(!store.mark_wipe_sent(&ctx(52), "dev1").await.unwrap());
    assert!(matches!(
        store.cancel_wipe(&ctx(52), "dev1").await,
        Err(StoreError::Conflict(_))
    ));
    match store.request_wipe(&ctx(52), "dev1", false, None).await {
        Err(StoreError::Conflict(message)) => {
            assert!(
                message.contains("already has a succeeded wipe"),
                "{message}"
            )
        }
        other => panic!("a wipe after a wipe: {other:?}"),
    }
    // Acknowledged without having been marked sent: it was sent then, and failed.
    let failed = store
        .mark_wipe_acknowledged(&ctx(60), "ABC", false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (failed.state.as_str(), failed.sent_at, failed.ack_at),
        ("failed", Some(60), Some(60))
    );
    let ids: Vec<String> = store
        .list_wipes()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.eas_device_id)
        .collect();
    assert_eq!(ids, ["abc", "DEV1"]);

    assert_eq!(
        changes_after(store.as_ref(), revision).await,
        pairs(&[
            ("wipe", "DEV1"),
            ("wipe", "Dev1"),
            ("wipe", "DEV1"),
            ("wipe", "abc"),
            ("wipe", "dev1"),
            ("wipe", "dev1"),
            ("wipe", "ABC"),
        ])
    );
    assert_eq!(
        audit_of(store.as_ref(), "wipe").await,
        triples(&[
            ("eas.wipe.request", "wipe:DEV1", "full wipe for device dev1"),
            ("eas.wipe.cancel", "wipe:Dev1", ""),
            ("eas.wipe.request", "wipe:DEV1", "account-only wipe"),
            ("eas.wipe.request", "wipe:abc", "full wipe"),
            ("eas.wipe.sent", "wipe:dev1", ""),
            ("eas.wipe.ack", "wipe:dev1", "succeeded"),
            ("eas.wipe.ack", "wipe:ABC", "failed"),
        ])
    );

    // Clearing a DeviceId forgets its wipe, even when nothing else of it is on record.
    assert_eq!(store.clear_partnerships(&ctx(70), "dev1").await.unwrap(), 0);
    store
        .save_partnerships(&[partnership("alice@corp.example", "abc", 100)])
        .await
        .unwrap();
    assert_eq!(store.clear_partnerships(&ctx(71), "ABC").await.unwrap(), 1);
    assert!(store.list_wipes().await.unwrap().is_empty());
    assert!(matches!(
        store.clear_partnerships(&ctx(72), "abc").await,
        Err(StoreError::NotFound { .. })
    ));
    // The device can be wiped again once its record is cleared.
    store
        .request_wipe(&ctx(80), "dev1", false, None)
        .await
        .unwrap();
}

/// The calls no other test reaches: templates, trusted CAs, CA removal, disabling with
/// revocation, re-enrollment, device/owner reads, CRL metadata, OCSP states, SCEP enrollment
/// with an unbound challenge and its transaction, profiles, and the device/certificate pages.
fn all_certs() -> CertPageFilter {
    CertPageFilter {
        device: None,
        user: None,
        status: None,
        ca: None,
        text: None,
        now: 400,
    }
}

async fn the_remaining_calls_behave_alike(store: Arc<dyn Store>) {
    seed(&*store).await;
    let c = ctx(200);
    // Templates.
    let mut t = store.get_template("phones").await.unwrap().unwrap();
    assert!(!t.is_default);
    let mut other = NewTemplate {
        name: "laptops".into(),
        ca: "default".into(),
        subject: "CN=x".into(),
        sans: vec![],
        key_type: "ec-p256".into(),
        validity_days: 10,
        renew_before_days: 2,
        is_default: true,
    };
    store.insert_template(&c, other.clone()).await.unwrap();
    assert!(matches!(
        store.insert_template(&c, other.clone()).await,
        Err(StoreError::AlreadyExists {
            kind: "template",
            ..
        })
    ));
    other.validity_days = 20;
    assert_eq!(
        store
            .update_template(&c, other.clone())
            .await
            .unwrap()
            .validity_days,
        20
    );
    t = store.set_default_template(&c, "phones").await.unwrap();
    assert!(t.is_default);
    let names: Vec<(String, bool)> = store
        .list_templates()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.is_default))
        .collect();
    assert_eq!(
        names,
        [("laptops".to_string(), false), ("phones".to_string(), true)]
    );
    assert!(matches!(
        store.remove_template(&c, "phones").await,
        Err(StoreError::Conflict(_))
    ));
    store.remove_template(&c, "laptops").await.unwrap();
    assert!(matches!(
        store.update_template(&c, other).await,
        Err(StoreError::NotFound { .. })
    ));

    // Trusted CAs.
    let trusted = NewTrustedCa {
        name: "partner".into(),
        subject: "CN=Partner".into(),
        cert_der: vec![7],
        crl_url: Some("http://crl".into()),
        delta_crl_url: None,
    };
    store.insert_trusted_ca(&c, trusted.clone()).await.unwrap();
    assert!(matches!(
        store.insert_trusted_ca(&c, trusted).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(
        store.list_trusted_cas().await.unwrap()[0]
            .crl_url
            .as_deref(),
        Some("http://crl")
    );
    store.remove_trusted_ca(&c, "partner").await.unwrap();
    assert!(matches!(
        store.remove_trusted_ca(&c, "partner").await,
        Err(StoreError::NotFound { .. })
    ));

    // Devices and their owner.
    let dev = store
        .reenroll_device(
            &c,
            "dev1",
            NewChallenge {
                hash_hex: "cc".into(),
                profile_token_hash_hex: "dd".into(),
                expires_at: 5000,
            },
        )
        .await
        .unwrap();
    assert_eq!(dev.updated_at, 200);
    assert_eq!(store.peek_scep_challenge("aa", 250).await.unwrap(), None);
    assert_eq!(
        store
            .peek_scep_challenge("cc", 250)
            .await
            .unwrap()
            .as_deref(),
        Some("dev1")
    );
    store.add_challenge(&c, "dev1", "ee", 5000).await.unwrap();
    assert_eq!(
        store
            .list_devices(Some("ALICE@corp.example"))
            .await
            .unwrap()
            .len(),
        1
    );
    let (d, owner) = store.get_device_with_owner("dev1").await.unwrap().unwrap();
    assert_eq!(
        (d.uid.as_str(), owner.upn.as_str()),
        ("dev1", "alice@corp.example")
    );
    assert_eq!(owner.groups, ["sales"]);

    // SCEP enrollment with an unbound challenge, its transaction, OCSP states, CRL metadata.
    assert!(store
        .insert_unbound_challenge(
            &c,
            NewUnboundChallenge {
                hash_hex: "u1".into(),
                ca: Some("default".into()),
                expires_at: 900,
                max_live: 1
            },
        )
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .insert_unbound_challenge(
                &c,
                NewUnboundChallenge {
                    hash_hex: "u2".into(),
                    ca: None,
                    expires_at: 900,
                    max_live: 1
                },
            )
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store
            .insert_unbound_challenge(
                &c,
                NewUnboundChallenge {
                    hash_hex: "u3".into(),
                    ca: Some("nope".into()),
                    expires_at: 900,
                    max_live: 9
                },
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store
        .peek_unbound_challenge("u1", "default", 300)
        .await
        .unwrap());
    assert!(!store
        .peek_unbound_challenge("u1", "other", 300)
        .await
        .unwrap());
    let enrollment = |serial: &str, hash: &str| ScepEnrollment {
        challenge: Some(SpentChallenge::Unbound(hash.into())),
        certificate: cert(serial, 9000),
        supersedes: None,
        ca: "default".into(),
        transaction_id: "tx1".into(),
        key_sha256: format!("k{serial}"),
        detail: "test".into(),
    };
    assert!(store
        .record_scep_enrollment(&ctx(300), enrollment("0101", "u1"))
        .await
        .unwrap());
    assert!(!store
        .record_scep_enrollment(&ctx(301), enrollment("0102", "u1"))
        .await
        .unwrap());
    assert_eq!(
        store.get_scep_transaction("default", "tx1").await.unwrap(),
        Some(("k0101".to_string(), "0101".to_string()))
    );
    let mut renewal = enrollment("0103", "cc");
    renewal.challenge = Some(SpentChallenge::Device("cc".into()));
    renewal.supersedes = Some("0101".into());
    assert!(store
        .record_scep_enrollment(&ctx(302), renewal)
        .await
        .unwrap());
    assert_eq!(
        store.get_scep_transaction("default", "tx1").await.unwrap(),
        Some(("k0103".to_string(), "0103".to_string()))
    );
    let old = store.get_certificate("0101", 400).await.unwrap().unwrap();
    assert_eq!(old.revocation_reason.as_deref(), Some("superseded"));
    let mut states = store.certificate_states("default").await.unwrap();
    states.sort_by(|a, b| a.serial.cmp(&b.serial));
    assert_eq!(
        states
            .iter()
            .map(|s| (s.serial.as_str(), s.reason.as_deref()))
            .collect::<Vec<_>>(),
        [("0101", Some("superseded")), ("0103", None)]
    );
    let n = store.next_crl_number(&c, "default").await.unwrap();
    store
        .insert_crl(
            &c,
            NewCrl {
                ca: "default".into(),
                number: n,
                scope: CrlScope::Full,
                base_number: None,
                this_update: 1,
                next_update: 2,
                entries: 1,
                der: vec![1],
            },
        )
        .await
        .unwrap();
    let meta = store
        .latest_crl_meta("default", CrlScope::Full)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((meta.number, meta.entries), (n, 1));
    assert!(store
        .latest_crl_meta("default", CrlScope::Delta)
        .await
        .unwrap()
        .is_none());

    // Pages of devices and certificates.
    let page = |after: Option<String>| PageQuery { after, limit: 1 };
    let devices = store
        .page_devices(
            &DeviceFilter {
                user: Some("Alice@Corp.Example".into()),
                ..Default::default()
            },
            &page(None),
        )
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    let first = store
        .page_certificates(&all_certs(), &page(None))
        .await
        .unwrap();
    let second = store
        .page_certificates(&all_certs(), &page(Some(first[0].serial.clone())))
        .await
        .unwrap();
    assert_eq!(
        (first[0].serial.as_str(), second[0].serial.as_str()),
        ("0101", "0103")
    );
    let revoked = store
        .page_certificates(
            &CertPageFilter {
                status: Some(CertStatus::Revoked),
                user: Some("ALICE@corp.example".into()),
                ..all_certs()
            },
            &PageQuery {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);

    // Profiles.
    let profile = NewProfile {
        name: "ios-mail".into(),
        platform: "ios".into(),
        template: "phones".into(),
        eas_host: "mail.corp.example".into(),
        account_name: "Mail".into(),
        email: "{EmailAddress}".into(),
        username: "{UserPrincipalName}".into(),
        domain: None,
        delivery: "scep".into(),
        groups: vec!["SALES".into()],
    };
    store.insert_profile(&c, profile.clone()).await.unwrap();
    assert!(matches!(
        store.insert_profile(&c, profile.clone()).await,
        Err(StoreError::AlreadyExists { .. })
    ));
    assert!(matches!(
        store
            .insert_profile(
                &c,
                NewProfile {
                    name: "x".into(),
                    groups: vec!["nope".into()],
                    ..profile
                }
            )
            .await,
        Err(StoreError::NotFound { kind: "group", .. })
    ));
    assert_eq!(store.list_profiles().await.unwrap().len(), 1);
    assert_eq!(
        store.get_profile("ios-mail").await.unwrap().unwrap().groups,
        ["SALES"]
    );
    assert!(matches!(
        store.remove_group(&c, "sales").await,
        Err(StoreError::Conflict(_))
    ));
    store.remove_profile(&c, "ios-mail").await.unwrap();
    assert!(matches!(
        store.remove_profile(&c, "ios-mail").await,
        Err(StoreError::NotFound { .. })
    ));

    // Disabling with revocation, then removing the CA.
    let (user, serials) = store
        .set_user_disabled(
            &c,
            "ALICE@corp.example",
            true,
            Some(Revocation {
                reason: "affiliationChanged".into(),
                at: 500,
            }),
        )
        .await
        .unwrap();
    assert!(user.disabled);
    assert_eq!(serials, ["0103"]);
    store
        .set_ca_scep_ra_only(&c, "default", true)
        .await
        .unwrap();
    assert!(store.get_ca("default").await.unwrap().unwrap().scep_ra_only);
    assert!(matches!(
        store.set_ca_scep_ra_only(&c, "nope", true).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store.remove_ca(&ctx(600), "default", None).await.unwrap(),
        Vec::<String>::new()
    );
    assert!(store.get_ca("default").await.unwrap().is_none());
    assert!(store.list_cas().await.unwrap().is_empty());
    // The removed CA's row is kept under `NAME.removed-<t>`; neither SCEP switch reaches it.
    assert!(matches!(
        store
            .set_ca_scep_no_des(&c, "default.removed-600", true)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .set_ca_scep_ra_only(&c, "default.removed-600", true)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.remove_ca(&c, "default", None).await,
        Err(StoreError::NotFound { .. })
    ));
}

macro_rules! backend_suite {
    ($backend:ident: $($test:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some((guard, store)) = super::$backend(stringify!($test)).await else {
                        return;
                    };
                    super::$test(store).await;
                    guard.finish().await;
                }
            )*
        }
    };
}

backend_suite!(sqlite: a_ca_can_refuse_single_des, expiring_certificates_follow_the_window, profile_tokens_are_one_time_and_renewals_clear, scep_challenges_are_one_time_and_expire, crl_inputs_drop_expired_and_numbers_increase, change_feed_grows_by_one_per_change, concurrent_issuance_fails_only_the_bad_certificate, failed_changes_are_atomic, status_and_revocation, settings_and_groups, pages_follow_the_cursor_to_the_end, names_compare_case_insensitively, gateway_records_upsert_and_filter, partnership_policy_columns_follow_the_latest_sighting, eas_policies_keep_one_default_and_are_audited, wipes_move_from_pending_to_acknowledged, the_remaining_calls_behave_alike);
backend_suite!(postgres: a_ca_can_refuse_single_des, expiring_certificates_follow_the_window, profile_tokens_are_one_time_and_renewals_clear, scep_challenges_are_one_time_and_expire, crl_inputs_drop_expired_and_numbers_increase, change_feed_grows_by_one_per_change, concurrent_issuance_fails_only_the_bad_certificate, failed_changes_are_atomic, status_and_revocation, settings_and_groups, pages_follow_the_cursor_to_the_end, names_compare_case_insensitively, gateway_records_upsert_and_filter, partnership_policy_columns_follow_the_latest_sighting, eas_policies_keep_one_default_and_are_audited, wipes_move_from_pending_to_acknowledged, the_remaining_calls_behave_alike);

#[tokio::test]
async fn postgres_urls_open_the_postgres_backend_and_failures_hide_the_password() {
    // Nothing listens on port 1: the error names host and port, never the password.
    let err = open("postgres://easgate:secret@127.0.0.1:1/test")
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Connect { .. }), "{text}");
    assert!(text.contains("PostgreSQL at 127.0.0.1:1"), "{text}");
    assert!(!text.contains("secret"), "password leaked: {text}");
    assert!(open("postgresql://easgate:secret@127.0.0.1:1/test")
        .await
        .is_err());
    assert!(open("mysql://x").await.is_err());
}
