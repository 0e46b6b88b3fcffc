//! A throwaway PostgreSQL from Debian's packages: initdb into a temporary folder, pg_ctl on a
//! free loopback port, as an unprivileged user when the tests run as root (PostgreSQL
//! refuses root). Password authentication, so the tests see that credentials are never
//! printed. Missing servers are installed by `tests/cluster/install-servers.sh`, never
//! skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const USER: &str = "pipwall";
pub const PASSWORD: &str = "pw-Secret-7d1e";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// Server options beyond the port, socket and address (TLS).
    extra: String,
}

/// The newest `/usr/lib/postgresql/N/bin`, installing the packages first if there is none.
fn bin_dir() -> PathBuf {
    let find = || {
        let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, b)| b)
    };
    if let Some(b) = find() {
        return b;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cluster/install-servers.sh");
    let ok = Command::new("bash")
        .arg(&script)
        .status()
        .map(|s| s.success());
    assert!(
        matches!(ok, Ok(true)),
        "PostgreSQL is not installed and {} could not install it",
        script.display()
    );
    find().expect("PostgreSQL installed, but no initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// A command run as `nobody` when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// A new server, running and ready, with a database `pipwall`.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("pipwall-pg")
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("pw"), PASSWORD).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot give the database folder to nobody");
        }
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", USER, "-E", "UTF8", "--no-instructions"])
            .args(["--auth=scram-sha-256"])
            .arg(format!("--pwfile={}", dir.path().join("pw").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let me = Self {
            dir,
            bin,
            port: free_port(),
            extra: String::new(),
        };
        me.start_again();
        me.psql_on("postgres", "CREATE DATABASE pipwall");
        me
    }

    /// A server that takes TLS connections only, with a certificate for 127.0.0.1 from a CA
    /// made for it (by `pipwall certs init`); returns it and the CA's PEM file.
    pub fn start_tls_only() -> (Self, PathBuf) {
        let mut me = Self::start();
        me.stop();
        let certs = me.dir.path().join("certs");
        let out = Command::new(env!("CARGO_BIN_EXE_pipwall"))
            .args(["certs", "init", "--name", "127.0.0.1"])
            .arg(&certs)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&certs)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let hba = me.dir.path().join("data/pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        me.extra = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            certs.join("server.pem").display(),
            certs.join("server-key.pem").display()
        );
        me.start_again();
        (me, certs.join("ca.pem"))
    }

    /// Starts the server (again, on the same port and data) and waits until it accepts.
    pub fn start_again(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200{}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let out = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-o", &opts, "-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Stops the server at once (connections are cut, as when a database host fails).
    pub fn stop(&self) {
        let _ = as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// The connection string pipwall is given.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/pipwall",
            self.port
        )
    }

    /// Runs `sql` in the pipwall database; its rows, one per line, fields split by `|`.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("pipwall", sql)
    }

    fn psql_on(&self, db: &str, sql: &str) -> String {
        psql_at(&self.bin.join("psql"), self.port, PASSWORD, db, sql)
    }
}

/// Runs `sql` with `psql` as user pipwall on 127.0.0.1:`port`; its rows, one per line, fields
/// split by `|`. Panics with psql's message when it fails.
pub fn psql_at(psql: &Path, port: u16, password: &str, db: &str, sql: &str) -> String {
    let out = Command::new(psql)
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", "prefer")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            USER,
            "-d",
            db,
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-p", &port.to_string(), "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
