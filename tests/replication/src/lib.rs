//! Multi-instance test harness for the `crdt` extension.
//!
//! Starts throwaway PostgreSQL clusters (15, 16, 17 or 18; one mesh may mix majors) on loopback
//! ports (as the `postgres` user, since PostgreSQL refuses to run as root), joins them with PostgreSQL's own logical replication
//! (publications and subscriptions, in one or both directions), and offers what tests need to
//! drive and check them: SQL through `psql`, partitions (`ALTER SUBSCRIPTION ... DISABLE/ENABLE`),
//! crashes (`pg_ctl stop -m immediate`), waiting for replication to go idle, snapshots to compare
//! nodes and a scan of the server logs for errors.
//!
//! No database client crate: every statement goes through
//! `psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p PORT -U postgres -d DB`.
//!
//! Every [`Cluster`] stops its server and removes its directory when dropped, including while a
//! test panics. Environment variables:
//! - `CRDT_KEEP_CLUSTERS=1`: keep the directory (data and `server.log`) of clusters dropped
//!   during a panic; `CRDT_KEEP_CLUSTERS=always`: keep every directory. The server is stopped
//!   either way; the kept path is printed on stderr.
//! - `CRDT_PG_MAJOR`: the major [`Cluster::start`] runs (default 15); its binaries are those of
//!   [`pg_bin_of_major`]. `CRDT_PG_BIN` overrides that directory.
//! - `CRDT_PG_BIN_<major>`: the binaries of one major (default Debian's directory for 15,
//!   `/opt/postgresql/<major>/bin` for the others, where `scripts/lib.sh` unpacks them).
//! - `CRDT_REPLICATION_TIMEOUT_SECS`: default timeout of [`wait_for_replication_idle`]
//!   (default 60).
//! - `CRDT_LOG_MIN_MESSAGES`: the servers' `log_min_messages` (default `warning`).
//!
//! Directories are `/tmp/crdt-repl.<pid>.<n>.<name>`; the first `Cluster::start` of a process
//! stops and removes those of test processes that no longer exist (killed before `Drop` ran),
//! except directories kept on purpose.
//!
//! Behaviours of PostgreSQL 15's apply workers the helpers account for:
//! - an apply worker notices `ALTER SUBSCRIPTION ... DISABLE` only at its next loop iteration
//!   (up to about a second) and applies changes until then: [`disable_subscriptions`] waits for
//!   the workers to exit;
//! - the launcher starts workers at most once per `wal_retrieve_retry_interval` (5 s by default,
//!   for all subscriptions together), also after `ENABLE` and after an apply error: the clusters
//!   run with 200 ms;
//! - an apply error (e.g. a unique violation) makes the worker exit and retry the same change
//!   forever: [`wait_for_replication_idle`] then times out and shows the error;
//! - without `origin = none` (PostgreSQL 16+; used by default between two 16+ nodes, as the
//!   README's guide does), every applied change is published again, so in
//!   both directions plain tables echo INSERTs and UPDATEs forever; only the extension's merge
//!   trigger (which skips no-op writes) makes such a topology go idle.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, Ordering};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant};

/// Name of the publication [`connect_one_way`], [`connect_bidirectional`] and [`full_mesh`]
/// create on every publishing node.
pub const PUBLICATION: &str = "crdt_pub";

/// Prefix of the scratch directories under `/tmp` (followed by `<pid>.<sequence>.<name>`).
const DIR_PREFIX: &str = "crdt-repl.";

/// Marker file in a cluster directory kept on purpose (`CRDT_KEEP_CLUSTERS`); such directories
/// are never swept as stale.
const KEEP_MARKER: &str = "KEPT";

const FIELD_SEPARATOR: char = '\x1f';
const RECORD_SEPARATOR: char = '\x1e';

/// Log lines with `ERROR:`/`FATAL:`/`PANIC:` that are expected noise of starting and stopping
/// servers and workers, not failures. [`Cluster::log_errors`] leaves them out.
pub const EXPECTED_LOG_NOISE: &[&str] = &[
    "terminating connection due to administrator command",
    "terminating logical replication worker due to administrator command",
    "terminating background worker",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is not yet accepting connections",
    "the database system is in recovery mode",
];

/// `ERROR:` lines a subscriber logs while one of its publishers is down or restarting: pass
/// them to [`assert_no_errors_in_logs_except`] in tests that stop or crash nodes.
pub const PEER_DOWN_LOG_NOISE: &[&str] = &[
    "could not receive data from WAL stream",
    "could not send data to WAL stream",
    "could not connect to the publisher",
    "could not start WAL streaming",
    // "replication slot ... is active for PID ...": the walsender serving the subscriber before
    // it restarted has not noticed yet.
    "is active for PID",
    // "replication origin with ID ... is already active for PID ...": the launcher started a new
    // apply worker while the one that just exited on a lost connection still held the origin
    // (PostgreSQL 15 frees the worker slot before the origin). Always follows another worker's
    // ERROR, which is reported on its own.
    "is already active for PID",
];

/// Directory of the PostgreSQL binaries [`Cluster::start`] runs (`CRDT_PG_BIN`, else those of
/// [`default_major`]).
pub fn pg_bin() -> PathBuf {
    std::env::var("CRDT_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| pg_bin_of_major(default_major()))
}

/// The major [`Cluster::start`] runs: `CRDT_PG_MAJOR`, default 15.
pub fn default_major() -> u32 {
    std::env::var("CRDT_PG_MAJOR")
        .ok()
        .and_then(|major| major.parse().ok())
        .unwrap_or(15)
}

/// Directory of PostgreSQL `major`'s binaries: `CRDT_PG_BIN_<major>`, else where
/// `scripts/lib.sh` installs it.
pub fn pg_bin_of_major(major: u32) -> PathBuf {
    if let Ok(dir) = std::env::var(format!("CRDT_PG_BIN_{major}")) {
        return PathBuf::from(dir);
    }
    match major {
        15 => PathBuf::from("/usr/lib/postgresql/15/bin"),
        _ => PathBuf::from(format!("/opt/postgresql/{major}/bin")),
    }
}

/// The major version of the PostgreSQL whose binaries are in `bin` (`pg_config --version`).
fn major_of_bin(bin: &Path) -> u32 {
    let mut pg_config = Command::new(bin.join("pg_config"));
    pg_config.arg("--version");
    let output = run(pg_config, "pg_config");
    let version = String::from_utf8_lossy(&output.stdout).to_string();
    version
        .split_whitespace()
        .nth(1)
        .and_then(|number| number.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or_else(|| panic!("{}/pg_config: no version in {version:?}", bin.display()))
}

fn current_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|uid| uid.parse().ok())
        .unwrap_or(0)
}

