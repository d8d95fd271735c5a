//! Test support: throwaway PostgreSQL and Redis servers, real ones from Debian's packages
//! (`scripts/setup.sh` installs them), each in its own temp dir and listening only on a unix
//! socket there, so parallel test binaries never collide on a port.
//!
//! A missing binary is a test failure with the command that installs it, never a skip.
//! Servers run as foreground children and are stopped by PID: on drop, and for the ones shared
//! by a whole test binary ([`shared_postgres`]) when the process exits (an `atexit` hook, plus
//! a parent-death signal in case the process is killed).
#![allow(dead_code)] // each test file uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to become ready (the machine is shared and loaded).
const READY_WAIT: Duration = Duration::from_secs(30);

/// The unix-socket "port" of every throwaway postgres (the socket file is `.s.PGSQL.5432` in
/// the instance's own directory, so the number never collides).
const PG_PORT: u16 = 5432;

/// Where Debian puts PostgreSQL's server binaries: `/usr/lib/postgresql/<major>/bin`, newest
/// major first.
fn pg_bin(name: &str) -> PathBuf {
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    majors.sort_unstable();
    let path = majors
        .last()
        .map(|major| PathBuf::from(format!("/usr/lib/postgresql/{major}/bin/{name}")));
    match path {
        Some(path) if path.exists() => path,
        _ => panic!(
            "PostgreSQL's `{name}` was not found under /usr/lib/postgresql/*/bin: \
             run `bash scripts/setup.sh` (it installs Debian's postgresql package)"
        ),
    }
}

fn redis_bin() -> PathBuf {
    let path = PathBuf::from("/usr/bin/redis-server");
    assert!(
        path.exists(),
        "redis-server was not found at /usr/bin/redis-server: run `bash scripts/setup.sh` \
         (it installs Debian's redis-server package)"
    );
    path
}

/// Runs `command` as the `postgres` user (initdb and postgres refuse root), with a
/// parent-death signal so that a killed test process does not leave the server behind.
fn as_postgres(program: &Path, death_signal: &str) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
        .arg(format!("--pdeathsig={death_signal}"))
        .arg(program);
    command
}

