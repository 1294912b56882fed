//! A real etcd cluster for tests: Debian's `etcd-server`, three members on
//! loopback, each with its own data directory, killed when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running etcd cluster.
pub struct EtcdCluster {
    _dir: tempfile::TempDir,
    members: Vec<Option<Child>>,
    /// Each member's client endpoint, `http://127.0.0.1:PORT`.
    pub endpoints: Vec<String>,
}

/// `n` distinct ports, free when chosen.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

impl EtcdCluster {
    /// Starts `size` members and waits until the cluster has a leader.
    pub fn start(size: usize) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let ports = free_ports(size * 2)?;
        let (clients, peers) = ports.split_at(size);
        let initial: Vec<String> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{i}=http://127.0.0.1:{p}"))
            .collect();
        let mut members = Vec::new();
        for i in 0..size {
            let log = std::fs::File::create(dir.path().join(format!("m{i}.log")))?;
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("m{i}")))
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{}", clients[i]),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{}", clients[i]),
                ])
                .args([
                    "--listen-peer-urls",
                    &format!("http://127.0.0.1:{}", peers[i]),
                ])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{}", peers[i]),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", "hlsvault-test"])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting etcd (Debian's etcd-server; scripts/test installs it)")?;
            members.push(Some(child));
        }
        let cluster = EtcdCluster {
            _dir: dir,
            members,
            endpoints: clients
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
        };
        cluster.wait_healthy(Duration::from_secs(30))?;
        Ok(cluster)
    }

    /// Waits until every member still running says the cluster is healthy
    /// (etcd's `/health`: it has a leader and answers).
    pub fn wait_healthy(&self, within: Duration) -> Result<()> {
        let until = Instant::now() + within;
        loop {
            let sick: Vec<String> = self
                .running_endpoints()
                .into_iter()
                .filter(|e| {
                    let (status, _, body) = crate::http_get(&format!("{e}/health"), &["-m", "2"]);
                    status != 200 || !String::from_utf8_lossy(&body).contains("\"health\":\"true\"")
                })
                .collect();
            if sick.is_empty() {
                return Ok(());
            }
            if Instant::now() > until {
                bail!("etcd is not healthy at {}", sick.join(", "));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn running_endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .zip(&self.endpoints)
            .filter(|(m, _)| m.is_some())
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The member that leads the cluster now, as the members say.
    pub fn leader(&self) -> Option<usize> {
        self.members
            .iter()
            .zip(&self.endpoints)
            .enumerate()
            .filter(|(_, (m, _))| m.is_some())
            .find_map(|(i, (_, e))| {
                let out = Command::new("curl")
                    .args(["-s", "-m", "2", "-X", "POST", "-d", "{}"])
                    .arg(format!("{e}/v3/maintenance/status"))
                    .output()
                    .ok()?;
                let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
                let member = status["header"]["member_id"].as_str()?;
                (status["leader"].as_str()? == member).then_some(i)
            })
    }

    /// Bytes the running members have received from and sent to their
    /// clients so far (etcd's own gRPC counters).
    pub fn client_traffic(&self) -> u64 {
        self.running_endpoints()
            .iter()
            .map(|e| {
                let (_, _, body) = crate::http_get(&format!("{e}/metrics"), &["-m", "2"]);
                String::from_utf8_lossy(&body)
                    .lines()
                    .filter(|l| {
                        l.starts_with("etcd_network_client_grpc_received_bytes_total ")
                            || l.starts_with("etcd_network_client_grpc_sent_bytes_total ")
                    })
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum::<f64>() as u64
            })
            .sum()
    }

    /// Kills member `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