fn running_as_postgres() -> bool {
    std::env::var("USER").map(|u| u == "postgres").unwrap_or(false)
        || fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .lines()
            .any(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                fields.len() > 2 && fields[0] == "postgres" && fields[2].parse::<u32>().ok() == Some(current_uid())
            })
}

/// A command run as the `postgres` user (through `sudo -u postgres` unless we already are
/// `postgres`), from `/tmp` so that the user can enter its working directory.
fn postgres_command(program: &Path) -> Command {
    let mut command = if running_as_postgres() {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "-u", "postgres", "--"]).arg(program);
        sudo
    };
    command.current_dir("/tmp");
    // Servers see what production servers see: pgrx appends a Rust backtrace to every error
    // that crosses Rust frames when RUST_BACKTRACE is set (sudo drops it too; this is for runs
    // as postgres).
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    command
}

/// A command run with root rights (directly when we are root, else through `sudo -n`).
fn root_command(program: &str) -> Command {
    if current_uid() == 0 {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", "--", program]);
        sudo
    }
}

fn run(mut command: Command, what: &str) -> Output {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {command:?}: {e}"));
    output
}

fn remove_dir(dir: &Path) {
    if fs::remove_dir_all(dir).is_err() && dir.exists() {
        let mut rm = root_command("rm");
        rm.arg("-rf").arg(dir);
        let _ = run(rm, "removing a cluster directory");
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Stops servers and removes directories left behind by earlier test processes that were killed
/// before their `Drop` could run (their pid, part of the directory name, no longer exists).
fn sweep_stale_clusters() {
    let Ok(entries) = fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = file_name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let dir = entry.path();
        if process_alive(pid) || dir.join(KEEP_MARKER).exists() {
            continue;
        }
        if dir.join("data/postmaster.pid").exists() {
            let major = fs::read_to_string(dir.join("data/PG_VERSION"))
                .ok()
                .and_then(|version| version.trim().parse().ok())
                .unwrap_or_else(default_major);
            let mut stop = postgres_command(&pg_bin_of_major(major).join("pg_ctl"));
            stop.arg("-D")
                .arg(dir.join("data"))
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = run(stop, "stopping a stale cluster");
        }
        remove_dir(&dir);
    }
}

/// Picks a loopback port nothing listens on. Ports come from a process-wide counter (so threads
/// of one test process never pick the same one) starting at an offset derived from the process
/// id (so concurrent test processes rarely meet), below Linux's ephemeral range, and each is
/// bind-tested. [`Cluster::start`] retries with another port if the server still cannot bind.
pub fn allocate_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 21000;
    const SPAN: u32 = 10000;
    let start = (std::process::id() % 500) * 20;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(n < SPAN, "no free loopback port left in {LOW}..{}", LOW + SPAN);
        let port = (LOW + (start + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A throwaway PostgreSQL cluster on a loopback port, in a scratch directory under `/tmp`.
///
/// Dropping it stops the server (`pg_ctl -m immediate stop`) and removes the directory, also when
/// the test panics (see `CRDT_KEEP_CLUSTERS` in the crate docs to keep it for debugging).
/// `Cluster` is `Sync`: threads may share `&Cluster` to write concurrently.
pub struct Cluster {
    name: String,
    dir: PathBuf,
    bin: PathBuf,
    major: u32,
    port: AtomicU16,
    running: AtomicBool,
}

impl Cluster {
    /// Initialises and starts a new cluster. `name` (lower-case letters, digits, `_`, starting
    /// with a letter) is used in subscription names (`sub_<from>_to_<to>`) and messages; it need
    /// not be unique across tests.
    ///
    /// Settings: `listen_addresses=127.0.0.1`, the port, `unix_socket_directories=<dir>`,
    /// `wal_level=logical`, 20 replication slots / WAL senders / logical replication workers,
    /// 40 worker processes, `fsync=off`, `wal_retrieve_retry_interval=200ms` (so apply workers
    /// start again quickly after `ENABLE` or an error), `log_min_messages=warning`.
    ///
    /// `synchronous_commit` stays `on`: with `fsync=off` a commit only costs a `write()`, and it
    /// makes every acknowledged commit survive [`Cluster::stop_immediate`] (the operating system
    /// keeps the written WAL). With `off`, a crash test could lose a write the test saw commit.
    /// Use [`Cluster::start_with_settings`] to change it or anything else.
    pub fn start(name: &str) -> Cluster {
        Cluster::start_with_settings(name, &[])
    }

    /// [`Cluster::start`] with further `postgresql.conf` settings, e.g.
    /// `&[("synchronous_commit", "off")]` (values are written as given, quote strings yourself).
    pub fn start_with_settings(name: &str, settings: &[(&str, &str)]) -> Cluster {
        Cluster::start_bin(name, pg_bin(), settings)
    }

    /// [`Cluster::start`] on PostgreSQL `major` (whatever `CRDT_PG_MAJOR` says): one mesh may
    /// mix majors, as a node-by-node major upgrade does.
    pub fn start_major(name: &str, major: u32) -> Cluster {
        Cluster::start_bin(name, pg_bin_of_major(major), &[])
    }

    fn start_bin(name: &str, bin: PathBuf, settings: &[(&str, &str)]) -> Cluster {
        static SWEEP: Once = Once::new();
        static SEQUENCE: AtomicU32 = AtomicU32::new(0);
        SWEEP.call_once(sweep_stale_clusters);

        assert!(
            name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "cluster name {name:?}: use lower-case letters, digits and _, starting with a letter"
        );
        let sequence = SEQUENCE.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/{DIR_PREFIX}{}.{sequence}.{name}", std::process::id()));
        if dir.exists() {
            remove_dir(&dir);
        }
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        // From here on, Drop cleans up whatever happens.
        let cluster = Cluster {
            name: name.to_string(),
            dir,
            major: major_of_bin(&bin),
            bin,
            port: AtomicU16::new(allocate_port()),
            running: AtomicBool::new(false),
        };
        cluster.init_and_start(settings);
        cluster
    }

    /// Starts several clusters at once (in parallel threads), in the order of `names`.
    pub fn start_many(names: &[&str]) -> Vec<Cluster> {
        Cluster::start_many_with(names.len(), |i| Cluster::start(names[i]))
    }

    /// [`Cluster::start_many`], cluster `names[i]` on PostgreSQL `majors[i]`.
    pub fn start_many_majors(names: &[&str], majors: &[u32]) -> Vec<Cluster> {
        assert_eq!(names.len(), majors.len(), "one major per cluster");
        Cluster::start_many_with(names.len(), |i| Cluster::start_major(names[i], majors[i]))
    }

    /// Clusters `start(0)` … `start(count - 1)`, started in parallel threads, in that order.
    fn start_many_with(count: usize, start: impl Fn(usize) -> Cluster + Sync) -> Vec<Cluster> {
        thread::scope(|scope| {
            let start = &start;
            let handles: Vec<_> = (0..count).map(|i| scope.spawn(move || start(i))).collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
                .collect()
        })
    }

    fn init_and_start(&self, extra_settings: &[(&str, &str)]) {
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", self.dir.display()));
        if !running_as_postgres() {
            let mut chown = root_command("chown");
            chown.arg("postgres:postgres").arg(&self.dir);
            let output = run(chown, "chown");
            assert!(
                output.status.success(),
                "chown postgres {}: {}",
                self.dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }

        let mut initdb = postgres_command(&self.program("initdb"));
        initdb.arg("-D").arg(self.data_dir()).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        let output = run(initdb, "initdb");
        assert!(
            output.status.success(),
            "initdb for cluster {} failed:\n{}{}",
            self.name,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );

        let log_min_messages = std::env::var("CRDT_LOG_MIN_MESSAGES").unwrap_or_else(|_| "warning".to_string());
        let settings = format!(
            "\n# crdt replication test harness\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{dir}'\n\
             wal_level = logical\n\
             shared_preload_libraries = 'crdt'\n\
             max_replication_slots = 20\n\
             max_wal_senders = 20\n\
             max_logical_replication_workers = 20\n\
             max_worker_processes = 40\n\
             max_connections = 60\n\
             shared_buffers = 32MB\n\
             fsync = off\n\
             synchronous_commit = on\n\
             full_page_writes = off\n\
             wal_writer_delay = 10ms\n\
             wal_retrieve_retry_interval = 200ms\n\
             wal_receiver_status_interval = 1s\n\
             log_min_messages = {log_min_messages}\n\
             log_line_prefix = '%m [%p] %b %e '\n\
             port = {port}\n",
            dir = self.dir.display(),
            port = self.port(),
        );
        self.append_config(&settings);
        let extra: String = extra_settings
            .iter()
            .map(|(name, value)| format!("{name} = {value}\n"))
            .collect();
        self.append_config(&extra);
        self.start_server();
    }

    fn append_config(&self, text: &str) {
        let config = self.data_dir().join("postgresql.conf");
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&config)
            .unwrap_or_else(|e| panic!("opening {}: {e}", config.display()));
        file.write_all(text.as_bytes())
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
    }

    /// `pg_ctl -w start`; when the port was taken in the meantime, moves to another one (a
    /// cluster's port only changes before it first ran, since subscriptions store it).
    fn start_server(&self) {
        for attempt in 0..5 {
            let log_len_before = fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0);
            let mut pg_ctl = postgres_command(&self.program("pg_ctl"));
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_path())
                .args(["-w", "-t", "60", "start"]);
            let output = run(pg_ctl, "pg_ctl start");
            if output.status.success() {
                self.running.store(true, Ordering::SeqCst);
                return;
            }
            let log = fs::read(self.log_path()).unwrap_or_default();
            let new_log = String::from_utf8_lossy(&log[(log_len_before as usize).min(log.len())..]).to_string();
            let port_taken = new_log.contains("could not bind") || new_log.contains("Address already in use");
            if port_taken && attempt < 4 && !self.ever_started() {
                let port = allocate_port();
                // Later lines win in postgresql.conf.
                self.append_config(&format!("port = {port}\n"));
                self.port.store(port, Ordering::SeqCst);
                continue;
            }
            panic!(
                "starting cluster {} on port {} failed:\n{}{}\nserver log:\n{new_log}",
                self.name,
                self.port(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    fn ever_started(&self) -> bool {
        fs::read_to_string(self.log_path())
            .map(|log| log.contains("database system is ready"))
            .unwrap_or(false)
    }

    /// The name given to [`Cluster::start`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PostgreSQL major version the cluster runs (15, 16, …).
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The path of PostgreSQL program `name` of this cluster's major.
    fn program(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The loopback TCP port the server listens on (at `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    /// The scratch directory (holds `data/` and `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The server log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Whether the server is running (as far as this harness started and stopped it).
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// The postmaster's pid, from `postmaster.pid`, while the server runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        fs::read_to_string(self.data_dir().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// A libpq connection string to database `db` of this cluster.
    pub fn conninfo(&self, db: &str) -> String {
        format!("host=127.0.0.1 port={} dbname={db} user=postgres", self.port())
    }

    fn psql(&self, db: &str, extra_args: &[&str], sql: &str) -> Result<String, String> {
        let mut command = Command::new(self.program("psql"));
        command
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port().to_string())
            .args(["-U", "postgres", "-d", db])
            .args(extra_args)
            .args(["-f", "-"])
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGSSLMODE", "disable")
            .env("PGAPPNAME", "crdt_harness")
            .env("PGOPTIONS", "-c statement_timeout=300s")
            .env_remove("PGSERVICE")
            .env_remove("PGPASSFILE")
            .current_dir("/tmp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|e| format!("cannot run psql: {e}"))?;
        let mut stdin = child.stdin.take().expect("psql stdin");
        let input = sql.to_string();
        // A separate writer, so that a large script cannot deadlock against a full stdout pipe.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
        let output = child.wait_with_output().map_err(|e| format!("psql: {e}"))?;
        let _ = writer.join();
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).to_string())
        } else {
            Err(format!(
                "psql exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            ))
        }
    }

    /// Runs `sql` (one or more statements, each in its own transaction unless the script says
    /// `BEGIN`) in database `db` and returns psql's unaligned, tuples-only output (fields
    /// separated by `|`, rows by newlines), without the trailing newline.
    ///
    /// Panics with psql's error and the SQL when a statement fails.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql).unwrap_or_else(|error| {
            panic!(
                "SQL failed on cluster {} (port {}), database {db}:\n{error}\nSQL:\n{sql}",
                self.name,
                self.port()
            )
        })
    }

    /// Like [`Cluster::sql`] but returns the error (psql's stderr) instead of panicking.
    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        self.psql(db, &[], sql).map(|mut output| {
            while output.ends_with('\n') {
                output.pop();
            }
            output
        })
    }

    /// Runs a query and returns its rows, each a vector of column texts (NULL as `""`).
    /// Values may contain `|` and newlines (rows and fields are separated by the ASCII record
    /// and unit separators, `\x1e` and `\x1f`).
    pub fn query_rows(&self, db: &str, sql: &str) -> Vec<Vec<String>> {
        let field_separator = FIELD_SEPARATOR.to_string();
        let record_separator = RECORD_SEPARATOR.to_string();
        let args = ["-F", field_separator.as_str(), "-R", record_separator.as_str()];
        let output = self.psql(db, &args, sql).unwrap_or_else(|error| {
            panic!(
                "query failed on cluster {} (port {}), database {db}:\n{error}\nSQL:\n{sql}",
                self.name,
                self.port()
            )
        });
        split_rows(&output)
    }

    /// Runs a query returning a single value and returns it as text.
    pub fn query_value(&self, db: &str, sql: &str) -> String {
        let rows = self.query_rows(db, sql);
        assert!(
            rows.len() == 1 && rows[0].len() == 1,
            "expected one value from cluster {}, got {rows:?}\nSQL:\n{sql}",
            self.name
        );
        rows[0][0].clone()
    }

    /// `pg_dump -Fc` of database `db` into `file`.
    pub fn dump(&self, db: &str, file: &Path) {
        self.run_client_tool("pg_dump", &["-Fc", "-f", &file.to_string_lossy(), db]);
    }

    /// `pg_restore -j jobs` of `file` (a `pg_dump -Fc` archive) into database `db`, which
    /// exists, stopping at the first error.
    pub fn restore(&self, db: &str, file: &Path, jobs: u32) {
        self.restore_with(db, file, &["-j", &jobs.to_string()]);
    }

    /// [`Cluster::restore`] with further `pg_restore` options, e.g. `--no-subscriptions`.
    pub fn restore_with(&self, db: &str, file: &Path, options: &[&str]) {
        let file = file.to_string_lossy();
        let mut args = vec!["-d", db, "--exit-on-error"];
        args.extend_from_slice(options);
        args.push(&file);
        self.run_client_tool("pg_restore", &args);
    }

    /// Runs PostgreSQL's client program `program` against this cluster as `postgres`; panics
    /// with its output if it fails.
    fn run_client_tool(&self, program: &str, args: &[&str]) {
        let mut command = Command::new(self.program(program));
        command
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string(), "-U", "postgres"])
            .args(args)
            .env_remove("PGSERVICE")
            .env_remove("PGPASSFILE");
        let output = run(command, program);
        assert!(
            output.status.success(),
            "{program} {args:?} on cluster {} failed:\n{}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `CREATE DATABASE name`.
    pub fn create_database(&self, name: &str) {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// `CREATE EXTENSION IF NOT EXISTS crdt` in `db`, retried for up to a minute: the
    /// extension's files may be briefly missing or half-written while someone reinstalls it.
    pub fn create_extension_crdt(&self, db: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.try_sql(db, "CREATE EXTENSION IF NOT EXISTS crdt") {
                Ok(_) => return,
                Err(error) if Instant::now() < deadline => {
                    eprintln!("cluster {}: CREATE EXTENSION crdt failed, retrying: {error}", self.name);
                    thread::sleep(Duration::from_secs(2));
                }
                Err(error) => panic!(
                    "CREATE EXTENSION crdt keeps failing on cluster {} (is the extension installed \
                     into PostgreSQL {}? `cargo pgrx install --pg-config {}`):\n{error}",
                    self.name,
                    self.major,
                    self.program("pg_config").display()
                ),
            }
        }
    }

    /// [`Cluster::create_database`] followed by [`Cluster::create_extension_crdt`].
    pub fn create_database_with_crdt(&self, name: &str) {
        self.create_database(name);
        self.create_extension_crdt(name);
    }

    /// [`Cluster::create_database_with_crdt`], then the inventory case's CRDT table `product (id
    /// int PRIMARY KEY, name text, inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc)`,
    /// with `crdt` on the database's `search_path`, as the README tells users (`inventory + 5`).
    pub fn create_database_with_product(&self, name: &str) {
        self.create_database_with_crdt(name);
        self.sql(
            name,
            &format!(
                "ALTER DATABASE {name} SET search_path = public, crdt;
                 CREATE TABLE public.product (id int PRIMARY KEY, name text,
                                              inventory crdt.counter NOT NULL DEFAULT 0, attrs crdt.doc);
                 SELECT crdt.enable('public.product');"
            ),
        );
    }

    /// Crashes the server: `pg_ctl -m immediate stop` (no shutdown checkpoint; the next start
    /// runs crash recovery).
    pub fn stop_immediate(&self) {
        self.stop("immediate");
    }

    /// Stops the server cleanly (`pg_ctl -m fast stop`).
    pub fn stop_fast(&self) {
        self.stop("fast");
    }

    fn stop(&self, mode: &str) {
        let mut pg_ctl = postgres_command(&self.program("pg_ctl"));
        pg_ctl
            .arg("-D")
            .arg(self.data_dir())
            .args(["-m", mode, "-w", "-t", "60", "stop"]);
        let output = run(pg_ctl, "pg_ctl stop");
        assert!(
            output.status.success(),
            "stopping cluster {} ({mode}) failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        self.running.store(false, Ordering::SeqCst);
    }

    /// Starts the server again after [`Cluster::stop_immediate`] or [`Cluster::stop_fast`], on
    /// the same port and data directory; waits until it accepts connections.
    pub fn start_again(&self) {
        assert!(!self.is_running(), "cluster {} is already running", self.name);
        self.start_server();
    }

    /// Lines of the server log with `ERROR:`, `FATAL:` or `PANIC:`, except the expected noise of
    /// starting and stopping ([`EXPECTED_LOG_NOISE`]). Errors deliberately caused by a test's own
    /// statements show up here too; see [`assert_no_errors_in_logs_except`].
    pub fn log_errors(&self) -> Vec<String> {
        fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).to_string())
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                (line.contains("ERROR:") || line.contains("FATAL:") || line.contains("PANIC:"))
                    && !EXPECTED_LOG_NOISE.iter().any(|noise| line.contains(noise))
            })
            .map(str::to_string)
            .collect()
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).to_string())
            .unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.data_dir().join("postmaster.pid").exists() {
            let mut pg_ctl = postgres_command(&self.program("pg_ctl"));
            pg_ctl
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "-t", "60", "stop"]);
            let _ = pg_ctl
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running.store(false, Ordering::SeqCst);
        }
        let keep = std::env::var("CRDT_KEEP_CLUSTERS").unwrap_or_default();
        if keep == "always" || (keep == "1" && thread::panicking()) {
            let _ = fs::write(self.dir.join(KEEP_MARKER), "kept by CRDT_KEEP_CLUSTERS\n");
            eprintln!(
                "CRDT_KEEP_CLUSTERS: kept cluster {} (port {}) in {}",
                self.name,
                self.port(),
                self.dir.display()
            );
            return;
        }
        remove_dir(&self.dir);
    }
}

