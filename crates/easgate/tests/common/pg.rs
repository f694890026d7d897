//! PostgreSQL for the binary's tests: a fresh schema on the server `EASGATE_TEST_POSTGRES_URL`
//! names (dropped when the guard goes), and a private PostgreSQL cluster of the test's own,
//! for tests that stop and start the database (the shared server must keep running).

use std::path::PathBuf;
use std::process::Command;

pub const VAR: &str = "EASGATE_TEST_POSTGRES_URL";

/// A schema on the shared test server, dropped on drop (best effort, through psql).
pub struct TestSchema {
    base: String,
    pub name: String,
    /// The database URL selecting the schema.
    pub url: String,
}

impl TestSchema {
    /// A fresh schema; `None` (after saying so) when no server is configured.
    pub fn fresh(test: &str) -> Option<Self> {
        let Ok(base) = std::env::var(VAR) else {
            println!("skipped {test}: {VAR} is not set");
            return None;
        };
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "easgate_e2e_{}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}schema={name}");
        Some(TestSchema { base, name, url })
    }
}

impl TestSchema {
    /// The answer of `sql` run in the schema with psql (trimmed; unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .arg(&self.base)
            .args([
                "-XAtqc",
                &format!("SET search_path TO {}; {sql}", self.name),
            ])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .arg(&self.base)
            .args([
                "-qc",
                &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
            ])
            .output();
    }
}

/// A PostgreSQL cluster of the test's own (Debian's server binaries, run as user `postgres`),
/// on a free loopback port, removed on drop.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl PrivateCluster {
    /// `None` (after saying why) where the server binaries or the `postgres` user are missing.
    pub fn start(test: &str) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists());
        let Some(bin) = bin else {
            println!("skipped {test}: no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let chown = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(chown.success(), "chown the cluster directory to postgres");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivateCluster { dir, bin, port };
        let out = cluster
            .as_postgres("initdb")
            .arg("-D")
            .arg(cluster.data())
            .args(["-A", "trust", "-U", "root", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        cluster.start_server();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, program: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"])
            .arg(self.bin.join(program));
        cmd
    }

    /// The URL of database `postgres` on it.
    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }

    /// Start (again) and wait until it accepts connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    /// Stop at once (`immediate`: as a crash would, no clean shutdown).
    pub fn stop_server(&self) {
        let out = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop: {out:?}");
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}
