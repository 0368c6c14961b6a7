//! [`TestCluster`]: a throwaway PostgreSQL server in a temporary directory, reachable
//! only through a Unix socket in that directory (no TCP port to clash over).
//!
//! PostgreSQL refuses to run as root, so as root `initdb`, `pg_ctl` and the server run
//! as the `postgres` system user (`runuser -u postgres --`) in a directory it owns.
//! A watchdog process (`sh`) waits for end-of-file on a pipe that only this process
//! holds open; when this process exits in any way, even killed, the pipe closes and the
//! watchdog stops the server and deletes the directory: no orphaned servers.
//!
//! [`TestCluster::start_standby`] adds a streaming hot standby of a cluster: a copy made
//! by `pg_basebackup -R` (which writes the primary's address into the copy) through a
//! replication slot, running in a directory and on a socket of its own.
//!
//! [`TestCluster::start_tls`] starts one that also listens on loopback TCP and accepts
//! only TLS connections there, with a certificate the caller made (for testing
//! `sslmode=require` and `verify-full`).
//!
//! The server's own databases are made by their users (the PostgreSQL store's testkit
//! hands out fresh migrated ones); [`TestCluster::create_database`] makes an empty one
//! with `createdb`, for the `pg-cluster` program.

use crate::ports::try_free_port;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

/// The socket's port number: it only names the socket file, as nothing listens on TCP.
const PORT: u16 = 5432;

/// Why a throwaway server could not be started. Its message says how to fix it.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot start a throwaway PostgreSQL for the tests: {0}. \
     Fix: install the server (Debian: `apt-get install postgresql`; as root the tests run it \
     as the `postgres` user through `runuser`, from util-linux), or set \
     MINITWIT_TEST_DATABASE_URL to a server where this user may CREATE DATABASE"
)]
pub struct ClusterError(String);

impl ClusterError {
    fn io(what: &str, err: io::Error) -> Self {
        Self(format!("{what}: {err}"))
    }
}

/// A running throwaway PostgreSQL server, superuser `postgres` without password.
/// Dropping it stops the server and deletes its files.
#[derive(Debug)]
pub struct TestCluster {
    root: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
    watchdog: Option<(Child, ChildStdin)>,
}

/// A certificate and key for a TLS-only test server.
#[derive(Debug, Clone, Copy)]
pub struct ServerCertificate<'a> {
    /// The certificate (PEM), with the names clients will check.
    pub cert: &'a Path,
    /// Its private key (PEM).
    pub key: &'a Path,
}

impl TestCluster {
    /// Starts a server tuned for tests: `fsync` and synchronous commit are off, so a
    /// crash of the machine could lose data, which a test does not mind.
    pub fn start() -> Result<Self, ClusterError> {
        Self::start_with(false)
    }

    /// Starts a server that makes commits durable as production does (for benchmarks).
    pub fn start_durable() -> Result<Self, ClusterError> {
        Self::start_with(true)
    }

    /// Starts a test server that also listens on 127.0.0.1 ([`TestCluster::port`]),
    /// where it refuses connections without TLS and presents `certificate`.
    pub fn start_tls(certificate: ServerCertificate<'_>) -> Result<Self, ClusterError> {
        let mut cluster = Self::prepare()?;
        cluster.port = try_free_port().map_err(|e| ClusterError::io("finding a free port", e))?;
        cluster.initialise(false, Some(certificate))?;
        Ok(cluster)
    }

    fn start_with(durable: bool) -> Result<Self, ClusterError> {
        let cluster = Self::prepare()?;
        cluster.initialise(durable, None)?;
        Ok(cluster)
    }