/// Splits psql output produced with `-F \x1f -R \x1e`: rows end with `\x1e` except the last,
/// which ends with a newline; no output at all means no rows.
fn split_rows(raw: &str) -> Vec<Vec<String>> {
    if raw.is_empty() {
        return Vec::new();
    }
    let body = raw.strip_suffix('\n').unwrap_or(raw);
    body.split(RECORD_SEPARATOR)
        .map(|row| row.split(FIELD_SEPARATOR).map(str::to_string).collect())
        .collect()
}

/// Parses a `pg_lsn` text (`X/Y`, hexadecimal) into a number.
pub fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.trim().split_once('/')?;
    Some((u64::from_str_radix(high, 16).ok()? << 32) | u64::from_str_radix(low, 16).ok()?)
}

fn sql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ---------------------------------------------------------------------------------------------
// Replication topology
// ---------------------------------------------------------------------------------------------

/// Options of the subscriptions the harness creates (`CREATE SUBSCRIPTION ... WITH (...)`).
/// The default is all `false`: text protocol, no initial copy, no streaming.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionOptions {
    /// `copy_data`: copy the publisher's existing rows first (default `false`: nodes start from
    /// the same state, typically empty tables).
    pub copy_data: bool,
    /// `binary`: send values in the types' binary send/receive format instead of text.
    pub binary: bool,
    /// `streaming`: stream large in-progress transactions.
    pub streaming: bool,
    /// `origin`: `Some("any")` (left out on a 15 subscriber, which always behaves so) or
    /// `Some("none")`; `None` (the default) does as the README's guide: `none` between two
    /// nodes that are both PostgreSQL 16 or later, `any` (PostgreSQL's default) in a mesh of
    /// three or more ([`full_mesh_with`]), where only the echoes keep every link in causal order.
    /// Subscriptions made one at a time ([`create_subscription`], [`connect_one_way`]) count
    /// as links of two nodes: give meshes of more `origin` yourself.
    pub origin: Option<&'static str>,
    /// Further raw options, e.g. `"disable_on_error = true"`.
    pub extra: Vec<String>,
}

