//! A real S3 server for tests: Garage, started on loopback with a
//! temporary config and data directory, one node, one key, one bucket.
//! `scripts/setup` installs the pinned version.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running Garage server; killed when dropped.
pub struct Garage {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The region Garage signs for.
    pub region: String,
    /// The test key's id.
    pub access_key: String,
    /// The test key's secret.
    pub secret_key: String,
    /// A bucket the key may read, write and own.
    pub bucket: String,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Garage {
    /// Starts a server with a bucket named `bucket`.
    pub fn start(bucket: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
        let secret: String = (0..32)
            .map(|i| {
                format!(
                    "{:02x}",
                    (std::process::id() as u64 * 2654435761 + i * 40503) % 251
                )
            })
            .collect();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("garage.toml"),
            format!(
                r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#
            ),
        )?;
        let mut g = Garage {
            dir,
            child: None,
            endpoint: format!("http://127.0.0.1:{s3}"),
            region: "garage".into(),
            access_key: String::new(),
            secret_key: String::new(),
            bucket: bucket.into(),
        };
        g.resume()?;
        let status = g.wait_for_status()?;
        let id = status
            .lines()
            .find_map(|l| {
                let first = l.split_whitespace().next()?;
                (first.len() == 16 && first.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| first.to_string())
            })
            .with_context(|| format!("no node id in `garage status`:\n{status}"))?;
        g.garage(&["layout", "assign", "-z", "dc1", "-c", "1G", &id])?;
        g.garage(&["layout", "apply", "--version", "1"])?;
        let key = g.garage(&["key", "create", "hlsvault-test"])?;
        let field = |name: &str| {
            key.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .with_context(|| format!("no {name} in:\n{key}"))
        };
        g.access_key = field("Key ID:")?;
        g.secret_key = field("Secret key:")?;
        g.garage(&["key", "allow", "--create-bucket", "hlsvault-test"])?;
        g.create_bucket(bucket)?;
        Ok(g)
    }

    /// Creates another bucket the test key owns.
    pub fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.garage(&["bucket", "create", bucket])?;
        self.garage(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            bucket,
            "--key",
            "hlsvault-test",
        ])?;
        Ok(())
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("garage.toml")
    }

    /// Runs a `garage` admin command against this server.
    fn garage(&self, args: &[&str]) -> Result<String> {
        let out = Command::new("garage")
            .args(args)
            .env("GARAGE_CONFIG_FILE", self.config())
            .output()
            .context("cannot run garage (scripts/setup installs it)")?;
        if !out.status.success() {
            bail!("garage {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_for_status(&self) -> Result<String> {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match self.garage(&["status"]) {
                Ok(s) => return Ok(s),
                Err(e) if Instant::now() > until => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Stops the server (an outage); `resume` starts it again on the same
    /// directories, keys and buckets.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server (again).
    pub fn resume(&mut self) -> Result<()> {
        let log = std::fs::File::create(self.dir.path().join("garage.log"))?;
        self.child = Some(
            Command::new("garage")
                .arg("server")
                .env("GARAGE_CONFIG_FILE", self.config())
                .env("RUST_LOG", "garage=warn")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start garage (scripts/setup installs it)")?,
        );
        Ok(())
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("garage.log")).unwrap_or_default()
    }

    /// The temporary directory (for test files beside the server's).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}
