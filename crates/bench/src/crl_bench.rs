//! CRL generation at scale: N revoked certificates put straight into a fresh SQLite store
//! (bulk insert: setting up the data is not what is measured), then a full CRL and a delta CRL
//! made through the same code path `serve` and `crl generate` use.

use std::path::Path;
use std::time::Instant;

use easgate_ops::crl::{DELTA_CRL_VALIDITY, FULL_CRL_VALIDITY};
use easgate_ops::{Easgate, OpenOptions};
use easgate_pki::KeyType;

type BoxError = Box<dyn std::error::Error>;

/// Insert `count` revoked certificates of CA `ca` revoked at `revoked_at`.
fn bulk_revoked(
    db: &Path,
    ca: &str,
    count: usize,
    revoked_at: i64,
    seed: u64,
) -> Result<(), BoxError> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let tx = conn.transaction()?;
    let ca_id: i64 = tx.query_row("SELECT id FROM cas WHERE name = ?1", [ca], |r| r.get(0))?;
    {
        let mut stmt = tx.prepare(
            "INSERT INTO certificates (serial, ca_id, subject, sans, key_type, not_before, not_after, der, status, revoked_at, revocation_reason, issued_at) \
             VALUES (?1, ?2, 'CN=bench', '[]', 'EC P-256', 0, 4102444800, x'3000', 'revoked', ?3, ?4, 0)",
        )?;
        let reasons = [
            "keyCompromise",
            "superseded",
            "cessationOfOperation",
            "affiliationChanged",
            "unspecified",
        ];
        let mut x = seed;
        for i in 0..count {
            // xorshift: distinct-looking 16-byte serials, unique by the counter in the low bits.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let serial = format!(
                "{:016X}{:016X}",
                (x | 0x4000_0000_0000_0000) & 0x7FFF_FFFF_FFFF_FFFF,
                i as u64 ^ seed
            );
            stmt.execute(rusqlite::params![
                serial,
                ca_id,
                revoked_at,
                reasons[i % reasons.len()]
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub async fn run(revoked: usize, delta: usize, dir: &Path) -> Result<(), BoxError> {
    let data = dir.join("data");
    let easgate = Easgate::open(OpenOptions {
        data_dir: data.clone(),
        database_url: None,
        public_url: Some("http://pki.bench.example:8080".into()),
        master_key_env: None,
        actor: "bench".into(),
        create: true,
    })
    .await?;
    easgate
        .create_ca("bench", KeyType::EcP256, None, None)
        .await?;
    let now = easgate.now().unix_timestamp();
    let t = Instant::now();
    bulk_revoked(
        &data.join("easgate.db"),
        "bench",
        revoked,
        now - 60,
        0x9E37_79B9_7F4A_7C15,
    )?;
    eprintln!(
        "setup: {revoked} revoked certificates inserted in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let full = easgate
        .generate_full_crl("bench", FULL_CRL_VALIDITY)
        .await?;
    let full_secs = t.elapsed().as_secs_f64();
    println!(
        "full CRL: {} entries, {:.1} MB, number {}, made in {full_secs:.3} s",
        full.entries,
        full.der.len() as f64 / 1e6,
        full.number
    );

    bulk_revoked(
        &data.join("easgate.db"),
        "bench",
        delta,
        full.this_update + 1,
        0xD1B5_4A32_D192_ED03,
    )?;
    let t = Instant::now();
    let d = easgate
        .generate_delta_crl("bench", DELTA_CRL_VALIDITY)
        .await?;
    let delta_secs = t.elapsed().as_secs_f64();
    println!(
        "delta CRL: {} entries, {:.1} kB, base {}, made in {delta_secs:.3} s",
        d.entries,
        d.der.len() as f64 / 1e3,
        d.base_number.unwrap_or_default()
    );
    std::fs::write(dir.join("full.crl"), &full.der)?;
    std::fs::write(dir.join("delta.crl"), &d.der)?;
    Ok(())
}