impl SubscriptionOptions {
    /// Default options with `binary = true`.
    pub fn binary() -> Self {
        SubscriptionOptions {
            binary: true,
            ..Self::default()
        }
    }

    fn with_clause(&self, from: &Cluster, to: &Cluster) -> String {
        let mut options = vec![
            format!("copy_data = {}", self.copy_data),
            format!("binary = {}", self.binary),
            format!("streaming = {}", self.streaming),
        ];
        match self.origin {
            // 15 knows no `origin`: it always behaves as `any`.
            Some("any") if to.major() < 16 => {}
            Some(origin) => options.push(format!("origin = {origin}")),
            None if from.major() >= 16 && to.major() >= 16 => options.push("origin = none".to_string()),
            None => {}
        }
        options.extend(self.extra.iter().cloned());
        options.join(", ")
    }
}

/// The name the harness gives the subscription on `to` that receives from `from`:
/// `sub_<from>_to_<to>` (also the name of its replication slot on `from`).
pub fn subscription_name(from: &Cluster, to: &Cluster) -> String {
    format!("sub_{}_to_{}", from.name(), to.name())
}

/// Creates publication `publication` on `node` in `db` for `tables` (`FOR ALL TABLES` when
/// `tables` is empty), plus `crdt.deletions` and `crdt.heartbeats` when the database has them,
/// publishing inserts, updates and deletes (not TRUNCATE), as the README's guide does; when it
/// exists already, adds the tables it does not have yet.
/// Note: tables added to a publication after a subscription was created reach that subscriber
/// only after `ALTER SUBSCRIPTION ... REFRESH PUBLICATION` there.
pub fn ensure_publication(node: &Cluster, db: &str, publication: &str, tables: &[&str]) {
    // Deletes of CRDT tables replicate as tombstones in crdt.deletions: every publication of a
    // database with the extension (0.2.0 or later) carries it.
    // So does crdt.heartbeats (tombstone collection), from 0.2.0 on.
    let mut tables: Vec<&str> = tables.to_vec();
    for extension_table in ["crdt.deletions", "crdt.heartbeats"] {
        if !tables.is_empty()
            && !tables.contains(&extension_table)
            && node.query_value(db, &format!("SELECT to_regclass('{extension_table}') IS NOT NULL")) == "t"
        {
            tables.push(extension_table);
        }
    }
    let tables = &tables[..];
    let exists = node.query_value(
        db,
        &format!(
            "SELECT count(*) FROM pg_publication WHERE pubname = {}",
            sql_literal(publication)
        ),
    ) == "1";
    if !exists {
        let target = if tables.is_empty() {
            "ALL TABLES".to_string()
        } else {
            format!("TABLE {}", tables.join(", "))
        };
        // As the README's guide sets it up: TRUNCATE is not published (a CRDT table refuses it,
        // and one that ran anyway must not echo between PostgreSQL 15 nodes).
        node.sql(
            db,
            &format!("CREATE PUBLICATION {publication} FOR {target} WITH (publish = 'insert, update, delete')"),
        );
        return;
    }
    for table in tables {
        let present = node.query_value(
            db,
            &format!(
                "SELECT count(*) FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid \
                 WHERE p.pubname = {} AND r.prrelid = {}::regclass",
                sql_literal(publication),
                sql_literal(table)
            ),
        ) != "0";
        if !present {
            node.sql(db, &format!("ALTER PUBLICATION {publication} ADD TABLE {table}"));
        }
    }
}

