//! Several hlsvault nodes for the cluster's failure tests, all real parts
//! on loopback: a three-member etcd, a Garage bucket, live streams (ffmpeg
//! sending a clip in real time, fanned out to every node over UDP), and
//! `hlsvault run` processes. Each node reaches etcd and S3 through proxies
//! of its own and gets each stream from its own output of the fan-out, so
//! a test can cut one node off from any of them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hlsvault_cluster::{ClusterSettings, Keys};

use crate::archive::{check_timeline, hour_playlists, Entry};
use crate::daemon::Daemon;
use crate::etcd::EtcdCluster;
use crate::garage::{runtime, Garage};
use crate::proxy::{TcpProxy, UdpFanout};
use crate::KillOnDrop;

/// A node of the test's cluster.
pub struct Node {
    /// Its name (`[cluster] node`).
    pub name: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its links to each etcd member.
    pub etcd: Vec<TcpProxy>,
    /// Its link to S3.
    pub s3: TcpProxy,
    /// Where it receives each stream (a port on 127.0.0.1).
    ports: Vec<u16>,
    /// Its HTTP server (`[serve]`): `http://127.0.0.1:PORT`.
    pub http: String,
    /// The running process, if it runs.
    pub daemon: Option<Daemon>,
    /// How many times it was started (its logs are `NAME-N.log`).
    starts: usize,
}

/// The cluster and what it records.
pub struct Scenario {
    /// Logs, configs and the clip.
    pub dir: tempfile::TempDir,
    /// The coordinator.
    pub etcd: EtcdCluster,
    /// The store.
    pub garage: Garage,
    /// Per stream: the fan-out to every node, and its sender.
    sources: Vec<(UdpFanout, KillOnDrop)>,
    /// The nodes, in the order given.
    pub nodes: Vec<Node>,
    /// The streams' names (`ch0`, `ch1`, ...).
    pub streams: Vec<String>,
    bin: String,
}

/// The lease every scenario's nodes hold.
pub const LEASE: Duration = Duration::from_secs(2);

impl Scenario {
    /// `nodes` (not started) recording `streams` live streams of `seconds`
    /// each (1 s segments, redundancy 2, a 2 s lease), with `bin` as the
    /// hlsvault binary.
    pub fn new(bin: &str, nodes: &[&str], streams: usize, seconds: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let etcd = EtcdCluster::start(3).unwrap();
        let garage = Garage::start("archive").unwrap();
        let clip = dir.path().join("clip.ts");
        clip_with_keyframe_every_second(&clip, seconds);
        let names: Vec<String> = (0..streams).map(|i| format!("ch{i}")).collect();
        // Held until all are chosen: each node's port for each stream differs.
        let held: Vec<std::net::UdpSocket> = (0..nodes.len() * streams)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut free = held.iter().map(|s| s.local_addr().unwrap().port());
        let mut built = Vec::new();
        for name in nodes {
            let etcd_links: Vec<TcpProxy> = etcd
                .endpoints
                .iter()
                .map(|e| TcpProxy::start(addr_of(e)).unwrap())
                .collect();
            let s3 = TcpProxy::start(addr_of(&garage.endpoint)).unwrap();
            let ports = (0..streams).map(|_| free.next().unwrap()).collect();
            let node = Node {
                name: name.to_string(),
                config: dir.path().join(format!("{name}.toml")),
                etcd: etcd_links,
                s3,
                ports,
                http: format!("http://127.0.0.1:{}", crate::free_tcp_port()),
                daemon: None,
                starts: 0,
            };
            node.write_config(&garage, &names);
            built.push(node);
        }
        let sources = (0..streams)
            .map(|i| {
                let ports: Vec<u16> = built.iter().map(|n| n.ports[i]).collect();
                let fanout = UdpFanout::start(&ports, seconds + 30, 10_000_000).unwrap();
                let sender = crate::live_sender(&clip, fanout.port, seconds + 10)
                    .spawn()
                    .unwrap();
                (fanout, KillOnDrop(sender))
            })
            .collect();
        // The senders' and fan-outs' own ports are taken: the nodes' are
        // free for the nodes alone.
        drop(held);
        Scenario {
            dir,
            etcd,
            garage,
            sources,
            nodes: built,
            streams: names,
            bin: bin.to_string(),
        }
    }

    /// The index of the node named `name`.
    pub fn index(&self, name: &str) -> usize {
        self.nodes.iter().position(|n| n.name == name).unwrap()
    }

    /// Starts node `i` (again).
    pub fn start(&mut self, i: usize) {
        self.start_with_env(i, &[]);
    }