/// Spawns every server from one thread that lives as long as the process: a parent-death
/// signal fires when the spawning *thread* ends, and test threads end after each test.
fn spawn(mut command: Command) -> Child {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("service-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // The senders live in a static: this thread never ends before the process.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    command.stdin(Stdio::null());
    spawner
        .lock()
        .expect("spawner")
        .send((command, tx))
        .expect("spawner alive");
    rx.recv().expect("spawner reply").expect("spawn a server")
}

/// Sends `signal` to `pid` and waits for `child` to exit.
fn stop_child(child: &mut Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the PID of our own child, which has not been reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let _ = child.wait();
}

/// Waits until `ready()` holds, panicking with `what` after [`READY_WAIT`] or when `child`
/// exits first.
fn wait_ready(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_WAIT;
    while !ready() {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{what} exited before it was ready: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready within {READY_WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A throwaway PostgreSQL cluster: `initdb` in a temp dir, `postgres` listening only on a unix
/// socket in that dir, `fsync=off` (a test cluster need not survive a power cut; the store
/// still asks for `synchronous_commit = on`, which is what its replies promise).
pub struct Postgres {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Postgres {
    /// Creates and starts a cluster; panics with a clear message if PostgreSQL is missing.
    pub fn start() -> Self {
        let initdb = pg_bin("initdb");
        let dir = tempfile::Builder::new()
            .prefix("bss-pg-")
            .tempdir()
            .expect("tempdir");
        chown_to_postgres(dir.path());
        let output = as_postgres(&initdb, "TERM")
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"])
            .output()
            .expect("run initdb");
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut pg = Self { dir, child: None };
        pg.resume();
        pg
    }

    /// The socket directory (the libpq "host").
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A `postgresql://` url for database `db` over the unix socket.
    pub fn url(&self, db: &str) -> String {
        let host: String = self
            .socket_dir()
            .to_str()
            .expect("utf-8 temp path")
            .replace('/', "%2F");
        format!("postgresql://postgres@{host}:{PG_PORT}/{db}")
    }

    /// Creates a fresh database and returns its url (tests sharing one cluster each take one).
    pub fn create_database(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!("{prefix}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql(&format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs one SQL command with `psql` against the `postgres` database.
    pub fn psql(&self, sql: &str) -> String {
        let output = Command::new(pg_bin("psql"))
            .arg("-h")
            .arg(self.socket_dir())
            .args([
                "-p",
                &PG_PORT.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-qAtc", sql])
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Stops the server (fast shutdown: clients are disconnected), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc::SIGINT);
        }
    }

    /// Starts the stopped server again on the same data and socket.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "postgres is already running");
        let mut command = as_postgres(&pg_bin("postgres"), "INT");
        command
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &PG_PORT.to_string(), "-k"])
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=", "-c", "fsync=off"])
            .args(["-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = spawn(command);
        let isready = pg_bin("pg_isready");
        let dir = self.dir.path().to_owned();
        wait_ready(&mut child, "postgres", || {
            Command::new(&isready)
                .arg("-h")
                .arg(&dir)
                .args(["-p", &PG_PORT.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success())
        });
        self.child = Some(child);
    }

    /// The postmaster's PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown postgres {}", path.display());
}

/// One cluster for the whole test binary, started on first use and stopped when the process
/// exits; tests stay independent by each using its own database ([`Postgres::create_database`]).
pub fn shared_postgres() -> &'static Postgres {
    static SHARED: OnceLock<Postgres> = OnceLock::new();
    SHARED.get_or_init(|| {
        let pg = Postgres::start();
        register_exit_cleanup(pg.pid().expect("running"), pg.dir.path().to_owned());
        pg
    })
}

static AT_EXIT: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());

/// Statics are never dropped: stop the shared server and remove its directory at exit.
fn register_exit_cleanup(pid: u32, dir: PathBuf) {
    extern "C" fn cleanup() {
        let Ok(mut entries) = AT_EXIT.lock() else {
            return;
        };
        for (pid, dir) in entries.drain(..) {
            // SAFETY: plain kill(2)/waitpid(2) on our own child process.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGINT);
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let mut entries = AT_EXIT.lock().expect("at-exit list");
    if entries.is_empty() {
        // SAFETY: registers a plain function with no captured state.
        unsafe {
            libc::atexit(cleanup);
        }
    }
    entries.push((pid, dir));
}

/// A throwaway Redis on a unix socket in a temp dir, no persistence.
pub struct Redis {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server; panics with a clear message if redis-server is missing.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("bss-redis-")
            .tempdir()
            .expect("tempdir");
        let mut redis = Self { dir, child: None };
        redis.resume();
        redis
    }

    /// The unix socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The url the server's `--adapter` takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Stops the server (its pub/sub clients see the connection drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc::SIGTERM);
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts the stopped server again on the same socket.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "redis is already running");
        let socket = self.socket();
        let mut command = Command::new("setpriv");
        command
            .arg("--pdeathsig=TERM")
            .arg(redis_bin())
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = spawn(command);
        wait_ready(&mut child, "redis-server", || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
        self.child = Some(child);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The two store backends the one store suite runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// The embedded SQLite file, in a temp dir.
    Sqlite,
    /// A fresh database on the binary's shared PostgreSQL cluster.
    Postgres,
}

/// A store under test plus what keeps its database alive.
pub struct TestStore {
    /// The store.
    pub store: std::sync::Arc<dyn backbone_socket_sync_server::store::Store>,
    _dir: Option<tempfile::TempDir>,
}

/// Opens an empty store of `backend` with documents bounded to `max_doc_bytes`.
pub async fn open_store(backend: Backend, max_doc_bytes: usize) -> TestStore {
    use backbone_socket_sync_server::store::expiry::DEFAULT_REQUEST_RETENTION;
    use backbone_socket_sync_server::store::open::open;
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open(
                &dir.path().join("s.sqlite3"),
                max_doc_bytes,
                DEFAULT_REQUEST_RETENTION,
            )
            .await
            .expect("open sqlite");
            TestStore {
                store,
                _dir: Some(dir),
            }
        }
        Backend::Postgres => {
            let url = shared_postgres().create_database("store");
            let store = open(Path::new(&url), max_doc_bytes, DEFAULT_REQUEST_RETENTION)
                .await
                .expect("open postgres");
            TestStore { store, _dir: None }
        }
    }
}

/// Runs the async suite function `$name(Backend)` as two tests, `$name::sqlite` and
/// `$name::postgres`, on a runtime of the given flavor.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $($flavor:tt)*) => {
        mod $name {
            use super::services::Backend;

            #[tokio::test($($flavor)*)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }

            #[tokio::test($($flavor)*)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    };
}