/// Creates subscription `subscription` on `to` (database `db`) to publication `publication` of
/// `from` (same database name). The replication slot is created on `from` right away, so every
/// change `from` commits after this returns reaches `to`.
pub fn create_subscription(
    from: &Cluster,
    to: &Cluster,
    db: &str,
    subscription: &str,
    publication: &str,
    options: &SubscriptionOptions,
) {
    to.sql(
        db,
        &format!(
            "CREATE SUBSCRIPTION {subscription} CONNECTION {} PUBLICATION {publication} WITH ({})",
            sql_literal(&from.conninfo(db)),
            options.with_clause(from, to)
        ),
    );
}

/// One-directional replication `from` → `to` of `tables` in `db` with default options:
/// publication [`PUBLICATION`] on `from` (created or extended), subscription
/// [`subscription_name`]`(from, to)` on `to`. Returns the subscription's name.
pub fn connect_one_way(from: &Cluster, to: &Cluster, db: &str, tables: &[&str]) -> String {
    connect_one_way_with(from, to, db, tables, &SubscriptionOptions::default())
}

/// [`connect_one_way`] with explicit subscription options.
pub fn connect_one_way_with(
    from: &Cluster,
    to: &Cluster,
    db: &str,
    tables: &[&str],
    options: &SubscriptionOptions,
) -> String {
    ensure_publication(from, db, PUBLICATION, tables);
    let name = subscription_name(from, to);
    create_subscription(from, to, db, &name, PUBLICATION, options);
    name
}