    /// Starts node `i` with `env` added to its environment.
    pub fn start_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        let node = &mut self.nodes[i];
        node.starts += 1;
        let tag = format!("{}-{}", node.name, node.starts);
        node.daemon = Some(Daemon::start_with_env(
            &self.bin,
            &node.config,
            self.dir.path(),
            &tag,
            env,
        ));
    }

    /// Starts node `i` with its clock `offset` off (`+30s`), by libfaketime.
    pub fn start_with_clock(&mut self, i: usize, offset: &str) {
        let lib = std::fs::read_dir("/usr/lib")
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
            .find(|p| p.exists())
            .expect("libfaketime (Debian's faketime; scripts/test installs it)");
        let lib = lib.to_str().unwrap().to_string();
        self.start_with_env(i, &[("LD_PRELOAD", &lib), ("FAKETIME", offset)]);
    }

    /// The running process of node `i`.
    pub fn daemon(&mut self, i: usize) -> &mut Daemon {
        self.nodes[i].daemon.as_mut().expect("the node runs")
    }

    /// Cuts node `i` off from stream `s`'s source (`true`), or not.
    pub fn cut_source(&self, i: usize, s: usize, cut: bool) {
        self.sources[s].0.cut(i, cut);
    }

    /// What stream `stream`'s owners committed last: (node, sequence).
    pub fn progress(&self, stream: &str) -> Option<(String, u64)> {
        let settings = self.settings();
        runtime().block_on(async {
            let client = hlsvault_cluster::connect(&settings).await.ok()?;
            let text = hlsvault_cluster::progress(&client, &Keys::default(), stream)
                .await
                .ok()??;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some((v["node"].as_str()?.to_string(), v["sequence"].as_u64()?))
        })
    }

    /// Waits until the cluster's live members are exactly those running.
    pub fn wait_members(&self, within: Duration) {
        let until = Instant::now() + within;
        let running: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.daemon.is_some())
            .map(|n| n.name.as_str())
            .collect();
        loop {
            let view = self.view();
            let live: Vec<String> = view
                .iter()
                .flat_map(|v| v.members.iter().map(|m| m.name.clone()))
                .collect();
            if live == running {
                return;
            }
            assert!(
                Instant::now() < until,
                "members {live:?}, running {running:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The cluster as etcd says it is now (None if it cannot be read).
    pub fn view(&self) -> Option<hlsvault_cluster::View> {
        runtime().block_on(async {
            let client = hlsvault_cluster::connect(&self.settings()).await.ok()?;
            hlsvault_cluster::view(&client, &Keys::default()).await.ok()
        })
    }

    /// Who owns each stream now, as etcd says.
    pub fn owners(&self) -> Vec<Option<String>> {
        let view = self.view().expect("etcd answers");
        self.streams
            .iter()
            .map(|s| view.owners.get(s).cloned())
            .collect()
    }

    /// Waits until `stream` is owned by the node the placement prefers,
    /// which has committed a segment, and another node has said it is
    /// ready to take over; returns the owner.
    pub fn settled(&self, stream: &str, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let view = self.view();
            let ready: BTreeSet<String> = view
                .iter()
                .flat_map(|v| v.ready.iter())
                .filter(|(s, _)| s == stream)
                .map(|(_, n)| n.clone())
                .collect();
            let owner = view.as_ref().and_then(|v| v.owners.get(stream).cloned());
            let preferred = view
                .as_ref()
                .and_then(|v| hlsvault_cluster::place(stream, &v.members, None, 2).owner);
            if let (Some(owner), Some((by, _))) = (&owner, self.progress(stream)) {
                let standby_ready = ready.iter().any(|n| n != owner);
                if *owner == by && Some(owner) == preferred.as_ref() && standby_ready {
                    return owner.clone();
                }
            }
            assert!(
                Instant::now() < until,
                "{stream} did not settle (owner {owner:?}, ready {ready:?})"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a node other than `from` commits a segment of
    /// `stream`; returns that node and the time since `since` (a
    /// takeover's: kill, then first segment committed by the new owner).
    pub fn taken_over(&self, stream: &str, from: &str, since: Instant) -> (String, Duration) {
        let until = since + Duration::from_secs(60);
        loop {
            if let Some((by, _)) = self.progress(stream) {
                if by != from {
                    return (by, since.elapsed());
                }
            }
            assert!(
                Instant::now() < until,
                "nobody took {stream} over from {from}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops every running node with SIGTERM: each must exit 0.
    pub fn stop_all(&mut self) {
        for (name, status, _) in self.stop_all_with_status() {
            assert!(status.success(), "{name} exited with {status}");
        }
    }

    /// Stops every running node with SIGTERM; returns each one's name, exit
    /// status and summary.
    pub fn stop_all_with_status(&mut self) -> Vec<(String, std::process::ExitStatus, String)> {
        self.nodes
            .iter_mut()
            .filter_map(|node| {
                let d = node.daemon.take()?;
                let (status, out) = d.stop_with_status();
                Some((node.name.clone(), status, out))
            })
            .collect()
    }

    fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            etcd: self.etcd.endpoints.clone(),
            node: "test".into(),
            redundancy: 2,
            lease: LEASE,
        }
    }

    /// Reads stream `stream`'s archive back from the bucket and checks it:
    /// every segment stored is listed once, and every listed one decodes
    /// on its own, starts with a keyframe and lasts what the PTS says up
    /// to the next (no gap, no overlap, except at `breaks` discontinuities
    /// at most). Returns the entries.
    pub fn check_archive(&self, stream: &str, breaks: usize) -> Vec<Entry> {
        let copy = self.dir.path().join(format!("copy-{stream}"));
        let _ = std::fs::remove_dir_all(&copy);
        self.garage.mirror(&format!("tv/{stream}/"), &copy);
        let entries: Vec<Entry> = hour_playlists(&copy.join("tv").join(stream))
            .into_iter()
            .flat_map(|(_, p)| p.entries)
            .collect();
        assert!(!entries.is_empty(), "{stream}: nothing archived");
        let listed: BTreeSet<&str> = entries.iter().map(|e| e.uri.as_str()).collect();
        assert_eq!(
            listed.len(),
            entries.len(),
            "{stream}: a segment listed twice"
        );
        let stored: Vec<String> = self
            .garage
            .list(&format!("tv/{stream}/"))
            .into_iter()
            .filter(|k| k.ends_with(".ts"))
            .collect();
        let names: BTreeSet<&str> = stored
            .iter()
            .map(|k| k.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            names, listed,
            "{stream}: the segments stored are the segments listed"
        );
        let discontinuities = entries.iter().filter(|e| e.discontinuity).count();
        assert!(
            discontinuities <= breaks,
            "{stream}: {discontinuities} discontinuities, {breaks} allowed: {:?}",
            entries
                .iter()
                .filter(|e| e.discontinuity)
                .map(|e| &e.uri)
                .collect::<Vec<_>>()
        );
        check_timeline(&entries, "video", 0.04);
        // On the archive's timeline too: each entry starts where the one
        // before ends (to the millisecond the playlists write).
        for pair in entries.windows(2).filter(|p| !p[1].discontinuity) {
            let (a, b) = (&pair[0], &pair[1]);
            let (Some(at), Some(next)) = (a.pdt, b.pdt) else {
                panic!("{stream}: {} or {} has no PROGRAM-DATE-TIME", a.uri, b.uri);
            };
            let step = next.duration_since(at).map_or(-1.0, |d| d.as_secs_f64());
            assert!(
                (step - a.extinf).abs() < 0.0025,
                "{stream}: {} starts {step} s after {}, which lasts {} s",
                b.uri,
                a.uri,
                a.extinf
            );
        }
        entries
    }
}

impl Node {
    fn write_config(&self, g: &Garage, streams: &[String]) {
        let etcd: Vec<String> = self
            .etcd
            .iter()
            .map(|p| format!("\"{}\"", p.url()))
            .collect();
        let mut text = format!(
            "[storage]\nbackend = \"s3\"\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"{}\"\nprefix = \"tv\"\naccess_key = \"{}\"\nsecret_key = \"{}\"\n\n[cluster]\netcd = [{}]\nnode = \"{}\"\nredundancy = 2\nlease = \"{}s\"\n",
            self.s3.url(),
            g.bucket,
            g.region,
            g.access_key,
            g.secret_key,
            etcd.join(", "),
            self.name,
            LEASE.as_secs(),
        );
        text.push_str(&format!(
            "\n[serve]\nlisten = \"{}\"\n",
            self.http.trim_start_matches("http://")
        ));
        for (name, port) in streams.iter().zip(&self.ports) {
            text.push_str(&format!(
                "\n[[streams]]\nname = \"{name}\"\nsegment_duration = \"1s\"\n[streams.source]\nkind = \"udp\"\ninterface = \"lo\"\ngroup = \"127.0.0.1\"\nport = {port}\n"
            ));
        }
        std::fs::write(&self.config, text).unwrap();
    }

    /// `GET PATH` from its server: the body (empty if it does not answer).
    pub fn get(&self, path: &str) -> String {
        let (_, _, body) = crate::http_get(&format!("{}{path}", self.http), &["-m", "5"]);
        String::from_utf8_lossy(&body).into_owned()
    }

    /// Cuts this node off from every etcd member (`true`), or not.
    pub fn cut_etcd(&self, cut: bool) {
        self.etcd.iter().for_each(|p| p.cut(cut));
    }
}

/// A clip of `seconds` with a keyframe every second (25 fps) and audio.
fn clip_with_keyframe_every_second(out: &Path, seconds: u64) {
    let t = seconds.to_string();
    crate::run(
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", &t, "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-g", "25", "-keyint_min", "25", "-sc_threshold", "0"])
            .args(["-c:a", "aac", "-b:a", "64k", "-f", "mpegts"])
            .arg(out),
    )
    .unwrap();
}

fn addr_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

impl Drop for Scenario {
    /// A failed test shows what each node said.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for node in &self.nodes {
            if let Some(d) = &node.daemon {
                eprintln!("--- {} (running) ---\n{}", node.name, d.log());
            }
        }
    }
}
