//! Live capture end to end: real packets sent in real time by `ffmpeg -re`
//! and `tcpreplay`, on loopback or through a veth pair into a network
//! namespace the test creates, received by the `hlsvault` binary with
//! `kind = "udp"` and `kind = "pcap"`, stopped with SIGTERM, and checked
//! with ffprobe and ffmpeg. Every sender is bounded by its file and a
//! timeout.

use std::net::{SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use hlsvault_testkit::archive::{check_timeline, hour_playlists, Entry};
use hlsvault_testkit::net::NetPlan;
use hlsvault_testkit::{make_ts, run, write_pcap, StreamSpec, Wrap};

/// Longest wait for anything a test expects to happen.
const PATIENCE: Duration = Duration::from_secs(40);

/// A running `hlsvault run`, its log going to a file.
struct Daemon {
    child: Child,
    log: PathBuf,
    out: PathBuf,
}

impl Daemon {
    fn start(config: &Path, dir: &Path, tag: &str) -> Self {
        let log = dir.join(format!("{tag}.log"));
        let out = dir.join(format!("{tag}.out"));
        let child = Command::new(env!("CARGO_BIN_EXE_hlsvault"))
            .args(["run", "--config", config.to_str().unwrap()])
            .env("HLSVAULT_LOG", "info")
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log, out }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `pattern` at least `count` times.
    fn wait_for(&mut self, pattern: &str, count: usize) {
        let until = Instant::now() + PATIENCE;
        while Instant::now() < until {
            if self.log().matches(pattern).count() >= count {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "hlsvault exited ({status}) while waiting for {pattern:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("no {count}× {pattern:?} in the log:\n{}", self.log());
    }

    /// SIGTERM; returns the summary on standard output once it has exited 0.
    fn stop(mut self) -> String {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("hlsvault did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = std::fs::read_to_string(&self.out).unwrap();
        eprintln!("stdout:\n{out}\nstderr:\n{}", self.log());
        assert!(status.success(), "exit status after SIGTERM: {status}");
        out
    }
}

/// Sends a TS file in real time with `ffmpeg -re`, as an encoder would
/// (7 packets a datagram); returns when the file has been sent.
fn send_realtime(mut cmd: Command, ts: &Path, url: &str) {
    cmd.args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(ts)
        .args(["-c", "copy", "-f", "mpegts", "-flush_packets", "0", url]);
    run(&mut cmd).unwrap();
}

fn timed(program: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["60", program]);
    c
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Every entry of a stream's hour playlists, in order.
fn entries(archive: &Path, stream: &str) -> Vec<Entry> {
    let hours = hour_playlists(&archive.join(stream));
    for (path, p) in &hours {
        assert!(!p.ended, "{path:?}: a stopped live hour stays open");
    }
    hours.into_iter().flat_map(|(_, p)| p.entries).collect()
}

/// The sequence number in a segment name (`MMSS.mmm-SEQ.ts`).
fn sequence(e: &Entry) -> u64 {
    let name = e.uri.rsplit('/').next().unwrap();
    name.trim_end_matches(".ts")
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn media_seconds(entries: &[Entry]) -> f64 {
    entries.iter().map(|e| e.extinf).sum()
}

fn clip(dir: &Path, name: &str, seconds: f64) -> PathBuf {
    let p = dir.join(name);
    make_ts(
        &p,
        &StreamSpec {
            seconds,
            ..StreamSpec::default()
        },
    )
    .unwrap();
    p
}

#[test]
fn udp_stall_sigterm_and_a_restart_that_continues_the_hour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first, second) = (clip(d, "first.ts", 8.0), clip(d, "second.ts", 6.0));
    let port = free_port();
    let archive = d.join("archive");
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            r#"stats_interval = "1s"
[storage]
root = "{}"
[[streams]]
name = "ch1"
segment_duration = "2s"
stall_timeout = "1s"
[streams.source]
kind = "udp"
interface = "lo"
group = "127.0.0.1"
port = {port}
"#,
            archive.display()
        ),
    )
    .unwrap();
    let url = format!("udp://127.0.0.1:{port}?pkt_size=1316");

    // Run 1: a clip, silence (a stall), another clip, silence, SIGTERM.
    let mut daemon = Daemon::start(&config, d, "run1");
    daemon.wait_for("receiving", 1);
    send_realtime(timed("ffmpeg"), &first, &url);
    daemon.wait_for("stream stalled", 1);
    send_realtime(timed("ffmpeg"), &second, &url);
    daemon.wait_for("stream stalled", 2);
    daemon.wait_for("Mbit/s", 1);
    let summary = daemon.stop();
    assert!(summary.contains("; 2 stalls"), "{summary}");
    assert!(summary.contains(" 0 socket drops"), "{summary}");

    let run1 = entries(&archive, "ch1");
    check_timeline(&run1, "video", 0.04);
    let breaks: Vec<usize> = (0..run1.len()).filter(|&i| run1[i].discontinuity).collect();
    assert_eq!(
        breaks.len(),
        1,
        "one discontinuity, after the stall: {run1:#?}"
    );
    assert!(run1[breaks[0]].pdt.is_some());
    // The first clip's segments, all stored before the second clip came.
    let clip1 = media_seconds(&run1[..breaks[0]]);
    assert!((7.0..=8.05).contains(&clip1), "first clip: {clip1} s");
    let total = media_seconds(&run1);
    assert!((12.5..=14.05).contains(&total), "both clips: {total} s");
    assert!(archive.join("ch1/live.m3u8").is_file());

    // Run 2 continues the same hour: every entry kept, the sequence runs
    // on, the gap is a discontinuity.
    let mut daemon = Daemon::start(&config, d, "run2");
    daemon.wait_for("receiving", 1);
    send_realtime(timed("ffmpeg"), &second, &url);
    daemon.wait_for("stream stalled", 1);
    daemon.stop();
    let run2 = entries(&archive, "ch1");
    assert!(run2.len() > run1.len());
    for (a, b) in run1.iter().zip(&run2) {
        assert_eq!(
            (&a.uri, a.extinf),
            (&b.uri, b.extinf),
            "earlier entries kept"
        );
    }
    let resumed = &run2[run1.len()];
    assert!(
        resumed.discontinuity && resumed.pdt.is_some(),
        "{resumed:?}"
    );
    let seqs: Vec<u64> = run2.iter().map(sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    check_timeline(&run2[run1.len()..], "video", 0.04);
}

#[test]
fn pcap_and_udp_in_a_namespace_started_before_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (clip(d, "a.ts", 10.0), clip(d, "b.ts", 10.0));
    let group_a = SocketAddrV4::new([239, 77, 0, 1].into(), 5000);
    let group_b = SocketAddrV4::new([239, 77, 0, 2].into(), 5002);
    // b arrives in RTP, with three pairs of datagrams swapped in transit.
    let mut rtp = Wrap::new(&b, group_b);
    rtp.rtp = Some(0);
    rtp.swap = vec![100, 300, 500];
    let pcap = d.join("send.pcap");
    write_pcap(
        &pcap,
        SystemTime::now(),
        &[Wrap::new(&a, group_a), rtp],
        false,
    )
    .unwrap();

    let plan = NetPlan::new();
    let archive = d.join("archive");
    let stream = |name: &str, kind: &str, g: SocketAddrV4, extra: &str| {
        format!(
            "[[streams]]\nname = \"{name}\"\nsegment_duration = \"2s\"\nstall_timeout = \"1s\"\n[streams.source]\nkind = \"{kind}\"\ninterface = \"{}\"\ngroup = \"{}\"\nport = {}\nbuffer_size = \"4MiB\"\n{extra}",
            plan.host_if,
            g.ip(),
            g.port()
        )
    };
    let config = d.join("live.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nroot = \"{}\"\n{}{}{}{}{}",
            archive.display(),
            stream("a-pcap", "pcap", group_a, ""),
            stream("b-pcap", "pcap", group_b, ""),
            stream("a-udp", "udp", group_a, ""),
            // Source-specific multicast: the sender (10.0.0.1 in the
            // capture) and a sender that does not exist.
            stream("a-ssm", "udp", group_a, "source_addr = \"10.0.0.1\"\n"),
            stream(
                "a-ssm-other",
                "udp",
                group_a,
                "source_addr = \"10.0.0.99\"\n"
            ),
        ),
    )
    .unwrap();

    // The interface does not exist yet: hlsvault waits for it.
    let mut daemon = Daemon::start(&config, d, "run");
    daemon.wait_for("live source failed; retrying", 2);
    let net = plan.create().unwrap();
    daemon.wait_for("capturing", 1);
    daemon.wait_for("receiving", 1);
    let mut replay = net.command("timeout");
    replay
        .args(["60", "tcpreplay", "-q", "-i", &net.plan.ns_if])
        .arg(&pcap);
    run(&mut replay).unwrap();
    daemon.wait_for("stream stalled", 4);
    let daemon_log = daemon.log();
    let summary = daemon.stop();
    drop(net);

    let line = |name: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no summary for {name}: {summary}"))
            .to_string()
    };
    for name in ["a-pcap", "b-pcap", "a-udp", "a-ssm"] {
        let l = line(name);
        assert!(
            l.contains(" 0 CC errors, 1 discontinuities;"),
            "the stall: {l}"
        );
        assert!(l.contains("; 1 stalls"), "{l}");
        assert!(
            !l.contains("drops"),
            "no kernel, interface or socket drops: {l}"
        );
        let e = entries(&archive, name);
        assert!(!e.iter().any(|e| e.discontinuity), "{name}: {e:#?}");
        check_timeline(&e, "video", 0.04);
        let secs = media_seconds(&e);
        assert!((9.0..=10.05).contains(&secs), "{name}: {secs} s");
    }
    let b = line("b-pcap");
    assert!(b.contains("; 3 RTP datagrams put back in order"), "{b}");
    assert!(!b.contains("lost"), "{b}");
    // The same datagrams through libpcap and through a socket: the same archive.
    let extinf =
        |name: &str| -> Vec<f64> { entries(&archive, name).iter().map(|e| e.extinf).collect() };
    assert_eq!(extinf("a-pcap"), extinf("a-udp"));
    assert_eq!(extinf("a-pcap"), extinf("a-ssm"));
    assert!(line("a-ssm-other").starts_with("a-ssm-other: 0 segments"));
    assert!(daemon_log.contains("no datagrams received yet"));
}