/// Replication in both directions between `a` and `b` (default options). Returns the
/// subscription names.
pub fn connect_bidirectional(a: &Cluster, b: &Cluster, db: &str, tables: &[&str]) -> Vec<String> {
    full_mesh(&[a, b], db, tables)
}

/// [`connect_bidirectional`] with explicit subscription options.
pub fn connect_bidirectional_with(
    a: &Cluster,
    b: &Cluster,
    db: &str,
    tables: &[&str],
    options: &SubscriptionOptions,
) -> Vec<String> {
    full_mesh_with(&[a, b], db, tables, options)
}

/// Every node publishes `tables` of `db` as [`PUBLICATION`] and subscribes to every other node
/// (`sub_<from>_to_<to>`), default options. Returns the subscription names.
///
/// PostgreSQL 15 has no `origin = none`: each node re-publishes what it applied, so without the
/// extension's merge trigger (which suppresses no-op writes) changes would circulate forever.
pub fn full_mesh(nodes: &[&Cluster], db: &str, tables: &[&str]) -> Vec<String> {
    full_mesh_with(nodes, db, tables, &SubscriptionOptions::default())
}

/// [`full_mesh`] with explicit subscription options.
pub fn full_mesh_with(nodes: &[&Cluster], db: &str, tables: &[&str], options: &SubscriptionOptions) -> Vec<String> {
    let mut options = options.clone();
    if nodes.len() > 2 && options.origin.is_none() {
        options.origin = Some("any");
    }
    let options = &options;
    for node in nodes {
        ensure_publication(node, db, PUBLICATION, tables);
    }
    let mut names = Vec::new();
    for from in nodes {
        for to in nodes {
            if from.port() != to.port() {
                let name = subscription_name(from, to);
                create_subscription(from, to, db, &name, PUBLICATION, options);
                names.push(name);
            }
        }
    }
    names
}

/// A subscription as the subscriber's catalog describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// Subscription (and slot) name.
    pub name: String,
    /// Database on the subscriber that holds it.
    pub database: String,
    /// `subenabled`.
    pub enabled: bool,
    /// Port from its connection string (the publisher, on 127.0.0.1).
    pub publisher_port: Option<u16>,
}

/// All subscriptions of `node`, in every database.
pub fn subscriptions_of(node: &Cluster) -> Vec<SubscriptionInfo> {
    node.query_rows(
        "postgres",
        "SELECT s.subname, d.datname, s.subenabled, s.subconninfo \
         FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid ORDER BY 1",
    )
    .into_iter()
    .map(|row| SubscriptionInfo {
        name: row[0].clone(),
        database: row[1].clone(),
        enabled: row[2] == "t",
        publisher_port: row[3]
            .split_whitespace()
            .find_map(|part| part.strip_prefix("port="))
            .and_then(|port| port.parse().ok()),
    })
    .collect()
}

/// Partitions `node` from everything it receives: `ALTER SUBSCRIPTION ... DISABLE` for all its
/// subscriptions, then waits until their apply workers have exited.
///
/// The wait matters: an apply worker notices `DISABLE` only at its next loop iteration (up to
/// about a second later) and keeps applying changes until then.
pub fn disable_subscriptions(node: &Cluster) {
    for subscription in subscriptions_of(node) {
        disable_subscription(node, &subscription.name);
    }
}

/// Heals what [`disable_subscriptions`] cut: `ALTER SUBSCRIPTION ... ENABLE` for all subscriptions
/// of `node`. The launcher starts the apply workers shortly after; [`wait_for_replication_idle`]
/// waits for them.
pub fn enable_subscriptions(node: &Cluster) {
    for subscription in subscriptions_of(node) {
        enable_subscription(node, &subscription.name);
    }
}

fn subscription_database(node: &Cluster, subscription: &str) -> String {
    subscriptions_of(node)
        .into_iter()
        .find(|s| s.name == subscription)
        .unwrap_or_else(|| panic!("cluster {} has no subscription {subscription}", node.name()))
        .database
}

/// Disables one subscription of `node` and waits until its workers have exited.
pub fn disable_subscription(node: &Cluster, subscription: &str) {
    let db = subscription_database(node, subscription);
    node.sql(&db, &format!("ALTER SUBSCRIPTION {subscription} DISABLE"));
    let stopped = wait_until(Duration::from_secs(30), || {
        node.query_value(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_stat_subscription WHERE subname = {} AND pid IS NOT NULL",
                sql_literal(subscription)
            ),
        ) == "0"
    });
    assert!(
        stopped,
        "the workers of subscription {subscription} on cluster {} did not exit after DISABLE\n{}",
        node.name(),
        replication_diagnostics(&[node])
    );
}

/// Enables one subscription of `node` (its apply worker starts shortly after).
pub fn enable_subscription(node: &Cluster, subscription: &str) {
    let db = subscription_database(node, subscription);
    node.sql(&db, &format!("ALTER SUBSCRIPTION {subscription} ENABLE"));
}

