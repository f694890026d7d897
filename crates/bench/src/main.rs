//! Benchmark drivers for easgate. Run by `scripts/bench-*` (never by the test suite), which put
//! the figures next to those of the peer named in the issue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use easgate_ops::certs::KeySource;
use easgate_ops::templates::TemplateRequest;
use easgate_ops::{Easgate, OpenOptions};
use easgate_pki::KeyType;

#[derive(Parser)]
#[command(name = "easgate-bench", about = "easgate benchmark drivers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue COUNT certificates from one CSR through the store (EC P-256 CA, fresh SQLite
    /// database in DIR), CONCURRENCY issuances in flight. Each issuance is the full path of
    /// `cert issue`: template and device lookup, CSR verification, signing, recording with audit
    /// and change-feed rows. Prints `issued N in S s: R/s`.
    Issuance {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Empty directory for the data dir.
        #[arg(long)]
        dir: PathBuf,
        /// The CSR to issue from (PEM or DER).
        #[arg(long)]
        csr: PathBuf,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Issuance {
            count,
            concurrency,
            dir,
            csr,
        } => rt.block_on(issuance(count, concurrency, dir, csr)),
    }
}

async fn issuance(
    count: usize,
    concurrency: usize,
    dir: PathBuf,
    csr: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    let csr = Arc::new(std::fs::read(csr)?);
    let easgate = Arc::new(
        Easgate::open(OpenOptions {
            data_dir: dir.join("data"),
            database_url: None,
            public_url: Some("http://pki.bench.example:8080".into()),
            master_key_env: None,
            actor: "bench".into(),
        })
        .await?,
    );
    easgate
        .create_ca("bench", KeyType::EcP256, None, None)
        .await?;
    easgate
        .create_template(TemplateRequest {
            name: "phones".into(),
            ca: "bench".into(),
            subject: "CN={DeviceUid}".into(),
            sans: vec![
                "email:{EmailAddress}".into(),
                "upn:{UserPrincipalName}".into(),
            ],
            key_type: KeyType::EcP256,
            validity_days: None,
            renew_before_days: None,
            is_default: true,
        })
        .await?;
    easgate
        .add_user("bench@corp.example", "bench@corp.example", None, &[])
        .await?;
    easgate
        .enroll_device(
            "bench@corp.example",
            "ios",
            None,
            Some("bench1"),
            None,
            None,
        )
        .await?;

    let started = Instant::now();
    let per_task = count.div_ceil(concurrency.max(1));
    let mut tasks = Vec::new();
    for t in 0..concurrency.max(1) {
        let easgate = Arc::clone(&easgate);
        let csr = Arc::clone(&csr);
        let n = per_task.min(count.saturating_sub(t * per_task));
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                easgate
                    .issue_certificate("phones", "bench1", KeySource::Csr(&csr))
                    .await?;
            }
            Ok::<usize, easgate_ops::OpsError>(n)
        }));
    }
    let mut issued = 0;
    for task in tasks {
        issued += task.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "issued {issued} in {secs:.3} s: {:.0}/s",
        issued as f64 / secs
    );
    Ok(())
}
