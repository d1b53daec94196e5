//! A private PostgreSQL cluster per test: `initdb` and `pg_ctl` from Debian's `postgresql`
//! package (installed by `.ci/run`) on a fresh directory, listening on a loopback port only,
//! run as the `postgres` user when the test runs as root (initdb refuses root). Dropping the
//! [`Cluster`] stops the server at once and removes its files; no test touches a shared
//! server.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The newest `/usr/lib/postgresql/<major>/bin`, or `SWITCHBOARD_PG_BIN`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    majors.sort();
    majors.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "no PostgreSQL server under /usr/lib/postgresql: the PostgreSQL tests need Debian's \
             `postgresql` package (`apt-get install postgresql`; .ci/run installs it), or \
             SWITCHBOARD_PG_BIN set to its bin directory"
        )
    })
}

/// The uid and gid of the `postgres` user.
fn postgres_user() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "no `postgres` user: install Debian's postgresql"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    (id("-u"), id("-g"))
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Whether this test binary runs its servers on PostgreSQL: the `on_postgres` target, which
/// is the API suite compiled a second time (`tests/on_postgres.rs`). Then every
/// [`TestServer`](crate::server::TestServer) not started with `start_embedded` keeps its
/// state in a database of its own on [`shared`].
pub fn suite_on_postgres() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.file_name()?.to_str()?.starts_with("on_postgres")))
        .unwrap_or(false)
}

/// This test process's cluster, started on first use. Durability is off (the tests kill
/// nodes, never the database), and a watchdog stops the cluster and removes its files once
/// the process is gone, since a static is never dropped.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let cluster =
            Cluster::start_with("-c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        cluster.stop_when_gone(std::process::id());
        cluster
    })
}

/// The URL of the database on [`shared`] that belongs to data directory `dir`: the same one
/// each time that directory is opened again (a restart), a new, empty one for a new directory.
pub fn database_for(dir: &Path) -> String {
    static DATABASES: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());
    let cluster = shared();
    let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    let next = databases.len();
    let name = databases
        .entry(dir.to_owned())
        .or_insert_with(|| {
            let name = format!("switchboard_{next}");
            cluster.create_database(&name);
            name
        })
        .clone();
    cluster.url(&name)
}

/// A running private cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    /// Its loopback port.
    pub port: u16,
}

impl Cluster {
    /// Creates and starts a cluster on a free loopback port (trust authentication for the
    /// `postgres` role, which is safe on loopback in a directory only its owner can read).
    pub fn start() -> Cluster {
        Self::start_with("")
    }

    /// [`Cluster::start`] with more server options (`-c name=value …`).
    pub fn start_with(extra: &str) -> Cluster {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("cluster dir");
        let owner = is_root().then(postgres_user);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown");
        }
        let mut cluster = Cluster {
            dir,
            bin,
            owner,
            port: 0,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // A port found free may be taken by another process before the server binds it:
        // then the start fails with the address in use, and another port is tried.
        for attempt in 1.. {
            cluster.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=400 {extra}",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log");
            let args = [
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ];
            let out = cluster.output("pg_ctl", &args);
            if out.status.success() {
                break;
            }
            let taken = cluster.log().contains("could not bind");
            if !taken || attempt == 5 {
                cluster.fail("pg_ctl", &args, &out);
            }
            let _ = std::fs::remove_file(&log);
        }
        cluster
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn output(&self, program: &str, args: &[&str]) -> Output {
        self.command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {program}: {e}"))
    }

    fn fail(&self, program: &str, args: &[&str], out: &Output) -> ! {
        panic!(
            "{program} {args:?} failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        )
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let out = self.output(program, args);
        if !out.status.success() {
            self.fail(program, args, &out);
        }
        out
    }

    /// Starts a process that stops this cluster at once and removes its directory when
    /// process `pid` has ended.
    pub fn stop_when_gone(&self, pid: u32) {
        // In the background of a shell that ends at once: the watcher outlives this process
        // (it is what waits for it to end) without being its child.
        let script = format!(
            "(while [ -d /proc/{pid} ]; do sleep 1; done; '{}' -D '{}' -m immediate -w stop; rm -rf '{}') &",
            self.bin.join("pg_ctl").display(),
            self.data().display(),
            self.dir.path().display(),
        );
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            watchdog.uid(uid).gid(gid);
        }
        let started = watchdog.status().expect("start the cluster's watchdog");
        assert!(started.success(), "the cluster's watchdog did not start");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Creates database `name`, owned by `postgres`.
    pub fn create_database(&self, name: &str) {
        self.run(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        );
    }

    /// `postgres://postgres@127.0.0.1:PORT/database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// The cluster's directory (its data, socket and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
        // Files made by the postgres user: hand them back so the temp dir can be removed.
        if self.owner.is_some() {
            let _ = Command::new("chown")
                .args(["-R", "0:0"])
                .arg(self.dir.path())
                .output();
        }
    }
}
