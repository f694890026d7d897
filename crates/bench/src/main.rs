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

mod api_load;
mod crl_bench;
mod gateway_load;
mod ocsp_load;
mod upstream;

#[derive(Subcommand)]
enum Command {
    /// Make a full CRL with REVOKED entries and then a delta CRL with DELTA entries through the
    /// store (fresh SQLite database in DIR). Prints the time of each.
    Crl {
        #[arg(long, default_value_t = 1_000_000)]
        revoked: usize,
        #[arg(long, default_value_t = 1_000)]
        delta: usize,
        #[arg(long)]
        dir: PathBuf,
    },
    /// POST the OCSP request in FILE to URL over CONNECTIONS keep-alive connections for SECONDS.
    OcspLoad {
        #[arg(long)]
        url: String,
        #[arg(long)]
        request: PathBuf,
        #[arg(long, default_value_t = 16)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Write the 1 MB WBXML sample (a Sync response full of e-mails) to FILE.
    WbxmlSample {
        #[arg(long)]
        out: PathBuf,
    },
    /// Decode the WBXML document in FILE once (for whole-process timing against wbxml2xml).
    WbxmlDecode { file: PathBuf },
    /// Prepare an OCSP comparison in DIR: a data dir with CA `bench` and one issued certificate
    /// (cert.pem, ca.pem), plus what `openssl ocsp -port` needs to serve the same CA: ca.key
    /// (unsealed from the store) and index.txt listing the certificate.
    OcspSetup {
        #[arg(long)]
        dir: PathBuf,
        /// The public URL the server will have.
        #[arg(long)]
        public_url: String,
        /// Store URL (`postgres://…?schema=NAME`); default: SQLite in DIR/data.
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Load a mutual-TLS gateway (https://, with a client certificate) or its upstream directly
    /// (http://): new handshakes/s, keep-alive requests/s, latency at a fixed open-loop rate,
    /// or N held long-poll requests. Ends with a `RESULT k=v ...` line.
    GatewayLoad(gateway_load::Args),
    /// Enroll new devices and fetch each one's SCEP challenge through the admin API
    /// (`POST /api/v1/devices`, then `POST /api/v1/devices/{uid}/challenge`) over CONNECTIONS
    /// keep-alive connections for SECONDS. Prints pairs/s and pair latency.
    ApiEnroll(api_load::Args),
    /// A stand-in ActiveSync upstream: HTTP/1.1, 200 with a small body for everything, except
    /// `Cmd=Ping` requests, held for HOLD_SECS first. `GET /__stats` tells how many are held.
    Upstream {
        #[arg(long)]
        listen: std::net::SocketAddr,
        #[arg(long, default_value_t = 3600)]
        hold_secs: u64,
        /// Runtime worker threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Issue COUNT certificates from one CSR through the store (EC P-256 CA, fresh SQLite
    /// database in DIR, or the empty PostgreSQL schema of DATABASE_URL), CONCURRENCY issuances
    /// in flight. Each issuance is the full path of
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
        /// Store URL (`postgres://…?schema=NAME`, an empty schema); default: SQLite in DIR/data.
        #[arg(long)]
        database_url: Option<String>,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let rt = runtime(match &cli.command {
        Command::GatewayLoad(args) => args.threads,
        Command::Upstream { threads, .. } => *threads,
        _ => 2,
    })?;
    match cli.command {
        Command::GatewayLoad(args) => rt
            .block_on(gateway_load::run(args))
            .map_err(|e| e as Box<dyn std::error::Error>),
        Command::ApiEnroll(args) => rt
            .block_on(api_load::run(args))
            .map_err(|e| e as Box<dyn std::error::Error>),
        Command::Upstream {
            listen, hold_secs, ..
        } => rt
            .block_on(upstream::run(
                listen,
                std::time::Duration::from_secs(hold_secs),
            ))
            .map_err(|e| e as Box<dyn std::error::Error>),
        Command::Issuance {
            count,
            concurrency,
            dir,
            csr,
            database_url,
        } => rt.block_on(issuance(count, concurrency, dir, csr, database_url)),
        Command::Crl {
            revoked,
            delta,
            dir,
        } => rt.block_on(crl_bench::run(revoked, delta, &dir)),
        Command::OcspLoad {
            url,
            request,
            connections,
            seconds,
        } => rt
            .block_on(ocsp_load::run(&url, &request, connections, seconds))
            .map_err(|e| e as Box<dyn std::error::Error>),
        Command::OcspSetup {
            dir,
            public_url,
            database_url,
        } => rt.block_on(ocsp_setup(&dir, &public_url, database_url)),
        Command::WbxmlSample { out } => {
            let doc = easgate_activesync::sample::sync_response(1 << 20)?;
            std::fs::write(out, easgate_activesync::encode(&doc)?)?;
            Ok(())
        }
        Command::WbxmlDecode { file } => {
            let doc = easgate_activesync::decode(&std::fs::read(file)?)?;
            println!("{} elements below the root", doc.root().elements().count());
            Ok(())
        }
    }
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

/// A fresh data dir in `dir` (its store: SQLite there, or `database_url`) with CA `bench` (EC
/// P-256), default template `phones` (email and UPN SANs), user bench@corp.example and device
/// `bench1`.
async fn bench_setup(
    dir: &std::path::Path,
    public_url: &str,
    database_url: Option<String>,
) -> Result<Easgate, easgate_ops::OpsError> {
    let easgate = Easgate::open(OpenOptions {
        data_dir: dir.join("data"),
        database_url,
        public_url: Some(public_url.into()),
        master_key_env: None,
        actor: "bench".into(),
        create: true,
    })
    .await?;
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
    Ok(easgate)
}

async fn issuance(
    count: usize,
    concurrency: usize,
    dir: PathBuf,
    csr: PathBuf,
    database_url: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let csr = Arc::new(std::fs::read(csr)?);
    let easgate = Arc::new(bench_setup(&dir, "http://pki.bench.example:8080", database_url).await?);

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

async fn ocsp_setup(
    dir: &std::path::Path,
    public_url: &str,
    database_url: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let easgate = bench_setup(dir, public_url, database_url).await?;
    let issued = easgate
        .issue_certificate("phones", "bench1", KeySource::Generate)
        .await?;
    let pem = |der: &[u8]| easgate_pki::input::to_pem("CERTIFICATE", der);
    std::fs::write(dir.join("cert.pem"), pem(&issued.der))?;
    std::fs::write(dir.join("ca.pem"), pem(&issued.ca_der))?;
    let ca = easgate.load_ca("bench").await?;
    let key = easgate_pki::PrivateKey::from_pkcs8_der(ca.key_type(), &ca.key_pkcs8_der())?;
    std::fs::write(dir.join("ca.key"), key.pkcs8_pem())?;
    let expiry = time::OffsetDateTime::from_unix_timestamp(issued.record.not_after)?;
    let format = time::macros::format_description!(
        "[year repr:last_two][month][day][hour][minute][second]Z"
    );
    std::fs::write(
        dir.join("index.txt"),
        format!(
            "V\t{}\t\t{}\tunknown\t/CN=bench1\n",
            expiry.format(&format)?,
            issued.record.serial
        ),
    )?;
    Ok(())
}
