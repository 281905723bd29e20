//! A throwaway PostgreSQL cluster: `initdb` and `pg_ctl` in a temp dir, on a
//! free port of 127.0.0.1, stopped and deleted when dropped. `cargo xtask
//! test` starts one for every test (xtask includes this file, which uses the
//! standard library only); tests that need a server set up otherwise (TLS, a
//! stalled disk) start their own with [`Throwaway::start_with`].
//!
//! PostgreSQL refuses to run as root, and CI runs as root: then the cluster
//! belongs to a system user `oauth-test`, created if missing, and every
//! command runs through `runuser`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The system user that owns the cluster when we run as root.
const USER: &str = "oauth-test";

/// A running cluster.
#[derive(Debug)]
pub struct Throwaway {
    dir: PathBuf,
    bin: PathBuf,
    as_user: bool,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// The port, on 127.0.0.1 and on the Unix socket in [`Self::socket_dir`].
    pub port: u16,
}

/// How [`Throwaway::start_with`] sets a cluster up beyond the defaults.
#[derive(Debug, Default)]
pub struct Setup<'a> {
    /// Server settings, as `-c name=value`.
    pub settings: &'a [(&'a str, &'a str)],
    /// Files written into the data directory, owned by the cluster's user,
    /// readable by it alone (a TLS key must be).
    pub files: &'a [(&'a str, &'a [u8])],
    /// Replaces `pg_hba.conf`.
    pub hba: Option<&'a str>,
}

impl Throwaway {
    /// Creates and starts a cluster, or says why it could not.
    pub fn start() -> Result<Self, String> {
        Self::start_with(&Setup::default())
    }

    /// The directory holding the cluster's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// Creates and starts a cluster set up by `setup`.
    pub fn start_with(setup: &Setup<'_>) -> Result<Self, String> {
        let bin = find_bin().ok_or(
            "initdb was not found on PATH or in /usr/lib/postgresql/*/bin: install the Debian package \
             `postgresql` (apt-get install postgresql)",
        )?;
        let as_user = is_root();
        if as_user && !succeeds(Command::new("id").arg(USER)) {
            let mut useradd = Command::new("useradd");
            useradd.args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER]);
            if !succeeds(&mut useradd) {
                return Err(format!("cannot create the system user {USER} to run PostgreSQL as"));
            }
        }
        let dir = std::env::temp_dir().join(format!("oauth-rs-postgres-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut cluster = Throwaway { dir, bin, as_user, url: String::new(), port: 0 };
        if as_user && !succeeds(Command::new("chown").arg(format!("{USER}:")).arg(&cluster.dir)) {
            return Err(format!("cannot give {} to {USER}", cluster.dir.display()));
        }
        let data = cluster.dir.join("data");
        let initdb = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !initdb.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr)));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        for (name, bytes) in setup.files.iter().copied().chain(setup.hba.map(|h| ("pg_hba.conf", h.as_bytes()))) {
            cluster.write_owned(&data.join(name), bytes)?;
        }
        let mut options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400", cluster.dir.display());
        for (name, value) in setup.settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        let log = cluster.dir.join("postgres.log");
        let started = cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if !started.status.success() {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("pg_ctl start failed: {}{log}", String::from_utf8_lossy(&started.stderr)));
        }
        cluster.url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        cluster.port = port;
        Ok(cluster)
    }

    /// Writes `path` for the cluster's user alone.
    fn write_owned(&self, path: &Path, bytes: &[u8]) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |e: std::io::Error| format!("{}: {e}", path.display());
        std::fs::write(path, bytes).map_err(fail)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
        if self.as_user && !succeeds(Command::new("chown").arg(format!("{USER}:")).arg(path)) {
            return Err(format!("cannot give {} to {USER}", path.display()));
        }
        Ok(())
    }

    /// `program` from the PostgreSQL bin directory, as the cluster's owner.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_user {
            let mut c = Command::new("runuser");
            c.args(["-u", USER, "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.command("pg_ctl").arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The directory holding `initdb` and `pg_ctl`: on PATH, or Debian's
/// versioned directory (the newest), which is not on PATH.
fn find_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("initdb").is_file())
            .collect();
        versions.sort_by_key(|p| version_of(p));
        versions.pop()
    })
}

/// The major version in `/usr/lib/postgresql/<version>/bin`, for sorting.
fn version_of(bin: &Path) -> u32 {
    bin.parent().and_then(Path::file_name).and_then(|v| v.to_str()).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}