// ---------------------------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------------------------

/// Cuts replication between `a` and `b` both ways, runs `on_a` on A and `on_b` on B in `db`
/// (so the writes really are concurrent: neither has seen the other's), and heals. Does not
/// wait for the nodes to converge.
pub fn write_while_apart(a: &Cluster, b: &Cluster, db: &str, on_a: &str, on_b: &str) {
    disable_subscriptions(a);
    disable_subscriptions(b);
    a.sql(db, on_a);
    b.sql(db, on_b);
    enable_subscriptions(a);
    enable_subscriptions(b);
}

/// Polls `condition` every 50 ms until it holds (returns `true`) or `timeout` passes (returns
/// `false`).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Default timeout of [`wait_for_replication_idle`]: `CRDT_REPLICATION_TIMEOUT_SECS`, else 60 s.
pub fn replication_timeout() -> Duration {
    Duration::from_secs(
        std::env::var("CRDT_REPLICATION_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    )
}

/// [`wait_for_replication_idle_within`] with [`replication_timeout`].
pub fn wait_for_replication_idle(nodes: &[&Cluster]) {
    wait_for_replication_idle_within(nodes, replication_timeout());
}

fn current_lsns(nodes: &[&Cluster]) -> Vec<Option<u64>> {
    nodes
        .iter()
        .map(|node| {
            if node.is_running() {
                parse_lsn(&node.query_value("postgres", "SELECT pg_current_wal_lsn()"))
            } else {
                None
            }
        })
        .collect()
}

/// Why the running nodes are not caught up with the WAL positions `targets`, or `None`.
fn replication_lag(nodes: &[&Cluster], targets: &[Option<u64>]) -> Option<String> {
    // (application_name -> (state, replay_lsn)) per running publisher.
    let senders: Vec<BTreeMap<String, (String, Option<u64>)>> = nodes
        .iter()
        .map(|node| {
            if !node.is_running() {
                return BTreeMap::new();
            }
            node.query_rows(
                "postgres",
                "SELECT application_name, state, coalesce(replay_lsn::text, '') \
                 FROM pg_stat_replication",
            )
            .into_iter()
            .fold(BTreeMap::new(), |mut senders, row| {
                // A walsender of a worker that already went away may linger a while next to its
                // successor: keep the one that confirmed most.
                let entry = (row[1].clone(), parse_lsn(&row[2]));
                let best = match senders.remove(&row[0]) {
                    Some(known @ (_, Some(replay))) if entry.1.is_none_or(|r| r < replay) => known,
                    _ => entry,
                };
                senders.insert(row[0].clone(), best);
                senders
            })
        })
        .collect();
    for subscriber in nodes.iter().filter(|node| node.is_running()) {
        let subscriptions = subscriptions_of(subscriber);
        let mut databases: Vec<&str> = Vec::new();
        for subscription in subscriptions.iter().filter(|s| s.enabled) {
            let Some(publisher) = nodes.iter().position(|n| Some(n.port()) == subscription.publisher_port) else {
                continue; // a publisher outside `nodes`
            };
            let Some(target) = targets[publisher] else {
                continue; // the publisher is down
            };
            match senders[publisher].get(&subscription.name) {
                Some((state, Some(replay))) if state == "streaming" && *replay >= target => {}
                other => {
                    return Some(format!(
                        "{} on {} has not confirmed {} of {} yet (walsender: {other:?})",
                        subscription.name,
                        subscriber.name(),
                        format_lsn(target),
                        nodes[publisher].name()
                    ))
                }
            }
            if !databases.contains(&subscription.database.as_str()) {
                databases.push(&subscription.database);
            }
        }
        for db in databases {
            let syncing = subscriber.query_value(
                db,
                "SELECT count(*) FROM pg_subscription_rel r JOIN pg_subscription s \
                 ON s.oid = r.srsubid WHERE s.subenabled AND r.srsubstate NOT IN ('r', 's')",
            );
            if syncing != "0" {
                return Some(format!(
                    "{syncing} table(s) of {db} on {} are still in initial synchronisation",
                    subscriber.name()
                ));
            }
        }
    }
    None
}

/// Waits until replication among `nodes` is idle: every enabled subscription (on a running node,
/// to a running publisher among `nodes`) is streaming and has confirmed its publisher's
/// `pg_current_wal_lsn()`, no table is still in initial synchronisation, and no node wrote any
/// WAL in the meantime (so what the subscribers applied has been passed on as well).
///
/// Each round reads every node's WAL position, then the replay positions their subscribers
/// confirmed (`pg_stat_replication.replay_lsn`, which for a subscription is what the subscriber
/// has flushed), then the WAL positions again; replication is idle when all were caught up and
/// no position moved. Background WAL (autovacuum, checkpoints) only costs another round.
///
/// Panics after `timeout` with the WAL positions, walsender, slot and subscription states, the
/// apply error counters and the tail of each server log. A subscription whose apply worker keeps
/// failing on a change (it retries the same change forever) ends here too.
pub fn wait_for_replication_idle_within(nodes: &[&Cluster], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut before = current_lsns(nodes);
    loop {
        let lag = replication_lag(nodes, &before);
        let after = current_lsns(nodes);
        match lag {
            None if after == before => return,
            None => {}
            Some(reason) => {
                if Instant::now() >= deadline {
                    panic!(
                        "replication did not become idle within {timeout:?}: {reason}\n{}",
                        replication_diagnostics(nodes)
                    );
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        if Instant::now() >= deadline + Duration::from_secs(5) {
            panic!(
                "replication did not become idle within {timeout:?}: WAL keeps being written\n{}",
                replication_diagnostics(nodes)
            );
        }
        before = after;
    }
}

/// Formats a WAL position as PostgreSQL does (`X/Y`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// A human-readable state of replication among `nodes`: WAL positions, walsenders, slots,
/// subscriptions, apply/sync error counters, relations not ready, and the tail of each log.
pub fn replication_diagnostics(nodes: &[&Cluster]) -> String {
    let mut out = String::new();
    for node in nodes {
        out.push_str(&format!(
            "\n=== cluster {} (port {}, {}) in {}\n",
            node.name(),
            node.port(),
            if node.is_running() { "running" } else { "stopped" },
            node.dir().display()
        ));
        if node.is_running() {
            let queries = [
                ("wal", "SELECT pg_current_wal_lsn()"),
                (
                    "walsenders (app|state|sent|write|flush|replay)",
                    "SELECT application_name, state, sent_lsn, write_lsn, flush_lsn, replay_lsn \
                     FROM pg_stat_replication ORDER BY 1",
                ),
                (
                    "slots (name|db|active|confirmed_flush)",
                    "SELECT slot_name, database, active, confirmed_flush_lsn \
                     FROM pg_replication_slots ORDER BY 1",
                ),
                (
                    "subscriptions (name|enabled|conninfo)",
                    "SELECT subname, subenabled, subconninfo FROM pg_subscription ORDER BY 1",
                ),
                (
                    "workers (sub|pid|relid|received|latest_end|last_msg)",
                    "SELECT subname, pid, relid, received_lsn, latest_end_lsn, last_msg_receipt_time \
                     FROM pg_stat_subscription ORDER BY 1",
                ),
                (
                    "errors (sub|apply_errors|sync_errors)",
                    "SELECT subname, apply_error_count, sync_error_count \
                     FROM pg_stat_subscription_stats ORDER BY 1",
                ),
            ];
            for (title, query) in queries {
                let result = node.try_sql("postgres", query).unwrap_or_else(|e| e);
                out.push_str(&format!("--- {title}:\n{result}\n"));
            }
            let databases: Vec<String> = subscriptions_of(node).into_iter().map(|s| s.database).collect();
            let mut seen = Vec::new();
            for db in databases {
                if seen.contains(&db) {
                    continue;
                }
                let result = node
                    .try_sql(
                        &db,
                        "SELECT s.subname, r.srrelid::regclass, r.srsubstate, r.srsublsn \
                         FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid \
                         WHERE r.srsubstate <> 'r' ORDER BY 1, 2",
                    )
                    .unwrap_or_else(|e| e);
                out.push_str(&format!("--- relations not ready in {db}:\n{result}\n"));
                seen.push(db);
            }
        }
        out.push_str(&format!("--- log tail:\n{}\n", node.log_tail(30)));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Comparing and checking
// ---------------------------------------------------------------------------------------------

/// The result of `query` on `cluster` as text, one line per row, fields separated by `|`: for
/// comparing nodes. Give the query an `ORDER BY`.
pub fn table_snapshot(cluster: &Cluster, db: &str, query: &str) -> String {
    cluster
        .query_rows(db, query)
        .iter()
        .map(|row| row.join("|"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `query` returns the same rows on all `nodes`; the message shows every snapshot.
pub fn assert_same_snapshot(nodes: &[&Cluster], db: &str, query: &str) {
    let snapshots: Vec<String> = nodes.iter().map(|n| table_snapshot(n, db, query)).collect();
    if snapshots.iter().any(|s| *s != snapshots[0]) {
        let mut message = format!("nodes differ on `{query}`:\n");
        for (node, snapshot) in nodes.iter().zip(&snapshots) {
            message.push_str(&format!("--- {}:\n{snapshot}\n", node.name()));
        }
        panic!("{message}");
    }
}

/// Asserts that no server log of `clusters` has an `ERROR:`, `FATAL:` or `PANIC:` line (other
/// than [`EXPECTED_LOG_NOISE`]).
pub fn assert_no_errors_in_logs(clusters: &[&Cluster]) {
    assert_no_errors_in_logs_except(clusters, &[]);
}

/// Like [`assert_no_errors_in_logs`], also ignoring lines that contain any of `allowed` (e.g.
/// `"could not connect to the publisher"` in a test that crashes a node on purpose). Every line
/// of every log, allowed or not, must be free of Rust internals ([`names_rust_internals`]).
pub fn assert_no_errors_in_logs_except(clusters: &[&Cluster], allowed: &[&str]) {
    let mut message = String::new();
    for cluster in clusters {
        let errors: Vec<String> = cluster
            .log_errors()
            .into_iter()
            .filter(|line| !allowed.iter().any(|a| line.contains(a)))
            .collect();
        if !errors.is_empty() {
            message.push_str(&format!(
                "--- cluster {} ({}):\n{}\n",
                cluster.name(),
                cluster.log_path().display(),
                errors.join("\n")
            ));
        }
        let rust: Vec<String> = fs::read(cluster.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).to_string())
            .unwrap_or_default()
            .lines()
            .filter(|line| names_rust_internals(line))
            .map(str::to_string)
            .collect();
        if !rust.is_empty() {
            message.push_str(&format!(
                "--- cluster {}: Rust internals in the log:\n{}\n",
                cluster.name(),
                rust.join("\n")
            ));
        }
    }
    assert!(message.is_empty(), "errors in server logs:\n{message}");
}

/// Whether a server log line names Rust internals: a module path of the standard library, pgrx
/// or this project, a panic, a backtrace or a source location. Users must never see one.
pub fn names_rust_internals(line: &str) -> bool {
    const PATHS: [&str; 7] = [
        "std::",
        "core::",
        "alloc::",
        "pgrx::",
        "pgrx_pg_sys::",
        "crdt::",
        "crdt_core::",
    ];
    const MARKS: [&str; 4] = ["panicked at", "stack backtrace", "rust_begin_unwind", "{{closure}}"];
    let source_location = line
        .match_indices(".rs:")
        .any(|(at, _)| line[at + 4..].chars().next().is_some_and(|c| c.is_ascii_digit()));
    source_location
        || MARKS.iter().any(|mark| line.contains(mark))
        || PATHS.iter().any(|path| {
            line.match_indices(path).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + path.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    && after.is_some_and(|c| c.is_ascii_lowercase() || c == '_' || c == '<')
            })
        })
}

#[cfg(test)]
mod log_scan_tests {
    use super::names_rust_internals;

    #[test]
    fn rust_internals_are_recognised_and_sql_names_are_not() {
        for line in [
            "DETAIL:  0: std::thread::local::LocalKey<T>::with",
            "6: crdt::triggers::lock_hash",
            "thread 'main' panicked at src/lib.rs:12:5",
            "at /rustc/abc/library/core/src/panicking.rs:80:14",
        ] {
            assert!(names_rust_internals(line), "{line}");
        }
        for line in [
            "ERROR:  invalid input syntax for type crdt.counter",
            "WARNING:  crdt: a row replicated into public.t carries a stamp",
            "STATEMENT:  SELECT crdt.merge(a, b)::jsonb FROM t",
        ] {
            assert!(!names_rust_internals(line), "{line}");
        }
    }
}