    /// Creates the cluster, configures and starts it.
    fn initialise(
        &self,
        durable: bool,
        tls: Option<ServerCertificate<'_>>,
    ) -> Result<(), ClusterError> {
        let data = self.data_dir();
        let mut initdb = self.command("initdb");
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "-A", "trust", "-E", "UTF8"]);
        run(initdb.args(["--locale=C", "--no-sync", "--no-instructions"]), "initdb")?;
        self.configure(durable)?;
        if let Some(certificate) = tls {
            self.configure_tls(certificate)?;
        }
        self.resume()
    }

    /// Starts a hot standby of this server, streaming its WAL through a replication slot
    /// (so the primary keeps the WAL a stopped standby still needs). It has the
    /// primary's settings, on a socket of its own.
    ///
    /// The copy starts with a fast checkpoint: the default spreads the checkpoint's
    /// writes over most of `checkpoint_timeout`, which after a `CREATE DATABASE` on the
    /// primary made the copy wait for a minute and a half.
    pub fn start_standby(&self) -> Result<Self, ClusterError> {
        let standby = Self::prepare()?;
        let slot = standby.slot_name();
        let mut backup = standby.command("pg_basebackup");
        backup.arg("-D").arg(standby.data_dir()).arg("-h").arg(&self.root);
        backup.args(["-p", &self.port.to_string(), "-U", "postgres", "-R", "-X", "stream", "-N"]);
        run(backup.args(["-C", "-S", &slot, "-c", "fast"]), "pg_basebackup")?;
        standby.append_settings(&standby.socket_settings())?;
        standby.resume()?;
        Ok(standby)
    }

    /// Delays the replay of each commit on this standby by `delay` (PostgreSQL's
    /// `recovery_min_apply_delay`), from now on; zero replays at once again.
    pub fn set_apply_delay(&self, delay: std::time::Duration) -> Result<(), ClusterError> {
        self.append_settings(&format!("recovery_min_apply_delay = '{}ms'\n", delay.as_millis()))?;
        let mut reload = self.command("pg_ctl");
        run(reload.arg("reload").arg("-D").arg(self.data_dir()), "pg_ctl reload")
    }

    /// A replication slot name unique to this server's directory.
    fn slot_name(&self) -> String {
        let name = self.root.file_name().unwrap_or_default().to_string_lossy();
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
            .collect()
    }

    /// A new directory owned by the server's user, watched by a watchdog.
    fn prepare() -> Result<Self, ClusterError> {
        let bin = find_binaries()?;
        let root = tempfile::Builder::new()
            .prefix("minitwit-pg-")
            .tempdir_in("/tmp")
            .map_err(|e| ClusterError::io("creating a directory in /tmp", e))?
            .keep();
        let mut cluster =
            Self { root, bin, as_postgres: running_as_root(), port: PORT, watchdog: None };
        if cluster.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&cluster.root), "chown")?;
        }
        cluster.watchdog = Some(cluster.spawn_watchdog()?);
        Ok(cluster)
    }

    /// Creates the database `name` (a plain identifier, as `createdb` takes it) and
    /// returns its connection URL.
    pub fn create_database(&self, name: &str) -> Result<String, ClusterError> {
        let mut createdb = self.command("createdb");
        createdb.arg("-h").arg(&self.root).args(["-p", &self.port.to_string(), "-U", "postgres"]);
        run(createdb.arg("--").arg(name), "createdb")?;
        Ok(self.url(name))
    }

    /// A connection URL for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        let root = self.root.display();
        format!("postgres://postgres@localhost:{}/{database}?host={root}", self.port)
    }

    /// The port: it names the socket file, and TLS servers ([`TestCluster::start_tls`])
    /// listen on it on 127.0.0.1 too.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: open connections are cut). For outage tests.
    pub fn stop(&self) -> Result<(), ClusterError> {
        let mut stop = self.command("pg_ctl");
        run(
            stop.arg("stop").arg("-D").arg(self.data_dir()).args(["-m", "fast", "-w"]),
            "pg_ctl stop",
        )
    }

    /// Kills the server with SIGKILL, the postmaster and then every backend it had, as a
    /// crash would; [`TestCluster::resume`] starts it again (with crash recovery). For
    /// fault tests.
    pub fn kill(&self) -> Result<(), ClusterError> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let pids = std::fs::read_to_string(&pid_file)
            .map_err(|e| ClusterError::io("reading postmaster.pid", e))?;
        let postmaster = pids.lines().next().unwrap_or_default().trim().to_owned();
        let children_file = format!("/proc/{postmaster}/task/{postmaster}/children");
        let children = std::fs::read_to_string(children_file).unwrap_or_default();
        let mut kill = Command::new("kill");
        kill.arg("-KILL").arg(&postmaster).args(children.split_whitespace());
        run(&mut kill, "kill -KILL")?;
        // pg_ctl start refuses while the old postmaster.pid names a live process (a
        // zombie waiting to be reaped is dead enough).
        for _ in 0..500 {
            let stat = std::fs::read_to_string(format!("/proc/{postmaster}/stat"));
            if stat.map_or(true, |stat| stat.contains(") Z ")) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Err(ClusterError(format!("the killed postmaster {postmaster} does not go away")))
    }

    /// Starts the server again after [`TestCluster::stop`].
    pub fn resume(&self) -> Result<(), ClusterError> {
        let mut start = self.command("pg_ctl");
        start.arg("start").arg("-D").arg(self.data_dir()).args(["-w", "-t", "60", "-l"]);
        run(start.arg(self.root.join("server.log")), "pg_ctl start")
    }

    fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// A command running PostgreSQL's `program`, as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    /// Socket only, in our directory; the test settings appended to `postgresql.conf`.
    fn configure(&self, durable: bool) -> Result<(), ClusterError> {
        let mut settings = self.socket_settings();
        settings.push_str("max_connections = 200\n");
        if !durable {
            settings.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        self.append_settings(&settings)
    }

    /// Listening on our socket only (a later line overrides a copied earlier one).
    fn socket_settings(&self) -> String {
        format!(
            "\nlisten_addresses = ''\nunix_socket_directories = '{}'\nport = {}\n",
            self.root.display(),
            self.port
        )
    }

    fn append_settings(&self, settings: &str) -> Result<(), ClusterError> {
        let conf = self.data_dir().join("postgresql.conf");
        let mut current = std::fs::read_to_string(&conf)
            .map_err(|e| ClusterError::io("reading postgresql.conf", e))?;
        current.push_str(settings);
        std::fs::write(&conf, current).map_err(|e| ClusterError::io("writing postgresql.conf", e))
    }

    /// Loopback TCP with TLS only: the certificate in the data directory, and
    /// `pg_hba.conf` rejecting TCP connections without TLS before anything else.
    fn configure_tls(&self, certificate: ServerCertificate<'_>) -> Result<(), ClusterError> {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data_dir();
        for (from, name) in [(certificate.cert, "server.crt"), (certificate.key, "server.key")] {
            let to = data.join(name);
            std::fs::copy(from, &to).map_err(|e| ClusterError::io("copying the certificate", e))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| ClusterError::io("restricting the key", e))?;
            if self.as_postgres {
                run(Command::new("chown").arg("postgres:").arg(&to), "chown")?;
            }
        }
        self.append_settings(
            "listen_addresses = '127.0.0.1'\nssl = on\n\
             ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
        )?;
        let hba = data.join("pg_hba.conf");
        let current = std::fs::read_to_string(&hba)
            .map_err(|e| ClusterError::io("reading pg_hba.conf", e))?;
        std::fs::write(&hba, format!("hostnossl all all all reject\n{current}"))
            .map_err(|e| ClusterError::io("writing pg_hba.conf", e))
    }

    /// Starts the watchdog: it blocks reading its stdin, which only we hold open.
    fn spawn_watchdog(&self) -> Result<(Child, ChildStdin), ClusterError> {
        let stop = self.command("pg_ctl");
        let mut watchdog = Command::new("sh");
        watchdog
            .arg("-c")
            .arg(r#"root="$1"; shift; cat >/dev/null; "$@" >/dev/null 2>&1; rm -rf "$root""#)
            .arg("minitwit-pg-watchdog")
            .arg(&self.root)
            .arg(stop.get_program())
            .args(stop.get_args())
            .arg("stop")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", "immediate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // Its own process group: a Ctrl-C aimed at the tests must not kill it first.
        std::os::unix::process::CommandExt::process_group(&mut watchdog, 0);
        let mut child = watchdog.spawn().map_err(|e| ClusterError::io("starting sh", e))?;
        let stdin = child.stdin.take().ok_or_else(|| ClusterError("no pipe to sh".into()))?;
        Ok((child, stdin))
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            // Waiting makes "dropped" mean "stopped"; an error leaves nothing to do.
            let _ = child.wait();
        }
    }
}