#[test]
fn check_names_missing_and_down_interfaces_and_missing_privilege() {
    // World-readable, for the unprivileged run below.
    let dir = tempfile::Builder::new()
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap();
    let config = |iface: &str| {
        let p = dir.path().join(format!("{iface}.toml"));
        std::fs::write(
            &p,
            format!("[[streams]]\nname = \"ch1\"\n[streams.source]\nkind = \"pcap\"\ninterface = \"{iface}\"\ngroup = \"239.1.2.3\"\nport = 5000\n"),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        p
    };
    let check = |cmd: &mut Command, iface: &str| {
        let out = cmd
            .args(["check", "--config", config(iface).to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    let bin = env!("CARGO_BIN_EXE_hlsvault");

    let err = check(&mut Command::new(bin), "hv-nosuch0");
    assert!(
        err.contains("streams[0] (\"ch1\").source.interface: no network interface is named or has the address \"hv-nosuch0\""),
        "{err}"
    );

    // A new veth pair is down until set up.
    let dummy = format!("hvd{:x}", std::process::id() % 0xFFFF);
    let peer = format!("{dummy}p");
    run(Command::new("ip").args(["link", "add", &dummy, "type", "veth", "peer", "name", &peer]))
        .unwrap();
    let err = check(&mut Command::new(bin), &dummy);
    let _ = Command::new("ip").args(["link", "del", &dummy]).status();
    assert!(
        err.contains(&format!(
            "source.interface: network interface {dummy} is down"
        )),
        "{err}"
    );

    let mut unprivileged = Command::new("setpriv");
    unprivileged.args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        bin,
    ]);
    let err = check(&mut unprivileged, "lo");
    assert!(err.contains("no permission to capture on lo"), "{err}");
    assert!(
        err.contains("setcap cap_net_raw") && err.contains("kind = \"udp\""),
        "{err}"
    );
}
