//! PostgreSQL-specific guarantees: two stores (standing for two processes) on one schema at
//! once — migrations that don't collide, serials recorded once, CRL numbers strictly
//! increasing — plus connection errors. Runs when `EASGATE_TEST_POSTGRES_URL` names a server
//! (`scripts/test` sets it); each test works in a fresh schema of its own, dropped at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};

use easgate_store::*;

const VAR: &str = "EASGATE_TEST_POSTGRES_URL";

/// A fresh schema on the test server: (URL selecting it, schema name); `None` (after saying
/// why on one line) when no server is configured.
fn test_url(test: &str) -> Option<(String, String)> {
    let Ok(base) = std::env::var(VAR) else {
        println!("skipped {test} on PostgreSQL: {VAR} is not set");
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!(
        "easgate_test_{}_{nanos}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let sep = if base.contains('?') { '&' } else { '?' };
    Some((format!("{base}{sep}schema={schema}"), schema))
}

/// Drop a test schema (best effort).
async fn drop_schema(schema: &str) {
    use sqlx::Connection;
    let Ok(base) = std::env::var(VAR) else { return };
    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

fn ctx(now: i64) -> Ctx {
    Ctx {
        actor: "test".into(),
        now,
    }
}

fn ca() -> NewCa {
    NewCa {
        name: "default".into(),
        key_type: "ec-p256".into(),
        subject: "CN=Test".into(),
        cert_der: vec![1, 2, 3],
        key_sealed: vec![9, 9, 9],
        not_before: 0,
        not_after: 10_000,
        scep_no_des: false,
    }
}

fn cert(serial: &str) -> NewCertificate {
    NewCertificate {
        serial: serial.into(),
        ca: "default".into(),
        device: None,
        template: None,
        subject: format!("CN={serial}"),
        sans: vec![],
        key_type: "EC P-256".into(),
        not_before: 0,
        not_after: 5_000,
        der: vec![0x30, 0x00],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_open_one_schema_at_once_and_migrate_once() {
    let Some((url, schema)) = test_url("two_stores_open_one_schema_at_once") else {
        return;
    };
    let (a, b) = tokio::join!(PgStore::open(&url), PgStore::open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.schema_version().await.unwrap(),
        PgStore::latest_schema_version()
    );
    // Opening again applies nothing twice.
    let c = PgStore::open(&url).await.unwrap();
    assert_eq!(
        c.schema_version().await.unwrap(),
        PgStore::latest_schema_version()
    );
    // The schema is shared: a change through one is seen by the other.
    a.set_setting(&ctx(1), "k", "v").await.unwrap();
    assert_eq!(b.get_setting("k").await.unwrap().as_deref(), Some("v"));
    assert_eq!(b.revision().await.unwrap(), 1);
    drop((a, b, c));
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issuance_from_two_stores_records_each_serial_once() {
    let Some((url, schema)) = test_url("concurrent_issuance_from_two_stores") else {
        return;
    };
    let a = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    let b = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    a.insert_ca(&ctx(1), ca()).await.unwrap();
    // Both stores try the same 40 serials at once: each is recorded by exactly one of them and
    // refused as `AlreadyExists` by the other.
    let mut tasks = Vec::new();
    for i in 0..40 {
        for store in [a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                store
                    .insert_certificate(&ctx(2), cert(&format!("{i:04X}")))
                    .await
            }));
        }
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(StoreError::AlreadyExists { kind, .. }) => assert_eq!(kind, "certificate serial"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 40);
    // One cert.issue change per serial, the feed gap-free and in order.
    let changes = b.changes_since(0, 1000).await.unwrap();
    let revisions: Vec<i64> = changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (1..=41).collect::<Vec<_>>());
    let serials: HashSet<&str> = changes
        .iter()
        .filter(|c| c.entity == "certificate")
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(serials.len(), 40);
    drop((a, b));
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_issuance_with_one_duplicate_fails_only_the_duplicate() {
    let Some((url, schema)) = test_url("concurrent_issuance_with_one_duplicate") else {
        return;
    };
    let store = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    store.insert_ca(&ctx(1), ca()).await.unwrap();
    // 300 distinct serials, one of them asked for twice, and one certificate of a CA that does
    // not exist, all at once: they are recorded in shared transactions (group commit), and
    // only the duplicate and the unknown CA fail, each with its own error.
    let mut calls: Vec<NewCertificate> = (0..300).map(|i| cert(&format!("{i:04X}"))).collect();
    calls.insert(150, cert("0007"));
    calls.push(NewCertificate {
        ca: "nope".into(),
        ..cert("FFFF")
    });
    let tasks: Vec<_> = calls
        .into_iter()
        .enumerate()
        .map(|(n, c)| {
            let store = store.clone();
            tokio::spawn(async move {
                (
                    c.serial.clone(),
                    store.insert_certificate(&ctx(10 + n as i64), c).await,
                )
            })
        })
        .collect();
    let (mut ok, mut duplicates, mut missing) = (0, Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            (_, Ok(())) => ok += 1,
            (serial, Err(StoreError::AlreadyExists { kind, key })) => {
                assert_eq!(
                    (kind, key.as_str()),
                    ("certificate serial", serial.as_str())
                );
                duplicates.push(serial);
            }
            (serial, Err(StoreError::NotFound { kind, key })) => {
                assert_eq!((kind, key.as_str()), ("CA", "nope"));
                missing.push(serial);
            }
            (_, Err(e)) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(ok, 300);
    assert_eq!(duplicates, ["0007"]);
    assert_eq!(missing, ["FFFF"]);
    // Every certificate recorded once, with one cert.issue event and one change row; the feed
    // gap-free and strictly increasing.
    let want: HashSet<String> = (0..300).map(|i| format!("{i:04X}")).collect();
    for serial in ["0000", "0007", "012B"] {
        let got = store.get_certificate(serial, 0).await.unwrap().unwrap();
        assert_eq!(got.subject, format!("CN={serial}"));
    }
    assert!(store.get_certificate("FFFF", 0).await.unwrap().is_none());
    let changes = store.changes_since(0, 1000).await.unwrap();
    let revisions: Vec<i64> = changes.iter().map(|c| c.revision).collect();
    assert_eq!(revisions, (1..=301).collect::<Vec<_>>());
    let changed: Vec<&str> = changes
        .iter()
        .filter(|c| c.entity == "certificate")
        .map(|c| c.key.as_str())
        .collect();
    assert_eq!(changed.len(), 300);
    assert_eq!(
        changed
            .iter()
            .map(|s| s.to_string())
            .collect::<HashSet<_>>(),
        want
    );
    let issued: Vec<String> = store
        .list_audit(0)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "cert.issue")
        .map(|e| e.target)
        .collect();
    // Audit events in the feed's order, each certificate once.
    let feed_order: Vec<String> = changed.iter().map(|s| format!("certificate:{s}")).collect();
    assert_eq!(issued, feed_order);
    drop(store);
    drop_schema(&schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_crl_numbers_from_two_stores_are_distinct_and_increasing() {
    let Some((url, schema)) = test_url("concurrent_crl_numbers_from_two_stores") else {
        return;
    };
    let a = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    let b = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    a.insert_ca(&ctx(1), ca()).await.unwrap();
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone()] {
        tasks.push(tokio::spawn(async move {
            let mut taken = Vec::new();
            for _ in 0..25 {
                taken.push(store.next_crl_number(&ctx(3), "default").await.unwrap());
            }
            taken
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let taken = t.await.unwrap();
        // Each caller sees its own numbers strictly increasing.
        assert!(taken.windows(2).all(|w| w[0] < w[1]), "{taken:?}");
        all.extend(taken);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=50).collect::<Vec<_>>());
    assert_eq!(a.next_crl_number(&ctx(4), "default").await.unwrap(), 51);
    assert!(matches!(
        a.next_crl_number(&ctx(4), "nope").await,
        Err(StoreError::NotFound { .. })
    ));
    drop((a, b));
    drop_schema(&schema).await;
}

#[tokio::test]
async fn a_connection_failure_names_host_port_and_hides_the_password() {
    // Port 1 on loopback: nothing listens there.
    let e = PgStore::open("postgres://u:hunter2@127.0.0.1:1/db")
        .await
        .err()
        .expect("no server there");
    let text = e.to_string();
    assert!(matches!(e, StoreError::Connect { .. }), "{text}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
    assert!(text.contains("u:***@"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

/// A change committed through one store wakes another store's waiter at once (LISTEN/NOTIFY),
/// long before the waiter's poll cap; and a waiter with nothing new times out by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_store_wakes_the_other_at_once() {
    let Some((url, schema)) = test_url("a_change_wakes_the_other") else {
        return;
    };
    let a = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    let b = std::sync::Arc::new(PgStore::open(&url).await.unwrap());
    // The first wait starts listening (and counts as a wake-up: it may have missed changes).
    b.wait_for_changes(std::time::Duration::from_secs(5)).await;
    let cap = std::time::Duration::from_secs(60);
    for round in 0..3 {
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                b.wait_for_changes(cap).await;
                started.elapsed()
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        a.set_setting(&ctx(round), "k", &round.to_string())
            .await
            .unwrap();
        let waited = waiter.await.unwrap();
        assert!(
            waited < cap / 2,
            "round {round}: the waiter slept {waited:?}, i.e. was not notified"
        );
        assert_eq!(b.revision().await.unwrap(), round + 1);
    }
    drop((a, b));
    drop_schema(&schema).await;
}

/// One holder of a lease at a time across stores; it passes to another store when the holder
/// ends (its connection closes), as when an instance is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_and_passes_on_when_it_ends() {
    let Some((url, schema)) = test_url("a_lease_has_one_holder") else {
        return;
    };
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    assert!(a.hold_lease("crl-leader").await.unwrap());
    assert!(!b.hold_lease("crl-leader").await.unwrap());
    // Renewing keeps it; other leases are independent.
    assert!(a.hold_lease("crl-leader").await.unwrap());
    assert!(b.hold_lease("other").await.unwrap());
    assert!(!a.hold_lease("other").await.unwrap());
    drop(a);
    let mut taken = false;
    for _ in 0..100 {
        if b.hold_lease("crl-leader").await.unwrap() {
            taken = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(taken, "the lease did not pass on after its holder ended");
    drop(b);
    drop_schema(&schema).await;
}

/// A SCEP transaction recorded through one store is found through another: a client that
/// retries against a second instance gets the same certificate back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scep_transaction_recorded_by_one_store_is_found_by_another() {
    let Some((url, schema)) = test_url("a_scep_transaction_is_shared") else {
        return;
    };
    let a = PgStore::open(&url).await.unwrap();
    let b = PgStore::open(&url).await.unwrap();
    a.insert_ca(&ctx(1), ca()).await.unwrap();
    let recorded = a
        .record_scep_enrollment(
            &ctx(2),
            ScepEnrollment {
                challenge: None,
                certificate: cert("5CE9"),
                supersedes: None,
                ca: "default".into(),
                transaction_id: "tx-1".into(),
                key_sha256: "ab".repeat(32),
                detail: "test".into(),
            },
        )
        .await
        .unwrap();
    assert!(recorded);
    let found = b.get_scep_transaction("default", "tx-1").await.unwrap();
    assert_eq!(found, Some(("ab".repeat(32), "5CE9".to_string())));
    assert!(b
        .get_scep_transaction("default", "tx-2")
        .await
        .unwrap()
        .is_none());
    drop((a, b));
    drop_schema(&schema).await;
}