/// Runs `command` to completion; its output becomes the error if it fails.
fn run(command: &mut Command, what: &str) -> Result<(), ClusterError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ClusterError::io(&format!("running {what}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(ClusterError(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// The directory holding `initdb` and `pg_ctl`: on `PATH`, or the newest
/// `/usr/lib/postgresql/*/bin` (Debian keeps them off `PATH`).
fn find_binaries() -> Result<PathBuf, ClusterError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    // Through symlinks (such as /usr/local/bin/initdb) to the directory that also holds
    // the other programs (pg_basebackup).
    let on_path = std::env::split_paths(&path).find(|dir| has_binaries(dir)).map(|dir| {
        let real = std::fs::canonicalize(dir.join("initdb")).ok();
        real.and_then(|initdb| initdb.parent().map(Path::to_path_buf)).unwrap_or(dir)
    });
    let debian = std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten();
    let mut versions: Vec<(u32, PathBuf)> = debian
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_binaries(bin))
        .collect();
    versions.sort();
    on_path.or_else(|| versions.pop().map(|(_, bin)| bin)).ok_or_else(|| {
        ClusterError(
            "initdb, pg_ctl and pg_basebackup are neither on PATH nor in /usr/lib/postgresql/*/bin"
                .into(),
        )
    })
}

/// Whether `dir` holds every server program the testkit runs (a `PATH` directory with
/// links to only some of them, e.g. `/usr/local/bin`, is passed over).
fn has_binaries(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "pg_basebackup"].iter().all(|program| dir.join(program).is_file())
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
