//! A real S3 server for tests: Garage, started on loopback with a
//! temporary config and data directory, one node, one key, one bucket.
//! `scripts/setup` installs the pinned version.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use minio::s3::creds::StaticProvider;
use minio::s3::http::BaseUrl;
use minio::s3::types::{Region, S3Api, ToStream};
use minio::s3::MinioClient;
use std::time::SystemTime;

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

/// Three distinct free ports. They are free when chosen, but another process
/// may bind one before Garage does: `start` checks the S3 API answers.
fn free_ports() -> Result<[u16; 3]> {
    let held = [
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
        TcpListener::bind("127.0.0.1:0")?,
    ];
    Ok([
        held[0].local_addr()?.port(),
        held[1].local_addr()?.port(),
        held[2].local_addr()?.port(),
    ])
}

impl Garage {
    /// Starts a server with a bucket named `bucket`.
    ///
    /// Garage keeps running when its S3 port was taken in the meantime
    /// (it logs the error and `garage status` still works), so a start whose
    /// S3 API does not answer is tried again on other ports.
    pub fn start(bucket: &str) -> Result<Self> {
        let mut tries = 3;
        loop {
            match Self::start_on_free_ports(bucket) {
                Err(e) if tries > 1 && e.is::<S3Unanswered>() => tries -= 1,
                started => return started,
            }
        }
    }

    fn start_on_free_ports(bucket: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let [rpc, s3, admin] = free_ports()?;
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
        g.wait_for_s3()?;
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

    /// Waits until the S3 port answers as this Garage does to an anonymous
    /// request, not as some other server that took the port.
    fn wait_for_s3(&self) -> Result<()> {
        let addr = self.endpoint.trim_start_matches("http://");
        let answers = || -> std::io::Result<bool> {
            let mut c = TcpStream::connect(addr)?;
            c.set_read_timeout(Some(Duration::from_secs(2)))?;
            c.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
            let mut reply = String::new();
            c.read_to_string(&mut reply)?;
            Ok(reply.contains("<Code>AccessDenied</Code>")
                && reply.contains("<Region>garage</Region>"))
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Ok(true) = answers() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(anyhow::Error::new(S3Unanswered).context(self.log()))
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

/// The S3 API of a started Garage never answered (its port was taken).
#[derive(Debug)]
struct S3Unanswered;

impl std::fmt::Display for S3Unanswered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the Garage S3 API does not answer")
    }
}

impl std::error::Error for S3Unanswered {}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A runtime for the S3 client's calls in a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Reading the bucket back, as a test checks what was stored.
impl Garage {
    /// An S3 client with the test key.
    pub fn client(&self) -> MinioClient {
        let mut base: BaseUrl = self.endpoint.parse().unwrap();
        base.region = Region::new(self.region.clone()).unwrap();
        let creds = StaticProvider::new(&self.access_key, &self.secret_key, None);
        MinioClient::new(base, Some(creds), None, None).unwrap()
    }

    /// Every key in the bucket under `prefix`, sorted.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .listed_with_times(prefix)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        keys
    }

    /// Every key under `prefix` with its modification time.
    pub fn listed_with_times(&self, prefix: &str) -> Vec<(String, Option<SystemTime>)> {
        runtime().block_on(async {
            let mut stream = self
                .client()
                .list_objects(&self.bucket)
                .unwrap()
                .prefix(Some(prefix.to_string()))
                .recursive(true)
                .build()
                .to_stream()
                .await;
            let mut keys = Vec::new();
            while let Some(page) = stream.next().await {
                keys.extend(
                    page.unwrap()
                        .contents
                        .into_iter()
                        .map(|e| (e.name, e.last_modified.map(SystemTime::from))),
                );
            }
            keys
        })
    }

    /// The object at `key`.
    pub fn object(&self, key: &str) -> bytes::Bytes {
        let client = self.client();
        runtime().block_on(async {
            client
                .get_object(&self.bucket, key)
                .unwrap()
                .build()
                .send()
                .await
                .unwrap()
                .into_bytes()
                .await
                .unwrap()
        })
    }

    /// Copies every object under `prefix` into `dir`, keys as paths.
    pub fn mirror(&self, prefix: &str, dir: &Path) {
        for key in self.list(prefix) {
            let bytes = self.object(&key);
            let path = dir.join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
}
